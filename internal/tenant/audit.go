package tenant

import "time"

// Outcome is how an audited request ended.
type Outcome string

// Outcomes.
const (
	OutcomeOK     Outcome = "ok"
	OutcomeDenied Outcome = "denied"
	// OutcomeRefused is a valid, authorized request that did not fit (a
	// lease the fleet cannot take); nothing changed.
	OutcomeRefused Outcome = "refused"
)

// AuditEntry is one line of the append-only audit log: who did what to
// which object, when, and how it ended. Every mutation and every denial gets
// one.
type AuditEntry struct {
	Seq       int64 // assigned by the store, increasing
	At        time.Time
	Actor     Principal
	Action    string // "tenants.create", "fleet.apply", "GET /v1/nodes"
	Object    string // "tenant/acme", "key/key_ab12...", "" when none
	TenantID  string // the tenant the object belongs to, for tenant-scoped reads
	Outcome   Outcome
	Detail    string // a short human text; never a secret
	RequestID string
}
