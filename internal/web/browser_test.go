package web_test

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/neocloud/neocloud/internal/demand"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/event"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/forecast"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/web/browser"
	"github.com/neocloud/neocloud/internal/web/browser/browsertest"
)

// The browser tests load the dashboard in headless Chromium (one browser
// for the whole test, one tab with its own cookies per role), as a person
// would: sign in through the form, follow the navigation, and watch what
// the browser reports. They skip without Chromium unless
// NEOCLOUD_REQUIRE_BROWSER=1 (scripts/test installs Chromium and sets it).

// ownerWords are words for the owner's own demand, which tenants never see.
var ownerWords = regexp.MustCompile(`(?i)\b(holdback|internal)\b`)

const (
	chartTimeout = 10 * time.Second
	liveTimeout  = 10 * time.Second
)

// roles are the signed-in visitors of the test and their home pages.
var roles = []struct{ name, home string }{
	{"operator", "/fleet"},
	{"tenant-a", "/leases"},
	{"tenant-b", "/leases"},
}

func TestBrowser(t *testing.T) {
	b := browsertest.Start(t)
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	importDemand(t, w)

	// What each tenant owns: the other tenant must never see it.
	owned := map[string][]string{}
	all, err := w.eng.Leases(ctx, w.admin, engine.LeaseFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range all {
		owned[l.TenantID] = append(owned[l.TenantID], l.ID)
	}
	for id, inv := range w.invoice {
		owned[id] = append(owned[id], id, inv)
	}

	tabs := map[string]*browser.Tab{}
	for _, r := range roles {
		tab, err := b.NewTab()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tab.Close)
		p, err := tab.SignIn(ctx, w.srv.URL, w.keys[r.name])
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		if !strings.HasSuffix(p.URL, r.home) {
			t.Errorf("%s signed in at %s, want %s", r.name, p.URL, r.home)
		}
		tabs[r.name] = tab
	}
	// forbidden is what a visitor's pages must not show.
	forbidden := func(role string) []string {
		switch role {
		case "tenant-a":
			return owned["tenant-b"]
		case "tenant-b":
			return owned["tenant-a"]
		}
		return nil
	}
	c := &crawler{base: w.srv.URL, ctx: ctx}

	t.Run("crawl", func(t *testing.T) {
		for _, r := range roles {
			t.Run(r.name, func(t *testing.T) {
				c.crawl(t, tabs[r.name], r.home, forbidden(r.name))
			})
		}
	})

	t.Run("isolation", func(t *testing.T) {
		ten := tabs["tenant-a"]
		for _, path := range []string{"/fleet", "/capacity", "/capacity?pool=lab-1/H100-SXM&span=1y", "/sellable", "/revenue", "/tenants", "/tenants/tenant-a"} {
			if got := c.status(t, ten, path); got != 403 {
				t.Errorf("tenant-a GET %s: %d, want 403", path, got)
			}
		}
		// Another tenant's objects are 404, as if they did not exist; its
		// own are there.
		for _, pair := range []struct{ own, other string }{
			{"/leases/" + owned["tenant-a"][0], "/leases/" + owned["tenant-b"][0]},
			{"/invoices/" + w.invoice["tenant-a"], "/invoices/" + w.invoice["tenant-b"]},
		} {
			if own := c.status(t, ten, pair.own); own != 200 {
				t.Errorf("tenant-a GET %s (its own): %d, want 200", pair.own, own)
			}
			if got := c.status(t, ten, pair.other); got != 404 {
				t.Errorf("tenant-a GET %s (tenant-b's): %d, want 404", pair.other, got)
			}
		}
		ten.Problems() // the browser logs each 403 and 404 document as a failed load
	})

	t.Run("forms", func(t *testing.T) {
		// A tenant-admin of tenant-a (the crawl's keys are viewers) quotes
		// a reservation, requests it from the quote, then asks for spot
		// and cancels it, all through the pages' forms.
		_, secret, err := w.eng.CreateKey(ctx, w.admin, engine.KeyRequest{TenantID: "tenant-a", Role: tenant.TenantAdmin, Name: "browser"})
		if err != nil {
			t.Fatal(err)
		}
		tab, err := b.NewTab()
		if err != nil {
			t.Fatal(err)
		}
		defer tab.Close()
		if _, err := tab.SignIn(ctx, w.srv.URL, secret); err != nil {
			t.Fatal(err)
		}
		f := &former{t: t, ctx: ctx, tab: tab, base: w.srv.URL}
		f.open("/quotes")
		local := func(at time.Time) string { return at.Format("2006-01-02T15:04") }
		start := t0.Add(24 * time.Hour)
		f.fill("#quote-form", map[string]string{"kind": "reservation", "pool": h100, "start": local(start), "end": local(start.Add(24 * time.Hour))},
			map[string]string{"gpus": "16"})
		f.submit("#quote-form", "/quotes")
		if got := f.text("#feasible"); got != "yes" {
			t.Fatalf("quote: feasible %q, want yes (%s)", got, f.text("#quote-reason"))
		}
		if f.text("#total") == "" {
			t.Error("a feasible quote without its price (#total)")
		}
		id := f.submit("#accept", "/leases/")
		if got := f.text("#kind"); got != "reservation" {
			t.Errorf("lease %s from the quote: kind %q, want reservation", id, got)
		}
		if got := f.text("#gpus"); got != "16" {
			t.Errorf("lease %s from the quote: %q GPUs, want 16", id, got)
		}
		if l, err := w.eng.Lease(ctx, w.admin, id); err != nil || l.TenantID != "tenant-a" || !l.Start.Equal(start) {
			t.Errorf("lease %s from the quote: %+v, %v; want tenant-a's from %s", id, l, err, start)
		}

		f.open("/spot")
		f.fill("#spot-form", map[string]string{"pool": h100}, map[string]string{"gpus": "8", "max_price": "50"})
		spotID := f.submit("#spot-form", "/leases/")
		if got := f.text("#kind"); got != "spot" {
			t.Errorf("lease %s from /spot: kind %q, want spot", spotID, got)
		}
		// Cancel it from its page, so that the live events below start
		// from a fleet without it.
		f.fill("#cancel", nil, map[string]string{"reason": "browser test"})
		if got := f.submit("#cancel", "/leases/"); got != spotID {
			t.Errorf("cancelling %s led to %s", spotID, got)
		}
		if got := f.text("#state"); got != "cancelled" && got != "ended" {
			t.Errorf("spot lease %s after cancel: state %q", spotID, got)
		}
	})

	t.Run("live events", func(t *testing.T) {
		op, ten := tabs["operator"], tabs["tenant-a"]
		for _, tab := range []*browser.Tab{op, ten} {
			p, err := tab.Open(ctx, w.srv.URL+"/events")
			if err != nil {
				t.Fatal(err)
			}
			if p.Status != 200 {
				t.Fatalf("GET /events: %d", p.Status)
			}
			if err := tab.WaitFor(ctx, `document.querySelector('#events[data-connected="true"]')`, liveTimeout); err != nil {
				t.Fatalf("the event stream did not connect: %v", err)
			}
			// A reload would drop this mark.
			if _, err := browser.Eval[bool](ctx, tab, `window.ncMark = true`); err != nil {
				t.Fatal(err)
			}
		}
		last, err := w.eng.LastEventSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// tenant-b's lease first, then an operator-only node failure, then
		// tenant-a's lease and its cancellation: events arrive in order, so
		// once tenant-a's last one is on its page, the others would be too
		// if they leaked.
		if _, err := w.eng.RequestLease(ctx, w.admin, "tenant-b", lease.Request{Kind: lease.Reservation, Pool: "lab-1/H100-SXM", Start: t0.Add(6 * time.Hour), End: t0.Add(7 * time.Hour), GPUs: 8}); err != nil {
			t.Fatal(err)
		}
		nodes, err := w.eng.Nodes(ctx, engine.NodeFilter{Pool: "lab-1/H100-SXM", State: fleet.Available})
		if err != nil || len(nodes) == 0 {
			t.Fatalf("no available node to fail: %v", err)
		}
		if _, err := w.eng.SetNodeState(ctx, w.admin, nodes[len(nodes)-1].Name, fleet.Failed, "browser test"); err != nil {
			t.Fatal(err)
		}
		res, err := w.eng.RequestLease(ctx, w.admin, "tenant-a", lease.Request{Kind: lease.Reservation, Pool: "lab-1/H100-SXM", Start: t0.Add(8 * time.Hour), End: t0.Add(9 * time.Hour), GPUs: 8})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.eng.CancelLease(ctx, w.admin, res.Lease.ID, "browser test"); err != nil {
			t.Fatal(err)
		}
		evs, err := w.eng.Events(ctx, w.admin, last, engine.MaxEventsPage)
		if err != nil {
			t.Fatal(err)
		}
		var everyone, tenantA, others []int64
		for _, ev := range evs {
			everyone = append(everyone, ev.Seq)
			if ev.TenantID == "tenant-a" {
				tenantA = append(tenantA, ev.Seq)
			} else {
				others = append(others, ev.Seq)
			}
		}
		if !slices.ContainsFunc(evs, func(ev event.Event) bool { return ev.TenantID == "" }) || len(tenantA) < 2 {
			t.Fatalf("events %+v: want tenant-a's two and an operator-only one", evs)
		}
		waitSeqs := func(tab *browser.Tab, who string, seqs []int64) {
			t.Helper()
			if err := tab.WaitFor(ctx, seqsShown(seqs), liveTimeout); err != nil {
				shown, _ := browser.Eval[[]int64](ctx, tab, `Array.from(document.querySelectorAll("#events li[data-seq]"), li => +li.dataset.seq)`)
				t.Errorf("%s: events %v did not appear without reload (shown: %v): %v", who, seqs, shown, err)
			}
		}
		t.Logf("events %v for the operator, %v of them for tenant-a", everyone, tenantA)
		waitSeqs(op, "operator", everyone)
		waitSeqs(ten, "tenant-a", tenantA)
		for _, seq := range others {
			if n, _ := browser.Eval[int](ctx, ten, fmt.Sprintf(`document.querySelectorAll('#events li[data-seq="%d"]').length`, seq)); n != 0 {
				t.Errorf("tenant-a sees event %d, which is not its own", seq)
			}
		}
		for who, tab := range map[string]*browser.Tab{"operator": op, "tenant-a": ten} {
			if marked, _ := browser.Eval[bool](ctx, tab, `window.ncMark === true`); !marked {
				t.Errorf("%s: the events page reloaded", who)
			}
			if ps := tab.Problems(); len(ps) > 0 {
				t.Errorf("%s /events: %s", who, strings.Join(ps, "\n"))
			}
		}
		text, err := browser.Eval[string](ctx, ten, `document.body.innerText`)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range forbidden("tenant-a") {
			if strings.Contains(text, s) {
				t.Errorf("tenant-a's /events shows %q, tenant-b's", s)
			}
		}
		if m := ownerWords.FindString(text); m != "" {
			t.Errorf("tenant-a's /events shows %q: tenants never see the owner's demand", m)
		}
	})
}

