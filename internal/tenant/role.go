package tenant

import "fmt"

// Role is what a key may do. Operator roles act for the fleet's owner and
// see every tenant; tenant roles act for one tenant and see only its objects.
type Role string

// Roles.
const (
	OperatorAdmin  Role = "operator-admin"
	OperatorViewer Role = "operator-viewer"
	TenantAdmin    Role = "tenant-admin"
	TenantViewer   Role = "tenant-viewer"
	// OperatorAgent is the telemetry agent's role: it pushes readings and
	// nothing else.
	OperatorAgent Role = "operator-agent"
)

// Roles lists every role.
var Roles = []Role{OperatorAdmin, OperatorViewer, OperatorAgent, TenantAdmin, TenantViewer}

// ParseRole returns the role named s, or an error naming the valid ones.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q: want one of %v", s, Roles)
}

// IsOperator reports whether r acts for the fleet's owner.
func (r Role) IsOperator() bool {
	return r == OperatorAdmin || r == OperatorViewer || r == OperatorAgent
}

// Permission names an action on a kind of object. Every API route declares
// exactly one.
type Permission string

// Permissions.
const (
	// PermPublic needs no key (health, metrics, the OpenAPI document).
	PermPublic Permission = "public"
	// PermSelf lets any valid key read itself (whoami).
	PermSelf        Permission = "self:read"
	PermFleetRead   Permission = "fleet:read" // sites and pools
	PermNodesRead   Permission = "nodes:read"
	PermFleetWrite  Permission = "fleet:write"
	PermTenantRead  Permission = "tenants:read"
	PermTenantWrite Permission = "tenants:write"
	PermKeysRead    Permission = "keys:read"
	PermKeysWrite   Permission = "keys:write"
	PermAuditRead   Permission = "audit:read"
	// PermLeasesRead covers leases, their allocations and quotes (a quote
	// answers a what-if and commits nothing).
	PermLeasesRead  Permission = "leases:read"
	PermLeasesWrite Permission = "leases:write"
	// PermCapacityRead is the fleet-wide capacity series: what every
	// tenant and the owner hold, so operators only.
	PermCapacityRead Permission = "capacity:read"
	// PermCapacityWrite sets holdback schedules.
	PermCapacityWrite Permission = "capacity:write"
	// PermNodesWrite changes node states (failed, repaired, maintenance).
	PermNodesWrite Permission = "nodes:write"
	// PermEventsRead is the event stream: a tenant's own events, every
	// event (operator-only ones too) for operators.
	PermEventsRead Permission = "events:read"
	// PermWebhooksRead lists webhook endpoints (never their secrets);
	// PermWebhooksWrite creates and deletes them.
	PermWebhooksRead  Permission = "webhooks:read"
	PermWebhooksWrite Permission = "webhooks:write"
	// PermTelemetryWrite pushes GPU readings (the agent).
	PermTelemetryWrite Permission = "telemetry:write"
	// PermUsageRead reads usage rollups and SLA delivery: a tenant its own
	// leases', operators everything, the owner's internal and idle time too.
	PermUsageRead Permission = "usage:read"
	// PermBillingRead reads invoices, credit notes and price plans (a
	// tenant its own); PermBillingWrite sets plans, runs, finalizes, pays
	// and voids invoices and issues credit notes (operator admins only).
	// The revenue report is operators' (PermBillingRead with an operator
	// role).
	PermBillingRead  Permission = "billing:read"
	PermBillingWrite Permission = "billing:write"
)

// grants is the role → permission table; object-level scoping (a tenant role
// sees only its own tenant's objects) is applied on top by Principal.Check.
var grants = map[Role]map[Permission]bool{
	OperatorAdmin: {
		PermSelf: true, PermFleetRead: true, PermNodesRead: true, PermFleetWrite: true,
		PermTenantRead: true, PermTenantWrite: true, PermKeysRead: true, PermKeysWrite: true,
		PermAuditRead: true, PermLeasesRead: true, PermLeasesWrite: true, PermCapacityRead: true,
		PermCapacityWrite: true, PermNodesWrite: true,
		PermEventsRead: true, PermWebhooksRead: true, PermWebhooksWrite: true,
		PermTelemetryWrite: true, PermUsageRead: true, PermBillingRead: true, PermBillingWrite: true,
	},
	OperatorAgent: {PermSelf: true, PermTelemetryWrite: true},
	OperatorViewer: {
		PermSelf: true, PermFleetRead: true, PermNodesRead: true,
		PermTenantRead: true, PermKeysRead: true, PermAuditRead: true,
		PermLeasesRead: true, PermCapacityRead: true,
		PermEventsRead: true, PermWebhooksRead: true, PermUsageRead: true, PermBillingRead: true,
	},
	// Tenants see the catalog of sites and pools (what they can ask for), not
	// the owner's nodes.
	TenantAdmin: {
		PermSelf: true, PermFleetRead: true, PermTenantRead: true,
		PermKeysRead: true, PermKeysWrite: true, PermAuditRead: true,
		PermLeasesRead: true, PermLeasesWrite: true,
		PermEventsRead: true, PermWebhooksRead: true, PermWebhooksWrite: true, PermUsageRead: true, PermBillingRead: true,
	},
	TenantViewer: {
		PermSelf: true, PermFleetRead: true, PermTenantRead: true, PermLeasesRead: true,
		PermEventsRead: true, PermUsageRead: true, PermBillingRead: true,
	},
}

// Allows reports whether role r holds permission p.
func (r Role) Allows(p Permission) bool {
	return p == PermPublic || grants[r][p]
}
