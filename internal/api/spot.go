package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/tenant"
)

// registerSpotRoutes adds the spot market, the owner's use now and the
// wipe confirmation; called from registerRoutes.
func (s *Server) registerSpotRoutes() {
	register(s, huma.Operation{OperationID: "get-spot-prices", Method: http.MethodGet, Path: "/v1/spot/prices", Tags: []string{"spot"},
		Summary:     "Spot prices per GPU-hour by notice tier now, per pool",
		Description: "Prices follow each pool's utilization along the price curve; longer notice costs more. Operators also see the capacity behind them (healthy, guaranteed, the owner's use, spot, buffer, idle for spot)."},
		tenant.PermLeasesRead, s.getSpotPrices)
	register(s, huma.Operation{OperationID: "set-internal-use", Method: http.MethodPost, Path: "/v1/internal-use", Tags: []string{"spot"},
		Summary:     "Report the owner's own GPU use of a pool now: spot is reclaimed (after notice) to make room",
		Description: "Victims are the spot leases with the lowest max price, then the newest; each gets a spot.reclaim event and is released after its notice tier. Operators only."},
		tenant.PermCapacityWrite, s.setInternalUse)
	register(s, huma.Operation{OperationID: "confirm-sanitized", Method: http.MethodPost, Path: "/v1/nodes/{node}/sanitized", Tags: []string{"fleet"},
		Summary:     "Confirm a node's wipe: it leaves sanitizing and is available again",
		Description: "Without a confirmation, a wipe ends after the hand-over time (30 minutes by default). 409 when the node is not sanitizing."},
		tenant.PermNodesWrite, s.confirmSanitized)
}

// TierPrice is one notice tier's price now.
type TierPrice struct {
	Tier   string `json:"tier"`
	Notice string `json:"notice" doc:"Go duration: how long before release the reclaim notice comes."`
	Price  string `json:"price" doc:"USD per GPU-hour."`
}

// SpotMarket is one pool's spot market now. The GPU figures are for
// operators only.
type SpotMarket struct {
	Pool            string           `json:"pool"`
	At              time.Time        `json:"at"`
	Prices          []TierPrice      `json:"prices"`
	UtilizationPct  *float64         `json:"utilization_pct,omitempty" doc:"(internal use + guaranteed + spot) / healthy; operators only."`
	Healthy         *int64           `json:"healthy,omitempty"`
	Guaranteed      *int64           `json:"guaranteed,omitempty"`
	Internal        *int64           `json:"internal,omitempty" doc:"The owner's own use, as last reported."`
	Spot            *int64           `json:"spot,omitempty"`
	SpotUnderNotice *int64           `json:"spot_under_notice,omitempty"`
	Buffer          *int64           `json:"buffer,omitempty"`
	Sanitizing      *int64           `json:"sanitizing,omitempty"`
	SpotIdle        *int64           `json:"spot_idle,omitempty" doc:"What spot may still take now."`
	SpotByTier      map[string]int64 `json:"spot_by_tier,omitempty"`
}

// SpotMarkets lists pools' spot markets.
type SpotMarkets struct {
	Items []SpotMarket `json:"items"`
}

type spotPricesIn struct {
	Pool string `query:"pool" pattern:"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/[A-Za-z0-9-]{1,32})?$" doc:"One pool; every pool when empty."`
}

func (s *Server) getSpotPrices(ctx context.Context, p tenant.Principal, in *spotPricesIn) (*body[SpotMarkets], error) {
	ms, err := s.eng.SpotMarkets(ctx, p, in.Pool)
	if err != nil {
		return nil, err
	}
	out := SpotMarkets{Items: make([]SpotMarket, len(ms))}
	for i, m := range ms {
		o := SpotMarket{Pool: m.Pool, At: m.At, Prices: make([]TierPrice, len(m.Prices))}
		for j, t := range m.Prices {
			o.Prices[j] = TierPrice{Tier: t.Tier, Notice: t.Notice.String(), Price: money.Format(t.Price.Micros)}
		}
		if m.Visible {
			u := float64(m.UtilizationPermille) / 10
			under := m.Spot - m.SpotLive
			o.UtilizationPct, o.Healthy, o.Guaranteed, o.Internal, o.Spot, o.SpotUnderNotice = &u, &m.Healthy, &m.Guaranteed, &m.Internal, &m.Spot, &under
			o.Buffer, o.Sanitizing, o.SpotIdle, o.SpotByTier = &m.Buffer, &m.Sanitizing, &m.SpotIdle, m.SpotByTier
		}
		out.Items[i] = o
	}
	return ok(out)
}

// InternalUseIn reports the owner's use of a pool now.
type InternalUseIn struct {
	Pool string `json:"pool" required:"true" pattern:"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/[A-Za-z0-9-]{1,32}$"`
	GPUs int64  `json:"gpus" minimum:"0" maximum:"100000000"`
}

// InternalUse is the answer: the spot leases given a reclaim notice.
type InternalUse struct {
	Pool      string   `json:"pool"`
	GPUs      int64    `json:"gpus"`
	Reclaimed []string `json:"reclaimed"`
}

type internalUseIn struct {
	Body InternalUseIn
}

func (s *Server) setInternalUse(ctx context.Context, p tenant.Principal, in *internalUseIn) (*body[InternalUse], error) {
	ids, err := s.eng.SetInternalUse(ctx, p, in.Body.Pool, in.Body.GPUs)
	if err != nil {
		return nil, err
	}
	if ids == nil {
		ids = []string{}
	}
	return ok(InternalUse{Pool: in.Body.Pool, GPUs: in.Body.GPUs, Reclaimed: ids})
}

type sanitizedIn struct {
	Node string `path:"node" pattern:"^[A-Za-z0-9.-]{1,253}$"`
}

func (s *Server) confirmSanitized(ctx context.Context, p tenant.Principal, in *sanitizedIn) (*body[Node], error) {
	n, err := s.eng.ConfirmSanitized(ctx, p, in.Node)
	if err != nil {
		return nil, err
	}
	return ok(nodeJSON(n))
}
