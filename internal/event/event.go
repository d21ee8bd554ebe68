// Package event holds what the engine tells the outside world happened:
// spot reclaim notices and releases, rebalance hints, lease and node
// changes. Events are appended to the store in the same transaction as the
// command that caused them (an outbox), numbered in commit order, and read
// back by the server-sent event stream and the webhook dispatcher.
package event

import (
	"encoding/json"
	"fmt"
	"time"
)

// Type names what happened.
type Type string

// Event types.
const (
	// LeaseCreated: a lease was admitted (tenant and operators).
	LeaseCreated Type = "lease.created"
	// LeaseCancelled: a lease was cancelled.
	LeaseCancelled Type = "lease.cancelled"
	// SpotReclaim: a spot lease will be released at Data.release_at
	// (the notice); the tenant should checkpoint.
	SpotReclaim Type = "spot.reclaim"
	// SpotReleased: a spot lease's capacity was taken back.
	SpotReleased Type = "spot.released"
	// SpotRebalance: a best-effort early warning that a reclaim is
	// likely soon (the forecast says internal demand returns).
	SpotRebalance Type = "spot.rebalance"
	// NodeFailed, NodeRepaired: a node changed health (operators; the
	// tenants holding it get AllocationReplaced or a shortfall).
	NodeState Type = "node.state"
	// AllocationReplaced: a failed node of a guaranteed lease was
	// replaced; Shortfall: it could not be.
	AllocationReplaced Type = "allocation.replaced"
	Shortfall          Type = "lease.shortfall"
	// NodeSanitized: nodes of a pool finished their wipe and are
	// available again (count, and the first 100 names).
	NodeSanitized Type = "node.sanitized"
)

// Event is one thing that happened. TenantID "" means an operator-only
// event: tenants never see it.
type Event struct {
	// Seq is assigned by the store on append, increasing in commit order.
	Seq      int64
	At       time.Time
	Type     Type
	TenantID string
	LeaseID  string // "" when not about a lease
	// Data is the payload, a JSON object.
	Data json.RawMessage
}

// ID is the event's stable identifier, the same on every delivery so that
// receivers can deduplicate.
func (e Event) ID() string { return fmt.Sprintf("ev_%016x", e.Seq) }

// New returns an event with data marshalled to JSON; data must marshal
// (a programming error otherwise panics).
func New(at time.Time, t Type, tenantID, leaseID string, data any) Event {
	b, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("event %s: %v", t, err))
	}
	return Event{At: at.UTC(), Type: t, TenantID: tenantID, LeaseID: leaseID, Data: b}
}

// Webhook is an endpoint that receives events by signed POST, in order,
// each at least once. TenantID "" is an operator endpoint: it receives
// every event, operator-only ones included; a tenant's endpoint receives
// only that tenant's events.
type Webhook struct {
	ID       string
	TenantID string
	URL      string
	// Secret signs every call (HMAC-SHA256 keyed with the secret's
	// characters); it is shown once, when the endpoint is created.
	Secret   string
	Created  time.Time
	Disabled time.Time // zero while enabled; deleted endpoints are disabled, not removed
	Delivery Delivery
}

// Delivery is where an endpoint's delivery stands: every event up to
// LastSeq was delivered or given up; the next one has failed Attempts
// times so far and is due at NextAttempt (zero: now).
type Delivery struct {
	LastSeq     int64
	Attempts    int
	NextAttempt time.Time
	// LastStatus and LastError are the last attempt's outcome: the HTTP
	// status (0 when no answer came back) and why it failed ("" when it
	// succeeded).
	LastError  string
	LastStatus int
}
