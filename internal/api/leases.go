package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/valid"
)

// registerLeaseRoutes adds quotes, leases, capacity, holdback and node
// state routes; called from registerRoutes.
func (s *Server) registerLeaseRoutes() {
	register(s, huma.Operation{OperationID: "create-quote", Method: http.MethodPost, Path: "/v1/quotes", Tags: []string{"leases"},
		Summary:     "Would this lease be admitted now? Where, or why not and from when",
		Description: "Answers feasibility, or the reason it does not fit and the earliest start at which the same request would. With placement=true it also chooses the nodes an admission now would get and gives their leaf groups and pods (slower: the search for the preferred plan). Commits nothing."},
		tenant.PermLeasesRead, s.createQuote)
	register(s, huma.Operation{OperationID: "create-lease", Method: http.MethodPost, Path: "/v1/leases", Tags: []string{"leases"},
		Summary:       "Request a lease: admitted and placed on nodes, or refused (409) with the reason and the earliest start that fits",
		DefaultStatus: http.StatusCreated}, tenant.PermLeasesWrite, s.createLease)
	register(s, huma.Operation{OperationID: "list-leases", Method: http.MethodGet, Path: "/v1/leases", Tags: []string{"leases"},
		Summary: "Leases by ID: all for operators, its own for a tenant key"}, tenant.PermLeasesRead, s.listLeases)
	register(s, huma.Operation{OperationID: "get-lease", Method: http.MethodGet, Path: "/v1/leases/{lease}", Tags: []string{"leases"},
		Summary: "One lease"}, tenant.PermLeasesRead, s.getLease)
	register(s, huma.Operation{OperationID: "cancel-lease", Method: http.MethodPost, Path: "/v1/leases/{lease}/cancel", Tags: []string{"leases"},
		Summary: "Cancel a lease: allocations not started are dropped, running ones end now"}, tenant.PermLeasesWrite, s.cancelLease)
	register(s, huma.Operation{OperationID: "list-lease-allocations", Method: http.MethodGet, Path: "/v1/leases/{lease}/allocations", Tags: []string{"leases"},
		Summary: "A lease's allocations (nodes over time) and recorded shortfalls"}, tenant.PermLeasesRead, s.leaseAllocations)
	register(s, huma.Operation{OperationID: "get-capacity", Method: http.MethodGet, Path: "/v1/capacity", Tags: []string{"capacity"},
		Summary: "A pool's capacity series: physical, healthy, holdback, contract, reservation, spot and free GPUs per step"},
		tenant.PermCapacityRead, s.getCapacity)
	register(s, huma.Operation{OperationID: "get-holdback", Method: http.MethodGet, Path: "/v1/holdback", Tags: []string{"capacity"},
		Summary: "A pool's holdback schedule"}, tenant.PermCapacityRead, s.getHoldback)
	register(s, huma.Operation{OperationID: "set-holdback", Method: http.MethodPost, Path: "/v1/holdback", Tags: []string{"capacity"},
		Summary:     "Replace a pool's holdback schedule",
		Description: "From each step on, its GPUs are never leased as guaranteed capacity. Refused (409) when guaranteed leases already admitted would no longer fit."},
		tenant.PermCapacityWrite, s.setHoldback)
	register(s, huma.Operation{OperationID: "set-node-state", Method: http.MethodPost, Path: "/v1/nodes/{node}/state", Tags: []string{"fleet"},
		Summary:     "Mark a node failed, in maintenance, or available again (repaired)",
		Description: "A node leaving service is replaced, for every guaranteed lease holding it from now on, by a free node in the same leaf group, else pod, else anywhere allowed; what cannot be replaced is recorded as a shortfall."},
		tenant.PermNodesWrite, s.setNodeState)
}

// Step is one ramp step of a contract's schedule.
type Step struct {
	From time.Time `json:"from" doc:"On a whole UTC hour; the first step starts the contract."`
	GPUs int64     `json:"gpus,omitempty" doc:"GPUs from this step on (whole nodes)."`
	MW   float64   `json:"mw,omitempty" doc:"Or megawatts of facility power, converted to whole nodes through each node's IT power × PUE."`
}

