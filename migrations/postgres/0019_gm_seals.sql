-- 国密 (issue 16): GB/T 38540 electronic seals, kept with their esID. The seal data (a DER
-- SESeal signed by the seal maker) names the certificates allowed to use it; the holder is the
-- pki_objects row with that certificate and its SM2 key.
CREATE TABLE es_seals (
    es_id           TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    seal_type       INTEGER NOT NULL,
    holder          TEXT NOT NULL,
    organisation_id TEXT,
    seal_der        BYTEA NOT NULL,
    valid_from      TIMESTAMPTZ NOT NULL,
    valid_to        TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    revoked_at      TIMESTAMPTZ,
    revocation_reason TEXT
);
-- One live seal per holder: of two instances making it at once, one is kept.
CREATE UNIQUE INDEX es_seals_live_holder ON es_seals (holder) WHERE revoked_at IS NULL;

-- The registration certificate as a sealed OFD package, beside the PDF.
ALTER TABLE registrations ADD COLUMN certificate_ofd_sha256 TEXT REFERENCES materials (sha256);
