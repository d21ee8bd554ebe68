-- The fleet, tenants, keys, audit log, leases, allocations, holdback and
-- shortfalls. Quantities and money are integers in fixed units (W,
-- micro-USD, PUE in thousandths); instants are unix microseconds UTC; NULL
-- retired_us / revoked_us / cancelled_us means in service / valid / not
-- cancelled. STRICT tables refuse values of the wrong type.

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

-- ord is the node's ordinal: 1, 2, 3, ... in the order nodes were first
-- added, kept when a node is retired and comes back. Nodes are never
-- deleted (they are retired), so every ordinal from 1 to MAX(ord) names a
-- node. Ordinals fit the R*Tree's 32-bit coordinates.
CREATE TABLE nodes (
    name          TEXT    NOT NULL PRIMARY KEY,
    ord           INTEGER NOT NULL UNIQUE CHECK (ord BETWEEN 1 AND 2147483647),
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
-- Allocations check that no node of a run is retired.
CREATE INDEX nodes_retired_ord ON nodes (ord) WHERE retired_us IS NOT NULL;

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

-- A lease, with its capacity schedule as JSON: [{"from_us", "gpus",
-- "power_w"}, ...].
CREATE TABLE leases (
    id           TEXT    NOT NULL PRIMARY KEY,
    tenant_id    TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('contract', 'reservation', 'spot')),
    pool         TEXT    NOT NULL,
    start_us     INTEGER NOT NULL,
    end_us       INTEGER NOT NULL,
    schedule     TEXT    NOT NULL,
    packing      TEXT    NOT NULL,
    isolation    TEXT    NOT NULL,
    state        TEXT    NOT NULL
        CHECK (state IN ('requested', 'admitted', 'scheduled', 'active', 'ended', 'cancelled')),
    reason       TEXT    NOT NULL,
    created_us   INTEGER NOT NULL,
    cancelled_us INTEGER,
    CHECK (start_us < end_us)
) STRICT;
CREATE INDEX leases_tenant ON leases (tenant_id, id);
CREATE INDEX leases_pool ON leases (pool, id);

-- An allocation holds the nodes of ordinals [node_from, node_to) over
-- [start_us, end_us). SQLite has no exclusion constraint: the store checks
-- for an overlapping allocation in the same (IMMEDIATE, single-writer)
-- transaction, through allocations_rtree. seq is the R*Tree's key (an
-- INTEGER PRIMARY KEY, so VACUUM keeps it).
CREATE TABLE allocations (
    seq       INTEGER PRIMARY KEY,
    id        TEXT    NOT NULL UNIQUE,
    lease_id  TEXT    NOT NULL,
    tenant_id TEXT    NOT NULL,
    node_from INTEGER NOT NULL,
    node_to   INTEGER NOT NULL,
    start_us  INTEGER NOT NULL,
    end_us    INTEGER NOT NULL,
    CHECK (node_from < node_to AND start_us < end_us),
    CHECK (node_from >= 1 AND node_to <= 2147483648)
) STRICT;
CREATE INDEX allocations_lease ON allocations (lease_id, start_us, node_from);

-- allocations_rtree mirrors allocations, kept in sync by the triggers
-- below, as a coarse filter: a box of the closed ranges of the ordinals
-- [node_from, node_to - 1] and of the minutes since the epoch the interval
-- touches, [floor(start), floor(end - 1 us)], clamped to 32 bits. Two
-- allocations that overlap have boxes that intersect; boxes that
-- intersect are checked exactly against allocations. Minute-aligned
-- intervals (the usual case) give exact boxes.
CREATE VIRTUAL TABLE allocations_rtree USING rtree_i32 (seq, node_lo, node_hi, minute_lo, minute_hi);
-- +goose StatementBegin
CREATE TRIGGER allocations_rtree_insert AFTER INSERT ON allocations
BEGIN
    INSERT INTO allocations_rtree (seq, node_lo, node_hi, minute_lo, minute_hi) VALUES (
        new.seq, new.node_from, new.node_to - 1,
        max(-2147483648, min(2147483647, new.start_us / 60000000 - (new.start_us % 60000000 < 0))),
        max(-2147483648, min(2147483647, (new.end_us - 1) / 60000000 - ((new.end_us - 1) % 60000000 < 0))));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER allocations_rtree_update AFTER UPDATE ON allocations
BEGIN
    DELETE FROM allocations_rtree WHERE seq = old.seq;
    INSERT INTO allocations_rtree (seq, node_lo, node_hi, minute_lo, minute_hi) VALUES (
        new.seq, new.node_from, new.node_to - 1,
        max(-2147483648, min(2147483647, new.start_us / 60000000 - (new.start_us % 60000000 < 0))),
        max(-2147483648, min(2147483647, (new.end_us - 1) / 60000000 - ((new.end_us - 1) % 60000000 < 0))));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER allocations_rtree_delete AFTER DELETE ON allocations
BEGIN
    DELETE FROM allocations_rtree WHERE seq = old.seq;
END;
-- +goose StatementEnd

-- A pool's holdback schedule: from from_us until the next step, gpus of
-- the pool are held back from guaranteed leases.
CREATE TABLE holdback_steps (
    pool    TEXT    NOT NULL,
    from_us INTEGER NOT NULL,
    gpus    INTEGER NOT NULL CHECK (gpus >= 0),
    PRIMARY KEY (pool, from_us)
) STRICT;

-- Capacity a guaranteed lease was promised and did not get.
CREATE TABLE shortfalls (
    id        TEXT    NOT NULL PRIMARY KEY,
    lease_id  TEXT    NOT NULL,
    tenant_id TEXT    NOT NULL,
    node      TEXT    NOT NULL,
    gpus      INTEGER NOT NULL,
    from_us   INTEGER NOT NULL,
    to_us     INTEGER NOT NULL,
    CHECK (from_us < to_us)
) STRICT;
CREATE INDEX shortfalls_lease ON shortfalls (lease_id, from_us);

-- +goose Down
DROP TABLE shortfalls;
DROP TABLE holdback_steps;
DROP TABLE allocations_rtree;
DROP TABLE allocations;
DROP TABLE leases;
DROP TABLE audit_log;
DROP TABLE api_keys;
DROP TABLE tenants;
DROP TABLE fleet_revisions;
DROP TABLE nodes;
DROP TABLE power_domains;
DROP TABLE sites;
