package web_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/clock"
	"github.com/neocloud/neocloud/internal/demand"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/forecast"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/store/sqlite"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/web"
)

// BenchmarkPages times the dashboard's pages, server side (the handler,
// from request to the last byte of HTML, no network), on the
// reference-300mw fleet holding 10,000 admitted leases of 1,000 tenants,
// a month's invoice run, a year of the owner's demand per pool, and the
// events of all that plus node failures and cancellations. Each page is a sub-benchmark reporting p50, p99 and max
// in ms and the page's size; a table of them is logged at the end.
// Target (issue 7): <= 300 ms per page. The clock then stands 12 hours
// on, so that leases have started and ended, and the busiest tenant has
// those 12 hours of telemetry (every 30 s) on a lease of its own, which
// its /usage meters. The fixture is built once per run of BenchmarkPages,
// outside the timed loops, and shared by its sub-benchmarks (about 6 s on
// 2 cores).
//
//	go test -run '^$' -bench Pages -benchtime 30x ./internal/web/
func BenchmarkPages(b *testing.B) {
	start := time.Now()
	f, err := buildPagesFixture(b)
	if err != nil {
		b.Fatal(err)
	}
	f.setup = time.Since(start)
	var rows []string
	for _, pg := range f.pages {
		b.Run(pg.name, func(b *testing.B) {
			var lat []time.Duration
			size := 0
			for b.Loop() {
				rec, d := f.get(pg)
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", pg.path, rec.Code, rec.Body.String())
				}
				lat = append(lat, d)
				size = rec.Body.Len()
			}
			slices.Sort(lat)
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			p50, p99, mx := ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), ms(lat[len(lat)-1])
			b.ReportMetric(p50, "p50-ms")
			b.ReportMetric(p99, "p99-ms")
			b.ReportMetric(mx, "max-ms")
			b.ReportMetric(float64(size)/1024, "KiB")
			b.ReportMetric(0, "ns/op") // the percentiles say it better
			rows = append(rows, fmt.Sprintf("%-16s %-44s %8.1f %8.1f %8.1f %8.0f %6d", pg.name, pg.path, p50, p99, mx, float64(size)/1024, len(lat)))
		})
	}
	b.Logf("reference-300mw, %d admitted leases of %d tenants (setup %s):\n%-16s %-44s %8s %8s %8s %8s %6s\n%s",
		f.leases, f.tenants, f.setup.Round(time.Second), "page", "path", "p50 ms", "p99 ms", "max ms", "KiB", "runs", strings.Join(rows, "\n"))
}

type benchPage struct {
	name, path string
	cookie     *http.Cookie
}

type pagesBench struct {
	srv             http.Handler
	pages           []benchPage
	leases, tenants int
	setup           time.Duration
}

// get serves one page and returns the answer and the server's time.
func (f *pagesBench) get(pg benchPage) (*httptest.ResponseRecorder, time.Duration) {
	// A page that streams would run until its request ends.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, pg.path, nil)
	req.AddCookie(pg.cookie)
	rec := httptest.NewRecorder()
	start := time.Now()
	f.srv.ServeHTTP(rec, req)
	return rec, time.Since(start)
}

// benchPools are the reference site's pools and GPUs per node.
var benchPools = []struct {
	id   string
	gpus int
}{{"ref-300mw/H100-SXM", 8}, {"ref-300mw/H200-SXM", 8}, {"ref-300mw/GB200", 4}}

// benchLease draws a reservation (one in ten a contract) in a reference
// pool: 1-64 nodes (whole NVL72 racks for GB200 nvlink-domain packing),
// starting within 180 days (10,000 do not fit in fewer), lasting 1 hour
// to 30 days; as internal/engine's capacity benchmarks draw them.
func benchLease(rng *rand.Rand, now time.Time) lease.Request {
	p := benchPools[rng.IntN(len(benchPools))]
	nodes := 1 + rng.IntN(64)
	packing := lease.Packings[rng.IntN(len(lease.Packings))]
	if packing == lease.PackNVLinkDomain && p.gpus == 4 {
		nodes = 18 * (1 + rng.IntN(3))
	}
	start := now.Truncate(time.Hour).Add(time.Duration(1+rng.IntN(180*24)) * time.Hour)
	kind := lease.Reservation
	if rng.IntN(10) == 0 {
		kind = lease.Contract
	}
	return lease.Request{Kind: kind, Pool: p.id, Start: start, End: start.Add(time.Duration(1+rng.IntN(30*24)) * time.Hour),
		GPUs: unit.GPUs(nodes * p.gpus), Packing: packing, Isolation: lease.Isolations[rng.IntN(10)/9]}
}

const (
	benchLeases  = 10_000
	benchTenants = 1_000
)

var navHref = regexp.MustCompile(`<nav>(?s:(.*?))</nav>`)
var hrefRE = regexp.MustCompile(`href="(/[^"]*)"`)

