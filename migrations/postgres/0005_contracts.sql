-- Contracts (first part of the workflow): a draft holds its unit. One unit, one live contract
-- (一房一合同) is the database's own rule: a partial unique index on the unit of every live
-- contract, so two requests on any number of instances can never both hold a unit.
-- Mirrors migrations/sqlite/0005.

CREATE TABLE contracts (
    id            TEXT PRIMARY KEY,
    contract_no   TEXT NOT NULL UNIQUE,
    unit_id       TEXT NOT NULL REFERENCES units (id),
    developer_id  TEXT NOT NULL REFERENCES organisations (id),
    status        TEXT NOT NULL CHECK (status IN ('draft', 'awaiting_buyers', 'buyers_signing', 'buyers_signed', 'sealed', 'filing_review', 'filed', 'returned', 'withdrawn', 'expired', 'cancel_requested', 'cancelled')),
    live          BOOLEAN NOT NULL,
    version       INTEGER NOT NULL DEFAULT 1,
    terms         TEXT NOT NULL,
    drafter_id    TEXT NOT NULL REFERENCES users (id),
    confirmer_id  TEXT REFERENCES users (id),
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX contracts_one_live_per_unit ON contracts (unit_id) WHERE live;
CREATE INDEX contracts_developer ON contracts (developer_id, created_at);
