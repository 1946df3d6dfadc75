-- The lists of cases (issue 13): a buyer finds the contracts that name them by the lookup hash of
-- their ID number, and everyone filters on a buyer's masked name, without opening the terms.
CREATE TABLE contract_buyers (
    contract_id     TEXT NOT NULL REFERENCES contracts (id),
    position        INTEGER NOT NULL,
    id_number_hash  TEXT NOT NULL,
    name_masked     TEXT NOT NULL,
    PRIMARY KEY (contract_id, position)
);
CREATE INDEX contract_buyers_hash ON contract_buyers (id_number_hash);
CREATE INDEX contract_buyers_name ON contract_buyers (name_masked);
-- Queues are oldest first by the last change; lists newest first by id (UUIDv7, time-ordered).
CREATE INDEX contracts_status_updated ON contracts (status, updated_at, id);
CREATE INDEX registrations_status_updated ON registrations (status, updated_at, id);
CREATE INDEX registrations_applicant ON registrations (applicant_id, id);
