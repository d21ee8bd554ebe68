// Package storetest is the conformance suite of engine.Store: Run checks
// every method of the contract against a store opened by the caller, so
// that store/sqlite and store/postgres answer alike. It also holds the
// fixtures and benchmarks the backends share (BenchmarkApplyFleet,
// BenchmarkAllNodes, SyntheticFleet).
//
// Checks that must reach past the contract — that the audit log refuses
// UPDATE and DELETE, that no two stored allocations of a node overlap — use
// the optional interface DBer when the store implements it.
package storetest