// LeaseRequest asks for a lease (or a quote).
type LeaseRequest struct {
	Tenant    string    `json:"tenant,omitempty" pattern:"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)?$" doc:"The tenant the lease is for: required for operator keys, implied by tenant keys."`
	Kind      string    `json:"kind" required:"true" enum:"contract,reservation,spot"`
	Pool      string    `json:"pool" required:"true" pattern:"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/[A-Za-z0-9-]{1,32}$" doc:"site/GPU-MODEL, e.g. ref-300mw/H100-SXM"`
	Start     time.Time `json:"start,omitzero" doc:"First hour (whole UTC hour); omitted for spot, which starts now."`
	End       time.Time `json:"end,omitzero" doc:"End of the window (whole UTC hour), exclusive; required but for spot, which without one runs until ended or reclaimed."`
	GPUs      int64     `json:"gpus,omitempty" doc:"Size of a reservation or spot lease, or of a contract without ramp steps; whole nodes."`
	Schedule  []Step    `json:"schedule,omitempty" maxItems:"1000" doc:"A contract's ramp steps."`
	Packing   string    `json:"packing,omitempty" enum:"any,node,nvlink-domain,leaf,pod" doc:"Topology packing; default any."`
	Isolation string    `json:"isolation,omitempty" enum:"shared-leaf,dedicated-leaf" doc:"dedicated-leaf: no other tenant under the same leaf switches; default shared-leaf."`
	MaxPrice  string    `json:"max_price,omitempty" pattern:"^[0-9]{1,5}(\\.[0-9]{1,6})?$" doc:"Spot only, required: the most paid per GPU-hour, USD as a decimal string (\"3.50\"). Above it the lease is reclaimed after its notice."`
	Notice    string    `json:"notice,omitempty" maxLength:"16" doc:"Spot only: the notice tier (2m, 30m, 24h by default; longer notice costs more); default the shortest."`
	Plan      *Plan     `json:"plan,omitempty" doc:"A price plan: a quote is priced on it; a created lease gets it (operator admins only)."`
}

func (r LeaseRequest) domain() (lease.Request, error) {
	out := lease.Request{Kind: lease.Kind(r.Kind), Pool: r.Pool, Start: r.Start, End: r.End, GPUs: unit.GPUs(r.GPUs),
		Packing: lease.Packing(r.Packing), Isolation: lease.Isolation(r.Isolation), Notice: r.Notice}
	if r.MaxPrice != "" {
		m, err := money.Parse(r.MaxPrice, "USD")
		if err != nil {
			var v valid.Error
			v.Add("max_price", r.MaxPrice, "must be a decimal amount of USD per GPU-hour, e.g. \"3.50\"")
			return lease.Request{}, v.Err()
		}
		out.MaxPrice = m
	}
	for _, s := range r.Schedule {
		w, err := unit.PowerFromMW(s.MW)
		if err != nil {
			w = -1 // out of range: the domain's rule names the field
		}
		out.Schedule = append(out.Schedule, lease.Step{From: s.From, GPUs: unit.GPUs(s.GPUs), Power: w})
	}
	return out, nil
}

func stepsJSON(steps []lease.Step) []Step {
	out := make([]Step, len(steps))
	for i, s := range steps {
		out[i] = Step{From: s.From, GPUs: int64(s.GPUs), MW: s.Power.MW()}
	}
	return out
}

// Lease is a lease on the wire.
type Lease struct {
	ID        string     `json:"id"`
	Tenant    string     `json:"tenant"`
	Kind      string     `json:"kind"`
	Pool      string     `json:"pool"`
	Start     time.Time  `json:"start"`
	End       time.Time  `json:"end"`
	GPUs      int64      `json:"gpus" doc:"The largest step of the schedule."`
	Schedule  []Step     `json:"schedule"`
	Packing   string     `json:"packing"`
	Isolation string     `json:"isolation"`
	State     string     `json:"state" enum:"scheduled,active,ended,cancelled"`
	Reason    string     `json:"reason,omitempty"`
	Created   time.Time  `json:"created"`
	Cancelled *time.Time `json:"cancelled,omitempty"`
	MaxPrice  string     `json:"max_price,omitempty" doc:"Spot: the most paid per GPU-hour, USD."`
	Notice    string     `json:"notice,omitempty" doc:"Spot: the notice tier."`
	Noticed   *time.Time `json:"noticed,omitempty" doc:"Spot: when the reclaim notice was given; the lease is released at end."`
}

