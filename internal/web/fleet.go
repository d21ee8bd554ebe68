package web

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/valid"
)

// fleetEngine is what the fleet and capacity pages read.
type fleetEngine interface {
	PoolsHeld(ctx context.Context, p tenant.Principal) ([]engine.PoolHeld, error)
	Sites(ctx context.Context) ([]fleet.Site, error)
	PoolRefs(ctx context.Context, p tenant.Principal) ([]engine.PoolRef, error)
	PowerByDomain(ctx context.Context, p tenant.Principal) ([]engine.DomainPower, error)
	CapacityTimeline(ctx context.Context, p tenant.Principal, pool string, from, to time.Time, step time.Duration) ([]engine.TimelinePoint, error)
}

func (s *Server) fleetRoutes() {
	s.mux.HandleFunc("GET /fleet", s.signedIn(s.fleet))
	s.mux.HandleFunc("GET /capacity", s.signedIn(s.capacity))
}

type poolRow struct {
	ID                  string
	GPUs, Nodes         int64
	Available           int64
	HeldNodes, HeldGPUs int64
	FreeNodes, FreeGPUs int64
	ByState             []int64 // the other states' columns
	ITMW                string
}

// fleetStates are the pools table's state columns after available: the
// states the engine and operators set. Allocated and draining are not
// set (leases hold nodes in the calendars, not as a state) and get a
// column only when some node has them (a store written by other tools).
var fleetStates = []fleet.State{fleet.Sanitizing, fleet.Failed, fleet.Maintenance}

// domainRow is a power domain on the fleet page; the kW figures feed its
// <meter> bar.
type domainRow struct {
	Site, Name                         string
	Nodes, AllocatedNodes              int64
	InstalledMW, AllocatedMW, BudgetMW string
	Percent                            string
	AllocatedKW, BudgetKW, HighKW      int64
}

func mw(p int64) string { return strconv.FormatFloat(float64(p)/1e6, 'f', 1, 64) }

// mw2 is mw with two decimals, for power domains of a few MW.
func mw2(p unit.Power) string { return strconv.FormatFloat(float64(p)/1e6, 'f', 2, 64) }

// fleet shows the fleet's GPUs and nodes per pool, by state and held by
// leases now, and per power domain the IT power at full load the nodes
// leases hold now draw, against the domain's budget. It reads the
// engine's memory, not the store.
func (s *Server) fleet(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Fleet", "fleet"
	if !s.operatorOnly(w, v, p, tenant.PermNodesRead) {
		return
	}
	pools, err := s.eng.PoolsHeld(r.Context(), p)
	if err != nil {
		s.fail(w, v, err)
		return
	}
	doms, err := s.eng.PowerByDomain(r.Context(), p)
	if err != nil {
		s.fail(w, v, err)
		return
	}
	data := struct {
		GPUs, Nodes, Failed, HeldGPUs int64
		ITMW, AllocatedMW, HeldPct    string
		States                        []fleet.State
		NodeCols                      []string // the nodes' column heads
		Pools                         []poolRow
		Domains                       []domainRow
	}{States: slices.Clone(fleetStates)}
	for _, st := range fleet.States {
		if st == fleet.Available || slices.Contains(data.States, st) {
			continue
		}
		if slices.ContainsFunc(pools, func(pl engine.PoolHeld) bool { return pl.ByState[st] > 0 }) {
			data.States = append(data.States, st)
		}
	}
	data.NodeCols = []string{"all", "available", "held now", "free now"}
	for _, st := range data.States {
		data.NodeCols = append(data.NodeCols, string(st))
	}
	var it int64
	for _, pl := range pools {
		row := poolRow{ID: pl.Pool, GPUs: int64(pl.GPUs), Nodes: pl.Nodes, Available: pl.ByState[fleet.Available],
			HeldNodes: pl.HeldNodes, HeldGPUs: int64(pl.HeldGPUs), FreeNodes: pl.FreeNodes, FreeGPUs: int64(pl.FreeGPUs),
			ITMW: mw(int64(pl.ITPower))}
		for _, st := range data.States {
			row.ByState = append(row.ByState, pl.ByState[st])
		}
		data.Pools = append(data.Pools, row)
		data.GPUs += int64(pl.GPUs)
		data.Nodes += pl.Nodes
		data.Failed += pl.ByState[fleet.Failed]
		data.HeldGPUs += int64(pl.HeldGPUs)
		it += int64(pl.ITPower)
	}
	data.ITMW = mw(it)
	if data.GPUs > 0 {
		data.HeldPct = strconv.FormatFloat(100*float64(data.HeldGPUs)/float64(data.GPUs), 'f', 1, 64)
	}
	var alloc unit.Power
	for _, d := range doms {
		row := domainRow{Site: d.Site, Name: d.Name, Nodes: d.Nodes, AllocatedNodes: d.AllocatedNodes,
			InstalledMW: mw2(d.Installed), AllocatedMW: mw2(d.Allocated), BudgetMW: mw2(d.Budget),
			AllocatedKW: int64(d.Allocated / unit.Kilowatt), BudgetKW: int64(d.Budget / unit.Kilowatt)}
		row.HighKW = row.BudgetKW * 9 / 10
		if d.Budget > 0 {
			row.Percent = strconv.FormatFloat(100*float64(d.Allocated)/float64(d.Budget), 'f', 1, 64)
		}
		data.Domains = append(data.Domains, row)
		alloc += d.Allocated
	}
	data.AllocatedMW = mw(int64(alloc))
	v.Data = data
	s.render(w, http.StatusOK, "fleet", v)
}

