// Package storetest is the conformance suite of engine.Store: Run checks
// every method of the contract against a store opened by the caller, so
// that store/sqlite and store/postgres answer alike. It also holds the
// fixtures and benchmarks the backends share (BenchmarkApplyFleet,
// BenchmarkAllNodes, BenchmarkInsertAllocations, SyntheticFleet).
//
// Allocations are checked against brute-force models: a property test
// inserts and ends random runs of nodes in random batches and compares
// every answer with the model. Checks that must reach past the contract —
// that the audit log refuses UPDATE and DELETE — use the optional
// interface DBer when the store implements it.
package storetest
