-- Responses remembered per (caller, Idempotency-Key), so that a retried
-- mutation answers what the first one did. scope is the caller's key ID;
-- request_sha256 covers the method, path, query and body.

-- +goose Up
CREATE TABLE idempotency (
    scope          TEXT COLLATE "C" NOT NULL,
    key            TEXT COLLATE "C" NOT NULL,
    request_sha256 TEXT   NOT NULL,
    status         INTEGER NOT NULL,
    content_type   TEXT   NOT NULL,
    response       BYTEA  NOT NULL,
    created_us     BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_created ON idempotency (created_us);

-- +goose Down
DROP TABLE idempotency;
