package web_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/demand"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/event"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/web"
)

const h100 = "lab-1/H100-SXM"

// opsWorld is newWorld plus what the operator pages show: thirty days of
// the owner's demand in h100 before t0 (100 GPUs plus the hour of the
// day), tenant-a's reservation of 16 GPUs from now for four hours, and an
// operator-viewer key.
func opsWorld(t *testing.T) (*world, *web.Server) {
	t.Helper()
	w := newWorld(t)
	ctx := context.Background()
	var samples []demand.Sample
	for h := t0.Add(-30 * 24 * time.Hour); h.Before(t0); h = h.Add(time.Hour) {
		samples = append(samples, demand.Sample{Pool: h100, Hour: h, GPUs: int64(100 + h.Hour())})
	}
	if _, err := w.eng.ImportDemand(ctx, w.admin, samples); err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.RequestLease(ctx, w.admin, "tenant-a", lease.Request{Kind: lease.Reservation, Pool: h100, Start: t0, End: t0.Add(4 * time.Hour), GPUs: 16}); err != nil {
		t.Fatal(err)
	}
	_, secret, err := w.eng.CreateKey(ctx, w.admin, engine.KeyRequest{Role: tenant.OperatorViewer, Name: "viewer"})
	if err != nil {
		t.Fatal(err)
	}
	w.keys["viewer"] = secret
	d := w.srv.Config.Handler.(*web.Server)
	// Open event streams would keep the test server from closing.
	t.Cleanup(d.CloseStreams)
	return w, d
}

var postForms = regexp.MustCompile(`<form[^>]*method="post"`)

