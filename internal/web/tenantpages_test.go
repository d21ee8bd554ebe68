package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/clock"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/tenant"
)

// tenantWorld is newWorld plus what the lease and tenant pages show: for
// tenant-a an active reservation (held now), an active spot lease and an
// admin key; for tenant-b an active reservation beside tenant-a's.
type tenantWorld struct {
	*world
	adminA  string // tenant-a's tenant-admin key
	active  map[string]string
	spotA   string
	pool    string
	allByID map[string]lease.Lease
}

func newTenantWorld(t *testing.T) *tenantWorld {
	t.Helper()
	w := &tenantWorld{world: newWorld(t), active: map[string]string{}, pool: "lab-1/H100-SXM"}
	ctx := context.Background()
	var err error
	if _, w.adminA, err = w.eng.CreateKey(ctx, w.admin, engine.KeyRequest{TenantID: "tenant-a", Role: tenant.TenantAdmin, Name: "admin"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"tenant-a", "tenant-b"} {
		res, err := w.eng.RequestLease(ctx, w.admin, id, lease.Request{Kind: lease.Reservation, Pool: w.pool, Start: t0, End: t0.Add(48 * time.Hour), GPUs: 16})
		if err != nil {
			t.Fatal(err)
		}
		w.active[id] = res.Lease.ID
	}
	res, err := w.eng.RequestLease(ctx, w.admin, "tenant-a", lease.Request{Kind: lease.Spot, Pool: w.pool, GPUs: 8, MaxPrice: money.USD(50_000_000), Notice: "30m"})
	if err != nil {
		t.Fatal(err)
	}
	w.spotA = res.Lease.ID
	w.refresh(t)
	return w
}

// refresh reloads every lease.
func (w *tenantWorld) refresh(t *testing.T) {
	t.Helper()
	all, err := w.eng.Leases(context.Background(), w.admin, engine.LeaseFilter{})
	if err != nil {
		t.Fatal(err)
	}
	w.allByID = map[string]lease.Lease{}
	for _, l := range all {
		w.allByID[l.ID] = l
	}
}

// owned returns the IDs of tenant id's leases, by ID.
func (w *tenantWorld) owned(id string) []string {
	var out []string
	for _, l := range w.allByID {
		if l.TenantID == id {
			out = append(out, l.ID)
		}
	}
	slices.Sort(out)
	return out
}

// nodesOf returns the names of the nodes lease id ever held.
func (w *tenantWorld) nodesOf(t *testing.T, id string) []string {
	t.Helper()
	as, _, err := w.eng.LeaseAllocations(context.Background(), w.admin, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		out = append(out, a.Nodes...)
	}
	return out
}

// leaseCount is how many leases the store holds.
func (w *tenantWorld) leaseCount(t *testing.T) int {
	t.Helper()
	all, err := w.eng.Leases(context.Background(), w.admin, engine.LeaseFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

var leaseLinkRE = regexp.MustCompile(`<a href="/leases/(ls_[0-9a-f]+)">`)

func TestLeaseAndTenantPagesRender(t *testing.T) {
	t.Parallel()
	w := newTenantWorld(t)
	op, a := w.browser(t), w.browser(t)
	w.signIn(t, op, w.keys["operator"])
	w.signIn(t, a, w.keys["tenant-a"])
	ownA, ownB := w.owned("tenant-a"), w.owned("tenant-b")
	activeA := w.active["tenant-a"]
	tests := []struct {
		name      string
		c         *http.Client
		path      string
		code      int
		want, not []string
	}{
		{"operator leases", op, "/leases", 200, append([]string{`id="leases"`, `id="lease-filters"`, "tenant-a", "tenant-b", `name="tenant"`}, append(ownA, ownB...)...), nil},
		{"operator by tenant", op, "/leases?tenant=tenant-b", 200, ownB, ownA},
		{"operator by kind", op, "/leases?kind=spot", 200, []string{w.spotA}, []string{activeA}},
		{"tenant leases", a, "/leases", 200, append([]string{`id="leases"`, "mark-ok"}, ownA...), append([]string{"tenant-b", `name="tenant"`}, ownB...)},
		{"tenant cannot widen to another tenant", a, "/leases?tenant=tenant-b", 200, ownA, ownB},
		{"tenant active", a, "/leases?state=active", 200, []string{activeA, w.spotA}, []string{ownA[0] + `"`}},
		{"tenant scheduled", a, "/leases?state=scheduled&kind=reservation", 200, []string{ownA[0]}, []string{w.spotA, activeA}},
		{"bad kind", a, "/leases?kind=lease", 422, []string{`id="error"`, "kind"}, nil},
		{"bad state", a, "/leases?state=requested", 422, []string{`id="error"`, "state"}, nil},
		{"bad limit", a, "/leases?limit=0", 422, []string{`id="error"`, "limit"}, nil},
		{"lease detail", a, "/leases/" + activeA, 200, []string{`id="lease-summary"`, `id="schedule"`, `id="plan"`, `id="allocations"`,
			`id="shortfalls"`, `id="findings"`, `id="sla"`, `id="availability"`, `id="fabric"`, `class="chart fabric" data-drawn="true"`,
			"fab-mine", "reservation", "shared-leaf", "/usage?lease=" + activeA + "&amp;month=2026-09"}, []string{"tenant-b", `id="cancel"`, "fab-busy"}},
		{"spot detail", a, "/leases/" + w.spotA, 200, []string{"30m", "50.00 USD", `id="noticed"`, "no SLA"}, []string{"tenant-b"}},
		{"operator detail", op, "/leases/" + activeA, 200, []string{`id="fabric"`, "tenant-a", "fab-busy"}, nil},
		{"another tenant's lease", a, "/leases/" + w.active["tenant-b"], 404, nil, nil},
		{"missing lease", a, "/leases/ls_0000000000000000", 404, nil, nil},
		{"usage of all its leases", a, "/usage?month=2026-09&step=hour", 200, []string{`id="usage"`, `id="usage-chart"`, `class="chart usage-chart"`,
			`id="usage-series"`, `"held":[`, `id="usage-leases"`, `id="sla"`, `id="episodes"`, activeA, "/usage.csv?", "/static/tenant.js"}, []string{"tenant-b", w.active["tenant-b"]}},
		{"usage of a lease", a, "/usage?lease=" + activeA + "&month=2026-09", 200, []string{`id="usage"`, activeA, `id="total-held"`}, []string{w.spotA}},
		{"usage of another's lease", a, "/usage?lease=" + w.active["tenant-b"], 404, nil, nil},
		{"csv of another's lease", a, "/usage.csv?lease=" + w.active["tenant-b"], 404, nil, nil},
		{"usage bad month", a, "/usage?month=September", 422, []string{`id="error"`, "month"}, nil},
		{"operator usage needs a choice", op, "/usage", 200, []string{`id="note"`}, []string{`id="usage-chart"`}},
		{"operator usage of a lease", op, "/usage?lease=" + w.active["tenant-b"], 200, []string{`id="usage"`, w.active["tenant-b"]}, nil},
		{"operator usage of a tenant", op, "/usage?tenant=tenant-a", 200, []string{`id="usage-leases"`, activeA}, []string{w.active["tenant-b"]}},
		{"quotes form", a, "/quotes", 200, []string{`id="quote-form"`, `name="gpus"`, `name="schedule"`}, []string{`name="tenant"`, `id="accept"`}},
		{"operator quotes form", op, "/quotes", 200, []string{`id="quote-form"`, `name="tenant"`, "tenant-b"}, nil},
		{"spot page", a, "/spot", 200, []string{`id="spot-prices"`, `id="spot-form"`, `id="spot-leases"`, w.spotA, "30m", `name="once"`},
			[]string{"Utilization", "tenant-b", `name="tenant"`}},
		{"operator spot page", op, "/spot", 200, []string{`id="spot-prices"`, "Utilization", `name="tenant"`, w.spotA}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, _ := get(t, tt.c, w.srv.URL+tt.path)
			if code != tt.code {
				t.Fatalf("GET %s: %d, want %d\n%s", tt.path, code, tt.code, body)
			}
			for _, s := range tt.want {
				if !strings.Contains(body, s) {
					t.Errorf("GET %s: no %q", tt.path, s)
				}
			}
			for _, s := range tt.not {
				if strings.Contains(body, s) {
					t.Errorf("GET %s: shows %q", tt.path, s)
				}
			}
		})
	}
}

// The fabric drawing names the tenant's own nodes and no other node of
// the pool, nor who holds them; operators see both.
func TestFabricShowsOnlyOwnNodes(t *testing.T) {
	t.Parallel()
	w := newTenantWorld(t)
	nodes, err := w.eng.Nodes(context.Background(), engine.NodeFilter{Pool: w.pool})
	if err != nil {
		t.Fatal(err)
	}
	mine := w.nodesOf(t, w.active["tenant-a"])
	if len(mine) != 2 {
		t.Fatalf("tenant-a's lease holds %v, want 2 nodes", mine)
	}
	a, op := w.browser(t), w.browser(t)
	w.signIn(t, a, w.keys["tenant-a"])
	w.signIn(t, op, w.keys["operator"])
	_, body, _ := get(t, a, w.srv.URL+"/leases/"+w.active["tenant-a"])
	svg := body[strings.Index(body, "<svg"):strings.Index(body, "</svg>")]
	for _, n := range nodes {
		named := regexp.MustCompile(`\b` + regexp.QuoteMeta(n.Name) + `\b`)
		switch own := slices.Contains(mine, n.Name); {
		case own && !named.MatchString(svg):
			t.Errorf("the drawing does not name its own node %s", n.Name)
		case !own && named.MatchString(body):
			t.Errorf("the tenant's page names %s, not its node", n.Name)
		}
	}
	if got := strings.Count(svg, `class="fab-mine"`); got != 2 {
		t.Errorf("%d nodes drawn as the lease's, want 2", got)
	}
	if !strings.Contains(svg, `class="fab-other"`) {
		t.Errorf("the drawing shows no other node of the leaf group")
	}
	for _, s := range []string{"tenant-b", w.active["tenant-b"], "fab-busy", "fab-free"} {
		if strings.Contains(body, s) {
			t.Errorf("the tenant's page shows %q", s)
		}
	}
	_, body, _ = get(t, op, w.srv.URL+"/leases/"+w.active["tenant-a"])
	for _, s := range append([]string{"fab-mine", "fab-busy", "lease " + w.active["tenant-b"] + " of tenant-b"}, mine...) {
		if !strings.Contains(body, s) {
			t.Errorf("the operator's drawing lacks %q", s)
		}
	}
}

func TestLeasePagination(t *testing.T) {
	t.Parallel()
	w := newTenantWorld(t)
	op := w.browser(t)
	w.signIn(t, op, w.keys["operator"])
	all := slices.Sorted(func(yield func(string) bool) {
		for id := range w.allByID {
			if !yield(id) {
				return
			}
		}
	})
	for _, tt := range []struct {
		name, query string
		want        []string
	}{
		{"all", "limit=2", all},
		{"reservations", "limit=1&kind=reservation", slices.DeleteFunc(slices.Clone(all), func(id string) bool { return w.allByID[id].Kind != lease.Reservation })},
		{"tenant-a", "limit=1&tenant=tenant-a", w.owned("tenant-a")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			next := "/leases?" + tt.query
			for pages := 0; next != ""; pages++ {
				if pages > len(all) {
					t.Fatal("pagination does not end")
				}
				code, body, _ := get(t, op, w.srv.URL+next)
				if code != 200 {
					t.Fatalf("GET %s: %d", next, code)
				}
				for _, m := range leaseLinkRE.FindAllStringSubmatch(body, -1) {
					got = append(got, m[1])
				}
				next = ""
				if m := regexp.MustCompile(`id="next" href="([^"]+)"`).FindStringSubmatch(body); m != nil {
					next = strings.ReplaceAll(m[1], "&amp;", "&")
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("pages hold %v, want %v", got, tt.want)
			}
		})
	}
}

// formCase is one submission of a form and what must come of it.
type formCase struct {
	name   string
	key    string // whose session: "operator", "tenant-a" (viewer), "admin-a"
	path   string
	form   url.Values
	csrf   string // "ok" the session's, "" none, else that value
	code   int
	want   []string
	leases int // how many more leases after it
}

func (w *tenantWorld) run(t *testing.T, tests []formCase) {
	t.Helper()
	sessions := map[string]*http.Client{}
	tokens := map[string]string{}
	for who, key := range map[string]string{"operator": w.keys["operator"], "tenant-a": w.keys["tenant-a"], "admin-a": w.adminA} {
		sessions[who] = w.browser(t)
		tokens[who] = w.signIn(t, sessions[who], key)
	}
	for _, tt := range tests {
		before := w.leaseCount(t)
		form := url.Values{}
		for k, v := range tt.form {
			form[k] = v
		}
		switch tt.csrf {
		case "ok":
			form.Set("csrf", tokens[tt.key])
		case "":
		default:
			form.Set("csrf", tt.csrf)
		}
		code, body, h := post(t, sessions[tt.key], w.srv.URL+tt.path, form)
		if code != tt.code {
			t.Errorf("%s: POST %s: %d, want %d\n%s", tt.name, tt.path, code, tt.code, body)
			continue
		}
		for _, s := range tt.want {
			if !strings.Contains(body, s) && !strings.Contains(h.Get("Location"), s) {
				t.Errorf("%s: no %q in the answer (Location %q)", tt.name, s, h.Get("Location"))
			}
		}
		if got := w.leaseCount(t) - before; got != tt.leases {
			t.Errorf("%s: %d new leases, want %d", tt.name, got, tt.leases)
		}
	}
}

func TestQuoteAndSpotForms(t *testing.T) {
	t.Parallel()
	w := newTenantWorld(t)
	a := w.browser(t)
	w.signIn(t, a, w.adminA)
	// A quote (GET) answers and carries the form that requests the lease.
	q := url.Values{"kind": {"reservation"}, "pool": {w.pool}, "start": {"2026-09-02T00:00"}, "end": {"2026-09-03T00:00"}, "gpus": {"16"}, "packing": {"leaf"}}
	code, body, _ := get(t, a, w.srv.URL+"/quotes?"+q.Encode())
	if code != 200 || !strings.Contains(body, `<span class="feasible">yes</span>`) || !strings.Contains(body, `id="charges"`) || !strings.Contains(body, `id="accept"`) {
		t.Fatalf("quote: %d\n%s", code, body)
	}
	// The form shows where the lease would go (a quote with placement)
	// and amounts to the cent with thousands separators.
	if !strings.Contains(body, "2 nodes in 1 leaf groups, 1 pods") || !regexp.MustCompile(`id="total">\d{1,3}(,\d{3})+\.\d\d`).MatchString(body) {
		t.Errorf("quote without its placement or a grouped total:\n%s", body)
	}
	once := regexp.MustCompile(`name="once" value="([^"]+)"`).FindStringSubmatch(body)
	if once == nil {
		t.Fatal("no one-time token in the accept form")
	}
	big := url.Values{"kind": {"reservation"}, "pool": {w.pool}, "start": {"2026-09-02T00:00"}, "end": {"2026-09-03T00:00"}, "gpus": {"4096"}}
	if code, body, _ := get(t, a, w.srv.URL+"/quotes?"+big.Encode()); code != 200 || !strings.Contains(body, `<span class="infeasible">no</span>`) || strings.Contains(body, `id="accept"`) || !strings.Contains(body, `id="quote-reason"`) {
		t.Errorf("quote too big: %d\n%s", code, body)
	}
	if code, body, _ := get(t, a, w.srv.URL+"/quotes?pool="+url.QueryEscape(w.pool)+"&kind=reservation&gpus=eight&start=soon"); code != 422 || !strings.Contains(body, "gpus") || !strings.Contains(body, "start") {
		t.Errorf("quote with bad input: %d", code)
	}

	accept := func(once string, gpus string) url.Values {
		v := url.Values{"once": {once}}
		for k, x := range q {
			v[k] = x
		}
		v.Set("gpus", gpus)
		return v
	}
	spot := url.Values{"pool": {w.pool}, "gpus": {"8"}, "max_price": {"40"}, "notice": {"2m"}, "once": {strings.Repeat("s", 43)}}
	noPrice := url.Values{"pool": {w.pool}, "gpus": {"8"}, "once": {strings.Repeat("p", 43)}}
	w.run(t, []formCase{
		{name: "quote without CSRF", key: "admin-a", path: "/quotes", form: accept(once[1], "16"), code: 403},
		{name: "quote with a wrong CSRF", key: "admin-a", path: "/quotes", form: accept(once[1], "16"), csrf: "nope", code: 403},
		{name: "viewer cannot request", key: "tenant-a", path: "/quotes", form: accept(strings.Repeat("v", 43), "16"), csrf: "ok", code: 403, want: []string{`id="error"`, "leases:write"}},
		{name: "bad gpus", key: "admin-a", path: "/quotes", form: accept(strings.Repeat("g", 43), "-8"), csrf: "ok", code: 422, want: []string{`id="error"`, "gpus"}},
		{name: "no token", key: "admin-a", path: "/quotes", form: accept("", "16"), csrf: "ok", code: 422, want: []string{"once"}},
		{name: "admin requests", key: "admin-a", path: "/quotes", form: accept(once[1], "16"), csrf: "ok", code: 303, want: []string{"/leases/ls_"}, leases: 1},
		{name: "a replay makes nothing", key: "admin-a", path: "/quotes", form: accept(once[1], "16"), csrf: "ok", code: 303, want: []string{"/leases/ls_"}},
		{name: "the token with other values", key: "admin-a", path: "/quotes", form: accept(once[1], "24"), csrf: "ok", code: 422, want: []string{"once"}},
		{name: "spot without CSRF", key: "admin-a", path: "/spot", form: spot, code: 403},
		{name: "spot without a price", key: "admin-a", path: "/spot", form: noPrice, csrf: "ok", code: 422, want: []string{`id="error"`, "max_price"}},
		{name: "viewer cannot request spot", key: "tenant-a", path: "/spot", form: spot, csrf: "ok", code: 403, want: []string{`id="error"`}},
		{name: "operator must name a tenant", key: "operator", path: "/spot", form: spot, csrf: "ok", code: 422, want: []string{"tenant"}},
		{name: "admin requests spot", key: "admin-a", path: "/spot", form: spot, csrf: "ok", code: 303, want: []string{"/leases/ls_"}, leases: 1},
	})
	w.refresh(t)
	kinds := map[lease.Kind]int{}
	for _, id := range w.owned("tenant-a") {
		kinds[w.allByID[id].Kind]++
	}
	if kinds[lease.Spot] != 2 || kinds[lease.Reservation] != 3 {
		t.Errorf("tenant-a holds %v, want 2 spot and 3 reservations", kinds)
	}
}

func TestCancelForm(t *testing.T) {
	t.Parallel()
	w := newTenantWorld(t)
	a := w.browser(t)
	w.signIn(t, a, w.adminA)
	id := w.active["tenant-a"]
	if _, body, _ := get(t, a, w.srv.URL+"/leases/"+id); !strings.Contains(body, `id="cancel"`) {
		t.Fatal("no cancel form for a tenant admin")
	}
	path := "/leases/" + id + "/cancel"
	w.run(t, []formCase{
		{name: "no CSRF", key: "admin-a", path: path, form: url.Values{"reason": {"x"}}, code: 403},
		{name: "wrong CSRF", key: "admin-a", path: path, form: url.Values{"reason": {"x"}}, csrf: "wrong", code: 403},
		{name: "viewer", key: "tenant-a", path: path, form: url.Values{"reason": {"x"}}, csrf: "ok", code: 403, want: []string{`id="error"`}},
		{name: "reason too long", key: "admin-a", path: path, form: url.Values{"reason": {strings.Repeat("r", 501)}}, csrf: "ok", code: 422, want: []string{`id="error"`, "reason"}},
		{name: "another tenant's lease", key: "admin-a", path: "/leases/" + w.active["tenant-b"] + "/cancel", form: url.Values{}, csrf: "ok", code: 404},
	})
	w.refresh(t)
	for _, l := range []string{id, w.active["tenant-b"]} {
		if st := w.allByID[l].State; st == lease.Cancelled {
			t.Fatalf("lease %s cancelled by a refused form", l)
		}
	}
	w.run(t, []formCase{
		{name: "cancel", key: "admin-a", path: path, form: url.Values{"reason": {"no longer needed"}}, csrf: "ok", code: 303, want: []string{"/leases/" + id}},
		{name: "cancel again", key: "admin-a", path: path, form: url.Values{}, csrf: "ok", code: 409, want: []string{`id="error"`}},
	})
	code, body, _ := get(t, a, w.srv.URL+"/leases/"+id)
	if code != 200 || !strings.Contains(body, "state-cancelled") || !strings.Contains(body, "no longer needed") || strings.Contains(body, `id="cancel"`) {
		t.Errorf("after cancelling: %d\n%s", code, body)
	}
}

func TestUsageCSV(t *testing.T) {
	t.Parallel()
	w := newTenantWorld(t)
	a := w.browser(t)
	w.signIn(t, a, w.keys["tenant-a"])
	id := w.active["tenant-a"]
	code, body, h := get(t, a, w.srv.URL+"/usage.csv?lease="+id+"&month=2026-09&step=hour")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") || !strings.Contains(h.Get("Content-Disposition"), "attachment") {
		t.Fatalf("csv: %d %v", code, h)
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if !strings.HasPrefix(lines[0], "from,to,pool,use,lease_id,tenant_id,allocated_gpu_ms") || len(lines) < 2 {
		t.Fatalf("csv:\n%s", body)
	}
	// The clock stands at the lease's start: its first hour is held.
	if !strings.Contains(body, "2026-09-01T00:00:00Z,2026-09-01T01:00:00Z,"+w.pool+",lease,"+id+",tenant-a,57600000,") {
		t.Errorf("csv has no row of the first hour:\n%s", body)
	}
	for _, s := range []string{"tenant-b", w.active["tenant-b"]} {
		if strings.Contains(body, s) {
			t.Errorf("csv shows %q", s)
		}
	}
	if code, _, _ := get(t, a, w.srv.URL+"/usage.csv?month=bad"); code != 422 {
		t.Errorf("csv with a bad month: %d", code)
	}
}

// A lease with a health finding on a node it holds, or a shortfall, is
// marked in the list; its page lists the finding and the shortfall.
func TestHealthMarks(t *testing.T) {
	t.Parallel()
	w := newTenantWorld(t)
	ctx := context.Background()
	clk, ok := w.eng.Clock().(*clock.Fake)
	if !ok {
		t.Fatal("the world's clock is not a fake")
	}
	clk.Set(t0.Add(10 * time.Minute))
	active := w.active["tenant-a"]
	node := w.nodesOf(t, active)[0]
	// Thermal throttling grows on one GPU: a degraded finding.
	b := meter.Batch{ID: "health-1", Readings: []meter.Reading{
		{Node: node, GPU: 0, Time: t0.Add(time.Minute), UtilPct: 90, PowerMW: 600_000, TempC: 80},
		{Node: node, GPU: 0, Time: t0.Add(2 * time.Minute), UtilPct: 90, PowerMW: 600_000, TempC: 90, ThermalViolationUS: 5_000_000},
	}}
	if _, err := w.eng.Ingest(ctx, w.admin, b); err != nil {
		t.Fatal(err)
	}
	// A reservation of the whole H200 pool loses a node: no replacement.
	res, err := w.eng.RequestLease(ctx, w.admin, "tenant-a", lease.Request{Kind: lease.Reservation, Pool: "lab-1/H200-SXM", Start: t0, End: t0.Add(24 * time.Hour), GPUs: 64})
	if err != nil {
		t.Fatal(err)
	}
	failed := w.nodesOf(t, res.Lease.ID)[3]
	if _, err := w.eng.SetNodeState(ctx, w.admin, failed, fleet.Failed, "test"); err != nil {
		t.Fatal(err)
	}
	a, bc := w.browser(t), w.browser(t)
	w.signIn(t, a, w.keys["tenant-a"])
	w.signIn(t, bc, w.keys["tenant-b"])
	_, body, _ := get(t, a, w.srv.URL+"/leases")
	rows := map[string]string{}
	for _, row := range strings.Split(body, "<tr>") {
		if m := leaseLinkRE.FindStringSubmatch(row); m != nil {
			rows[m[1]] = row
		}
	}
	for id, want := range map[string]string{active: "1 health finding", res.Lease.ID: "1 shortfall", w.spotA: "mark-ok"} {
		if !strings.Contains(rows[id], want) {
			t.Errorf("the row of %s lacks %q:\n%s", id, want, rows[id])
		}
	}
	for _, tt := range []struct {
		c         *http.Client
		path      string
		want, not []string
	}{
		{a, "/leases/" + active, []string{`id="findings"`, node, "thermal", "still held"}, nil},
		{a, "/leases/" + res.Lease.ID, []string{`id="shortfalls"`, failed}, []string{"None recorded."}},
		{bc, "/leases", []string{"mark-ok"}, []string{"mark-bad"}},
		{bc, "/leases/" + w.active["tenant-b"], []string{"No health findings"}, []string{node, "thermal"}},
	} {
		code, body, _ := get(t, tt.c, w.srv.URL+tt.path)
		if code != 200 {
			t.Fatalf("GET %s: %d", tt.path, code)
		}
		for _, s := range tt.want {
			if !strings.Contains(body, s) {
				t.Errorf("GET %s: no %q", tt.path, s)
			}
		}
		for _, s := range tt.not {
			if strings.Contains(body, s) {
				t.Errorf("GET %s: shows %q", tt.path, s)
			}
		}
	}
}

// A plan's terms read as the rest of the dashboard's money does: amounts
// (a monthly fee, a discount) to the cent with thousands separators, the
// exact amount in a tooltip when the cents dropped digits; rates (per
// GPU-hour, per kWh) with every digit they have.
func TestLeasePlanReadsWell(t *testing.T) {
	t.Parallel()
	w := newTenantWorld(t)
	ctx := context.Background()
	res, err := w.eng.RequestLease(ctx, w.admin, "tenant-a", lease.Request{Kind: lease.Contract, Pool: w.pool,
		Start: t0.Add(72 * time.Hour), End: t0.AddDate(0, 3, 0), GPUs: 8})
	if err != nil {
		t.Fatal(err)
	}
	usd := func(s string) money.Money {
		m, err := money.ParseMicros(s)
		if err != nil {
			t.Fatal(err)
		}
		return money.USD(m)
	}
	month := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	a := w.browser(t)
	w.signIn(t, a, w.keys["tenant-a"])
	for _, tt := range []struct {
		name      string
		plan      billing.Plan
		want, not []string
	}{
		{
			name: "monthly fee with sub-cent digits",
			plan: billing.Plan{Kind: lease.Contract, Currency: "USD", Fee: &billing.Fee{Basis: billing.PerMonth, Rate: usd("210735837.101509")},
				Discounts: []billing.Discount{{Month: t0, BasisPoints: 2000}, {Month: month, Amount: usd("1234567.891")}}},
			want: []string{"210,735,837.10 USD per month (prorated by the hour)", `title="exactly 210,735,837.101509 USD"`,
				"20% off", "1,234,567.89 USD off", `title="exactly 1,234,567.891 USD"`},
			not: []string{"210735837", "1234567"},
		},
		{
			name: "monthly fee in whole cents",
			plan: billing.Plan{Kind: lease.Contract, Currency: "USD", Fee: &billing.Fee{Basis: billing.PerMonth, Rate: usd("40000000000")}},
			want: []string{"40,000,000,000.00 USD per month"},
			not:  []string{`title="exactly`},
		},
		{
			name: "rates keep their digits",
			plan: billing.Plan{Kind: lease.Contract, Currency: "USD", Fee: &billing.Fee{Basis: billing.PerGPUHour, Rate: usd("1234.5678")},
				Energy: &billing.Energy{PUEMilli: 1250, Tariff: usd("0.0825")}},
			want: []string{"1,234.5678 USD per committed GPU-hour", "× 0.0825 USD per kWh"},
			not:  []string{`title="exactly`},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := w.eng.SetPlan(ctx, w.admin, res.Lease.ID, tt.plan); err != nil {
				t.Fatal(err)
			}
			code, body, _ := get(t, a, w.srv.URL+"/leases/"+res.Lease.ID)
			if code != 200 {
				t.Fatalf("GET lease: %d\n%s", code, body)
			}
			plan := body[strings.Index(body, `id="plan"`):]
			plan = plan[:strings.Index(plan, "</table>")]
			for _, s := range tt.want {
				if !strings.Contains(plan, s) {
					t.Errorf("plan: no %q in\n%s", s, plan)
				}
			}
			for _, s := range tt.not {
				if strings.Contains(plan, s) {
					t.Errorf("plan: shows %q in\n%s", s, plan)
				}
			}
		})
	}
}
