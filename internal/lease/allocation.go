// Package lease holds leases — a tenant's right to capacity — and their
// allocations of concrete nodes over time.
package lease

import "time"

// Allocation is a lease holding a node over the half-open UTC interval
// [Start, End).
type Allocation struct {
	ID       string
	LeaseID  string
	TenantID string
	Node     string
	Start    time.Time
	End      time.Time
}

// Overlaps reports whether a and b hold the same node at some instant.
func (a Allocation) Overlaps(b Allocation) bool {
	return a.Node == b.Node && a.Start.Before(b.End) && b.Start.Before(a.End)
}
