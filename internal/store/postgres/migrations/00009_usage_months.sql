-- usage_months: the hourly rollup summed by UTC month, kept in step with
-- usage_hours (AddUsage writes both), so that a monthly invoice run reads
-- a row per lease instead of one per lease and hour.

-- +goose Up
CREATE TABLE usage_months (
    month_ms   BIGINT NOT NULL,
    pool       TEXT   NOT NULL,
    use        TEXT   NOT NULL CHECK (use IN ('lease', 'internal', 'idle')),
    lease_id   TEXT   NOT NULL DEFAULT '',
    tenant_id  TEXT COLLATE "C" NOT NULL DEFAULT '',
    gpu_ms     BIGINT NOT NULL,
    used_ms    BIGINT NOT NULL,
    healthy_ms BIGINT NOT NULL,
    energy_mj  BIGINT NOT NULL,
    readings   BIGINT NOT NULL,
    PRIMARY KEY (month_ms, pool, use, lease_id)
);
INSERT INTO usage_months
SELECT (EXTRACT(EPOCH FROM date_trunc('month', to_timestamp(hour_ms / 1000.0) AT TIME ZONE 'UTC')) * 1000)::BIGINT, pool, use, lease_id, MAX(tenant_id),
       SUM(gpu_ms), SUM(used_ms), SUM(healthy_ms), SUM(energy_mj), SUM(readings)
FROM usage_hours GROUP BY 1, pool, use, lease_id;

-- +goose Down
DROP TABLE usage_months;
