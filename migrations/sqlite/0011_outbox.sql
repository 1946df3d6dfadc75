-- The notification outbox (issue 7): every status change of a contract or a registration case
-- writes an event row in the same transaction as the change itself — by trigger, so no code
-- path can change a status without its event, and an event is never written for a change that
-- was rolled back. A dispatcher claims due rows with a lease and posts them as signed webhooks,
-- retrying with backoff (at-least-once; the event id is the receiver's idempotency key).
-- Mirrors migrations/postgres/0011.

CREATE TABLE outbox (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id         TEXT NOT NULL UNIQUE,
    object_kind      TEXT NOT NULL,
    object_id        TEXT NOT NULL,
    status           TEXT NOT NULL,
    occurred_at      TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    lease_until      TEXT,
    delivered_at     TEXT,
    dead_at          TEXT,
    last_error       TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL AND dead_at IS NULL;

CREATE TRIGGER contracts_outbox_insert AFTER INSERT ON contracts
BEGIN
    INSERT INTO outbox (event_id, object_kind, object_id, status, occurred_at, next_attempt_at)
    VALUES (lower(hex(randomblob(16))), 'contract', NEW.id, NEW.status, NEW.updated_at, NEW.updated_at);
END;

CREATE TRIGGER contracts_outbox_update AFTER UPDATE OF status ON contracts
WHEN OLD.status IS NOT NEW.status
BEGIN
    INSERT INTO outbox (event_id, object_kind, object_id, status, occurred_at, next_attempt_at)
    VALUES (lower(hex(randomblob(16))), 'contract', NEW.id, NEW.status, NEW.updated_at, NEW.updated_at);
END;

CREATE TRIGGER registrations_outbox_insert AFTER INSERT ON registrations
BEGIN
    INSERT INTO outbox (event_id, object_kind, object_id, status, occurred_at, next_attempt_at)
    VALUES (lower(hex(randomblob(16))), 'registration', NEW.id, NEW.status, NEW.updated_at, NEW.updated_at);
END;

CREATE TRIGGER registrations_outbox_update AFTER UPDATE OF status ON registrations
WHEN OLD.status IS NOT NEW.status
BEGIN
    INSERT INTO outbox (event_id, object_kind, object_id, status, occurred_at, next_attempt_at)
    VALUES (lower(hex(randomblob(16))), 'registration', NEW.id, NEW.status, NEW.updated_at, NEW.updated_at);
END;
