// Package postgres opens Neocloud's store on PostgreSQL, for production and
// for several replicas sharing one database, through pgx's database/sql
// driver. The schema lives in embedded goose migrations (migrations/*.sql),
// applied at open under an advisory lock so that replicas starting together
// migrate once. An exclusion constraint over (time range, ordinal range)
// forbids two allocations holding one node at one instant, even between
// racing writers.
package postgres