func TestOperatorPages(t *testing.T) {
	w, _ := opsWorld(t)
	ctx := context.Background()
	power, err := w.eng.PowerByDomain(ctx, w.admin)
	if err != nil {
		t.Fatal(err)
	}
	var rowA engine.DomainPower
	for _, d := range power {
		if d.Name == "row-a" {
			rowA = d
		}
	}
	if rowA.AllocatedNodes != 2 {
		t.Fatalf("row-a holds %d nodes now, want 2 (tenant-a's 16 GPUs)", rowA.AllocatedNodes)
	}
	past := url.Values{"pool": {h100}, "from": {t0.Add(-48 * time.Hour).Format(time.RFC3339)}, "to": {t0.Add(48 * time.Hour).Format(time.RFC3339)}}.Encode()
	pages := []struct {
		name, path string
		code       int
		want       []string
		forms      int // POST forms an operator-admin sees (sign-out included)
	}{
		{"fleet", "/fleet", 200, []string{`id="pools"`, `id="domains"`, `data-domain="lab-1/row-a"`,
			fmt.Sprintf(`value="%d"`, int64(rowA.Allocated)/1000), fmt.Sprintf(`max="%d"`, int64(rowA.Budget)/1000), `href="/static/ops.css"`,
			`<tr data-pool="lab-1/H100-SXM">`, `<td class="n held">2</td>`, `id="held-gpus">16<`}, 1},
		{"capacity now", "/capacity?pool=" + h100 + "&span=7d", 200, []string{`id="series"`, `"healthy":[256,`, `"holdback":[`,
			`class="chart cap"`, `<optgroup label="lab-1">`, `<option value="lab-1/H100-SXM" selected>`, "168 steps of 1h", `id="earlier"`}, 1},
		{"capacity past", "/capacity?" + past, 200, []string{`"internal":[100,101,102,`, "96 steps of 1h", "node health is not recorded"}, 1},
		{"capacity 5y", "/capacity?pool=" + h100 + "&span=5y", 200, []string{"1825 steps of 1d"}, 1},
		{"capacity default pool", "/capacity", 200, []string{"Capacity · lab-1/GB200"}, 1},
		{"capacity bad from", "/capacity?pool=" + h100 + "&from=yesterday", 400, []string{`id="error"`, "from: must be an RFC 3339 time"}, 1},
		{"capacity too long ago", "/capacity?pool=" + h100 + "&from=2019-01-01&to=2019-02-01", 400, []string{`id="error"`, "from: must not be before"}, 1},
		{"capacity unknown pool", "/capacity?pool=lab-1/X", 404, []string{`id="error"`, "pool", "lab-1/X", "must be a pool of the fleet", "lab-1/H100-SXM, "}, 1},
		{"sellable unknown pool", "/sellable?pool=lab-1/X", 404, []string{`id="error"`, "pool", "lab-1/X", "must be a pool of the fleet", "lab-1/H100-SXM, "}, 1},
		{"sellable", "/sellable?pool=" + h100 + "&months=6", 200, []string{`id="sellable"`, `data-source="sellable-data"`, "<td>2026-09</td>", "<td>2027-02</td>", "720 hours"}, 1},
		{"sellable without history", "/sellable?pool=lab-1/H200-SXM", 200, []string{`id="notice"`, "needs a demand history"}, 1},
		{"sellable bad months", "/sellable?pool=" + h100 + "&months=99", 400, []string{`id="error"`, "months: must be a whole number from 1 to 36"}, 1},
		{"sellable bad quantile", "/sellable?pool=" + h100 + "&quantile=2", 400, []string{`id="error"`, "quantile:"}, 1},
		{"revenue", "/revenue?from=2026-08&to=2026-12", 200, []string{`id="revenue"`, `data-month="2026-09"`, `data-month="2026-12"`, `id="revenue-total"`, `data-source="revenue-data"`}, 1},
		{"revenue bad month", "/revenue?from=August", 400, []string{`id="error"`, "from: must be a month"}, 1},
		{"revenue backwards", "/revenue?from=2026-09&to=2026-01", 400, []string{`id="error"`, "to: must not be before from"}, 1},
		{"events", "/events", 200, []string{`<ol id="events"`, `data-type="lease.created"`, "tenant-a", "tenant-b", `src="/static/events.js"`}, 1},
		{"tenants", "/tenants", 200, []string{`id="tenants"`, `data-tenant="tenant-a"`, `<a href="/tenants/tenant-a">`, `id="create-tenant"`}, 2},
		{"tenant", "/tenants/tenant-a", 200, []string{`id="keys"`, "tenant-viewer", `id="live-leases">2<`, `href="/leases?tenant=tenant-a"`, `id="create-key"`}, 3},
		{"unknown tenant", "/tenants/nobody", 404, nil, 0},
	}
	op, viewer := w.browser(t), w.browser(t)
	w.signIn(t, op, w.keys["operator"])
	w.signIn(t, viewer, w.keys["viewer"])
	for _, tt := range pages {
		t.Run(tt.name, func(t *testing.T) {
			for who, c := range map[string]*http.Client{"operator-admin": op, "operator-viewer": viewer} {
				code, body, _ := get(t, c, w.srv.URL+tt.path)
				if code != tt.code {
					t.Errorf("%s: %d, want %d\n%s", who, code, tt.code, body)
					continue
				}
				for _, s := range tt.want {
					if strings.Contains(s, "create-") && who == "operator-viewer" {
						continue
					}
					if !strings.Contains(body, s) {
						t.Errorf("%s: no %q", who, s)
					}
				}
				forms := len(postForms.FindAllString(body, -1))
				if want := tt.forms; who == "operator-viewer" && want > 0 {
					if forms != 1 {
						t.Errorf("operator-viewer sees %d POST forms, want only sign-out", forms)
					}
				} else if forms != want {
					t.Errorf("%s sees %d POST forms, want %d", who, forms, want)
				}
				if tt.code == 200 && (strings.Contains(body, "style=") || strings.Contains(body, "<style")) {
					t.Errorf("%s: inline style (the CSP forbids it)", who)
				}
			}
		})
	}

	// Tenants: 403 on every operator page; /events shows only their own.
	ten := w.browser(t)
	w.signIn(t, ten, w.keys["tenant-a"])
	for _, path := range []string{"/fleet", "/capacity", "/capacity?pool=" + h100, "/sellable", "/revenue", "/tenants", "/tenants/tenant-a"} {
		if code, _, _ := get(t, ten, w.srv.URL+path); code != http.StatusForbidden {
			t.Errorf("tenant-a GET %s: %d, want 403", path, code)
		}
	}
	code, body, _ := get(t, ten, w.srv.URL+"/events")
	if code != 200 || !strings.Contains(body, `data-type="lease.created"`) || !strings.Contains(body, "tenant-a") {
		t.Errorf("tenant-a /events: %d, want its own lease events", code)
	}
	for _, s := range []string{"tenant-b", "node.", "holdback", "internal"} {
		if strings.Contains(body, s) {
			t.Errorf("tenant-a /events shows %q", s)
		}
	}
}