func (s *Server) leaseJSON(l lease.Lease) Lease {
	out := Lease{ID: l.ID, Tenant: l.TenantID, Kind: string(l.Kind), Pool: l.Pool, Start: l.Start, End: l.End,
		GPUs: int64(l.MaxGPUs()), Schedule: stepsJSON(l.Schedule), Packing: string(l.Packing), Isolation: string(l.Isolation),
		State: string(l.StateAt(s.eng.Clock().Now())), Reason: l.Reason, Created: l.Created}
	if !l.Cancelled.IsZero() {
		out.Cancelled = &l.Cancelled
	}
	if l.Kind == lease.Spot {
		out.MaxPrice, out.Notice = money.Format(l.MaxPrice.Micros), l.Notice
		if !l.Noticed.IsZero() {
			out.Noticed = &l.Noticed
		}
	}
	return out
}

// Allocation is a lease holding nodes over an interval.
type Allocation struct {
	ID    string    `json:"id"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Nodes []string  `json:"nodes"`
}

// Shortfall is capacity a guaranteed lease was promised and did not get.
type Shortfall struct {
	Node     string    `json:"node" doc:"The failed node that could not be replaced."`
	GPUs     int64     `json:"gpus"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	GPUHours float64   `json:"gpu_hours"`
}

func shortfallsJSON(ss []lease.Shortfall) []Shortfall {
	out := make([]Shortfall, len(ss))
	for i, sf := range ss {
		out[i] = Shortfall{Node: sf.Node, GPUs: int64(sf.GPUs), From: sf.From, To: sf.To, GPUHours: sf.GPUHours()}
	}
	return out
}

// LeaseCreated is an admitted lease with where it was placed.
type LeaseCreated struct {
	Lease
	Allocations []Allocation `json:"allocations"`
}

// Quote answers a what-if lease request.
type Quote struct {
	Feasible      bool       `json:"feasible"`
	Reason        string     `json:"reason,omitempty" doc:"Why not: capacity, topology, power or isolation."`
	Detail        string     `json:"detail,omitempty"`
	EarliestStart *time.Time `json:"earliest_start,omitempty" doc:"The earliest start (at or after the one asked) at which the same request fits; absent when none was found."`
	Kind          string     `json:"kind"`
	Pool          string     `json:"pool"`
	Start         time.Time  `json:"start"`
	End           time.Time  `json:"end"`
	Schedule      []Step     `json:"schedule" doc:"With megawatts converted to GPUs."`
	Nodes         int        `json:"nodes" doc:"Nodes of the largest step."`
	LeafGroups    int        `json:"leaf_groups,omitempty" doc:"With placement=true: the leaf groups of the largest step's placement."`
	Pods          int        `json:"pods,omitempty" doc:"With placement=true: the pods of the largest step's placement."`
	Price         string     `json:"price,omitempty" doc:"Spot: the price per GPU-hour of the notice tier now, USD."`
	Notice        string     `json:"notice,omitempty" doc:"Spot: the notice tier."`
	// The price of a contract (with the plan of the request) or a
	// reservation (its plan, or the list price), month by month.
	Charges   []MonthCharge `json:"charges,omitempty" doc:"Each month's charge: fee, proration of a partial month, discount, amount."`
	Total     string        `json:"total,omitempty" doc:"The lease's total, as a decimal string."`
	Currency  string        `json:"currency,omitempty"`
	ListPrice bool          `json:"list_price,omitempty" doc:"Priced at the list price (no plan in the request)."`
}

type leaseRequestIn struct {
	Body LeaseRequest
}

type quoteIn struct {
	Placement bool `query:"placement" doc:"Also choose the nodes and give the placement's leaf groups and pods."`
	Body      LeaseRequest
}

