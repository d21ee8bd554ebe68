package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/neocloud/neocloud/internal/demand"
	"github.com/neocloud/neocloud/internal/tenant"
)

// registerDemandRoutes adds the owner's internal demand routes; called
// from registerRoutes.
func (s *Server) registerDemandRoutes() {
	register(s, huma.Operation{OperationID: "import-demand", Method: http.MethodPost, Path: "/v1/demand", Tags: []string{"capacity"},
		Summary:     "Import the owner's measured internal demand (GPUs in use per pool and hour)",
		Description: "Each sample replaces any stored for its pool and hour. The forecast of this history drives the holdback. Operators only: tenants never see the owner's demand."},
		tenant.PermCapacityWrite, s.importDemand)
	register(s, huma.Operation{OperationID: "get-demand", Method: http.MethodGet, Path: "/v1/demand", Tags: []string{"capacity"},
		Summary: "A pool's measured internal demand over [from, to), by hour"}, tenant.PermCapacityRead, s.getDemand)
	register(s, huma.Operation{OperationID: "get-sellable", Method: http.MethodGet, Path: "/v1/sellable", Tags: []string{"capacity"},
		Summary:     "What a pool can still sell as guaranteed capacity, month by month, and the risk taken",
		Description: "Fits the demand forecast to the pool's stored history; the holdback follows the policy (quantile + buffer); sellable = healthy − holdback − guaranteed."},
		tenant.PermCapacityRead, s.getSellable)
	register(s, huma.Operation{OperationID: "plan-holdback", Method: http.MethodPost, Path: "/v1/holdback/plan", Tags: []string{"capacity"},
		Summary:     "Set a pool's holdback schedule from its demand forecast under a policy (quantile + buffer), month by month",
		Description: "Fits the forecast to the pool's stored history and sets, for each coming month, its peak quantile plus the buffer; a month the guaranteed leases already admitted leave less room in is set as high as they allow (see wanted)."},
		tenant.PermCapacityWrite, s.planHoldback)
}

// HoldbackPlanIn asks for the holdback a policy implies.
type HoldbackPlanIn struct {
	Pool           string  `json:"pool" required:"true" pattern:"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/[A-Za-z0-9-]{1,32}$"`
	Months         int     `json:"months,omitempty" minimum:"0" maximum:"36" doc:"Months ahead; default 12."`
	Quantile       float64 `json:"quantile,omitempty" doc:"Forecast quantile held back, in (0, 1); default 0.95."`
	BufferPermille int64   `json:"buffer_permille,omitempty" doc:"Buffer on top of the quantile, in thousandths; default 50."`
}

type holdbackPlanIn struct {
	Body HoldbackPlanIn
}

// HoldbackPlan is the schedule set and the one the policy wanted: a step
// lower than wanted is as much as the guaranteed leases already admitted
// leave.
type HoldbackPlan struct {
	Holdback
	Wanted []HoldbackStep `json:"wanted" doc:"The policy's steps before lowering to what admitted leases leave."`
}

func (s *Server) planHoldback(ctx context.Context, p tenant.Principal, in *holdbackPlanIn) (*body[HoldbackPlan], error) {
	pol := demand.DefaultPolicy()
	if in.Body.Quantile != 0 {
		pol.Quantile = in.Body.Quantile
	}
	if in.Body.BufferPermille != 0 {
		pol.BufferPermille = in.Body.BufferPermille
	}
	months := in.Body.Months
	if months == 0 {
		months = 12
	}
	plan, err := s.eng.PlanHoldback(ctx, p, in.Body.Pool, months, pol)
	if err != nil {
		return nil, err
	}
	out := HoldbackPlan{Holdback: Holdback{Pool: in.Body.Pool, Steps: make([]HoldbackStep, len(plan.Steps))},
		Wanted: make([]HoldbackStep, len(plan.Wanted))}
	for i, st := range plan.Steps {
		out.Steps[i] = HoldbackStep{From: st.From, GPUs: int64(st.GPUs)}
	}
	for i, st := range plan.Wanted {
		out.Wanted[i] = HoldbackStep{From: st.From, GPUs: int64(st.GPUs)}
	}
	return ok(out)
}

// DemandSample is one hour of a pool's measured internal demand.
type DemandSample struct {
	Pool string    `json:"pool" pattern:"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/[A-Za-z0-9-]{1,32}$"`
	Hour time.Time `json:"hour" doc:"The hour's start, RFC 3339 on a whole UTC hour."`
	GPUs int64     `json:"gpus" minimum:"0" maximum:"100000000"`
}

// DemandImport is the answer to an import.
type DemandImport struct {
	Imported int `json:"imported"`
}

// DemandIn is an import's body.
type DemandIn struct {
	Samples []DemandSample `json:"samples" maxItems:"100000"`
}

