package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/clock"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/store/sqlite"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/web"
)

var t0 = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)

type world struct {
	srv     *httptest.Server
	eng     *engine.Engine
	admin   tenant.Principal
	keys    map[string]string
	invoice map[string]string // tenant → its September invoice
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	e, err := engine.New(engine.Config{Store: sqlite.OpenTest(t), Clock: clock.NewFake(t0)})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{eng: e, keys: map[string]string{}, invoice: map[string]string{}}
	if _, err := e.Bootstrap(ctx, func(s string) error { w.keys["operator"] = s; return nil }); err != nil {
		t.Fatal(err)
	}
	if w.admin, err = e.Authenticate(ctx, w.keys["operator"]); err != nil {
		t.Fatal(err)
	}
	spec, err := fleet.Generate("small-lab", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ApplyFleet(ctx, w.admin, spec, false); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"tenant-a", "tenant-b"} {
		if _, err := e.CreateTenant(ctx, w.admin, tenant.Tenant{ID: id}); err != nil {
			t.Fatal(err)
		}
		_, secret, err := e.CreateKey(ctx, w.admin, engine.KeyRequest{TenantID: id, Role: tenant.TenantViewer, Name: "web"})
		if err != nil {
			t.Fatal(err)
		}
		w.keys[id] = secret
		start := t0.Add(time.Duration(2+i) * time.Hour)
		if _, err := e.RequestLease(ctx, w.admin, id, lease.Request{Kind: lease.Reservation, Pool: "lab-1/H100-SXM", Start: start, End: start.Add(time.Hour), GPUs: 8}); err != nil {
			t.Fatal(err)
		}
	}
	run, err := e.RunInvoices(ctx, w.admin, t0)
	if err != nil || run.Drafts != 2 {
		t.Fatalf("invoice run %+v, %v", run, err)
	}
	for _, id := range run.Invoices {
		w.invoice[strings.TrimSuffix(strings.TrimPrefix(id, "inv-"), "-202609")] = id
	}
	d, err := web.New(web.Config{Engine: e})
	if err != nil {
		t.Fatal(err)
	}
	w.srv = httptest.NewServer(d)
	t.Cleanup(w.srv.Close)
	return w
}

// browser is a client with cookies that does not follow redirects.
func (w *world) browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, c *http.Client, u string) (int, string, http.Header) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (int, string, http.Header) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn signs c in with key and returns the session's CSRF token.
func (w *world) signIn(t *testing.T, c *http.Client, key string) string {
	t.Helper()
	_, body, _ := get(t, c, w.srv.URL+"/login")
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token in the sign-in form:\n%s", body)
	}
	code, _, h := post(t, c, w.srv.URL+"/login", url.Values{"csrf": {m[1]}, "key": {key}})
	if code != http.StatusSeeOther {
		t.Fatalf("sign in: %d", code)
	}
	if sc := h.Get("Set-Cookie"); !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") {
		t.Errorf("session cookie %q: want HttpOnly and SameSite=Strict", sc)
	}
	_, body, _ = get(t, c, w.srv.URL+"/leases")
	m = csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on a signed-in page")
	}
	return m[1]
}

