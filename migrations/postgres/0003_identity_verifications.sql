-- Identity verifications (real name + face, through a provider). The PKI issues a person's event
-- certificate only against a passed, fresh, unused verification (`event_cert_serial` records it).
-- The raw ID number is never stored here: only a keyed pseudonym. Mirrors migrations/sqlite/0003.

CREATE TABLE identity_verifications (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL REFERENCES users (id),
    purpose            TEXT NOT NULL,
    provider           TEXT NOT NULL,
    provider_ref       TEXT,
    subject_name       TEXT NOT NULL,
    id_pseudonym       TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'passed', 'failed', 'cancelled')),
    liveness_passed    BOOLEAN NOT NULL DEFAULT FALSE,
    -- similarity and threshold in hundredths (79.90 is 7990), exact on both databases
    similarity         INTEGER,
    threshold          INTEGER NOT NULL,
    evidence_digest    TEXT,
    created_at         TIMESTAMPTZ NOT NULL,
    completed_at       TIMESTAMPTZ,
    event_cert_serial  TEXT UNIQUE
);
CREATE INDEX identity_verifications_user ON identity_verifications (user_id, created_at);
