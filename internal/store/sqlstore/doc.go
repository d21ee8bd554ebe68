// Package sqlstore implements engine.Store once over database/sql, for every
// SQL database Neocloud supports. What differs between databases — the
// placeholder syntax, the bind-parameter limit and how a driver reports a
// unique or exclusion violation — is a small Dialect supplied by the opening
// package (store/sqlite, store/postgres); the queries themselves are written
// once, with "?" placeholders, in SQL both databases accept.
//
// Representation: quantities and money are integers in a fixed unit (watts,
// micro-USD, PUE in thousandths); instants are BIGINT unix microseconds UTC,
// so they round-trip to the microsecond, and the zero time of Retired and
// Revoked is NULL. Bulk writes (ApplyFleet) use multi-row statements in
// batches inside the one transaction.
package sqlstore
