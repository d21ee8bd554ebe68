// Package sqlite opens Neocloud's store on an SQLite database file, the
// default embedded database: the pure-Go driver modernc.org/sqlite, WAL
// journal, synchronous=FULL, foreign keys on and a busy timeout on every
// connection, one writer connection whose transactions begin IMMEDIATE,
// and a pool of readers. The schema lives in embedded goose migrations
// (migrations/*.sql), applied at open. SQLite has no exclusion constraint:
// an R*Tree that triggers keep in step with the allocations lets the store
// find overlapping allocations in the writing transaction.
package sqlite
