package engine

import "github.com/neocloud/neocloud/internal/tenant"

// tenantDetails are what a tenant reads of a refusal, by reason. The
// engine's own details count free GPUs, spot idle, utilization or name
// the lease in the way: figures of the owner's use and of other tenants'
// leases, which tenants must not see (DESIGN.md: isolation). Operators
// and the audit log keep the full detail.
var tenantDetails = map[string]string{
	"capacity":  "not enough free capacity in the pool for the GPUs asked over the window",
	"topology":  "no placement with the packing asked over the window",
	"isolation": "no leaf group free of other tenants for the GPUs asked over the window",
	"power":     "the power budget has no room for the GPUs asked over the window",
	"price":     "the spot price of the notice tier asked is above max_price (see the spot prices)",
	"pool":      "the pool cannot hold the GPUs asked",
}

// forPrincipal returns r as p may read it: r itself for operators; for a
// tenant, the same reason and earliest start with a detail that tells
// nothing of the owner or other tenants.
func (r *Refusal) forPrincipal(p tenant.Principal) *Refusal {
	if r == nil || p.Role.IsOperator() {
		return r
	}
	out := *r
	out.Detail = tenantDetails[r.Reason]
	if out.Detail == "" {
		out.Detail = "the request does not fit over the window"
	}
	return &out
}
