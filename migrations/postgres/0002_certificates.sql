-- Certificates issued by the service's CAs (the certificate request log) and their revocation.
-- Mirrors migrations/sqlite/0002.

CREATE TABLE certificates (
    serial             TEXT PRIMARY KEY,
    issuer             TEXT NOT NULL,
    profile            TEXT NOT NULL,
    subject            TEXT NOT NULL,
    organisation_id    TEXT REFERENCES organisations (id),
    verification_id    TEXT,
    not_before         TIMESTAMPTZ NOT NULL,
    not_after          TIMESTAMPTZ NOT NULL,
    der                BYTEA NOT NULL,
    revoked_at         TIMESTAMPTZ,
    revocation_reason  TEXT,
    created_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX certificates_issuer ON certificates (issuer, revoked_at);