// former fills and submits a page's forms in a tab as a person would,
// failing the test on a page that does not answer 200 or on anything the
// browser reports.
type former struct {
	t    *testing.T
	ctx  context.Context
	tab  *browser.Tab
	base string
}

func (f *former) problems(step string) {
	f.t.Helper()
	if ps := f.tab.Problems(); len(ps) > 0 {
		f.t.Errorf("%s: the browser reported:\n%s", step, strings.Join(ps, "\n"))
	}
}

func (f *former) open(path string) {
	f.t.Helper()
	p, err := f.tab.Open(f.ctx, f.base+path)
	if err != nil || p.Status != 200 {
		f.t.Fatalf("GET %s: %d, %v", path, p.Status, err)
	}
	f.problems(path)
}

// fill sets the fields of form (a selector) named in set (selects, times)
// and types typed into the others (inputs) after clearing them.
func (f *former) fill(form string, set, typed map[string]string) {
	f.t.Helper()
	for name, v := range set {
		if err := f.tab.Do(f.ctx, chromedp.SetValue(chromedp.CSS(fmt.Sprintf(`%s [name=%q]`, form, name)), v)); err != nil {
			f.t.Fatalf("fill %s: set %s to %q: %v", form, name, v, err)
		}
	}
	for name, v := range typed {
		field := chromedp.CSS(fmt.Sprintf(`%s [name=%q]`, form, name))
		if err := f.tab.Do(f.ctx, chromedp.Clear(field), chromedp.SendKeys(field, v)); err != nil {
			f.t.Fatalf("fill %s: type %q into %s: %v", form, v, name, err)
		}
	}
}

