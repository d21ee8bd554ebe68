package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/api"
	"github.com/neocloud/neocloud/internal/clock"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/store/dbtest"
	"github.com/neocloud/neocloud/internal/store/sqlite"
	"github.com/neocloud/neocloud/internal/tenant"
)

var update = flag.Bool("update", false, "rewrite golden files")

var t0 = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)

// fixture is a server over a real store with a small fleet, two tenants
// and a key of every role.
type fixture struct {
	t     testing.TB
	st    engine.Store
	eng   *engine.Engine
	srv   *api.Server
	clk   *clock.Fake
	logs  *bytes.Buffer
	keys  map[string]string // "operator-admin", "tenant-admin@tenant-a", ... → secret
	seq   atomic.Int64
	admin tenant.Principal
	// months numbers the months after t0's that billing tests take, each
	// its own.
	months       atomic.Int64
	invMu        sync.Mutex
	readInvoices map[string]string // tenant → an invoice for read-only requests
}

func newFixture(t testing.TB, st engine.Store) *fixture {
	t.Helper()
	f := &fixture{t: t, st: st, clk: clock.NewFake(t0), logs: &bytes.Buffer{}, keys: map[string]string{}}
	logger := slog.New(slog.NewTextHandler(&syncWriter{w: f.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var err error
	f.eng, err = engine.New(engine.Config{Store: st, Clock: f.clk, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = api.New(api.Config{Engine: f.eng, Logger: logger})
	ctx := context.Background()
	var secret string
	if _, err := f.eng.Bootstrap(ctx, func(s string) error { secret = s; return nil }); err != nil {
		t.Fatal(err)
	}
	f.keys["operator-admin"] = secret
	f.admin, err = f.eng.Authenticate(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := fleet.Generate("small-lab", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.ApplyFleet(ctx, f.admin, spec, false); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"tenant-a", "tenant-b"} {
		if _, err := f.eng.CreateTenant(ctx, f.admin, tenant.Tenant{ID: id, DisplayName: strings.ToUpper(id)}); err != nil {
			t.Fatal(err)
		}
	}
	f.keys["operator-viewer"] = f.newKey("", tenant.OperatorViewer)
	for _, id := range []string{"tenant-a", "tenant-b"} {
		f.keys["tenant-admin@"+id] = f.newKey(id, tenant.TenantAdmin)
		f.keys["tenant-viewer@"+id] = f.newKey(id, tenant.TenantViewer)
	}
	return f
}

func (f *fixture) newKey(tenantID string, role tenant.Role) string {
	f.t.Helper()
	_, secret, err := f.eng.CreateKey(context.Background(), f.admin, engine.KeyRequest{TenantID: tenantID, Role: role, Name: "test"})
	if err != nil {
		f.t.Fatal(err)
	}
	return secret
}

func (f *fixture) keyID(tenantID string) string {
	f.t.Helper()
	secret := f.newKey(tenantID, tenant.TenantViewer)
	return tenant.KeyID(tenant.HashSecret(secret))
}

// do serves one request in-process and returns the status and body.
func (f *fixture) do(secret, method, path string, body any) (int, []byte) {
	f.t.Helper()
	code, b, _ := f.doFull(secret, method, path, body, nil)
	return code, b
}

func (f *fixture) doHeader(secret, method, path string, body any, header map[string]string) (int, []byte) {
	f.t.Helper()
	code, b, _ := f.doFull(secret, method, path, body, header)
	return code, b
}

// doFull serves one request with extra headers and returns the status,
// body and response headers.
func (f *fixture) doFull(secret, method, path string, body any, header map[string]string) (int, []byte, http.Header) {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req := httptest.NewRequest(method, path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes(), rec.Header()
}

func (f *fixture) lastAuditSeq() int64 {
	f.t.Helper()
	es, err := f.st.Audit(context.Background(), engine.AuditFilter{Limit: 1})
	if err != nil {
		f.t.Fatal(err)
	}
	if len(es) == 0 {
		return 0
	}
	return es[0].Seq
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestOpenAPIGolden(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		code, got := f.do("", http.MethodGet, "/openapi.json", nil)
		if code != http.StatusOK {
			t.Fatalf("GET /openapi.json = %d", code)
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, got, "", "  "); err != nil {
			t.Fatal(err)
		}
		pretty.WriteByte('\n')
		const golden = "testdata/openapi.json"
		if *update {
			if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./internal/api -run OpenAPIGolden -update)", err)
		}
		if diff := cmp.Diff(string(want), pretty.String()); diff != "" {
			t.Errorf("openapi.json differs from %s (-want +got); rerun with -update if intended:\n%s", golden, diff)
		}
	})
}

func TestHealthz(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		if code, body := f.do("", http.MethodGet, "/healthz", nil); code != http.StatusOK || !strings.Contains(string(body), "ok") {
			t.Errorf("GET /healthz = %d %s", code, body)
		}
	})
}

// problemBody is the RFC 9457 document the API answers errors with.
type problemBody struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Errors []struct {
		Message  string `json:"message"`
		Location string `json:"location"`
	} `json:"errors"`
}

func decodeProblem(t *testing.T, body []byte) problemBody {
	t.Helper()
	var p problemBody
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem body %q: %v", body, err)
	}
	return p
}

// TestBadInput sends bad requests and checks each gets a 4xx problem that
// names the field and the rule, and that nothing changed.
func TestBadInput(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		admin := f.keys["operator-admin"]
		smallLab, err := fleet.Generate("small-lab", 0)
		if err != nil {
			t.Fatal(err)
		}
		js, err := json.Marshal(smallLab)
		if err != nil {
			t.Fatal(err)
		}
		// A fleet file as a generic map, to break one field at a time.
		mutate := func(fn func(m map[string]any)) map[string]any {
			var m map[string]any
			if err := json.Unmarshal(js, &m); err != nil {
				t.Fatal(err)
			}
			fn(m)
			return m
		}
		site0 := func(m map[string]any) map[string]any { return m["sites"].([]any)[0].(map[string]any) }
		pod0 := func(m map[string]any) map[string]any { return site0(m)["pods"].([]any)[0].(map[string]any) }

		tests := []struct {
			name       string
			method     string
			path       string
			body       any
			wantStatus int
			wantLoc    string // a problem detail's location must contain this
			wantMsg    string // and its message (or the detail) this
		}{
			{"malformed JSON", "POST", "/v1/tenants", `{"id": "x",`, 400, "", "unexpected"},
			{"unknown field", "POST", "/v1/tenants", `{"id":"ok-id","colour":"red"}`, 422, "body.colour", "unexpected property"},
			{"wrong type", "POST", "/v1/tenants", `{"id": 42}`, 422, "body.id", "expected string"},
			{"field name in another case", "POST", "/v1/tenants", `{"id":"okay-1","ID":"other-2"}`, 422, "body", "body.ID: unexpected property"},
			{"duplicate key", "POST", "/v1/tenants", `{"id":"okay-1","id":"other-2"}`, 400, "body", "appears twice"},
			{"role in another case", "POST", "/v1/keys", `{"tenant":"tenant-a","role":"tenant-viewer","Role":"operator-admin"}`, 422, "body", "body.Role: unexpected property"},
			{"fleet field in another case", "POST", "/v1/fleet/apply", `{"version":1,"Sites":[]}`, 422, "body", "body.Sites"},
			{"missing required", "POST", "/v1/tenants", `{"display_name":"x"}`, 422, "body", "id"},
			{"bad slug", "POST", "/v1/tenants", `{"id":"Not A Slug"}`, 422, "body.id", "lowercase"},
			{"unknown role", "POST", "/v1/keys", `{"role":"superuser"}`, 422, "body.role", "expected value to be one of"},
			{"operator role with tenant", "POST", "/v1/keys", `{"role":"operator-admin","tenant":"tenant-a"}`, 422, "body.tenant", "must be empty for operator roles"},
			{"tenant role without tenant", "POST", "/v1/keys", `{"role":"tenant-admin"}`, 422, "body.tenant", "required"},
			{"key for unknown tenant", "POST", "/v1/keys", `{"role":"tenant-admin","tenant":"nope"}`, 422, "body.tenant", "existing tenant"},
			{"body too large", "POST", "/v1/tenants", `{"id":"x","display_name":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "", "too large"},
			{"NUL in a path ID", "GET", "/v1/tenants/a%00b", nil, 422, "path.tenant", "pattern"},
			{"invalid UTF-8 in a path ID", "GET", "/v1/tenants/%ff", nil, 422, "path.tenant", "pattern"},
			{"NUL in a filter", "GET", "/v1/nodes?site=%00", nil, 422, "query.site", "pattern"},
			{"invalid UTF-8 cursor", "GET", "/v1/nodes?cursor=%ff", nil, 422, "query.cursor", "pattern"},
			{"pool without a model", "GET", "/v1/nodes?pool=H100-SXM", nil, 422, "query.pool", "pattern"},
			{"NUL in an audit filter", "GET", "/v1/audit?tenant=%00", nil, 422, "query.tenant", "pattern"},
			{"NUL in a key name", "POST", "/v1/keys", `{"role":"operator-viewer","name":"a\u0000b"}`, 422, "body.name", "control characters"},
			{"NUL in a display name", "POST", "/v1/tenants", `{"id":"nul-co","display_name":"a\u0000b"}`, 422, "body.display_name", "control characters"},
			{"malformed key ID", "DELETE", "/v1/keys/x%00y", nil, 422, "path.key", "pattern"},
			{"bad node state filter", "GET", "/v1/nodes?state=on-fire", nil, 422, "query.state", "one of"},
			{"limit out of range", "GET", "/v1/nodes?limit=0", nil, 422, "query.limit", ">= 1"},
			{"fleet unknown GPU model", "POST", "/v1/fleet/apply", mutate(func(m map[string]any) {
				pod0(m)["leaf_groups"].([]any)[0].(map[string]any)["nodes"].([]any)[0].(map[string]any)["model"] = "TPU-v5"
			}), 422, "body.sites[0].pods[0].leaf_groups[0].nodes[0].model", "unknown GPU model"},
			{"fleet unknown power domain", "POST", "/v1/fleet/apply", mutate(func(m map[string]any) {
				pod0(m)["power_domain"] = "hall-zz"
			}), 422, "power_domain", "power domain"},
			{"fleet unknown field", "POST", "/v1/fleet/apply", mutate(func(m map[string]any) {
				site0(m)["colour"] = "blue"
			}), 422, "body.sites[0].colour", "unexpected property"},
			{"fleet wrong type", "POST", "/v1/fleet/apply", mutate(func(m map[string]any) {
				pod0(m)["count"] = "twelve"
			}), 422, "body.sites[0].pods[0].count", "expected"},
			{"fleet duplicate node names", "POST", "/v1/fleet/apply", mutate(func(m map[string]any) {
				pods := site0(m)["pods"].([]any)
				site0(m)["pods"] = append(pods, pods[0])
			}), 422, "body.sites[0].pods[", "duplicate"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := fleetState(t, f)
				code, body := f.do(admin, tc.method, tc.path, tc.body)
				if code != tc.wantStatus {
					t.Fatalf("%s %s = %d, want %d: %s", tc.method, tc.path, code, tc.wantStatus, body)
				}
				p := decodeProblem(t, body)
				found := tc.wantLoc == "" && strings.Contains(strings.ToLower(p.Detail), tc.wantMsg)
				for _, e := range p.Errors {
					if strings.Contains(e.Location, tc.wantLoc) && (strings.Contains(e.Message, tc.wantMsg) || strings.Contains(p.Detail, tc.wantMsg)) {
						found = true
					}
				}
				if !found {
					t.Errorf("no problem detail with location ~%q and message ~%q in %s", tc.wantLoc, tc.wantMsg, body)
				}
				if after := fleetState(t, f); after != before {
					t.Errorf("state changed by a refused request:\nbefore %s\nafter  %s", before, after)
				}
			})
		}
	})
}

// fleetState is a fingerprint of what a refused request must not change:
// nodes, tenants and keys.
func fleetState(t *testing.T, f *fixture) string {
	t.Helper()
	ctx := context.Background()
	nodes, err := f.st.AllNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := f.st.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := f.st.Keys(ctx, engine.KeyFilter{IncludeRevoked: true})
	if err != nil {
		t.Fatal(err)
	}
	revoked := 0
	for _, k := range ks {
		if !k.Active() {
			revoked++
		}
	}
	return fmt.Sprintf("nodes=%d tenants=%d keys=%d revoked=%d", len(nodes), len(ts), len(ks), revoked)
}

// TestRetireAllocatedNodeRefused applies a fleet file without a node that
// holds an allocation: 409 naming the node, nothing changes.
func TestRetireAllocatedNodeRefused(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		ctx := context.Background()
		nodes, err := st.AllNodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		victim, ord := nodes[0].Name, nodes[0].Ordinal
		err = st.Update(ctx, func(tx engine.Tx) error {
			return tx.InsertAllocations(ctx, []lease.Allocation{{ID: "al-1", LeaseID: "ls-1", TenantID: "tenant-a",
				NodeFrom: ord, NodeTo: ord + 1, Start: t0.Add(24 * time.Hour), End: t0.Add(48 * time.Hour)}})
		})
		if err != nil {
			t.Fatal(err)
		}
		spec, err := fleet.Generate("small-lab", 0)
		if err != nil {
			t.Fatal(err)
		}
		spec.Sites[0].Absent = append(spec.Sites[0].Absent, victim)
		before := fleetState(t, f)
		code, body := f.do(f.keys["operator-admin"], http.MethodPost, "/v1/fleet/apply", spec)
		if code != http.StatusConflict || !strings.Contains(string(body), victim) {
			t.Fatalf("apply without %s = %d %s, want 409 naming it", victim, code, body)
		}
		if after := fleetState(t, f); after != before {
			t.Errorf("refused apply changed state: %s -> %s", before, after)
		}
		// Once the allocation has ended, the same file retires the node.
		f.clk.Set(t0.Add(48 * time.Hour))
		code, body = f.do(f.keys["operator-admin"], http.MethodPost, "/v1/fleet/apply", spec)
		if code != http.StatusOK {
			t.Fatalf("apply after the allocation ended = %d %s", code, body)
		}
		var res api.ApplyResult
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{victim}, res.RetiredNodes); diff != "" {
			t.Errorf("retired (-want +got):\n%s", diff)
		}
	})
}

// TestNoSecretAtRest checks that no API key appears in plaintext in the
// database or the logs, after keys were issued, used and refused.
func TestNoSecretAtRest(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		var secrets []string
		for _, s := range f.keys {
			secrets = append(secrets, s)
			f.do(s, http.MethodGet, "/v1/me", nil)
			f.do(s, http.MethodGet, "/v1/nodes", nil)
		}
		code, body := f.doHeader(f.keys["operator-admin"], http.MethodPost, "/v1/keys", map[string]string{"role": "tenant-admin", "tenant": "tenant-b"},
			map[string]string{api.IdempotencyHeader: "create-key-1"})
		if code != http.StatusCreated {
			t.Fatalf("create key = %d %s", code, body)
		}
		var created api.KeyCreated
		if err := json.Unmarshal(body, &created); err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, created.Secret)
		// Slips that put a secret where an ID goes: revoking by the secret
		// works (and stores only the ID); a secret as a tenant ID is refused.
		leaked := f.newKey("tenant-a", tenant.TenantViewer)
		secrets = append(secrets, leaked)
		if code, body := f.do(f.keys["tenant-admin@tenant-a"], http.MethodDelete, "/v1/keys/"+leaked, nil); code != http.StatusOK {
			t.Errorf("revoke by secret = %d %s", code, body)
		}
		if _, err := f.eng.Authenticate(context.Background(), leaked); err == nil {
			t.Error("a key revoked by its secret still authenticates")
		}
		f.do(f.keys["tenant-admin@tenant-a"], http.MethodGet, "/v1/tenants/"+leaked, nil)
		f.do(f.keys["tenant-admin@tenant-a"], http.MethodDelete, "/v1/keys/"+f.keys["tenant-admin@tenant-b"], nil)
		// A made-up well-formed key that fails must not be logged either.
		bogus := "nc_" + strings.Repeat("Z", 43)
		secrets = append(secrets, bogus)
		f.do(bogus, http.MethodGet, "/v1/me", nil)

		dump := dbtest.Dump(t, st)
		for _, s := range secrets {
			if strings.Contains(dump, s) {
				t.Errorf("the database holds a key in plaintext")
			}
			if strings.Contains(f.logs.String(), s) {
				t.Errorf("the log holds a key in plaintext")
			}
			// Nor any long piece of it.
			if strings.Contains(dump, s[3:20]) || strings.Contains(f.logs.String(), s[3:20]) {
				t.Errorf("the database or log holds part of a key")
			}
		}
		if len(dump) < 1000 {
			t.Fatalf("database dump is suspiciously small (%d bytes)", len(dump))
		}
	})
}

func smallLab(t testing.TB) *fleet.Spec {
	t.Helper()
	spec, err := fleet.Generate("small-lab", 0)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func keyIDOf(secret string) string { return tenant.KeyID(tenant.HashSecret(secret)) }

// TestIdempotencyKey replays mutations: the same request with the same
// Idempotency-Key answers the first response and changes nothing more; the
// same key with another request is refused; a key creation's replay never
// shows (or stores) the secret.
func TestIdempotencyKey(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		admin := f.keys["operator-admin"]
		hdr := map[string]string{api.IdempotencyHeader: "req-1"}
		create := map[string]string{"id": "idem-co", "display_name": "Idem"}
		code1, body1, h1 := f.doFull(admin, http.MethodPost, "/v1/tenants", create, hdr)
		if code1 != http.StatusCreated || h1.Get("Idempotent-Replayed") != "" {
			t.Fatalf("first create = %d %s", code1, body1)
		}
		before := fleetState(t, f)
		code2, body2, h2 := f.doFull(admin, http.MethodPost, "/v1/tenants", create, hdr)
		if code2 != code1 || string(body2) != string(body1) || h2.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay = %d %s (replayed=%q), want %d %s", code2, body2, h2.Get("Idempotent-Replayed"), code1, body1)
		}
		if after := fleetState(t, f); after != before {
			t.Errorf("replay changed state: %s -> %s", before, after)
		}
		code3, body3 := f.doHeader(admin, http.MethodPost, "/v1/tenants", map[string]string{"id": "other-co"}, hdr)
		if code3 != http.StatusUnprocessableEntity || !strings.Contains(string(body3), "Idempotency-Key") {
			t.Errorf("same key, other body = %d %s, want 422 naming the header", code3, body3)
		}
		// Another caller's identical key is its own.
		code4, body4 := f.doHeader(f.keys["operator-viewer"], http.MethodPost, "/v1/tenants", create, hdr)
		if code4 != http.StatusForbidden {
			t.Errorf("viewer with the admin's idempotency key = %d %s, want its own answer (403)", code4, body4)
		}
		// A bad header is named.
		code5, body5 := f.doHeader(admin, http.MethodPost, "/v1/tenants", create, map[string]string{api.IdempotencyHeader: "has space"})
		if code5 != http.StatusBadRequest || !strings.Contains(string(body5), "header.Idempotency-Key") {
			t.Errorf("bad header = %d %s", code5, body5)
		}
		// Key creation: the replay withholds the secret, and one key exists.
		khdr := map[string]string{api.IdempotencyHeader: "key-1"}
		kreq := map[string]string{"role": "tenant-viewer", "tenant": "idem-co"}
		_, kb1 := f.doHeader(admin, http.MethodPost, "/v1/keys", kreq, khdr)
		_, kb2 := f.doHeader(admin, http.MethodPost, "/v1/keys", kreq, khdr)
		var k1, k2 api.KeyCreated
		if err := json.Unmarshal(kb1, &k1); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(kb2, &k2); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(k1.Secret, "nc_") || strings.HasPrefix(k2.Secret, "nc_") || k1.ID != k2.ID {
			t.Errorf("key replay: first %s/%q, replay %s/%q; want the same ID and a withheld secret", k1.ID, k1.Secret[:3], k2.ID, k2.Secret)
		}
		keys, err := st.Keys(context.Background(), engine.KeyFilter{TenantID: "idem-co"})
		if err != nil || len(keys) != 1 {
			t.Errorf("idem-co has %d keys (%v), want 1", len(keys), err)
		}
		// A revoked key gets no replay: it is refused like any request.
		short := f.newKey("", tenant.OperatorAdmin)
		rhdr := map[string]string{api.IdempotencyHeader: "before-revoke"}
		if code, body := f.doHeader(short, http.MethodPost, "/v1/tenants", map[string]string{"id": "rev-co"}, rhdr); code != http.StatusCreated {
			t.Fatalf("create = %d %s", code, body)
		}
		if _, err := f.eng.RevokeKey(context.Background(), f.admin, keyIDOf(short)); err != nil {
			t.Fatal(err)
		}
		if code, body := f.doHeader(short, http.MethodPost, "/v1/tenants", map[string]string{"id": "rev-co"}, rhdr); code != http.StatusUnauthorized {
			t.Errorf("replay with a revoked key = %d %s, want 401", code, body)
		}
	})
}

// TestTenantSeesCatalogNotState: a tenant sees pools (what it can ask for)
// without the owner's per-state node counts.
func TestTenantSeesCatalogNotState(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		for caller, wantState := range map[string]bool{"operator-viewer": true, "tenant-viewer@tenant-a": false} {
			code, body := f.do(f.keys[caller], http.MethodGet, "/v1/pools", nil)
			if code != http.StatusOK {
				t.Fatalf("%s: GET /v1/pools = %d %s", caller, code, body)
			}
			var pools []api.Pool
			if err := json.Unmarshal(body, &pools); err != nil {
				t.Fatal(err)
			}
			if len(pools) == 0 {
				t.Fatalf("%s sees no pools", caller)
			}
			for _, p := range pools {
				if (len(p.NodesByState) > 0) != wantState || p.GPUs == 0 {
					t.Errorf("%s sees pool %s with %d GPUs and states %v", caller, p.ID, p.GPUs, p.NodesByState)
				}
			}
		}
	})
}

// TestAnonymousRefusalsBounded: requests without a valid key are audited
// one by one up to a rate; beyond it they are counted, and the next audited
// refusal carries the count — nothing is lost, and nobody can grow the log
// without bound.
func TestAnonymousRefusalsBounded(t *testing.T) {
	st := sqlite.OpenTest(t)
	f := newFixture(t, st)
	before := f.lastAuditSeq()
	for range 150 {
		if code, _ := f.do("", http.MethodGet, "/v1/nodes", nil); code != http.StatusUnauthorized {
			t.Fatalf("no key = %d", code)
		}
	}
	if got := f.lastAuditSeq() - before; got != 100 {
		t.Errorf("%d refusals audited one by one, want the burst of 100", got)
	}
	f.clk.Advance(time.Second)
	f.do("", http.MethodGet, "/v1/nodes", nil)
	es, err := st.Audit(context.Background(), engine.AuditFilter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(es[0].Detail, "and 50 earlier refusals") {
		t.Errorf("next audited refusal = %q, want the 50 folded in", es[0].Detail)
	}
	// A valid key's refusals are always audited one by one.
	before = f.lastAuditSeq()
	for range 150 {
		f.do(f.keys["tenant-viewer@tenant-a"], http.MethodGet, "/v1/nodes", nil)
	}
	if got := f.lastAuditSeq() - before; got != 150 {
		t.Errorf("%d of 150 refusals of a valid key audited", got)
	}
}
