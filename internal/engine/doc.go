// Package engine is Neocloud's single writer: it applies commands (apply a
// fleet, create a tenant, issue or revoke a key, ...) one at a time, persists
// each command's effects and its audit entry in one store transaction before
// answering, and serves reads from the store.
//
// Authorization happens here in two steps: the API checks the permission a
// route declares (tenant.Role.Allows), and the engine checks each object
// against the caller with tenant.Principal.Check, the one object-level rule.
// A denial is written to the audit log as it is answered.
//
// The engine owns the store interfaces (Store, Reader, Tx) that
// store/sqlite and store/postgres implement.
package engine
