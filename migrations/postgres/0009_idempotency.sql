-- Idempotency keys: a retried POST with the same key returns the first result and changes
-- nothing twice. Keys are scoped to the caller (a hash of its credentials), bound to the request
-- they were first used with, and kept for a day. Mirrors migrations/sqlite/0009.

CREATE TABLE idempotency_keys (
    scope         TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        INTEGER,
    content_type  TEXT,
    response      BYTEA,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key)
);
