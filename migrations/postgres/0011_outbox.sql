-- The notification outbox (issue 7): every status change of a contract or a registration case
-- writes an event row in the same transaction as the change itself — by trigger, so no code
-- path can change a status without its event, and an event is never written for a change that
-- was rolled back. A dispatcher claims due rows with a lease and posts them as signed webhooks,
-- retrying with backoff (at-least-once; the event id is the receiver's idempotency key).
-- Mirrors migrations/sqlite/0011.

CREATE TABLE outbox (
    seq              BIGSERIAL PRIMARY KEY,
    event_id         TEXT NOT NULL UNIQUE DEFAULT replace(gen_random_uuid()::text, '-', ''),
    object_kind      TEXT NOT NULL,
    object_id        TEXT NOT NULL,
    status           TEXT NOT NULL,
    occurred_at      TIMESTAMPTZ NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    lease_until      TIMESTAMPTZ,
    delivered_at     TIMESTAMPTZ,
    dead_at          TIMESTAMPTZ,
    last_error       TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL AND dead_at IS NULL;

CREATE FUNCTION outbox_status_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM NEW.status THEN
        INSERT INTO outbox (object_kind, object_id, status, occurred_at, next_attempt_at)
        VALUES (TG_ARGV[0], NEW.id, NEW.status, NEW.updated_at, NEW.updated_at);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER contracts_outbox AFTER INSERT OR UPDATE OF status ON contracts
    FOR EACH ROW EXECUTE FUNCTION outbox_status_event('contract');
CREATE TRIGGER registrations_outbox AFTER INSERT OR UPDATE OF status ON registrations
    FOR EACH ROW EXECUTE FUNCTION outbox_status_event('registration');
