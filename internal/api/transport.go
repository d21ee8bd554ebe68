package api

import (
	"strconv"
	"strings"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/tenant"
)

// Transport types: what the API speaks. Mapped explicitly from domain
// types so that a domain change never silently changes the wire format.

// PowerDomain is a power domain on the wire.
type PowerDomain struct {
	Name     string  `json:"name"`
	BudgetKW float64 `json:"budget_kw"`
}

// Site is a site on the wire.
type Site struct {
	Name                  string        `json:"name"`
	FacilityMW            float64       `json:"facility_mw"`
	ITBudgetMW            float64       `json:"it_budget_mw" doc:"Facility power divided by PUE: the IT load the site can feed."`
	PUE                   float64       `json:"pue"`
	EnergyTariffUSDPerMWh string        `json:"energy_tariff_usd_per_mwh" doc:"Decimal string, exact."`
	Timezone              string        `json:"timezone"`
	PowerDomains          []PowerDomain `json:"power_domains"`
}

func siteJSON(s fleet.Site) Site {
	out := Site{
		Name: s.Name, FacilityMW: s.FacilityPower.MW(), ITBudgetMW: s.ITBudget().MW(),
		PUE: float64(s.PUEMilli) / 1000, EnergyTariffUSDPerMWh: decimalMicros(s.TariffMicrosPerMWh),
		Timezone: s.Timezone, PowerDomains: make([]PowerDomain, len(s.PowerDomains)),
	}
	for i, d := range s.PowerDomains {
		out.PowerDomains[i] = PowerDomain{Name: d.Name, BudgetKW: d.Budget.KW()}
	}
	return out
}

// decimalMicros formats micro-units as an exact decimal string with at
// least two decimals: 62500000 → "62.50".
func decimalMicros(m int64) string {
	neg := m < 0
	if neg {
		m = -m
	}
	frac := strconv.FormatInt(m%1_000_000+1_000_000, 10)[1:]
	frac = strings.TrimRight(frac, "0")
	for len(frac) < 2 {
		frac += "0"
	}
	s := strconv.FormatInt(m/1_000_000, 10) + "." + frac
	if neg {
		s = "-" + s
	}
	return s
}

// Pool is a pool on the wire.
type Pool struct {
	ID           string           `json:"id" doc:"site/GPU-MODEL"`
	Site         string           `json:"site"`
	GPUModel     string           `json:"gpu_model"`
	Nodes        int64            `json:"nodes"`
	GPUs         int64            `json:"gpus"`
	ITMW         float64          `json:"it_mw" doc:"IT power of the pool's nodes at full load."`
	FacilityMW   float64          `json:"facility_mw" doc:"IT power times the site's PUE."`
	NodesByState map[string]int64 `json:"nodes_by_state,omitempty" doc:"Operators only."`
}

func poolJSON(p fleet.Pool) Pool {
	out := Pool{ID: p.ID, Site: p.Site, GPUModel: p.Model, Nodes: p.Nodes, GPUs: int64(p.GPUs),
		ITMW: p.ITPower.MW(), FacilityMW: p.FacilityPower.MW(), NodesByState: map[string]int64{}}
	for st, n := range p.ByState {
		out.NodesByState[string(st)] = n
	}
	return out
}

// Node is a node on the wire.
type Node struct {
	Name         string  `json:"name"`
	Site         string  `json:"site"`
	Pool         string  `json:"pool"`
	GPUModel     string  `json:"gpu_model"`
	GPUs         int64   `json:"gpus"`
	ITKW         float64 `json:"it_kw"`
	PowerDomain  string  `json:"power_domain"`
	Pod          string  `json:"pod"`
	LeafGroup    string  `json:"leaf_group"`
	NVLinkDomain string  `json:"nvlink_domain"`
	State        string  `json:"state"`
}

func nodeJSON(n fleet.Node) Node {
	return Node{Name: n.Name, Site: n.Site, Pool: n.PoolID(), GPUModel: n.Model, GPUs: int64(n.GPUs),
		ITKW: n.ITPower.KW(), PowerDomain: n.PowerDomain, Pod: n.Position.Pod, LeafGroup: n.Position.LeafGroup,
		NVLinkDomain: n.Position.NVLinkDomain, State: string(n.State)}
}