func (s *Server) createQuote(ctx context.Context, p tenant.Principal, in *quoteIn) (*body[Quote], error) {
	r, err := in.Body.domain()
	if err != nil {
		return nil, err
	}
	quote := s.eng.Quote
	if in.Placement {
		quote = s.eng.QuotePlacement
	}
	q, err := quote(ctx, p, in.Body.Tenant, r)
	if err != nil {
		return nil, err
	}
	out := Quote{Feasible: q.Feasible, Kind: string(q.Kind), Pool: q.Pool, Start: q.Start, End: q.End,
		Schedule: stepsJSON(q.Schedule), Nodes: q.Nodes, LeafGroups: q.LeafGroups, Pods: q.Pods, Notice: q.Notice}
	if q.Kind == lease.Spot {
		out.Price = money.Format(q.Price.Micros)
	}
	var plan *billing.Plan
	if in.Body.Plan != nil {
		bp, err := in.Body.Plan.domain()
		if err != nil {
			return nil, prefixFields(err, "plan.")
		}
		plan = &bp
	}
	if q.Feasible || q.Refusal == nil || !q.Start.IsZero() {
		if err := quotePrice(&out, q, plan); err != nil {
			return nil, prefixFields(err, "plan.")
		}
	}
	if ref := q.Refusal; ref != nil {
		out.Reason, out.Detail = ref.Reason, ref.Detail
		if !ref.EarliestStart.IsZero() {
			out.EarliestStart = &ref.EarliestStart
		}
	}
	return ok(out)
}

func (s *Server) createLease(ctx context.Context, p tenant.Principal, in *leaseRequestIn) (*body[LeaseCreated], error) {
	r, err := in.Body.domain()
	if err != nil {
		return nil, err
	}
	if in.Body.Plan != nil {
		return s.createLeaseWithPlan(ctx, p, in, r)
	}
	ctx = s.answering(ctx, http.StatusCreated, func(val any) (any, error) { return s.leaseCreated(ctx, val.(engine.LeaseResult)) })
	res, err := s.eng.RequestLease(ctx, p, in.Body.Tenant, r)
	if remembered(ctx) {
		return nil, nil // the idempotency middleware sends the answer committed with the lease
	}
	if err != nil {
		return nil, err
	}
	out, err := s.leaseCreated(ctx, res)
	if err != nil {
		return nil, err
	}
	return ok(out)
}

func (s *Server) leaseCreated(ctx context.Context, res engine.LeaseResult) (LeaseCreated, error) {
	out := LeaseCreated{Lease: s.leaseJSON(res.Lease), Allocations: make([]Allocation, len(res.Allocations))}
	names, err := s.eng.NodeNames(ctx, res.Allocations)
	if err != nil {
		return LeaseCreated{}, err
	}
	for i, a := range res.Allocations {
		out.Allocations[i] = Allocation{ID: a.ID, Start: a.Start, End: a.End, Nodes: names[i]}
	}
	return out, nil
}

type leasesIn struct {
	Tenant string `query:"tenant" pattern:"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$" doc:"Only this tenant's leases (tenant keys always see only their own)."`
	Pool   string `query:"pool" pattern:"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/[A-Za-z0-9-]{1,32}$"`
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
	Cursor string `query:"cursor" pattern:"^(ls_[0-9a-f]{16})?$" doc:"next_cursor of the previous page"`
}

// LeasePage is one page of leases.
type LeasePage struct {
	Items      []Lease `json:"items"`
	NextCursor string  `json:"next_cursor,omitempty"`
}

func (s *Server) listLeases(ctx context.Context, p tenant.Principal, in *leasesIn) (*body[LeasePage], error) {
	limit := in.Limit
	if limit <= 0 {
		limit = 100
	}
	ls, err := s.eng.Leases(ctx, p, engine.LeaseFilter{TenantID: in.Tenant, Pool: in.Pool, After: in.Cursor, Limit: limit + 1})
	if err != nil {
		return nil, err
	}
	out := LeasePage{Items: make([]Lease, 0, min(len(ls), limit))}
	for i, l := range ls {
		if i == limit {
			out.NextCursor = ls[limit-1].ID
			break
		}
		out.Items = append(out.Items, s.leaseJSON(l))
	}
	return ok(out)
}

