-- Metering. meter_samples keeps each GPU's readings (the fields usage is
-- computed from) for the late window, plus the latest older one per GPU,
-- so that a late reading finds its neighbours; its key is a reading's
-- identity (node ordinal, GPU index, time in Unix ms), which makes a
-- duplicate impossible. meter_batches remembers each pushed batch's ID and
-- outcome, so a retried push is answered without being applied again.
-- usage_hours is the hourly rollup: per hour (Unix ms), pool and use
-- (lease, internal, idle), GPU time covered by readings, used and healthy
-- (ms), energy (mJ) and the readings counted. health_findings records what
-- the health rules found.

-- The agent's keys get their own role, operator-agent: SQLite cannot
-- change a CHECK constraint, so api_keys is rebuilt.

-- +goose Up
CREATE TABLE api_keys_new (
    id         TEXT    NOT NULL PRIMARY KEY,
    tenant_id  TEXT    REFERENCES tenants (id),
    role       TEXT    NOT NULL
        CHECK (role IN ('operator-admin', 'operator-viewer', 'operator-agent', 'tenant-admin', 'tenant-viewer')),
    name       TEXT    NOT NULL,
    hash       TEXT    NOT NULL UNIQUE,
    created_us INTEGER NOT NULL,
    created_by TEXT    NOT NULL,
    revoked_us INTEGER
) STRICT;
INSERT INTO api_keys_new SELECT id, tenant_id, role, name, hash, created_us, created_by, revoked_us FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE api_keys_new RENAME TO api_keys;
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_us);

CREATE TABLE meter_samples (
    node                 INTEGER NOT NULL,
    gpu                  INTEGER NOT NULL,
    t_ms                 INTEGER NOT NULL,
    util_pct             INTEGER NOT NULL,
    energy_mj            INTEGER NOT NULL,
    xid                  INTEGER NOT NULL,
    power_violation_us   INTEGER NOT NULL,
    thermal_violation_us INTEGER NOT NULL,
    remap_failure        INTEGER NOT NULL,
    PRIMARY KEY (node, gpu, t_ms)
) STRICT, WITHOUT ROWID;

CREATE TABLE meter_batches (
    id          TEXT    NOT NULL PRIMARY KEY,
    agent       TEXT    NOT NULL DEFAULT '',
    received_us INTEGER NOT NULL,
    accepted    INTEGER NOT NULL,
    duplicates  INTEGER NOT NULL,
    too_late    INTEGER NOT NULL,
    too_early   INTEGER NOT NULL
) STRICT;
CREATE INDEX meter_batches_received ON meter_batches (received_us);

CREATE TABLE usage_hours (
    hour_ms    INTEGER NOT NULL,
    pool       TEXT    NOT NULL,
    use        TEXT    NOT NULL CHECK (use IN ('lease', 'internal', 'idle')),
    lease_id   TEXT    NOT NULL DEFAULT '',
    tenant_id  TEXT    NOT NULL DEFAULT '',
    gpu_ms     INTEGER NOT NULL,
    used_ms    INTEGER NOT NULL,
    healthy_ms INTEGER NOT NULL,
    energy_mj  INTEGER NOT NULL,
    readings   INTEGER NOT NULL,
    PRIMARY KEY (hour_ms, pool, use, lease_id)
) STRICT;
CREATE INDEX usage_hours_lease ON usage_hours (lease_id, hour_ms) WHERE lease_id <> '';
CREATE INDEX usage_hours_tenant ON usage_hours (tenant_id, hour_ms) WHERE tenant_id <> '';

CREATE TABLE health_findings (
    seq      INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    node     TEXT    NOT NULL,
    gpu      INTEGER NOT NULL,
    at_us    INTEGER NOT NULL,
    severity TEXT    NOT NULL,
    rule     TEXT    NOT NULL,
    detail   TEXT    NOT NULL
) STRICT;
CREATE INDEX health_findings_node ON health_findings (node, at_us);
CREATE INDEX health_findings_at ON health_findings (at_us);

-- +goose Down
DROP TABLE health_findings;
DROP TABLE usage_hours;
DROP TABLE meter_batches;
DROP TABLE meter_samples;
DELETE FROM api_keys WHERE role = 'operator-agent';
CREATE TABLE api_keys_old (
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
INSERT INTO api_keys_old SELECT id, tenant_id, role, name, hash, created_us, created_by, revoked_us FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE api_keys_old RENAME TO api_keys;
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_us);
