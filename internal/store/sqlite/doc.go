// Package sqlite opens Neocloud's store on an SQLite database file, the
// default embedded database: the pure-Go driver modernc.org/sqlite, WAL
// journal, synchronous=FULL, foreign keys on and a busy timeout on every
// connection, one writer connection whose transactions begin IMMEDIATE,
// and a pool of readers. The schema lives in embedded goose migrations
// (migrations/*.sql), applied at open. SQLite has no exclusion constraint:
// the single writer checks new allocations, in the transaction that
// inserts them, against an index of the stored ones it keeps in process
// (sqlstore.Dialect.AllocIndex), validated at the start of every write
// transaction against writes of other connections.
package sqlite
