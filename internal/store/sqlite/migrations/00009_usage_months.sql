-- usage_months: the hourly rollup summed by UTC month, kept in step with
-- usage_hours (AddUsage writes both), so that a monthly invoice run reads
-- a row per lease instead of one per lease and hour.

-- +goose Up
CREATE TABLE usage_months (
    month_ms   INTEGER NOT NULL,
    pool       TEXT    NOT NULL,
    use        TEXT    NOT NULL CHECK (use IN ('lease', 'internal', 'idle')),
    lease_id   TEXT    NOT NULL DEFAULT '',
    tenant_id  TEXT    NOT NULL DEFAULT '',
    gpu_ms     INTEGER NOT NULL,
    used_ms    INTEGER NOT NULL,
    healthy_ms INTEGER NOT NULL,
    energy_mj  INTEGER NOT NULL,
    readings   INTEGER NOT NULL,
    PRIMARY KEY (month_ms, pool, use, lease_id)
) STRICT, WITHOUT ROWID;
INSERT INTO usage_months
SELECT (strftime('%s', datetime(hour_ms / 1000, 'unixepoch', 'start of month')) * 1000), pool, use, lease_id, MAX(tenant_id),
       SUM(gpu_ms), SUM(used_ms), SUM(healthy_ms), SUM(energy_mj), SUM(readings)
FROM usage_hours GROUP BY 1, pool, use, lease_id;

-- +goose Down
DROP TABLE usage_months;