// The tenant and key forms: CSRF, roles, bad input, and what a created or
// revoked key does.
func TestTenantForms(t *testing.T) {
	w, _ := opsWorld(t)
	ctx := context.Background()
	op, viewer, ten := w.browser(t), w.browser(t), w.browser(t)
	csrf := w.signIn(t, op, w.keys["operator"])
	viewerCSRF := w.signIn(t, viewer, w.keys["viewer"])
	tenCSRF := w.signIn(t, ten, w.keys["tenant-a"])
	keysOf := func(id string) []tenant.Key {
		ks, err := w.eng.Keys(ctx, w.admin, id, true)
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}
	tenants := func() int {
		ts, err := w.eng.Tenants(ctx, w.admin)
		if err != nil {
			t.Fatal(err)
		}
		return len(ts)
	}
	victim := keysOf("tenant-a")[0].ID
	revoke := "/tenants/tenant-a/keys/" + victim + "/revoke"

	refused := []struct {
		name   string
		c      *http.Client
		path   string
		form   url.Values
		code   int
		naming string
	}{
		{"no csrf", op, "/tenants", url.Values{"id": {"lab-x"}}, 403, ""},
		{"wrong csrf", op, "/tenants", url.Values{"id": {"lab-x"}, "csrf": {"x" + csrf}}, 403, ""},
		{"key without csrf", op, "/tenants/tenant-a/keys", url.Values{"role": {"tenant-viewer"}}, 403, ""},
		{"revoke without csrf", op, revoke, url.Values{}, 403, ""},
		{"viewer creates a tenant", viewer, "/tenants", url.Values{"id": {"lab-x"}, "csrf": {viewerCSRF}}, 403, ""},
		{"viewer creates a key", viewer, "/tenants/tenant-a/keys", url.Values{"role": {"tenant-viewer"}, "csrf": {viewerCSRF}}, 403, ""},
		{"viewer revokes", viewer, revoke, url.Values{"csrf": {viewerCSRF}}, 403, ""},
		{"tenant creates a tenant", ten, "/tenants", url.Values{"id": {"lab-x"}, "csrf": {tenCSRF}}, 403, ""},
		{"tenant creates a key", ten, "/tenants/tenant-a/keys", url.Values{"role": {"tenant-viewer"}, "csrf": {tenCSRF}}, 403, ""},
		{"tenant revokes", ten, revoke, url.Values{"csrf": {tenCSRF}}, 403, ""},
		{"bad tenant id", op, "/tenants", url.Values{"id": {"Lab X!"}, "csrf": {csrf}}, 400, "id: must be 1-63 lowercase"},
		{"taken tenant id", op, "/tenants", url.Values{"id": {"tenant-b"}, "csrf": {csrf}}, 409, "tenant-b"},
		{"bad role", op, "/tenants/tenant-a/keys", url.Values{"role": {"superuser"}, "csrf": {csrf}}, 400, "role: must be one of"},
		{"operator role", op, "/tenants/tenant-a/keys", url.Values{"role": {"operator-admin"}, "csrf": {csrf}}, 400, "tenant: must be empty for operator roles"},
		{"long key name", op, "/tenants/tenant-a/keys", url.Values{"role": {"tenant-viewer"}, "name": {strings.Repeat("k", 101)}, "csrf": {csrf}}, 400, "name: must be at most 100"},
		{"key of an unknown tenant", op, "/tenants/nobody/keys", url.Values{"role": {"tenant-viewer"}, "csrf": {csrf}}, 404, ""},
		{"another tenant's key", op, "/tenants/tenant-b/keys/" + victim + "/revoke", url.Values{"csrf": {csrf}}, 404, ""},
	}
	before, keysBefore := tenants(), len(keysOf(""))
	for _, tt := range refused {
		code, body, _ := post(t, tt.c, w.srv.URL+tt.path, tt.form)
		if code != tt.code {
			t.Errorf("%s: %d, want %d", tt.name, code, tt.code)
		}
		if tt.naming != "" && (!strings.Contains(body, `id="error"`) || !strings.Contains(body, tt.naming)) {
			t.Errorf("%s: the page does not say %q:\n%s", tt.name, tt.naming, body)
		}
		if tt.code == 400 && strings.Contains(body, `id="create-`) && tt.form.Get("id") != "" && !strings.Contains(body, `value="`+tt.form.Get("id")+`"`) {
			t.Errorf("%s: the form lost its input", tt.name)
		}
	}
	if n, k := tenants(), len(keysOf("")); n != before || k != keysBefore || !keysOf("tenant-a")[0].Active() {
		t.Errorf("refused forms changed something: %d tenants (was %d), %d keys (was %d)", n, before, k, keysBefore)
	}

	// A new tenant, then a key for it: its secret is shown once, and signs in.
	code, _, h := post(t, op, w.srv.URL+"/tenants", url.Values{"id": {"lab-x"}, "display_name": {"Lab X"}, "csrf": {csrf}})
	if code != http.StatusSeeOther || h.Get("Location") != "/tenants/lab-x" {
		t.Fatalf("create tenant: %d → %s", code, h.Get("Location"))
	}
	code, body, _ := post(t, op, w.srv.URL+"/tenants/lab-x/keys", url.Values{"role": {"tenant-admin"}, "name": {"ci"}, "csrf": {csrf}})
	secret := regexp.MustCompile(`<code id="secret-value">(nc_[A-Za-z0-9]+)</code>`).FindStringSubmatch(body)
	if code != http.StatusOK || secret == nil || !strings.Contains(body, "not be shown again") {
		t.Fatalf("create key: %d, no secret shown with its warning:\n%s", code, body)
	}
	if _, again, _ := get(t, op, w.srv.URL+"/tenants/lab-x"); strings.Contains(again, secret[1]) || strings.Contains(again, `id="secret"`) {
		t.Error("the secret is shown again")
	}
	labx := w.browser(t)
	w.signIn(t, labx, secret[1])
	if code, body, _ := get(t, labx, w.srv.URL+"/leases"); code != 200 || !strings.Contains(body, "lab-x · tenant-admin") {
		t.Errorf("signed in with the new key: %d", code)
	}

	// Revoking it ends its session.
	keys := keysOf("lab-x")
	if len(keys) != 1 {
		t.Fatalf("lab-x keys: %v", keys)
	}
	code, _, h = post(t, op, w.srv.URL+"/tenants/lab-x/keys/"+keys[0].ID+"/revoke", url.Values{"csrf": {csrf}})
	if code != http.StatusSeeOther || h.Get("Location") != "/tenants/lab-x" {
		t.Fatalf("revoke: %d → %s", code, h.Get("Location"))
	}
	if code, _, _ := get(t, labx, w.srv.URL+"/leases"); code != http.StatusSeeOther {
		t.Errorf("after its key was revoked: %d, want a redirect to sign in", code)
	}
	if _, body, _ := get(t, op, w.srv.URL+"/tenants/lab-x"); !strings.Contains(body, "revoked ") || strings.Contains(body, "/revoke") {
		t.Errorf("the tenant page does not show the key revoked (or still offers to revoke it)")
	}
}

