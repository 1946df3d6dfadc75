-- Foundation: organisations, accounts, refresh tokens, the hash-chained audit log and the
-- inventory (projects, pre-sale permits, buildings, units). Mirrors migrations/sqlite/0001.

CREATE TABLE organisations (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('developer', 'registration_centre', 'operator')),
    name        TEXT NOT NULL,
    uscc        TEXT UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    username        TEXT NOT NULL,
    display_name    TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('developer', 'buyer', 'reviewer', 'admin')),
    duties          TEXT NOT NULL DEFAULT '',
    organisation_id TEXT REFERENCES organisations (id),
    password_hash   TEXT NOT NULL,
    demo            BOOLEAN NOT NULL DEFAULT FALSE,
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      TIMESTAMPTZ NOT NULL,
    CONSTRAINT users_username_unique UNIQUE (username)
);

CREATE TABLE refresh_tokens (
    id          TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- One row holding the chain's head: appending takes its row lock, so appends are serialised
-- across every service instance.
CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_events (
    seq          BIGINT PRIMARY KEY,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    actor_id     TEXT,
    actor_role   TEXT,
    action       TEXT NOT NULL,
    object_kind  TEXT NOT NULL,
    object_id    TEXT NOT NULL,
    object_hash  TEXT,
    source       TEXT,
    detail       TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE projects (
    id                      TEXT PRIMARY KEY,
    developer_id            TEXT NOT NULL REFERENCES organisations (id),
    name                    TEXT NOT NULL,
    town                    TEXT NOT NULL,
    parcel_code             TEXT NOT NULL,
    land_certificate_no     TEXT NOT NULL,
    land_use                TEXT NOT NULL,
    land_term_end           DATE NOT NULL,
    planning_permit_no      TEXT NOT NULL,
    construction_permit_no  TEXT NOT NULL,
    created_at              TIMESTAMPTZ NOT NULL
);

CREATE TABLE presale_permits (
    id                   TEXT PRIMARY KEY,
    project_id           TEXT NOT NULL REFERENCES projects (id),
    number               TEXT NOT NULL UNIQUE,
    authority            TEXT NOT NULL,
    issued_on            DATE NOT NULL,
    escrow_bank          TEXT NOT NULL,
    escrow_account_name  TEXT NOT NULL,
    escrow_account_no    TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('valid', 'suspended', 'revoked')),
    created_at           TIMESTAMPTZ NOT NULL
);

CREATE TABLE buildings (
    id            TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL REFERENCES projects (id),
    number        INTEGER NOT NULL,
    name          TEXT NOT NULL,
    floors_above  INTEGER NOT NULL,
    floors_below  INTEGER NOT NULL,
    CONSTRAINT buildings_project_number_unique UNIQUE (project_id, number)
);

-- Areas in hundredths of a square metre and prices in fen, so sums are exact.
CREATE TABLE units (
    id                  TEXT PRIMARY KEY,
    project_id          TEXT NOT NULL REFERENCES projects (id),
    building_id         TEXT NOT NULL REFERENCES buildings (id),
    permit_id           TEXT REFERENCES presale_permits (id),
    room_no             TEXT NOT NULL,
    floor               INTEGER NOT NULL,
    unit_number         TEXT NOT NULL UNIQUE,
    use_type            TEXT NOT NULL,
    gross_area          BIGINT NOT NULL,
    internal_area       BIGINT NOT NULL,
    shared_area         BIGINT NOT NULL,
    storey_height_mm    INTEGER NOT NULL,
    filed_price_fen     BIGINT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('unreleased', 'available', 'locked', 'signed', 'filed', 'advance_notice_registered')),
    seized              BOOLEAN NOT NULL DEFAULT FALSE,
    mortgaged           BOOLEAN NOT NULL DEFAULT FALSE,
    objection           BOOLEAN NOT NULL DEFAULT FALSE,
    manual_hold         BOOLEAN NOT NULL DEFAULT FALSE,
    version             BIGINT NOT NULL DEFAULT 1,
    updated_at          TIMESTAMPTZ NOT NULL,
    CONSTRAINT units_area_sum CHECK (gross_area = internal_area + shared_area),
    CONSTRAINT units_building_room_unique UNIQUE (building_id, room_no)
);
CREATE INDEX units_project ON units (project_id, building_id);
