-- The web window (issue 14): buyers sign up and sign in with their mobile number and a one-time
-- code sent by SMS; the number is stored encrypted (bound to the account) with a keyed lookup hash,
-- like ID numbers. A buyer's reading of each chapter of the exact contract version is recorded:
-- signing needs every chapter opened and a minimum time since the first.
ALTER TABLE users ADD COLUMN phone_enc TEXT;
ALTER TABLE users ADD COLUMN phone_hash TEXT;
CREATE UNIQUE INDEX users_phone ON users (phone_hash) WHERE phone_hash IS NOT NULL;

CREATE TABLE phone_challenges (
    id          TEXT PRIMARY KEY,
    phone_hash  TEXT NOT NULL,
    phone_enc   TEXT NOT NULL,
    code_hash   TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX phone_challenges_phone ON phone_challenges (phone_hash, created_at);

CREATE TABLE contract_readings (
    contract_id  TEXT NOT NULL REFERENCES contracts (id),
    version      INTEGER NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id),
    chapter      INTEGER NOT NULL,
    opened_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (contract_id, version, user_id, chapter)
);

-- A case's timeline reads the audit entries about it.
CREATE INDEX audit_events_object ON audit_events (object_id, seq);
