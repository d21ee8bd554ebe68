-- The fleet, tenants, keys, audit log and allocations. Quantities and money
-- are integers in fixed units (W, micro-USD, PUE in thousandths); instants
-- are unix microseconds UTC; NULL retired_us / revoked_us means in service
-- / valid. STRICT tables refuse values of the wrong type.

-- +goose Up
CREATE TABLE sites (
    name                  TEXT    NOT NULL PRIMARY KEY,
    facility_w            INTEGER NOT NULL,
    pue_milli             INTEGER NOT NULL,
    tariff_micros_per_mwh INTEGER NOT NULL,
    timezone              TEXT    NOT NULL,
    retired_us            INTEGER
) STRICT;

-- A power domain no longer listed is retired, and deleted once no node
-- (in service or retired) names it.
CREATE TABLE power_domains (
    site       TEXT    NOT NULL REFERENCES sites (name),
    name       TEXT    NOT NULL,
    budget_w   INTEGER NOT NULL,
    retired_us INTEGER,
    PRIMARY KEY (site, name)
) STRICT;

CREATE TABLE nodes (
    name          TEXT    NOT NULL PRIMARY KEY,
    site          TEXT    NOT NULL REFERENCES sites (name),
    model         TEXT    NOT NULL,
    gpus          INTEGER NOT NULL,
    it_w          INTEGER NOT NULL,
    power_domain  TEXT    NOT NULL,
    pod           TEXT    NOT NULL,
    leaf_group    TEXT    NOT NULL,
    nvlink_domain TEXT    NOT NULL,
    state         TEXT    NOT NULL
        CHECK (state IN ('available', 'allocated', 'draining', 'sanitizing', 'failed', 'maintenance')),
    retired_us    INTEGER,
    FOREIGN KEY (site, power_domain) REFERENCES power_domains (site, name)
) STRICT;
CREATE INDEX nodes_pool ON nodes (site, model, state);
CREATE INDEX nodes_state ON nodes (state);
CREATE INDEX nodes_power_domain ON nodes (site, power_domain);

CREATE TABLE fleet_revisions (
    seq        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at_us      INTEGER NOT NULL,
    by_key     TEXT    NOT NULL,
    sha256     TEXT    NOT NULL,
    spec       BLOB    NOT NULL,
    node_count INTEGER NOT NULL,
    gpu_count  INTEGER NOT NULL
) STRICT;

CREATE TABLE tenants (
    id           TEXT    NOT NULL PRIMARY KEY,
    display_name TEXT    NOT NULL,
    created_us   INTEGER NOT NULL
) STRICT;

-- Only the SHA-256 of a key's secret is stored, never the secret.
CREATE TABLE api_keys (
    id         TEXT    NOT NULL PRIMARY KEY,
    tenant_id  TEXT    REFERENCES tenants (id),
    role       TEXT    NOT NULL
        CHECK (role IN ('operator-admin', 'operator-viewer', 'tenant-admin', 'tenant-viewer')),
    name       TEXT    NOT NULL,
    hash       TEXT    NOT NULL UNIQUE,
    created_us INTEGER NOT NULL,
    created_by TEXT    NOT NULL,
    revoked_us INTEGER
) STRICT;
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_us);

CREATE TABLE audit_log (
    seq          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at_us        INTEGER NOT NULL,
    actor_key    TEXT    NOT NULL,
    actor_tenant TEXT    NOT NULL,
    actor_role   TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    object       TEXT    NOT NULL,
    tenant_id    TEXT    NOT NULL,
    outcome      TEXT    NOT NULL,
    detail       TEXT    NOT NULL,
    request_id   TEXT    NOT NULL
) STRICT;
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, seq);

-- The audit log is append-only.
-- +goose StatementBegin
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;
-- +goose StatementEnd

-- SQLite has no exclusion constraint: the store checks for an overlapping
-- allocation in the same (IMMEDIATE, single-writer) transaction.
CREATE TABLE allocations (
    id        TEXT    NOT NULL PRIMARY KEY,
    lease_id  TEXT    NOT NULL,
    tenant_id TEXT    NOT NULL,
    node      TEXT    NOT NULL REFERENCES nodes (name),
    start_us  INTEGER NOT NULL,
    end_us    INTEGER NOT NULL,
    CHECK (start_us < end_us)
) STRICT;
CREATE INDEX allocations_node ON allocations (node, end_us);

-- +goose Down
DROP TABLE allocations;
DROP TABLE audit_log;
DROP TABLE api_keys;
DROP TABLE tenants;
DROP TABLE fleet_revisions;
DROP TABLE nodes;
DROP TABLE power_domains;
DROP TABLE sites;
