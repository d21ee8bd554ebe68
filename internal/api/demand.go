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
