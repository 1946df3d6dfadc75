-- Key custody in the database (issue 15): the certificates of the CA hierarchy, the service's
-- own units (time-stamping, the centre's seal) and the organisations' seals, each with a
-- reference to its private key — the key itself encrypted under pki.key_encryption_key
-- (software custody) or the label of a non-extractable key on the PKCS#11 token every instance
-- shares. Instances share nothing else.
CREATE TABLE pki_objects (
    name        TEXT PRIMARY KEY,
    cert_der    BYTEA NOT NULL,
    key_kind    TEXT NOT NULL,
    key_label   TEXT,
    key_pem     BYTEA,
    created_at  TIMESTAMPTZ NOT NULL
);
