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

-- The agent's keys get their own role, operator-agent.

-- +goose Up
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
    CHECK (role IN ('operator-admin', 'operator-viewer', 'operator-agent', 'tenant-admin', 'tenant-viewer'));

CREATE TABLE meter_samples (
    node                 BIGINT  NOT NULL,
    gpu                  INTEGER NOT NULL,
    t_ms                 BIGINT  NOT NULL,
    util_pct             INTEGER NOT NULL,
    energy_mj            BIGINT  NOT NULL,
    xid                  INTEGER NOT NULL,
    power_violation_us   BIGINT  NOT NULL,
    thermal_violation_us BIGINT  NOT NULL,
    remap_failure        BOOLEAN NOT NULL,
    PRIMARY KEY (node, gpu, t_ms)
);

CREATE TABLE meter_batches (
    id          TEXT    NOT NULL PRIMARY KEY,
    agent       TEXT    NOT NULL DEFAULT '',
    received_us BIGINT  NOT NULL,
    accepted    INTEGER NOT NULL,
    duplicates  INTEGER NOT NULL,
    too_late    INTEGER NOT NULL,
    too_early   INTEGER NOT NULL
);
CREATE INDEX meter_batches_received ON meter_batches (received_us);

CREATE TABLE usage_hours (
    hour_ms    BIGINT  NOT NULL,
    pool       TEXT    NOT NULL,
    use        TEXT    NOT NULL CHECK (use IN ('lease', 'internal', 'idle')),
    lease_id   TEXT    NOT NULL DEFAULT '',
    tenant_id  TEXT COLLATE "C" NOT NULL DEFAULT '',
    gpu_ms     BIGINT  NOT NULL,
    used_ms    BIGINT  NOT NULL,
    healthy_ms BIGINT  NOT NULL,
    energy_mj  BIGINT  NOT NULL,
    readings   BIGINT  NOT NULL,
    PRIMARY KEY (hour_ms, pool, use, lease_id)
);
CREATE INDEX usage_hours_lease ON usage_hours (lease_id, hour_ms) WHERE lease_id <> '';
CREATE INDEX usage_hours_tenant ON usage_hours (tenant_id, hour_ms) WHERE tenant_id <> '';

CREATE TABLE health_findings (
    seq      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    node     TEXT    NOT NULL,
    gpu      INTEGER NOT NULL,
    at_us    BIGINT  NOT NULL,
    severity TEXT    NOT NULL,
    rule     TEXT    NOT NULL,
    detail   TEXT    NOT NULL
);
CREATE INDEX health_findings_node ON health_findings (node, at_us);
CREATE INDEX health_findings_at ON health_findings (at_us);

-- +goose Down
DROP TABLE health_findings;
DROP TABLE usage_hours;
DROP TABLE meter_batches;
DROP TABLE meter_samples;
DELETE FROM api_keys WHERE role = 'operator-agent';
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
    CHECK (role IN ('operator-admin', 'operator-viewer', 'tenant-admin', 'tenant-viewer'));
