-- Allocations lose their R*Tree. The store now checks each new allocation
-- against the stored ones, and its ID against theirs, in the same
-- (IMMEDIATE, single-writer) transaction, through an index of them it
-- keeps in process (sqlstore's allocIndex), which also finds an allocation
-- by ID. So the table has no index of IDs either, which random IDs would
-- make cost a page write per insert: rows are appended, and
-- allocations_lease serves reads by lease.

-- +goose Up
DROP TRIGGER allocations_rtree_insert;
DROP TRIGGER allocations_rtree_update;
DROP TRIGGER allocations_rtree_delete;
DROP TABLE allocations_rtree;
CREATE TABLE allocations_new (
    id        TEXT    NOT NULL,
    lease_id  TEXT    NOT NULL,
    tenant_id TEXT    NOT NULL,
    node_from INTEGER NOT NULL,
    node_to   INTEGER NOT NULL,
    start_us  INTEGER NOT NULL,
    end_us    INTEGER NOT NULL,
    CHECK (node_from < node_to AND start_us < end_us),
    CHECK (node_from >= 1 AND node_to <= 2147483648)
) STRICT;
INSERT INTO allocations_new (id, lease_id, tenant_id, node_from, node_to, start_us, end_us)
    SELECT id, lease_id, tenant_id, node_from, node_to, start_us, end_us FROM allocations ORDER BY seq;
DROP TABLE allocations;
ALTER TABLE allocations_new RENAME TO allocations;
CREATE INDEX allocations_lease ON allocations (lease_id, start_us, node_from);

-- +goose Down
CREATE TABLE allocations_old (
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
INSERT INTO allocations_old (id, lease_id, tenant_id, node_from, node_to, start_us, end_us)
    SELECT id, lease_id, tenant_id, node_from, node_to, start_us, end_us FROM allocations ORDER BY rowid;
DROP TABLE allocations;
ALTER TABLE allocations_old RENAME TO allocations;
CREATE INDEX allocations_lease ON allocations (lease_id, start_us, node_from);
CREATE VIRTUAL TABLE allocations_rtree USING rtree_i32 (seq, node_lo, node_hi, minute_lo, minute_hi);
INSERT INTO allocations_rtree (seq, node_lo, node_hi, minute_lo, minute_hi)
    SELECT seq, node_from, node_to - 1,
        max(-2147483648, min(2147483647, start_us / 60000000 - (start_us % 60000000 < 0))),
        max(-2147483648, min(2147483647, (end_us - 1) / 60000000 - ((end_us - 1) % 60000000 < 0)))
    FROM allocations;
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
