-- Contract documents and signatures. Every document (a contract PDF at each signed revision, a
-- filing record, later uploaded materials) is stored once by its SHA-256 (材料复用库) and
-- referenced. A contract points at its current PDF; each signature keeps what the identity hook
-- checked. Mirrors migrations/sqlite/0006.

CREATE TABLE materials (
    sha256      TEXT PRIMARY KEY,
    media_type  TEXT NOT NULL,
    size        BIGINT NOT NULL,
    content     BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

ALTER TABLE contracts ADD COLUMN document_sha256 TEXT REFERENCES materials (sha256);
ALTER TABLE contracts ADD COLUMN filing_no TEXT;
CREATE UNIQUE INDEX contracts_filing_no ON contracts (filing_no);

CREATE TABLE contract_signatures (
    id                 TEXT PRIMARY KEY,
    contract_id        TEXT NOT NULL REFERENCES contracts (id),
    contract_version   INTEGER NOT NULL,
    field              TEXT NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('personal', 'organisation_seal', 'centre_seal', 'document_timestamp')),
    signer_user_id     TEXT REFERENCES users (id),
    certificate_serial TEXT,
    signed_at          TIMESTAMPTZ NOT NULL,
    document_before    TEXT NOT NULL,
    document_after     TEXT NOT NULL REFERENCES materials (sha256),
    evidence           TEXT NOT NULL DEFAULT '{}',
    CONSTRAINT contract_signatures_once UNIQUE (contract_id, contract_version, field)
);
