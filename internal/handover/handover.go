// Package handover keeps the rule that a node is wiped before it changes
// hands (DESIGN.md invariant 4): a node leaving a holder goes releasing →
// sanitizing → available, and only an available node is assigned.
//
//	          Assign                 Release
//	available ──────▶ assigned ───────────────▶ releasing
//	    ▲                                           │ Released (workload gone,
//	    │                                           ▼  or its grace has passed)
//	    └──────────────── sanitizing ◀──────────────┘
//	   Confirm (operator/agent), or Tick after Policy.Sanitize
//
// A holder is a tenant or the owner itself (Owner): the owner's own jobs
// leave a node the same way, so a tenant never receives a node the owner
// used without a wipe either. A node that is assigned again to the holder
// it is releasing from is not handed over (the holder keeps its data);
// Reassign does that. The machine is pure: callers pass the time.
package handover

import (
	"errors"
	"fmt"
	"time"
)

// Owner is the holder name of the fleet owner's own use.
const Owner = "owner"

// State is where a node is in its hand-over.
type State string

// The states, in the order a node passes through them.
const (
	Available  State = "available"
	Assigned   State = "assigned"
	Releasing  State = "releasing"
	Sanitizing State = "sanitizing"
)

// ErrTransition is returned for an event the node's state does not allow.
var ErrTransition = errors.New("handover: transition not allowed")

// Policy says how long a wipe takes when nobody confirms it.
type Policy struct {
	// Sanitize is how long sanitizing lasts unless confirmed earlier;
	// 0 waits for a confirmation.
	Sanitize time.Duration
}

// DefaultSanitize is the default wipe time: NVMe secure erase, GPU memory
// and firmware reset and an OS reimage fit well within it.
const DefaultSanitize = 30 * time.Minute

// Node is one node's hand-over state.
type Node struct {
	State  State
	Holder string    // the current holder while assigned or releasing; the last one after
	Since  time.Time // when State began
	// Wiped counts completed sanitizations, for audits and tests.
	Wiped int
}

// New returns an available node that nobody has held.
func New(at time.Time) Node { return Node{State: Available, Since: at} }

func (n Node) refuse(event string) error {
	return fmt.Errorf("%w: %s while %s", ErrTransition, event, n.State)
}

// Assign gives an available node to holder.
func (n Node) Assign(holder string, at time.Time) (Node, error) {
	if holder == "" {
		return n, fmt.Errorf("handover: assign: holder is required")
	}
	if n.State != Available {
		return n, n.refuse("assign to " + holder)
	}
	return Node{State: Assigned, Holder: holder, Since: at, Wiped: n.Wiped}, nil
}

// Reassign keeps a releasing node with its holder (a lease extended or a
// spot reclaim withdrawn before the release): no hand-over took place.
func (n Node) Reassign(holder string, at time.Time) (Node, error) {
	if n.State != Releasing || n.Holder != holder {
		return n, n.refuse("reassign to " + holder)
	}
	return Node{State: Assigned, Holder: holder, Since: at, Wiped: n.Wiped}, nil
}

// Release starts taking the node from its holder: a lease ended, or spot
// capacity reclaimed (its notice sent).
func (n Node) Release(at time.Time) (Node, error) {
	if n.State != Assigned {
		return n, n.refuse("release")
	}
	n.State, n.Since = Releasing, at
	return n, nil
}

// Released records that the holder's workload is gone: sanitizing starts.
func (n Node) Released(at time.Time) (Node, error) {
	if n.State != Releasing {
		return n, n.refuse("released")
	}
	n.State, n.Since = Sanitizing, at
	return n, nil
}

// Confirm records a wipe confirmed by an operator or the node agent.
func (n Node) Confirm(at time.Time) (Node, error) {
	if n.State != Sanitizing {
		return n, n.refuse("confirm sanitized")
	}
	n.State, n.Since, n.Wiped = Available, at, n.Wiped+1
	return n, nil
}

// Tick ends a sanitizing that has lasted p.Sanitize by now; other states
// are unchanged. It returns whether the node changed.
func (n Node) Tick(p Policy, now time.Time) (Node, bool) {
	if n.State != Sanitizing || p.Sanitize <= 0 || now.Before(n.Since.Add(p.Sanitize)) {
		return n, false
	}
	n.State, n.Since, n.Wiped = Available, n.Since.Add(p.Sanitize), n.Wiped+1
	return n, true
}

// ReadyAt returns when a sanitizing node becomes available without a
// confirmation, and false when that waits for one (or the node is not
// sanitizing).
func (n Node) ReadyAt(p Policy) (time.Time, bool) {
	if n.State != Sanitizing || p.Sanitize <= 0 {
		return time.Time{}, false
	}
	return n.Since.Add(p.Sanitize), true
}
