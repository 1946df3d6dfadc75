-- Side exits of a registration case and the life of the register entry (DOMAIN.md):
-- a case can be put on hold — requisitioned (补正: the applicant is told everything missing and
-- hands it in) or suspended (court, objection) — and comes back to the step it was at; the
-- register entry of an advance notice is valid until it lapses (its legal period after the
-- unit's delivery) or is cancelled, which revokes the certificate. Materials uploaded by a party
-- are stored once by content and remembered per owner, so they are reused, never handed in
-- twice. Mirrors migrations/postgres/0013.

ALTER TABLE registrations ADD COLUMN hold TEXT CHECK (hold IN ('requisitioned', 'suspended'));
ALTER TABLE registrations ADD COLUMN hold_reasons TEXT;
ALTER TABLE registrations ADD COLUMN entry_status TEXT CHECK (entry_status IN ('valid', 'converted', 'lapsed', 'cancelled'));
ALTER TABLE registrations ADD COLUMN lapses_on DATE;
CREATE INDEX registrations_lapsing ON registrations (lapses_on) WHERE entry_status = 'valid';

CREATE TABLE material_owners (
    sha256       TEXT NOT NULL REFERENCES materials (sha256),
    user_id      TEXT NOT NULL REFERENCES users (id),
    kind         TEXT NOT NULL CHECK (kind IN ('id_card', 'business_licence', 'court_document', 'consent', 'other')),
    name         TEXT NOT NULL,
    uploaded_at  TEXT NOT NULL,
    PRIMARY KEY (sha256, user_id)
);
CREATE INDEX material_owners_user ON material_owners (user_id, uploaded_at);

-- Holds are told like status changes (the outbox of 0011).
CREATE TRIGGER registrations_outbox_hold AFTER UPDATE OF hold ON registrations
WHEN NEW.hold IS NOT NULL AND OLD.hold IS NOT NEW.hold
BEGIN
    INSERT INTO outbox (event_id, object_kind, object_id, status, occurred_at, next_attempt_at)
    VALUES (lower(hex(randomblob(16))), 'registration', NEW.id, NEW.hold, NEW.updated_at, NEW.updated_at);
END;
