-- The event outbox and webhook endpoints. An event is appended in the
-- transaction of the command that caused it; seq numbers events in commit
-- order (the single writer commits one transaction at a time).
-- tenant_id '' is an operator-only event; data is a JSON object. A
-- webhook's tenant_id '' is an operator endpoint (it receives every
-- event); last_seq is the last event delivered or given up, attempts the
-- failed attempts of the next one, due at next_attempt_us (NULL: now).
-- The secret signs calls, so it is kept as is (unlike API keys, which are
-- kept hashed): it never leaves the server after the endpoint's creation.

-- +goose Up
CREATE TABLE events (
    seq       INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at_us     INTEGER NOT NULL,
    type      TEXT    NOT NULL,
    tenant_id TEXT    NOT NULL DEFAULT '',
    lease_id  TEXT    NOT NULL DEFAULT '',
    data      TEXT    NOT NULL CHECK (json_valid(data))
) STRICT;
CREATE INDEX events_tenant ON events (tenant_id, seq);

CREATE TABLE webhooks (
    id              TEXT    NOT NULL PRIMARY KEY,
    tenant_id       TEXT    NOT NULL DEFAULT '',
    url             TEXT    NOT NULL,
    secret          TEXT    NOT NULL,
    created_us      INTEGER NOT NULL,
    disabled_us     INTEGER,
    last_seq        INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_us INTEGER,
    last_error      TEXT    NOT NULL DEFAULT '',
    last_status     INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX webhooks_tenant ON webhooks (tenant_id, created_us);

-- +goose Down
DROP TABLE webhooks;
DROP TABLE events;
