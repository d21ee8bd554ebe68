-- The event outbox and webhook endpoints. An event is appended in the
-- transaction of the command that caused it; seq numbers events in commit
-- order (writers take the writer lock, so one commits at a time).
-- tenant_id '' is an operator-only event; data is a JSON object, stored as
-- json rather than jsonb so that it reads back byte for byte as written
-- (jsonb reorders keys), as in SQLite. A webhook's tenant_id '' is an
-- operator endpoint (it receives every event); last_seq is the last event
-- delivered or given up, attempts the failed attempts of the next one,
-- due at next_attempt_us (NULL: now). The secret signs calls, so it is
-- kept as is (unlike API keys, which are kept hashed): it never leaves the
-- server after the endpoint's creation.

-- +goose Up
CREATE TABLE events (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_us     BIGINT NOT NULL,
    type      TEXT   NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL DEFAULT '',
    lease_id  TEXT   NOT NULL DEFAULT '',
    data      JSON   NOT NULL
);
CREATE INDEX events_tenant ON events (tenant_id, seq);

CREATE TABLE webhooks (
    id              TEXT   NOT NULL PRIMARY KEY,
    tenant_id       TEXT COLLATE "C" NOT NULL DEFAULT '',
    url             TEXT   NOT NULL,
    secret          TEXT   NOT NULL,
    created_us      BIGINT NOT NULL,
    disabled_us     BIGINT,
    last_seq        BIGINT NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_us BIGINT,
    last_error      TEXT   NOT NULL DEFAULT '',
    last_status     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id, created_us);

-- +goose Down
DROP TABLE webhooks;
DROP TABLE events;
