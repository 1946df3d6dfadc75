-- Identity checks: the person's real name and ID number on the account (the number encrypted,
-- with a keyed hash for lookup), what the provider reported, callback nonces (replay guard shared
-- by every instance) and one-time signing codes. Mirrors migrations/postgres/0004.

ALTER TABLE users ADD COLUMN real_name TEXT;
ALTER TABLE users ADD COLUMN id_number_enc TEXT;
ALTER TABLE users ADD COLUMN id_number_hash TEXT;
CREATE INDEX users_id_number_hash ON users (id_number_hash);

ALTER TABLE identity_verifications ADD COLUMN identity_matched INTEGER NOT NULL DEFAULT 0;
ALTER TABLE identity_verifications ADD COLUMN failure TEXT;
CREATE INDEX identity_verifications_provider_ref ON identity_verifications (provider, provider_ref);

CREATE TABLE identity_nonces (
    provider  TEXT NOT NULL,
    nonce     TEXT NOT NULL,
    seen_at   TEXT NOT NULL,
    PRIMARY KEY (provider, nonce)
);

CREATE TABLE signing_codes (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id),
    verification_id  TEXT NOT NULL REFERENCES identity_verifications (id),
    purpose          TEXT NOT NULL,
    document_sha256  TEXT NOT NULL,
    code_hash        TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    expires_at       TEXT NOT NULL,
    used_at          TEXT
);
CREATE INDEX signing_codes_user ON signing_codes (user_id, created_at);
