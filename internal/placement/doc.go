// Package placement chooses the concrete nodes of a lease.
//
// An Index holds every node of the fleet, with its place in the fabric
// (NVLink domain ⊂ leaf group ⊂ pod) and in a power domain, and every hold:
// an allocation of a run of nodes to a lease over a half-open UTC interval.
// Place reads an Index and a Request and returns a Plan — whole nodes of one
// pool, free over the request's window, within the power domains' budgets,
// clear of other tenants' dedicated leaf groups, packed as asked and in as
// few leaf groups and pods as it can — or an *Error with the Reason it
// cannot. It never returns part of a plan. Fits answers whether Place would
// place a request without choosing the nodes, and Index.PowerShift how far
// a window must move before the power budgets leave room for it: both for
// a search over many windows, such as the engine's for the earliest start.
//
// The package does no I/O. The engine, the single writer, owns the Index:
// it calls Place, records the plan's holds with Add and persists them.
// Place, Fits and PowerShift may run concurrently with each other and with
// readers, but not with Add, Remove, End or SetSchedulable. README.md describes the
// algorithm.
package placement