// spans are the capacity page's preset windows, from the current hour.
var spans = []struct {
	name string
	span time.Duration
}{
	{"24h", day},
	{"7d", 7 * day},
	{"30d", 30 * day},
	{"1y", 365 * day},
	{"5y", 5 * 365 * day},
}

// maxPoints bounds a capacity chart: the step is the shortest of steps
// that keeps the window within it.
const maxPoints = 2000

var steps = []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	day, 2 * day, 7 * day, 14 * day, 28 * day}

// stepFor returns the step for a window of length d.
func stepFor(d time.Duration) time.Duration {
	for _, st := range steps {
		if (d+st-1)/st <= maxPoints {
			return st
		}
	}
	return steps[len(steps)-1]
}

// parseInstant reads a query time: RFC 3339, or a date (midnight UTC).
func parseInstant(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Parse(time.DateOnly, s)
}

// capacityQuery is the capacity page's window.
type capacityQuery struct {
	pool, span string // span: the preset shown, "" for a custom window
	from, to   time.Time
}

// window reads pool, span, from and to: both from and to give a custom
// window; one of them with span (default 30d) a window of that length;
// neither the span from the current hour.
func window(q url.Values, now time.Time) (capacityQuery, error) {
	var v valid.Error
	out := capacityQuery{pool: q.Get("pool"), span: "30d"}
	length := 30 * day
	if name := q.Get("span"); name != "" {
		found := false
		for _, sp := range spans {
			if sp.name == name {
				out.span, length, found = sp.name, sp.span, true
			}
		}
		if !found {
			v.Add("span", name, "must be one of 24h, 7d, 30d, 1y, 5y")
		}
	}
	var from, to time.Time
	var err error
	if s := q.Get("from"); s != "" {
		if from, err = parseInstant(s); err != nil {
			v.Add("from", s, "must be an RFC 3339 time (2026-09-01T00:00:00Z) or a date (2026-09-01)")
		}
	}
	if s := q.Get("to"); s != "" {
		if to, err = parseInstant(s); err != nil {
			v.Add("to", s, "must be an RFC 3339 time (2026-09-01T00:00:00Z) or a date (2026-09-01)")
		}
	}
	if err := v.Err(); err != nil {
		return out, err
	}
	switch {
	case !from.IsZero() && !to.IsZero():
		out.span = ""
	case !from.IsZero():
		to = from.Add(length)
	case !to.IsZero():
		from = to.Add(-length)
	default:
		from = now.UTC().Truncate(time.Hour)
		to = from.Add(length)
	}
	out.from, out.to = from.Truncate(time.Hour), ceilHour(to)
	if !out.to.After(out.from) {
		v.Add("to", to.Format(time.RFC3339), "must be after from")
	}
	return out, v.Err()
}

func ceilHour(t time.Time) time.Time {
	if f := t.Truncate(time.Hour); f.Before(t) {
		return f.Add(time.Hour)
	}
	return t
}

