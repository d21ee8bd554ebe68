// Package lease holds leases — a tenant's right to capacity — their kinds,
// terms, capacity schedules and lifecycle, and their allocations of
// concrete nodes over time.
package lease

import (
	"fmt"
	"slices"
	"time"

	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/unit"
)

// Kind is what a lease promises.
type Kind string

// Lease kinds. Contracts and reservations are guaranteed: admitted against
// capacity net of holdback and never preempted. Spot runs on what is idle
// now and may be reclaimed.
const (
	Contract    Kind = "contract"
	Reservation Kind = "reservation"
	Spot        Kind = "spot"
)

// Kinds lists every kind.
var Kinds = []Kind{Contract, Reservation, Spot}

// Guaranteed reports whether leases of kind k are never preempted.
func (k Kind) Guaranteed() bool { return k == Contract || k == Reservation }

// State is where a lease is in its lifecycle:
// requested → admitted → scheduled → active → ended | cancelled.
type State string

// Lease states. Requested and admitted are passed through within one
// command (a request is admitted by counts, then placed on nodes, in the
// same transaction), so a stored lease is scheduled, active, ended or
// cancelled; a refused request is answered and audited, never stored.
const (
	Requested State = "requested"
	Admitted  State = "admitted"
	Scheduled State = "scheduled"
	Active    State = "active"
	Ended     State = "ended"
	Cancelled State = "cancelled"
)

// States lists every state in lifecycle order.
var States = []State{Requested, Admitted, Scheduled, Active, Ended, Cancelled}

var transitions = map[State][]State{
	Requested: {Admitted, Cancelled},
	Admitted:  {Scheduled, Cancelled},
	Scheduled: {Active, Ended, Cancelled},
	Active:    {Ended, Cancelled},
}

// CanTransition reports whether a lease may move from one state to another.
// Ended and cancelled are final.
func CanTransition(from, to State) bool { return slices.Contains(transitions[from], to) }

// Terminal reports whether s is final.
func (s State) Terminal() bool { return s == Ended || s == Cancelled }

// Packing is how tightly a lease's nodes must sit in the fabric.
type Packing string

// Packings. Any and Node both place whole nodes anywhere in the pool,
// preferring fewest leaf groups and pods; NVLinkDomain takes whole NVLink
// domains (whole GB200 NVL72 racks); Leaf and Pod put every node of the
// lease under one leaf group or one pod.
const (
	PackAny          Packing = "any"
	PackNode         Packing = "node"
	PackNVLinkDomain Packing = "nvlink-domain"
	PackLeaf         Packing = "leaf"
	PackPod          Packing = "pod"
)

// Packings lists every packing, loosest first.
var Packings = []Packing{PackAny, PackNode, PackNVLinkDomain, PackLeaf, PackPod}

// Isolation is whom a lease may share leaf switches with.
type Isolation string

// Isolations. DedicatedLeaf: no other tenant holds a node under the same
// leaf group while the lease holds one there.
const (
	SharedLeaf    Isolation = "shared-leaf"
	DedicatedLeaf Isolation = "dedicated-leaf"
)

// Isolations lists every isolation.
var Isolations = []Isolation{SharedLeaf, DedicatedLeaf}

// Step is one ramp step of a capacity schedule: from From on (until the
// next step, or the lease's end), the lease holds GPUs. A step given in
// power carries Power instead, converted to whole nodes through each
// node's facility power (IT power × PUE) when admitted; GPUs is then the
// result.
type Step struct {
	From  time.Time
	GPUs  unit.GPUs
	Power unit.Power
}

// Segment is a step resolved to an interval: [Start, End) at GPUs.
type Segment struct {
	Start, End time.Time
	GPUs       unit.GPUs
}

// Lease is a tenant's admitted right to capacity in one pool.
type Lease struct {
	ID       string
	TenantID string
	Kind     Kind
	Pool     string // "site/MODEL"
	Start    time.Time
	End      time.Time
	// Schedule has at least one step; the first starts at Start, steps
	// are strictly increasing and before End, GPUs resolved.
	Schedule  []Step
	Packing   Packing
	Isolation Isolation
	// State is the stored state (scheduled or cancelled); StateAt derives
	// active and ended from the clock.
	State State
	// Reason says why the lease is in its state (e.g. who cancelled it).
	Reason    string
	Created   time.Time
	Cancelled time.Time // zero unless cancelled
	// Spot terms: the highest price per GPU-hour and the notice tier.
	MaxPrice money.Money
	Notice   string
	// Noticed is when a spot lease was told it is reclaimed (zero when
	// not): its capacity is released at End, at least the tier's notice
	// later.
	Noticed time.Time
}

// StateAt returns the lease's state at now.
func (l Lease) StateAt(now time.Time) State {
	switch {
	case l.State == Cancelled:
		return Cancelled
	case !now.Before(l.End):
		return Ended
	case !now.Before(l.Start):
		return Active
	default:
		return Scheduled
	}
}

// Segments returns the schedule as intervals, dropping zero-GPU steps.
func (l Lease) Segments() []Segment {
	var out []Segment
	for i, s := range l.Schedule {
		end := l.End
		if i+1 < len(l.Schedule) {
			end = l.Schedule[i+1].From
		}
		if s.GPUs > 0 {
			out = append(out, Segment{Start: s.From, End: end, GPUs: s.GPUs})
		}
	}
	return out
}

// GPUsAt returns the GPUs the schedule promises at t (0 outside [Start, End)).
func (l Lease) GPUsAt(t time.Time) unit.GPUs {
	if t.Before(l.Start) || !t.Before(l.End) {
		return 0
	}
	var g unit.GPUs
	for _, s := range l.Schedule {
		if s.From.After(t) {
			break
		}
		g = s.GPUs
	}
	return g
}

// MaxGPUs returns the largest step.
func (l Lease) MaxGPUs() unit.GPUs {
	var m unit.GPUs
	for _, s := range l.Schedule {
		m = max(m, s.GPUs)
	}
	return m
}

// Runs groups sorted, distinct ordinals into maximal runs [from, to).
func Runs(ordinals []int64) [][2]int64 {
	var out [][2]int64
	for _, o := range ordinals {
		if n := len(out); n > 0 && out[n-1][1] == o {
			out[n-1][1]++
			continue
		}
		out = append(out, [2]int64{o, o + 1})
	}
	return out
}

// Shortfall is capacity a guaranteed lease was promised and did not get:
// GPUs missing over [From, To), recorded when a failed node could not be
// replaced. The SLA work turns it into credits.
type Shortfall struct {
	ID       string
	LeaseID  string
	TenantID string
	Node     string // the failed node
	GPUs     unit.GPUs
	From, To time.Time
}

// GPUHours returns the GPU-hours short, as a float for display; sums that
// must be exact use GPUs and the interval.
func (s Shortfall) GPUHours() float64 {
	return float64(s.GPUs) * s.To.Sub(s.From).Hours()
}

// ParseKind returns the kind named s.
func ParseKind(s string) (Kind, error) { return parseEnum(s, Kinds, "kind") }

// ParsePacking returns the packing named s.
func ParsePacking(s string) (Packing, error) { return parseEnum(s, Packings, "packing") }

// ParseIsolation returns the isolation named s.
func ParseIsolation(s string) (Isolation, error) { return parseEnum(s, Isolations, "isolation") }

func parseEnum[T ~string](s string, all []T, what string) (T, error) {
	for _, v := range all {
		if string(v) == s {
			return v, nil
		}
	}
	return "", fmt.Errorf("unknown %s %q: want one of %v", what, s, all)
}