// sse is one server-sent event, or a comment (Comment set).
type sse struct {
	ID, Event, Data, Comment string
}

// stream opens path as an event stream with c's cookies and returns its
// events as they arrive (the channel closes at the stream's end), and a
// function that hangs up.
func stream(t *testing.T, c *http.Client, u string, header http.Header) (<-chan sse, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan sse, 100)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var e sse
		for sc.Scan() {
			line := sc.Text()
			switch k, v, _ := strings.Cut(line, ": "); {
			case line == "":
				if e != (sse{}) {
					out <- e
				}
				e = sse{}
			case strings.HasPrefix(line, ":"):
				e.Comment = strings.TrimPrefix(line, ": ")
			case k == "id":
				e.ID = v
			case k == "event":
				e.Event = v
			case k == "data":
				e.Data = v
			}
		}
	}()
	return out, cancel
}

// next returns the next event of ch that is not a comment; false when the
// stream ended or nothing came within a few seconds.
func next(ch <-chan sse) (sse, bool) {
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return sse{}, false
			}
			if e.Comment == "" || e.Data != "" {
				return e, true
			}
		case <-timeout:
			return sse{}, false
		}
	}
}

// ended reports whether ch ends (after any events) within a few seconds.
func ended(ch <-chan sse) bool {
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

func TestEventStream(t *testing.T) {
	w, d := opsWorld(t)
	ctx := context.Background()
	web.SetStreamTiming(d, 50*time.Millisecond, 20*time.Millisecond)
	last, err := w.eng.LastEventSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	op, a, b := w.browser(t), w.browser(t), w.browser(t)
	w.signIn(t, op, w.keys["operator"])
	w.signIn(t, a, w.keys["tenant-a"])
	w.signIn(t, b, w.keys["tenant-b"])
	after := w.srv.URL + "/events/stream?after=" + strconv.FormatInt(last, 10)
	opEvents, hangUp := stream(t, op, after, nil)
	bEvents, _ := stream(t, b, after, nil)
	// Heartbeats come while nothing happens.
	if e := <-opEvents; e.Comment != "neocloud events" {
		t.Fatalf("first line %+v", e)
	}
	if e := <-opEvents; e.Comment != "heartbeat" {
		t.Errorf("an idle stream sent %+v, want a heartbeat", e)
	}

	// Events committed after connecting arrive, each to whom it concerns.
	req := func(id string, h int) string {
		res, err := w.eng.RequestLease(ctx, w.admin, id, lease.Request{Kind: lease.Reservation, Pool: h100, Start: t0.Add(time.Duration(h) * time.Hour), End: t0.Add(time.Duration(h+1) * time.Hour), GPUs: 8})
		if err != nil {
			t.Fatal(err)
		}
		return res.Lease.ID
	}
	ofA, ofB := req("tenant-a", 10), req("tenant-b", 11)
	for _, want := range []string{ofA, ofB} {
		e, ok := next(opEvents)
		if !ok || !strings.Contains(e.Data, `"type":"lease.created"`) || !strings.Contains(e.Data, want) {
			t.Errorf("operator stream: %+v, want lease.created of %s", e, want)
		}
	}
	if e, ok := next(bEvents); !ok || !strings.Contains(e.Data, ofB) {
		t.Errorf("tenant-b stream: %+v, want only its own lease %s first", e, ofB)
	} else if seq, _ := strconv.ParseInt(e.ID, 10, 64); seq <= last {
		t.Errorf("event id %q, want a sequence number after %d", e.ID, last)
	}

	// Resuming after an event's ID (as EventSource does) gives what came
	// after it.
	first, _ := w.eng.Events(ctx, w.admin, last, 1)
	resumed, _ := stream(t, a, w.srv.URL+"/events/stream", http.Header{"Last-Event-ID": {strconv.FormatInt(first[0].Seq-1, 10)}})
	if e, ok := next(resumed); !ok || e.ID != strconv.FormatInt(first[0].Seq, 10) {
		t.Errorf("resumed stream: %+v, want event %d first", e, first[0].Seq)
	}

	// The client going ends its stream on the server.
	hangUp()
	deadline := time.Now().Add(5 * time.Second)
	for web.OpenStreams(d) != 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := web.OpenStreams(d); n != 2 {
		t.Errorf("%d streams open after the operator's hung up, want 2", n)
	}

	// Revoking tenant-b's key ends its stream with an end event.
	if _, err := w.eng.RevokeKey(ctx, w.admin, tenant.KeyID(tenant.HashSecret(w.keys["tenant-b"]))); err != nil {
		t.Fatal(err)
	}
	if e, ok := next(bEvents); !ok || e.Event != "end" {
		t.Errorf("after revoking the key: %+v, want an end event", e)
	}
	if !ended(bEvents) {
		t.Error("the revoked key's stream did not end")
	}

	// Shutting down ends the rest.
	d.CloseStreams()
	if !ended(resumed) {
		t.Error("CloseStreams left a stream open")
	}

	// No session, no stream.
	if code, _, _ := get(t, w.browser(t), after); code != http.StatusUnauthorized {
		t.Errorf("anonymous stream: %d, want 401", code)
	}
}

// countingEngine counts the event reads of the dashboard's streams.
type countingEngine struct {
	web.Engine
	reads atomic.Int64
}

func (c *countingEngine) Events(ctx context.Context, p tenant.Principal, after int64, limit int) ([]event.Event, error) {
	c.reads.Add(1)
	return c.Engine.Events(ctx, p, after, limit)
}

// TestEventStreamCoalesces: a burst of commits wakes a stream once per
// minRead, not once per commit, and every event still arrives in order.
func TestEventStreamCoalesces(t *testing.T) {
	base, _ := opsWorld(t)
	ctx := context.Background()
	ce := &countingEngine{Engine: base.eng}
	d, err := web.New(web.Config{Engine: ce})
	if err != nil {
		t.Fatal(err)
	}
	w := *base
	w.srv = httptest.NewServer(d)
	t.Cleanup(w.srv.Close)
	t.Cleanup(d.CloseStreams)
	web.SetStreamMinRead(d, 300*time.Millisecond)
	last, err := w.eng.LastEventSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	op := w.browser(t)
	w.signIn(t, op, w.keys["operator"])
	evs, _ := stream(t, op, w.srv.URL+"/events/stream?after="+strconv.FormatInt(last, 10), nil)
	if e := <-evs; e.Comment != "neocloud events" {
		t.Fatalf("first line %+v", e)
	}
	before := ce.reads.Load()
	const burst = 12
	var ids []string
	for i := range burst {
		res, err := w.eng.RequestLease(ctx, w.admin, "tenant-a", lease.Request{Kind: lease.Reservation, Pool: h100,
			Start: t0.Add(time.Duration(20+i) * time.Hour), End: t0.Add(time.Duration(21+i) * time.Hour), GPUs: 8})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Lease.ID)
	}
	for _, want := range ids {
		e, ok := next(evs)
		if !ok || !strings.Contains(e.Data, want) {
			t.Fatalf("stream: %+v, want lease.created of %s", e, want)
		}
	}
	if reads := ce.reads.Load() - before; reads >= burst/2 {
		t.Errorf("%d reads for %d commits, want them coalesced", reads, burst)
	}
}