// link returns the capacity page's URL for pool over [from, to).
func capacityURL(pool string, from, to time.Time) string {
	return "/capacity?" + url.Values{"pool": {pool}, "from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}.Encode()
}

// capacity draws a pool's capacity over a window that may reach into the
// past: the owner's measured use before the current hour, its holdback
// from then on, and the leases of each kind, with the idle rest, under the
// healthy line. Operators only: it shows what every tenant and the owner
// hold.
func (s *Server) capacity(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Capacity", "capacity"
	if !s.operatorOnly(w, v, p, tenant.PermCapacityRead) {
		return
	}
	pools, err := s.eng.PoolRefs(r.Context(), p)
	if err != nil {
		s.fail(w, v, err)
		return
	}
	now := s.eng.Clock().Now().UTC()
	q, qerr := window(r.URL.Query(), now)
	pool, known := pickPool(pools, q.pool)
	if !known {
		pool = ""
	}
	type spanLink struct {
		Name, URL string
		On        bool
	}
	data := struct {
		Pool, Span, Step, From, To string
		FromText, ToText           string
		Sites                      []site
		Spans                      []spanLink
		Earlier, Later, Now        string
		Points                     int
		Past                       bool
		JSON                       template.JS
	}{Pool: pool, Span: q.span, Sites: bySite(pools)}
	for _, sp := range spans {
		data.Spans = append(data.Spans, spanLink{sp.name, "/capacity?" + url.Values{"pool": {pool}, "span": {sp.name}}.Encode(), sp.name == q.span})
	}
	status := http.StatusOK
	var pts []engine.TimelinePoint
	if !known {
		// A page that names the field and the pools there are, not a bare
		// 404.
		status, v.Error = http.StatusNotFound, unknownPool(pools, q.pool)
	} else if qerr == nil {
		step := stepFor(q.to.Sub(q.from))
		pts, err = s.eng.CapacityTimeline(r.Context(), p, pool, q.from, q.to, step)
		qerr = err
		data.Step = step.String()
		if d, ok := durationText(step); ok {
			data.Step = d
		}
	}
	if !known {
	} else if qerr != nil {
		code, msg, ok := refusal(qerr)
		if !ok {
			s.fail(w, v, qerr)
			return
		}
		status, v.Error = code, msg
	} else {
		length := q.to.Sub(q.from)
		data.From, data.To = q.from.Format(time.RFC3339), q.to.Format(time.RFC3339)
		data.FromText, data.ToText = dateTime(q.from), dateTime(q.to)
		data.Earlier = capacityURL(pool, q.from.Add(-length/2).Truncate(time.Hour), q.to.Add(-length/2).Truncate(time.Hour))
		data.Later = capacityURL(pool, q.from.Add(length/2).Truncate(time.Hour), q.to.Add(length/2).Truncate(time.Hour))
		data.Now = "/capacity?" + url.Values{"pool": {pool}, "span": {"30d"}}.Encode()
		data.Points = len(pts)
		data.Past = q.from.Before(now.Truncate(time.Hour))
		series := struct {
			Now  int64              `json:"now"`
			Pool string             `json:"pool"`
			S    map[string][]int64 `json:"series"`
		}{Now: now.Truncate(time.Hour).Unix(), Pool: pool, S: map[string][]int64{}}
		for _, name := range []string{"t", "healthy", "internal", "holdback", "contract", "reservation", "spot", "idle"} {
			series.S[name] = make([]int64, 0, len(pts))
		}
		for _, pt := range pts {
			add := func(k string, x unit.GPUs) { series.S[k] = append(series.S[k], int64(x)) }
			series.S["t"] = append(series.S["t"], pt.At.Unix())
			add("healthy", pt.Healthy)
			add("internal", pt.Internal)
			add("holdback", pt.Holdback)
			add("contract", pt.Contract)
			add("reservation", pt.Reservation)
			add("spot", pt.Spot)
			add("idle", pt.Idle)
		}
		b, err := json.Marshal(series)
		if err != nil {
			s.fail(w, v, err)
			return
		}
		data.JSON = template.JS(b)
	}
	v.Data = data
	s.render(w, status, "capacity", v)
}

// durationText names a step in days when it is whole days.
func durationText(d time.Duration) (string, bool) {
	if d >= day && d%day == 0 {
		return strconv.Itoa(int(d/day)) + "d", true
	}
	if d%time.Hour == 0 {
		return strconv.Itoa(int(d/time.Hour)) + "h", true
	}
	return "", false
}