type demandIn struct {
	Body DemandIn
}

func (s *Server) importDemand(ctx context.Context, p tenant.Principal, in *demandIn) (*body[DemandImport], error) {
	samples := make([]demand.Sample, len(in.Body.Samples))
	for i, x := range in.Body.Samples {
		samples[i] = demand.Sample{Pool: x.Pool, Hour: x.Hour, GPUs: x.GPUs}
	}
	n, err := s.eng.ImportDemand(ctx, p, samples)
	if err != nil {
		return nil, err
	}
	return ok(DemandImport{Imported: n})
}

// Demand is a pool's measured internal demand.
type Demand struct {
	Pool    string         `json:"pool"`
	Samples []DemandSample `json:"samples"`
}

type demandQuery struct {
	Pool string    `query:"pool" required:"true" pattern:"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/[A-Za-z0-9-]{1,32}$"`
	From time.Time `query:"from" doc:"First hour (RFC 3339); default: the beginning."`
	To   time.Time `query:"to" doc:"End, exclusive (RFC 3339); default: no end."`
}

func (s *Server) getDemand(ctx context.Context, p tenant.Principal, in *demandQuery) (*body[Demand], error) {
	samples, err := s.eng.Demand(ctx, p, in.Pool, in.From, in.To)
	if err != nil {
		return nil, err
	}
	out := Demand{Pool: in.Pool, Samples: make([]DemandSample, len(samples))}
	for i, x := range samples {
		out.Samples[i] = DemandSample{Pool: x.Pool, Hour: x.Hour, GPUs: x.GPUs}
	}
	return ok(out)
}

// Sellable is what a pool can still sell as guaranteed capacity, month by
// month, if its holdback followed the policy.
type Sellable struct {
	Pool           string          `json:"pool"`
	Quantile       float64         `json:"quantile"`
	BufferPermille int64           `json:"buffer_permille"`
	HistoryHours   int             `json:"history_hours" doc:"Hours of demand history the forecast was fitted to."`
	HistoryEnd     time.Time       `json:"history_end" doc:"The first hour after the history: where the forecast starts."`
	Months         []SellableMonth `json:"months"`
}

// SellableMonth is one month of a sellable report.
type SellableMonth struct {
	Start          time.Time `json:"start"`
	HealthyGPUs    int64     `json:"healthy_gpus" doc:"The fewest healthy GPUs over the month."`
	HoldbackGPUs   int64     `json:"holdback_gpus" doc:"The most held back under the policy: the forecast quantile's peak plus the buffer."`
	GuaranteedGPUs int64     `json:"guaranteed_gpus" doc:"The most promised to contracts and reservations."`
	SellableGPUs   int64     `json:"sellable_gpus" doc:"healthy − holdback − guaranteed, at least 0."`
	SellableMW     float64   `json:"sellable_mw" doc:"Sellable GPUs at the pool's facility power per GPU."`
	ExceedHours    float64   `json:"exceed_hours" doc:"Expected hours the owner's demand exceeds the holdback."`
	ExceedGPUHours float64   `json:"exceed_gpu_hours" doc:"Expected GPU-hours of the owner's demand above the holdback."`
}

type sellableQuery struct {
	Pool           string  `query:"pool" required:"true" pattern:"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/[A-Za-z0-9-]{1,32}$"`
	Months         int     `query:"months" default:"12" minimum:"1" maximum:"36"`
	Quantile       float64 `query:"quantile" default:"0.95" doc:"Forecast quantile held back, in (0, 1)."`
	BufferPermille int64   `query:"buffer_permille" default:"50" doc:"Buffer on top of the quantile, in thousandths."`
}

func (s *Server) getSellable(ctx context.Context, p tenant.Principal, in *sellableQuery) (*body[Sellable], error) {
	rep, err := s.eng.Sellable(ctx, p, in.Pool, in.Months, demand.Policy{Quantile: in.Quantile, BufferPermille: in.BufferPermille})
	if err != nil {
		return nil, err
	}
	out := Sellable{Pool: rep.Pool, Quantile: rep.Policy.Quantile, BufferPermille: rep.Policy.BufferPermille,
		HistoryHours: rep.HistoryHours, HistoryEnd: rep.HistoryEnd, Months: make([]SellableMonth, len(rep.Months))}
	for i, m := range rep.Months {
		out.Months[i] = SellableMonth{Start: m.Start, HealthyGPUs: m.HealthyGPUs, HoldbackGPUs: m.HoldbackGPUs,
			GuaranteedGPUs: m.GuaranteedGPUs, SellableGPUs: m.SellableGPUs, SellableMW: m.SellablePower.MW(),
			ExceedHours: m.ExceedHours, ExceedGPUHours: m.ExceedGPUHours}
	}
	return ok(out)
}