func buildPagesFixture(b *testing.B) (*pagesBench, error) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	e, err := engine.New(engine.Config{Store: sqlite.OpenTest(b), Clock: clk})
	if err != nil {
		return nil, err
	}
	keys := map[string]string{}
	if _, err := e.Bootstrap(ctx, func(s string) error { keys["operator"] = s; return nil }); err != nil {
		return nil, err
	}
	admin, err := e.Authenticate(ctx, keys["operator"])
	if err != nil {
		return nil, err
	}
	spec, err := fleet.Generate(fleet.PresetReference300MW, 1)
	if err != nil {
		return nil, err
	}
	if _, err := e.ApplyFleet(ctx, admin, spec, false); err != nil {
		return nil, err
	}
	tenants := make([]string, benchTenants)
	for i := range tenants {
		tenants[i] = fmt.Sprintf("tenant-%04d", i)
		if _, err := e.CreateTenant(ctx, admin, tenant.Tenant{ID: tenants[i]}); err != nil {
			return nil, err
		}
	}
	// Rounds of pipelined requests, each as many as are still missing, so
	// that exactly benchLeases are admitted; about half are refused.
	rng := rand.New(rand.NewPCG(1, 2))
	admitted, submitted := 0, 0
	var ids []string
	var pending []engine.Pending
	for admitted < benchLeases {
		if submitted > 20*benchLeases {
			return nil, fmt.Errorf("%d leases admitted of %d submitted; want %d", admitted, submitted, benchLeases)
		}
		pending = pending[:0]
		for range benchLeases - admitted {
			p, err := e.SubmitLease(ctx, admin, tenants[submitted%benchTenants], benchLease(rng, t0))
			if err != nil {
				return nil, err
			}
			pending = append(pending, p)
			submitted++
		}
		for _, p := range pending {
			if v, err := p.Wait(); err == nil {
				admitted++
				if r, ok := v.(engine.LeaseResult); ok {
					ids = append(ids, r.Lease.ID)
				}
			}
		}
	}
	// Some events beyond the leases': cancellations and node failures.
	for _, id := range ids[:20] {
		if _, err := e.CancelLease(ctx, admin, id, "benchmark"); err != nil {
			return nil, err
		}
	}
	for _, p := range benchPools {
		nodes, err := e.Nodes(ctx, engine.NodeFilter{Pool: p.id, Limit: 5})
		if err != nil {
			return nil, err
		}
		for _, n := range nodes {
			if _, err := e.SetNodeState(ctx, admin, n.Name, fleet.Failed, "benchmark"); err != nil {
				return nil, err
			}
		}
	}
	if _, err := e.RunInvoices(ctx, admin, t0); err != nil {
		return nil, err
	}
	// A year of the owner's demand per pool, so that the pages that
	// forecast it (sellable) do their real work.
	pools, err := e.Pools(ctx, "")
	if err != nil {
		return nil, err
	}
	const histHours = 365 * 24
	for i, p := range pools {
		g := float64(p.GPUs)
		syn := forecast.Synth{Start: t0.Add(-histHours * time.Hour), Hours: histHours, Seed: uint64(i + 1),
			Base: 0.45 * g, TrendPerYear: -0.08 * g, Daily: 0.04 * g, PeakHour: 15, Weekend: 0.05 * g,
			Noise:  forecast.Noise{Dist: forecast.Normal, SD: 0.012 * g, AR: 0.8},
			Bursts: forecast.Bursts{PerWeek: 1, Hours: 8, GPUs: 0.03 * g}}
		pts, err := syn.Generate()
		if err != nil {
			return nil, err
		}
		hist := make([]demand.Sample, len(pts))
		for j, pt := range pts {
			hist[j] = demand.Sample{Pool: p.ID, Hour: pt.At, GPUs: min(max(int64(pt.GPUs+0.5), 0), int64(p.GPUs))}
		}
		for chunk := range slices.Chunk(hist, engine.MaxDemandSamples) {
			if _, err := e.ImportDemand(ctx, admin, chunk); err != nil {
				return nil, err
			}
		}
	}

	// The tenant whose pages are timed: the one with the most leases.
	all, err := e.Leases(ctx, admin, engine.LeaseFilter{})
	if err != nil {
		return nil, err
	}
	count := map[string]int{}
	var big lease.Lease
	for _, l := range all {
		count[l.TenantID]++
		if l.MaxGPUs() > big.MaxGPUs() {
			big = l
		}
	}
	who := tenants[0]
	for _, id := range tenants {
		if count[id] > count[who] {
			who = id
		}
	}
	var own string
	for _, l := range all {
		if l.TenantID == who {
			own = l.ID
			break
		}
	}
	if err := benchTelemetry(ctx, e, admin, clk, who); err != nil {
		return nil, err
	}
	if _, keys[who], err = e.CreateKey(ctx, admin, engine.KeyRequest{TenantID: who, Role: tenant.TenantViewer, Name: "bench"}); err != nil {
		return nil, err
	}
	invs, err := e.Invoices(ctx, admin, engine.InvoiceFilter{})
	if err != nil || len(invs) == 0 {
		return nil, fmt.Errorf("no invoices (%v)", err)
	}
	bigInv, ownInv := invs[0], ""
	for _, inv := range invs {
		if len(inv.Lines) > len(bigInv.Lines) {
			bigInv = inv
		}
		if inv.TenantID == who {
			ownInv = inv.ID
		}
	}

	srv, err := web.New(web.Config{Engine: e})
	if err != nil {
		return nil, err
	}
	f := &pagesBench{srv: srv, leases: admitted, tenants: benchTenants}
	op, err := benchSignIn(srv, keys["operator"])
	if err != nil {
		return nil, err
	}
	ten, err := benchSignIn(srv, keys[who])
	if err != nil {
		return nil, err
	}
	add := func(name, path string, c *http.Cookie) {
		if !slices.ContainsFunc(f.pages, func(p benchPage) bool { return p.path == path && p.cookie == c }) {
			f.pages = append(f.pages, benchPage{name, path, c})
		}
	}
	// The pages of issue 7, then any other the navigation links to.
	for _, p := range [][2]string{
		{"fleet", "/fleet"}, {"capacity", "/capacity"}, {"capacity-5y", "/capacity?span=5y"}, {"sellable", "/sellable"},
		{"leases", "/leases"}, {"leases-ended", "/leases?state=ended"}, {"lease", "/leases/" + big.ID}, {"events", "/events"}, {"revenue", "/revenue"},
		{"invoices", "/invoices"}, {"invoice", "/invoices/" + bigInv.ID}, {"tenants", "/tenants"}, {"tenant", "/tenants/" + who},
	} {
		add("op-"+p[0], p[1], op)
	}
	for _, p := range [][2]string{
		{"leases", "/leases"}, {"lease", "/leases/" + own}, {"usage", "/usage"}, {"usage-hourly", "/usage?step=hour"}, {"quotes", "/quotes"}, {"spot", "/spot"},
		{"events", "/events"}, {"invoices", "/invoices"}, {"invoice", "/invoices/" + ownInv},
	} {
		add("tn-"+p[0], p[1], ten)
	}
	for prefix, c := range map[string]*http.Cookie{"op-": op, "tn-": ten} {
		rec, _ := f.get(benchPage{path: "/leases", cookie: c})
		if m := navHref.FindStringSubmatch(rec.Body.String()); m != nil {
			for _, h := range hrefRE.FindAllStringSubmatch(m[1], -1) {
				add(prefix+strings.Trim(h[1], "/"), h[1], c)
			}
		}
	}
	return f, nil
}