func TestSignInAndRoles(t *testing.T) {
	w := newWorld(t)
	anon := w.browser(t)
	if code, _, h := get(t, anon, w.srv.URL+"/fleet"); code != http.StatusSeeOther || h.Get("Location") != "/login" {
		t.Errorf("anonymous /fleet: %d %s", code, h.Get("Location"))
	}
	// Sign-in without the form's token is refused (login CSRF).
	if code, _, _ := post(t, anon, w.srv.URL+"/login", url.Values{"key": {w.keys["operator"]}}); code != http.StatusForbidden {
		t.Errorf("sign in without CSRF: %d", code)
	}
	_, body, _ := get(t, anon, w.srv.URL+"/login")
	tok := csrfRE.FindStringSubmatch(body)[1]
	if code, body, _ := post(t, anon, w.srv.URL+"/login", url.Values{"csrf": {tok}, "key": {"nc_wrong"}}); code != http.StatusUnauthorized || !strings.Contains(body, `id="error"`) {
		t.Errorf("wrong key: %d", code)
	}

	op := w.browser(t)
	w.signIn(t, op, w.keys["operator"])
	tests := []struct {
		name, path string
		code       int
		want, not  []string
	}{
		{"fleet", "/fleet", 200, []string{`id="pools"`, "lab-1/H100-SXM", `id="domains"`}, nil},
		{"all leases", "/leases", 200, []string{"tenant-a", "tenant-b"}, nil},
		{"all invoices", "/invoices", 200, []string{w.invoice["tenant-a"], w.invoice["tenant-b"]}, nil},
		{"an invoice", "/invoices/" + w.invoice["tenant-b"], 200, []string{`id="lines"`, "Total"}, nil},
		{"css", "/static/style.css", 200, []string{"--accent"}, nil},
		{"capacity", "/capacity?pool=lab-1/H100-SXM&span=7d", 200, []string{`id="series"`, `"healthy":[`, "/static/uplot/uPlot.iife.min.js", "/static/capacity.js"}, nil},
		{"unknown pool", "/capacity?pool=nope/X", 404, nil, nil},
		{"chart library", "/static/uplot/uPlot.iife.min.js", 200, []string{"uPlot"}, nil},
	}
	for _, tt := range tests {
		code, body, _ := get(t, op, w.srv.URL+tt.path)
		if code != tt.code {
			t.Errorf("operator %s: %d, want %d", tt.name, code, tt.code)
		}
		for _, s := range tt.want {
			if !strings.Contains(body, s) {
				t.Errorf("operator %s: no %q", tt.name, s)
			}
		}
	}

	ten := w.browser(t)
	csrf := w.signIn(t, ten, w.keys["tenant-a"])
	for _, tt := range []struct {
		name, path string
		code       int
		want, not  []string
	}{
		{"home", "/", 303, nil, nil},
		{"fleet", "/fleet", 403, nil, nil},
		{"capacity", "/capacity", 403, nil, nil},
		{"own leases", "/leases", 200, []string{"tenant-a · tenant-viewer"}, []string{"tenant-b", "Fleet</a>"}},
		{"own invoices", "/invoices", 200, []string{w.invoice["tenant-a"]}, []string{w.invoice["tenant-b"]}},
		{"another's invoice", "/invoices/" + w.invoice["tenant-b"], 404, nil, nil},
	} {
		code, body, _ := get(t, ten, w.srv.URL+tt.path)
		if code != tt.code {
			t.Errorf("tenant %s: %d, want %d", tt.name, code, tt.code)
		}
		for _, s := range tt.want {
			if !strings.Contains(body, s) {
				t.Errorf("tenant %s: no %q", tt.name, s)
			}
		}
		for _, s := range tt.not {
			if strings.Contains(body, s) {
				t.Errorf("tenant %s: shows %q", tt.name, s)
			}
		}
	}
	// Sign-out needs the session's CSRF token.
	if code, _, _ := post(t, ten, w.srv.URL+"/logout", url.Values{}); code != http.StatusForbidden {
		t.Errorf("sign out without CSRF: %d", code)
	}
	if code, _, _ := post(t, ten, w.srv.URL+"/logout", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther {
		t.Errorf("sign out: %d", code)
	}
	if code, _, _ := get(t, ten, w.srv.URL+"/leases"); code != http.StatusSeeOther {
		t.Errorf("after sign out: %d, want a redirect to sign in", code)
	}
}

// A revoked key ends the sessions it opened at their next request.
func TestRevokedKeyEndsSession(t *testing.T) {
	w := newWorld(t)
	_, secret, err := w.eng.CreateKey(context.Background(), w.admin, engine.KeyRequest{TenantID: "tenant-a", Role: tenant.TenantAdmin, Name: "temp"})
	if err != nil {
		t.Fatal(err)
	}
	c := w.browser(t)
	w.signIn(t, c, secret)
	if _, err := w.eng.RevokeKey(context.Background(), w.admin, tenant.KeyID(tenant.HashSecret(secret))); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get(t, c, w.srv.URL+"/leases"); code != http.StatusSeeOther {
		t.Errorf("after revoking the key: %d, want a redirect to sign in", code)
	}
}

// With Secure set (served over HTTPS), cookies are Secure and pages ask
// for HTTPS from then on.
func TestSecureCookies(t *testing.T) {
	w := newWorld(t)
	d, err := web.New(web.Config{Engine: w.eng, Secure: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	defer srv.Close()
	c := w.browser(t)
	_, body, h := get(t, c, srv.URL+"/login")
	if sc := h.Get("Set-Cookie"); !strings.Contains(sc, "; Secure") {
		t.Errorf("sign-in cookie %q: want Secure", sc)
	}
	if h.Get("Strict-Transport-Security") == "" {
		t.Error("no Strict-Transport-Security header")
	}
	tok := csrfRE.FindStringSubmatch(body)[1]
	// The cookie jar holds Secure cookies back from http://, so the token
	// goes in by hand, as the browser would send it over HTTPS.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(url.Values{"csrf": {tok}, "key": {w.keys["operator"]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "nc_login", Value: tok})
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if sc := resp.Header.Get("Set-Cookie"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(sc, "nc_session=") || !strings.Contains(sc, "; Secure") {
		t.Errorf("sign in: %d, session cookie %q: want Secure", resp.StatusCode, sc)
	}
}

// TestInvoiceList: an operator's list is bounded, newest first, with a
// notice when there are more, and a month narrows it.
func TestInvoiceList(t *testing.T) {
	w := newWorld(t)
	web.SetInvoiceRows(w.srv.Config.Handler.(*web.Server), 1)
	op := w.browser(t)
	w.signIn(t, op, w.keys["operator"])
	for _, tt := range []struct {
		name, path string
		code       int
		want, not  []string
	}{
		{"bounded", "/invoices", 200, []string{w.invoice["tenant-a"], `id="more"`, "pick a month"}, []string{w.invoice["tenant-b"]}},
		{"a month", "/invoices?month=2026-09", 200, []string{w.invoice["tenant-a"], `id="more"`, `value="2026-09"`}, []string{w.invoice["tenant-b"]}},
		{"an empty month", "/invoices?month=2020-01", 200, []string{"No invoices for 2020-01"}, []string{`id="more"`}},
		{"a bad month", "/invoices?month=September", 400, []string{`id="error"`, "month", "must be a month as YYYY-MM"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body, _ := get(t, op, w.srv.URL+tt.path)
			if code != tt.code {
				t.Fatalf("%d, want %d\n%s", code, tt.code, body)
			}
			for _, s := range tt.want {
				if !strings.Contains(body, s) {
					t.Errorf("no %q", s)
				}
			}
			for _, s := range tt.not {
				if strings.Contains(body, s) {
					t.Errorf("%q shown", s)
				}
			}
		})
	}
}