// submit clicks form's submit button and checks that the page it leads to
// answers 200 under path (a prefix); it returns the rest of the path.
func (f *former) submit(form, path string) string {
	f.t.Helper()
	p, err := f.tab.Follow(f.ctx, chromedp.Click(chromedp.CSS(form+` button[type="submit"]`)))
	if err != nil {
		f.t.Fatalf("submit %s: %v", form, err)
	}
	u, err := url.Parse(p.URL)
	if err != nil || p.Status != 200 || !strings.HasPrefix(u.Path, path) {
		f.t.Fatalf("submit %s: %d at %s, want 200 at %s… (%s)", form, p.Status, p.URL, path, f.text("#error"))
	}
	f.problems("submit " + form)
	return strings.TrimPrefix(u.Path, path)
}

// text is the visible text of the element sel selects, "" when none does.
func (f *former) text(sel string) string {
	f.t.Helper()
	s, err := browser.Eval[string](f.ctx, f.tab, fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText.trim()`, sel))
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// seqsShown is a JavaScript expression, true when every event of seqs is
// on the events page.
func seqsShown(seqs []int64) string {
	var sel []string
	for _, s := range seqs {
		sel = append(sel, fmt.Sprintf(`document.querySelector('#events li[data-seq="%d"]')`, s))
	}
	return strings.Join(sel, " && ")
}

type crawler struct {
	base string
	ctx  context.Context
}

// status loads path and returns its document's status.
func (c *crawler) status(t *testing.T, tab *browser.Tab, path string) int {
	t.Helper()
	p, err := tab.Open(c.ctx, c.base+path)
	if err != nil {
		t.Fatal(err)
	}
	return p.Status
}

// crawl visits the role's home, every link of its navigation and, from
// each list, the first item's own page (e.g. /leases → /leases/{id}),
// checking each page (see check).
func (c *crawler) crawl(t *testing.T, tab *browser.Tab, home string, forbidden []string) {
	if _, ok := c.check(t, tab, home, forbidden); !ok {
		t.FailNow()
	}
	nav, err := browser.Eval[[]string](c.ctx, tab, `Array.from(document.querySelectorAll("header nav a"), a => a.getAttribute("href"))`)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(nav, home) {
		t.Errorf("navigation %v has no link to %s", nav, home)
	}
	var visited []string
	seen := func(path string, charts int) {
		if charts > 0 {
			path += fmt.Sprintf(" (charts: %d)", charts)
		}
		visited = append(visited, path)
	}
	for _, path := range nav {
		if !strings.HasPrefix(path, "/") {
			t.Errorf("navigation link %q is not a path on this server", path)
			continue
		}
		charts, ok := c.check(t, tab, path, forbidden)
		if !ok {
			continue
		}
		seen(path, charts)
		item, err := browser.Eval[string](c.ctx, tab, fmt.Sprintf(`(document.querySelector('main a[href^="%s/"]') || {getAttribute: () => ""}).getAttribute("href")`, path))
		if err != nil {
			t.Fatal(err)
		}
		if item == "" {
			continue
		}
		if charts, ok := c.check(t, tab, item, forbidden); ok {
			seen(item, charts)
		}
	}
	t.Logf("visited %s", strings.Join(visited, ", "))
}

// check loads path and checks that it answers 200 with one <h1>, that its
// charts draw, that the browser reported no console error, uncaught
// exception or CSP violation, and that it shows none of forbidden nor a
// word for the owner's demand (for tenants). It returns the page's charts
// and whether it answered 200.
func (c *crawler) check(t *testing.T, tab *browser.Tab, path string, forbidden []string) (int, bool) {
	t.Helper()
	p, err := tab.Open(c.ctx, c.base+path)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != 200 {
		t.Errorf("GET %s: %d, want 200", path, p.Status)
		tab.Problems()
		return 0, false
	}
	if n, err := browser.Eval[int](c.ctx, tab, `document.querySelectorAll("h1").length`); err != nil || n != 1 {
		t.Errorf("%s: %d <h1> (%v), want 1", path, n, err)
	}
	if err := tab.WaitCharts(c.ctx, chartTimeout); err != nil {
		t.Errorf("%s: %v", path, err)
	}
	charts, err := browser.Eval[int](c.ctx, tab, `document.querySelectorAll(".chart").length`)
	if err != nil {
		t.Fatal(err)
	}
	if ps := tab.Problems(); len(ps) > 0 {
		t.Errorf("%s: the browser reported:\n%s", path, strings.Join(ps, "\n"))
	}
	if forbidden != nil {
		text, err := browser.Eval[string](c.ctx, tab, `document.body.innerText`)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range forbidden {
			if strings.Contains(text, s) {
				t.Errorf("%s shows %q, another tenant's", path, s)
			}
		}
		if m := ownerWords.FindString(text); m != "" {
			t.Errorf("%s shows %q: tenants never see the owner's demand", path, m)
		}
	}
	return charts, true
}

// importDemand gives each pool eight weeks of the owner's demand before
// t0, so that the pages that forecast it (sellable, the capacity chart's
// internal band) draw it.
func importDemand(t *testing.T, w *world) {
	t.Helper()
	ctx := t.Context()
	pools, err := w.eng.Pools(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	const hours = 8 * 7 * 24
	for i, p := range pools {
		g := float64(p.GPUs)
		pts, err := forecast.Synth{Start: t0.Add(-hours * time.Hour), Hours: hours, Seed: uint64(i + 1),
			Base: 0.4 * g, Daily: 0.05 * g, PeakHour: 15, Weekend: 0.05 * g,
			Noise: forecast.Noise{Dist: forecast.Normal, SD: 0.01 * g, AR: 0.8}}.Generate()
		if err != nil {
			t.Fatal(err)
		}
		samples := make([]demand.Sample, len(pts))
		for j, pt := range pts {
			samples[j] = demand.Sample{Pool: p.ID, Hour: pt.At, GPUs: min(max(int64(pt.GPUs+0.5), 0), int64(p.GPUs))}
		}
		if _, err := w.eng.ImportDemand(ctx, w.admin, samples); err != nil {
			t.Fatal(err)
		}
	}
}
