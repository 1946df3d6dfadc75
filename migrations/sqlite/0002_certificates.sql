-- Certificates issued by the service's CAs (the certificate request log) and their revocation.
-- Mirrors migrations/postgres/0002.

CREATE TABLE certificates (
    serial             TEXT PRIMARY KEY,
    issuer             TEXT NOT NULL,
    profile            TEXT NOT NULL,
    subject            TEXT NOT NULL,
    organisation_id    TEXT REFERENCES organisations (id),
    verification_id    TEXT,
    not_before         TEXT NOT NULL,
    not_after          TEXT NOT NULL,
    der                BLOB NOT NULL,
    revoked_at         TEXT,
    revocation_reason  TEXT,
    created_at         TEXT NOT NULL
);
CREATE INDEX certificates_issuer ON certificates (issuer, revoked_at);
