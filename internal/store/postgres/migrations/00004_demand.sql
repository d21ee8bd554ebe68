-- The owner's measured internal demand: GPUs of a pool in use in an hour
-- (hour_us: the hour's start, in microseconds since the epoch, UTC).

-- +goose Up
CREATE TABLE demand_samples (
    pool    TEXT    NOT NULL,
    hour_us BIGINT  NOT NULL CHECK (hour_us % 3600000000 = 0),
    gpus    BIGINT  NOT NULL CHECK (gpus >= 0),
    PRIMARY KEY (pool, hour_us)
);

-- +goose Down
DROP TABLE demand_samples;
