-- Spot terms on leases: the highest price per GPU-hour (micro-USD), the
-- notice tier, and when a reclaim notice was given (the lease's end is
-- then its release time).

-- +goose Up
ALTER TABLE leases ADD COLUMN max_price_micros BIGINT NOT NULL DEFAULT 0 CHECK (max_price_micros >= 0);
ALTER TABLE leases ADD COLUMN notice TEXT NOT NULL DEFAULT '';
ALTER TABLE leases ADD COLUMN noticed_us BIGINT;

-- +goose Down
ALTER TABLE leases DROP COLUMN noticed_us;
ALTER TABLE leases DROP COLUMN notice;
ALTER TABLE leases DROP COLUMN max_price_micros;