// benchTelemetry gives tenant who a reservation of 16 GPUs from the
// clock's now for two days, moves the clock 12 hours on and ingests those
// hours' telemetry of its GPUs, a reading every 30 s (the meter's longest
// gap): 23,040 readings.
func benchTelemetry(ctx context.Context, e *engine.Engine, admin tenant.Principal, clk *clock.Fake, who string) error {
	start := clk.Now()
	res, err := e.RequestLease(ctx, admin, who, lease.Request{Kind: lease.Reservation, Pool: benchPools[0].id,
		Start: start, End: start.Add(48 * time.Hour), GPUs: 16})
	if err != nil {
		return fmt.Errorf("telemetry lease: %w", err)
	}
	views, _, err := e.LeaseAllocations(ctx, admin, res.Lease.ID)
	if err != nil {
		return err
	}
	const hours = 12
	clk.Set(start.Add(hours * time.Hour))
	for _, v := range views {
		for _, node := range v.Nodes {
			bt := meter.Batch{ID: "bench-" + node}
			for at := start; at.Before(clk.Now()); at = at.Add(30 * time.Second) {
				for g := range benchPools[0].gpus {
					bt.Readings = append(bt.Readings, meter.Reading{Node: node, GPU: g, Time: at, UtilPct: 60 + (g*7+at.Hour())%40,
						PowerMW: 550_000, EnergyMJ: at.Sub(start).Milliseconds() * 550})
				}
			}
			if _, err := e.Ingest(ctx, admin, bt); err != nil {
				return fmt.Errorf("telemetry of %s: %w", node, err)
			}
		}
	}
	pts, err := e.Usage(ctx, admin, engine.UsageQuery{From: start, To: clk.Now(), Step: engine.StepDay, LeaseID: res.Lease.ID})
	if err != nil {
		return err
	}
	var metered int64
	for _, pt := range pts {
		metered += pt.GPUms
	}
	if want := int64(16 * hours * time.Hour / time.Millisecond); metered < want*9/10 {
		return fmt.Errorf("telemetry lease %s: %d GPU-ms metered, want about %d", res.Lease.ID, metered, want)
	}
	return nil
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// benchSignIn signs in through the handler and returns the session cookie.
func benchSignIn(h http.Handler, key string) (*http.Cookie, error) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/login", nil))
	m := csrfField.FindStringSubmatch(rec.Body.String())
	if m == nil {
		return nil, fmt.Errorf("no CSRF token in the sign-in form")
	}
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"csrf": {m[1]}, "key": {key}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range rec.Result().Cookies() {
		req.AddCookie(c)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == "nc_session" && c.Value != "" {
			return c, nil
		}
	}
	return nil, fmt.Errorf("sign in: %d, no session cookie", rec.Code)
}
