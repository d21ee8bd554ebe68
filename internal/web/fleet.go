package web

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/tenant"
)

// fleetEngine is what the fleet and capacity pages read.
type fleetEngine interface {
	Pools(ctx context.Context, site string) ([]fleet.Pool, error)
	Sites(ctx context.Context) ([]fleet.Site, error)
	Capacity(ctx context.Context, p tenant.Principal, pool string, from, to time.Time, step time.Duration) ([]engine.CapacityPoint, error)
}

func (s *Server) fleetRoutes() {
	s.mux.HandleFunc("GET /fleet", s.signedIn(s.fleet))
	s.mux.HandleFunc("GET /capacity", s.signedIn(s.capacity))
}

type poolRow struct {
	ID          string
	GPUs, Nodes int64
	ByState     []int64
	ITMW        string
}

func mw(p int64) string { return strconv.FormatFloat(float64(p)/1e6, 'f', 1, 64) }

func (s *Server) fleet(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Fleet", "fleet"
	if !p.Can(tenant.PermNodesRead) {
		s.fail(w, v, tenant.ErrForbidden)
		return
	}
	pools, err := s.eng.Pools(r.Context(), "")
	if err != nil {
		s.fail(w, v, err)
		return
	}
	sites, err := s.eng.Sites(r.Context())
	if err != nil {
		s.fail(w, v, err)
		return
	}
	type domain struct{ Site, Name, BudgetMW string }
	data := struct {
		GPUs, Nodes, Failed int64
		ITMW                string
		States              []fleet.State
		Pools               []poolRow
		Domains             []domain
	}{States: fleet.States}
	var it int64
	for _, pl := range pools {
		row := poolRow{ID: pl.ID, GPUs: int64(pl.GPUs), Nodes: pl.Nodes, ITMW: mw(int64(pl.ITPower))}
		for _, st := range fleet.States {
			row.ByState = append(row.ByState, pl.ByState[st])
		}
		data.Pools = append(data.Pools, row)
		data.GPUs += int64(pl.GPUs)
		data.Nodes += pl.Nodes
		data.Failed += pl.ByState[fleet.Failed]
		it += int64(pl.ITPower)
	}
	data.ITMW = mw(it)
	for _, st := range sites {
		for _, d := range st.PowerDomains {
			data.Domains = append(data.Domains, domain{st.Name, d.Name, mw(int64(d.Budget))})
		}
	}
	v.Data = data
	s.render(w, http.StatusOK, "fleet", v)
}

// spans are the capacity page's zoom levels and their steps.
var spans = []struct {
	name       string
	span, step time.Duration
}{
	{"24h", 24 * time.Hour, time.Hour},
	{"7d", 7 * 24 * time.Hour, time.Hour},
	{"30d", 30 * 24 * time.Hour, 6 * time.Hour},
	{"1y", 365 * 24 * time.Hour, 24 * time.Hour},
	{"5y", 5 * 365 * 24 * time.Hour, 7 * 24 * time.Hour},
}

// capacity draws a pool's capacity from now over the chosen span
// (operators: it shows what every tenant and the owner hold).
func (s *Server) capacity(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Capacity", "capacity"
	if !p.Can(tenant.PermCapacityRead) {
		s.fail(w, v, tenant.ErrForbidden)
		return
	}
	pools, err := s.eng.Pools(r.Context(), "")
	if err != nil {
		s.fail(w, v, err)
		return
	}
	var ids []string
	for _, pl := range pools {
		ids = append(ids, pl.ID)
	}
	pool := r.URL.Query().Get("pool")
	if pool == "" && len(ids) > 0 {
		pool = ids[0]
	}
	if !slices.Contains(ids, pool) {
		s.fail(w, v, tenant.ErrNotFound)
		return
	}
	sp := spans[2]
	for _, x := range spans {
		if x.name == r.URL.Query().Get("span") {
			sp = x
		}
	}
	from := s.eng.Clock().Now().UTC().Truncate(time.Hour)
	pts, err := s.eng.Capacity(r.Context(), p, pool, from, from.Add(sp.span), sp.step)
	if err != nil {
		s.fail(w, v, err)
		return
	}
	series := map[string][]int64{}
	for _, pt := range pts {
		series["t"] = append(series["t"], pt.At.Unix())
		series["healthy"] = append(series["healthy"], int64(pt.Healthy))
		series["holdback"] = append(series["holdback"], int64(pt.Holdback))
		series["contract"] = append(series["contract"], int64(pt.Contract))
		series["reservation"] = append(series["reservation"], int64(pt.Reservation))
		series["spot"] = append(series["spot"], int64(pt.Spot))
		series["free"] = append(series["free"], int64(pt.Free))
	}
	data, err := json.Marshal(series)
	if err != nil {
		s.fail(w, v, err)
		return
	}
	var names []string
	for _, x := range spans {
		names = append(names, x.name)
	}
	v.Data = struct {
		Pool, Span, Step string
		Pools, Spans     []string
		Points           int
		JSON             template.JS
	}{pool, sp.name, sp.step.String(), ids, names, len(pts), template.JS(data)}
	s.render(w, http.StatusOK, "capacity", v)
}
