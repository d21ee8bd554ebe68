package lease

import "time"

// Allocation is a lease holding a run of nodes — those whose ordinals are
// in [NodeFrom, NodeTo) — over the half-open UTC interval [Start, End).
// Ordinals are the stable integer identities the store gives nodes in
// fleet order, so the nodes of one leaf group are mostly one run.
type Allocation struct {
	ID       string
	LeaseID  string
	TenantID string
	NodeFrom int64
	NodeTo   int64
	Start    time.Time
	End      time.Time
}

// Overlaps reports whether a and b hold a common node at some instant.
func (a Allocation) Overlaps(b Allocation) bool {
	return a.NodeFrom < b.NodeTo && b.NodeFrom < a.NodeTo && a.Start.Before(b.End) && b.Start.Before(a.End)
}

// Nodes returns how many nodes a holds.
func (a Allocation) Nodes() int64 { return a.NodeTo - a.NodeFrom }
