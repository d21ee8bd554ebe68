// Package sqlstore implements engine.Store once over database/sql, for every
// SQL database Neocloud supports. What differs between databases — the
// placeholder syntax, the bind-parameter limit, how a driver reports a
// unique or exclusion violation and how overlapping allocations are found
// (an R*Tree in SQLite, the exclusion constraint's GiST index in
// PostgreSQL) — is a small Dialect supplied by the opening package
// (store/sqlite, store/postgres); the queries themselves are written once,
// with "?" placeholders, in SQL both databases accept where they can.
//
// Representation: quantities and money are integers in a fixed unit (watts,
// micro-USD, PUE in thousandths); instants are BIGINT unix microseconds UTC,
// so they round-trip to the microsecond, and the zero time of Retired,
// Revoked and Cancelled is NULL. A node has an ordinal (nodes.ord), and an
// allocation holds a run of ordinals. Bulk writes (ApplyFleet,
// InsertAllocations, InsertLeases, AppendAudits) use multi-row statements
// in batches inside the one transaction; InsertAllocations' batches come in
// a few shapes (powers of two), prepared once per store, because modernc's
// SQLite would otherwise parse each anew.
package sqlstore