type leasePath struct {
	Lease string `path:"lease" pattern:"^ls_[0-9a-f]{16}$"`
}

func (s *Server) getLease(ctx context.Context, p tenant.Principal, in *leasePath) (*body[Lease], error) {
	l, err := s.eng.Lease(ctx, p, in.Lease)
	if err != nil {
		return nil, err
	}
	return ok(s.leaseJSON(l))
}

type cancelIn struct {
	Lease string `path:"lease" pattern:"^ls_[0-9a-f]{16}$"`
	Body  struct {
		Reason string `json:"reason,omitempty" maxLength:"500"`
	}
}

func (s *Server) cancelLease(ctx context.Context, p tenant.Principal, in *cancelIn) (*body[Lease], error) {
	ctx = s.answering(ctx, http.StatusOK, func(val any) (any, error) { return s.leaseJSON(val.(lease.Lease)), nil })
	l, err := s.eng.CancelLease(ctx, p, in.Lease, in.Body.Reason)
	if remembered(ctx) {
		return nil, nil // the idempotency middleware sends the answer committed with the cancel
	}
	if err != nil {
		return nil, err
	}
	return ok(s.leaseJSON(l))
}

// LeaseAllocations is where a lease's nodes are, over time.
type LeaseAllocations struct {
	Allocations []Allocation `json:"allocations"`
	Shortfalls  []Shortfall  `json:"shortfalls"`
}

func (s *Server) leaseAllocations(ctx context.Context, p tenant.Principal, in *leasePath) (*body[LeaseAllocations], error) {
	as, short, err := s.eng.LeaseAllocations(ctx, p, in.Lease)
	if err != nil {
		return nil, err
	}
	out := LeaseAllocations{Allocations: make([]Allocation, len(as)), Shortfalls: shortfallsJSON(short)}
	for i, a := range as {
		out.Allocations[i] = Allocation{ID: a.ID, Start: a.Start, End: a.End, Nodes: a.Nodes}
	}
	return ok(out)
}

type capacityIn struct {
	Pool string    `query:"pool" required:"true" pattern:"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/[A-Za-z0-9-]{1,32}$"`
	From time.Time `query:"from" required:"true" doc:"RFC 3339; rounded down to the hour."`
	To   time.Time `query:"to" required:"true" doc:"RFC 3339, exclusive; rounded up to the hour."`
	Step string    `query:"step" default:"1h" pattern:"^[0-9]{1,6}h$" doc:"A whole number of hours, e.g. 1h, 24h, 168h."`
}

// CapacityPoint is one step of a capacity series, in GPUs: the fewest
// healthy and free, and the most held back and allocated by kind, over
// [at, at+step).
type CapacityPoint struct {
	At          time.Time `json:"at"`
	Physical    int64     `json:"physical"`
	Healthy     int64     `json:"healthy"`
	Holdback    int64     `json:"holdback"`
	Contract    int64     `json:"contract"`
	Reservation int64     `json:"reservation"`
	Spot        int64     `json:"spot"`
	Free        int64     `json:"free" doc:"What a guaranteed lease may still take: healthy − holdback − contract − reservation."`
}

// Capacity is a pool's capacity series.
type Capacity struct {
	Pool   string          `json:"pool"`
	Step   string          `json:"step"`
	Points []CapacityPoint `json:"points"`
}

func (s *Server) getCapacity(ctx context.Context, p tenant.Principal, in *capacityIn) (*body[Capacity], error) {
	step, err := time.ParseDuration(in.Step)
	if err != nil {
		return nil, huma.Error422UnprocessableEntity("invalid step", &huma.ErrorDetail{Location: "query.step", Message: "must be a whole number of hours, e.g. 24h", Value: in.Step})
	}
	pts, err := s.eng.Capacity(ctx, p, in.Pool, in.From, in.To, step)
	if err != nil {
		return nil, err
	}
	out := Capacity{Pool: in.Pool, Step: in.Step, Points: make([]CapacityPoint, len(pts))}
	for i, pt := range pts {
		out.Points[i] = CapacityPoint{At: pt.At, Physical: int64(pt.Physical), Healthy: int64(pt.Healthy), Holdback: int64(pt.Holdback),
			Contract: int64(pt.Contract), Reservation: int64(pt.Reservation), Spot: int64(pt.Spot), Free: int64(pt.Free)}
	}
	return ok(out)
}

