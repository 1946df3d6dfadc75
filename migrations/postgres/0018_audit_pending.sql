-- The audit trail in two steps (store::AuditQueue): a request commits its entry here, without
-- the chain's lock; a chainer moves pending entries into audit_events in batches, giving each
-- its sequence number and hash under the chain's head. Entries are chained in `id` order.
CREATE TABLE audit_pending (
    id           BIGSERIAL PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL,
    actor_id     TEXT,
    actor_role   TEXT,
    action       TEXT NOT NULL,
    object_kind  TEXT NOT NULL,
    object_id    TEXT NOT NULL,
    object_hash  TEXT,
    source       TEXT,
    detail       TEXT NOT NULL
);