// ApplyResult answers a fleet apply.
type ApplyResult struct {
	DryRun       bool     `json:"dry_run"`
	Revision     int64    `json:"revision" doc:"Fleet revision recorded; 0 for a dry run."`
	SHA256       string   `json:"sha256" doc:"Digest of the fleet file's canonical JSON."`
	Sites        int      `json:"sites"`
	Nodes        int      `json:"nodes"`
	GPUs         int64    `json:"gpus"`
	Added        int      `json:"added"`
	Updated      int      `json:"updated"`
	Retired      int      `json:"retired"`
	Unchanged    int      `json:"unchanged"`
	RetiredSites []string `json:"retired_sites"`
	AddedNodes   []string `json:"added_nodes" doc:"At most 100 names."`
	UpdatedNodes []string `json:"updated_nodes" doc:"At most 100 names."`
	RetiredNodes []string `json:"retired_nodes" doc:"At most 100 names."`
}

const maxNamesShown = 100

func firstNames(names []string) []string {
	if len(names) > maxNamesShown {
		names = names[:maxNamesShown]
	}
	return append([]string{}, names...)
}

func applyResultJSON(r engine.ApplyResult) ApplyResult {
	return ApplyResult{
		DryRun: r.DryRun, Revision: r.Revision, SHA256: r.SHA256, Sites: r.Sites, Nodes: r.Nodes, GPUs: r.GPUs,
		Added: len(r.Added), Updated: len(r.Updated), Retired: len(r.Retired), Unchanged: r.Unchanged,
		RetiredSites: append([]string{}, r.RetiredSites...),
		AddedNodes:   firstNames(r.Added), UpdatedNodes: firstNames(r.Updated), RetiredNodes: firstNames(r.Retired),
	}
}

// FleetRevision describes the fleet file in force.
type FleetRevision struct {
	Revision int64      `json:"revision"`
	At       time.Time  `json:"at"`
	By       string     `json:"by" doc:"Key ID that applied it."`
	SHA256   string     `json:"sha256"`
	Nodes    int64      `json:"nodes"`
	GPUs     int64      `json:"gpus"`
	Spec     fleet.Spec `json:"spec" doc:"The fleet file, as JSON."`
}

// Tenant is a tenant on the wire.
type Tenant struct {
	ID          string    `json:"id"`
	DisplayName string    `json:"display_name"`
	Created     time.Time `json:"created"`
}

func tenantJSON(t tenant.Tenant) Tenant {
	return Tenant{ID: t.ID, DisplayName: t.DisplayName, Created: t.Created}
}

// Key is an API key's metadata; the secret is never shown again.
type Key struct {
	ID        string     `json:"id"`
	Tenant    string     `json:"tenant,omitempty" doc:"Empty for operator keys."`
	Role      string     `json:"role"`
	Name      string     `json:"name"`
	Created   time.Time  `json:"created"`
	CreatedBy string     `json:"created_by"`
	Revoked   *time.Time `json:"revoked,omitempty"`
}

func keyJSON(k tenant.Key) Key {
	out := Key{ID: k.ID, Tenant: k.TenantID, Role: string(k.Role), Name: k.Name, Created: k.Created, CreatedBy: k.CreatedBy}
	if !k.Revoked.IsZero() {
		r := k.Revoked
		out.Revoked = &r
	}
	return out
}

// AuditEntry is an audit log entry on the wire.
type AuditEntry struct {
	Seq         int64     `json:"seq"`
	At          time.Time `json:"at"`
	ActorKey    string    `json:"actor_key"`
	ActorTenant string    `json:"actor_tenant,omitempty"`
	ActorRole   string    `json:"actor_role,omitempty"`
	Action      string    `json:"action"`
	Object      string    `json:"object,omitempty"`
	Tenant      string    `json:"tenant,omitempty"`
	Outcome     string    `json:"outcome"`
	Detail      string    `json:"detail,omitempty"`
	RequestID   string    `json:"request_id,omitempty"`
}

func auditJSON(e tenant.AuditEntry) AuditEntry {
	return AuditEntry{Seq: e.Seq, At: e.At, ActorKey: e.Actor.KeyID, ActorTenant: e.Actor.TenantID,
		ActorRole: string(e.Actor.Role), Action: e.Action, Object: e.Object, Tenant: e.TenantID,
		Outcome: string(e.Outcome), Detail: e.Detail, RequestID: e.RequestID}
}