// HoldbackStep is one step of a holdback schedule.
type HoldbackStep struct {
	From time.Time `json:"from" doc:"On a whole UTC hour."`
	GPUs int64     `json:"gpus" minimum:"0"`
}

// Holdback is a pool's holdback schedule.
type Holdback struct {
	Pool  string         `json:"pool" pattern:"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/[A-Za-z0-9-]{1,32}$"`
	Steps []HoldbackStep `json:"steps" maxItems:"10000"`
}

type holdbackQuery struct {
	Pool string `query:"pool" required:"true" pattern:"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/[A-Za-z0-9-]{1,32}$"`
}

func (s *Server) getHoldback(ctx context.Context, p tenant.Principal, in *holdbackQuery) (*body[Holdback], error) {
	steps, err := s.eng.Holdback(ctx, p, in.Pool)
	if err != nil {
		return nil, err
	}
	out := Holdback{Pool: in.Pool, Steps: make([]HoldbackStep, len(steps))}
	for i, st := range steps {
		out.Steps[i] = HoldbackStep{From: st.From, GPUs: int64(st.GPUs)}
	}
	return ok(out)
}

type holdbackIn struct {
	Body Holdback
}

func (s *Server) setHoldback(ctx context.Context, p tenant.Principal, in *holdbackIn) (*body[Holdback], error) {
	steps := make([]engine.HoldbackStep, len(in.Body.Steps))
	for i, st := range in.Body.Steps {
		steps[i] = engine.HoldbackStep{From: st.From, GPUs: unit.GPUs(st.GPUs)}
	}
	ctx = s.answering(ctx, http.StatusOK, func(any) (any, error) { return in.Body, nil })
	err := s.eng.SetHoldback(ctx, p, in.Body.Pool, steps)
	if remembered(ctx) {
		return nil, nil // the idempotency middleware sends the answer committed with the change
	}
	if err != nil {
		return nil, err
	}
	return ok(in.Body)
}

type nodeStateIn struct {
	Node string `path:"node" pattern:"^[A-Za-z0-9.-]{1,253}$"`
	Body struct {
		State  string `json:"state" required:"true" enum:"available,failed,maintenance" doc:"available = repaired / back in service."`
		Reason string `json:"reason,omitempty" maxLength:"500"`
	}
}

// NodeStateChange says what a node state change did.
type NodeStateChange struct {
	Node       Node        `json:"node"`
	Ended      int         `json:"allocations_ended" doc:"Allocations on the node from now on, ended or split."`
	Replaced   int         `json:"replaced" doc:"Of those, guaranteed ones given a replacement node."`
	Shortfalls []Shortfall `json:"shortfalls" doc:"Guaranteed capacity that could not be replaced."`
}

func (s *Server) setNodeState(ctx context.Context, p tenant.Principal, in *nodeStateIn) (*body[NodeStateChange], error) {
	ctx = s.answering(ctx, http.StatusOK, func(val any) (any, error) { return nodeStateChange(val.(engine.NodeStateResult)), nil })
	res, err := s.eng.SetNodeState(ctx, p, in.Node, fleet.State(in.Body.State), in.Body.Reason)
	if remembered(ctx) {
		return nil, nil // the idempotency middleware sends the answer committed with the change
	}
	if err != nil {
		return nil, err
	}
	return ok(nodeStateChange(res))
}

func nodeStateChange(res engine.NodeStateResult) NodeStateChange {
	return NodeStateChange{Node: nodeJSON(res.Node), Ended: res.Ended, Replaced: res.Replaced, Shortfalls: shortfallsJSON(res.Shortfalls)}
}
