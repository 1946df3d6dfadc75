-- Opening day (issue 15): what several instances must agree on lives in the database.

-- An idempotency claim is a lease: a process that dies between claiming a key and recording its
-- answer leaves a claim that expires; the retry that takes it over learns from the effects below
-- whether the first attempt's change was committed.
ALTER TABLE idempotency_keys ADD COLUMN lease_until TIMESTAMPTZ;

-- Written in the same transaction as the change a request made (a contract drafted or moved, a
-- registration case applied for or moved), under the request's idempotency key.
CREATE TABLE idempotency_effects (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    object_kind  TEXT NOT NULL,
    object_id    TEXT NOT NULL,
    created      BOOLEAN NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key, object_kind, object_id)
);

-- Sign-in attempts, counted across instances: every attempt per source address, failures per
-- account. Keys are SHA-256 of the address or the account name (no addresses kept in clear).
CREATE TABLE login_attempts (
    kind  TEXT NOT NULL,
    key   TEXT NOT NULL,
    at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_attempts_key ON login_attempts (kind, key, at);

-- Each CA's CRL number, increased by one for every CRL any instance issues.
CREATE TABLE crl_numbers (
    ca      TEXT PRIMARY KEY,
    number  BIGINT NOT NULL
);
