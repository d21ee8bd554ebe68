// Package sqlstore implements engine.Store once over database/sql, for every
// SQL database Neocloud supports. What differs between databases — the
// placeholder syntax, the bind-parameter limit, how a driver reports a
// unique or exclusion violation, how overlapping allocations are refused
// (by the writer, against an index of them it keeps in process, in SQLite;
// by the exclusion constraint in PostgreSQL) and how a failed bulk insert
// is undone — is a small Dialect supplied by the opening package
// (store/sqlite, store/postgres); the queries themselves are written once,
// with "?" placeholders, in SQL both databases accept where they can.
//
// Representation: quantities and money are integers in a fixed unit (watts,
// micro-USD, PUE in thousandths); instants are BIGINT unix microseconds UTC,
// so they round-trip to the microsecond, and the zero time of Retired,
// Revoked and Cancelled is NULL. A node has an ordinal (nodes.ord), and an
// allocation holds a run of ordinals. Bulk writes (ApplyFleet,
// InsertAllocations, InsertLeases, AppendAudits, RememberResponses) use
// multi-row statements in batches inside the one transaction; the batches
// of InsertAllocations, InsertLeases, AppendAudits and RememberResponses
// come in a few shapes (powers of two), prepared once per store, as is the
// idempotency lookup of every mutating request, because modernc's SQLite
// would otherwise parse each anew. A dialect may have the store checkpoint
// its write-ahead log in the background (Dialect.Checkpoint).
package sqlstore
