-- Registration applications (预告登记 of a filed contract) and the certificates they lead to.
-- Each step records who took it, so no person takes two steps of one case (four eyes), and at
-- most one application per contract is alive. The application references the filed contract
-- among the stored materials instead of asking for it again. Mirrors migrations/sqlite/0008.

CREATE TABLE registrations (
    id                  TEXT PRIMARY KEY,
    contract_id         TEXT NOT NULL REFERENCES contracts (id),
    applicant_id        TEXT NOT NULL REFERENCES users (id),
    status              TEXT NOT NULL CHECK (status IN ('submitted', 'accepted', 'not_accepted', 'first_reviewed', 'second_reviewed', 'recorded', 'certificate_issued', 'rejected', 'withdrawn')),
    acceptance_no       TEXT UNIQUE,
    acceptor_id         TEXT REFERENCES users (id),
    first_reviewer_id   TEXT REFERENCES users (id),
    second_reviewer_id  TEXT REFERENCES users (id),
    recorder_id         TEXT REFERENCES users (id),
    certificate_no      TEXT UNIQUE,
    certificate_sha256  TEXT REFERENCES materials (sha256),
    certificate_status  TEXT CHECK (certificate_status IN ('valid', 'revoked', 'superseded')),
    materials           TEXT NOT NULL DEFAULT '[]',
    opinions            TEXT NOT NULL DEFAULT '[]',
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX registrations_one_live_per_contract ON registrations (contract_id)
    WHERE status NOT IN ('not_accepted', 'rejected', 'withdrawn');
