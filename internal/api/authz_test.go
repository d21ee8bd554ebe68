package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/store/dbtest"
)

// The callers of the matrix: one key per role, tenant roles of tenant-a.
var callers = []string{"operator-admin", "operator-viewer", "tenant-admin@tenant-a", "tenant-viewer@tenant-a"}

// req builds one request for a caller; own says whether it targets the
// caller's own objects (tenant-a's) or a foreign tenant's (tenant-b's).
type req struct {
	method, path string
	body         any
}

type matrixEntry struct {
	// build returns the request; foreign requests target tenant-b.
	build func(f *fixture, foreign bool) req
	// hasObject says whether the route names a tenant's object, so that a
	// foreign variant is tried.
	hasObject bool
	// want is the status per caller for its own objects; the foreign
	// variant must answer 404 to tenant callers that pass the role check
	// and the same as want to operators.
	want map[string]int
}

func allow(codes ...int) map[string]int {
	m := map[string]int{}
	for i, c := range callers {
		m[c] = codes[i]
	}
	return m
}

func simple(method, path string) func(*fixture, bool) req {
	return func(*fixture, bool) req { return req{method: method, path: path} }
}

func owner(foreign bool) string {
	if foreign {
		return "tenant-b"
	}
	return "tenant-a"
}

// matrix lists every route. A route missing here fails the test: adding a
// route means deciding who may call it.
func matrix() map[string]matrixEntry {
	return map[string]matrixEntry{
		"GET /healthz":          {build: simple("GET", "/healthz"), want: allow(200, 200, 200, 200)},
		"GET /openapi.json":     {build: simple("GET", "/openapi.json"), want: allow(200, 200, 200, 200)},
		"GET /openapi.yaml":     {build: simple("GET", "/openapi.yaml"), want: allow(200, 200, 200, 200)},
		"GET /openapi-3.0.json": {build: simple("GET", "/openapi-3.0.json"), want: allow(200, 200, 200, 200)},
		"GET /openapi-3.0.yaml": {build: simple("GET", "/openapi-3.0.yaml"), want: allow(200, 200, 200, 200)},
		"GET /metrics":          {build: simple("GET", "/metrics"), want: allow(200, 200, 403, 403)},
		"GET /v1/me":            {build: simple("GET", "/v1/me"), want: allow(200, 200, 200, 200)},
		"GET /v1/sites":         {build: simple("GET", "/v1/sites"), want: allow(200, 200, 200, 200)},
		"GET /v1/pools":         {build: simple("GET", "/v1/pools"), want: allow(200, 200, 200, 200)},
		"GET /v1/nodes":         {build: simple("GET", "/v1/nodes"), want: allow(200, 200, 403, 403)},
		"GET /v1/fleet":         {build: simple("GET", "/v1/fleet"), want: allow(200, 200, 403, 403)},
		"POST /v1/fleet/apply": {build: func(f *fixture, _ bool) req {
			return req{method: "POST", path: "/v1/fleet/apply?dry_run=true", body: smallLab(f.t)}
		}, want: allow(200, 403, 403, 403)},
		"GET /v1/tenants": {build: simple("GET", "/v1/tenants"), want: allow(200, 200, 200, 200)},
		"POST /v1/tenants": {build: func(f *fixture, _ bool) req {
			return req{method: "POST", path: "/v1/tenants", body: map[string]string{"id": fmt.Sprintf("t-%d", f.seq.Add(1))}}
		}, want: allow(201, 403, 403, 403)},
		"GET /v1/tenants/{tenant}": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "GET", path: "/v1/tenants/" + owner(foreign)}
		}, want: allow(200, 200, 200, 200)},
		"GET /v1/keys": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "GET", path: "/v1/keys?tenant=" + owner(foreign)}
		}, want: allow(200, 200, 200, 403)},
		"POST /v1/keys": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "POST", path: "/v1/keys", body: map[string]string{"tenant": owner(foreign), "role": "tenant-viewer"}}
		}, want: allow(201, 403, 201, 403)},
		"DELETE /v1/keys/{key}": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "DELETE", path: "/v1/keys/" + f.keyID(owner(foreign))}
		}, want: allow(200, 403, 200, 403)},
		"GET /v1/audit": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "GET", path: "/v1/audit?tenant=" + owner(foreign)}
		}, want: allow(200, 200, 200, 403)},

		"POST /v1/quotes": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "POST", path: "/v1/quotes", body: f.leaseBody(owner(foreign))}
		}, want: allow(200, 200, 200, 200)},
		"POST /v1/leases": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "POST", path: "/v1/leases", body: f.leaseBody(owner(foreign))}
		}, want: allow(201, 403, 201, 403)},
		"GET /v1/leases": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "GET", path: "/v1/leases?tenant=" + owner(foreign)}
		}, want: allow(200, 200, 200, 200)},
		"GET /v1/leases/{lease}": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "GET", path: "/v1/leases/" + f.leaseID(owner(foreign))}
		}, want: allow(200, 200, 200, 200)},
		"GET /v1/leases/{lease}/allocations": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "GET", path: "/v1/leases/" + f.leaseID(owner(foreign)) + "/allocations"}
		}, want: allow(200, 200, 200, 200)},
		"POST /v1/leases/{lease}/cancel": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "POST", path: "/v1/leases/" + f.leaseID(owner(foreign)) + "/cancel", body: map[string]string{}}
		}, want: allow(200, 403, 200, 403)},
		"GET /v1/capacity": {build: simple("GET", "/v1/capacity?pool=lab-1/H100-SXM&from="+t0.Format(time.RFC3339)+"&to="+t0.Add(48*time.Hour).Format(time.RFC3339)+"&step=24h"),
			want: allow(200, 200, 403, 403)},
		"GET /v1/holdback": {build: simple("GET", "/v1/holdback?pool=lab-1/H100-SXM"), want: allow(200, 200, 403, 403)},
		"POST /v1/holdback": {build: func(f *fixture, _ bool) req {
			return req{method: "POST", path: "/v1/holdback", body: map[string]any{"pool": "lab-1/H100-SXM", "steps": []any{}}}
		}, want: allow(200, 403, 403, 403)},
		"POST /v1/demand": {build: func(f *fixture, _ bool) req {
			return req{method: "POST", path: "/v1/demand", body: map[string]any{"samples": []any{
				map[string]any{"pool": "lab-1/H100-SXM", "hour": t0.Add(-time.Hour).Format(time.RFC3339), "gpus": 8}}}}
		}, want: allow(200, 403, 403, 403)},
		// No demand history in the fixture: operators get the 422 that says so.
		"POST /v1/holdback/plan": {build: func(f *fixture, _ bool) req {
			return req{method: "POST", path: "/v1/holdback/plan", body: map[string]any{"pool": "lab-1/H100-SXM"}}
		}, want: allow(422, 403, 403, 403)},
		"GET /v1/demand": {build: simple("GET", "/v1/demand?pool=lab-1/H100-SXM"), want: allow(200, 200, 403, 403)},
		// No demand history in the fixture: operators get the 422 that says so.
		"GET /v1/sellable": {build: simple("GET", "/v1/sellable?pool=lab-1/H100-SXM"), want: allow(422, 422, 403, 403)},
		"POST /v1/nodes/{node}/state": {build: func(f *fixture, _ bool) req {
			return req{method: "POST", path: "/v1/nodes/lab-1-h100-l1-n01/state", body: map[string]string{"state": "available"}}
		}, want: allow(200, 403, 403, 403)},

		"GET /v1/spot/prices": {build: simple("GET", "/v1/spot/prices?pool=lab-1/H100-SXM"), want: allow(200, 200, 200, 200)},
		"POST /v1/internal-use": {build: func(f *fixture, _ bool) req {
			return req{method: "POST", path: "/v1/internal-use", body: map[string]any{"pool": "lab-1/H100-SXM", "gpus": 0}}
		}, want: allow(200, 403, 403, 403)},
		// The node is not being wiped: the operator's confirmation is a 409.
		"POST /v1/nodes/{node}/sanitized": {build: simple("POST", "/v1/nodes/lab-1-h100-l1-n01/sanitized"), want: allow(409, 403, 403, 403)},

		// Metering: the agent pushes (an empty batch here); tenants read
		// their own usage and SLA.
		"POST /v1/telemetry": {build: func(f *fixture, _ bool) req {
			return req{method: "POST", path: "/v1/telemetry", body: map[string]any{"batch_id": fmt.Sprintf("b-%d", f.seq.Add(1)), "readings": []any{}}}
		}, want: allow(200, 403, 403, 403)},
		"GET /v1/usage": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "GET", path: "/v1/usage?tenant=" + owner(foreign) + "&from=" + t0.Format(time.RFC3339) + "&to=" + t0.Add(24*time.Hour).Format(time.RFC3339)}
		}, want: allow(200, 200, 200, 200)},
		"GET /v1/sla": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "GET", path: "/v1/sla?lease=" + f.leaseID(owner(foreign))}
		}, want: allow(200, 200, 200, 200)},
		"GET /v1/health/findings": {build: simple("GET", "/v1/health/findings"), want: allow(200, 200, 403, 403)},

		// Billing: each request gets an invoice of its own month.
		"PUT /v1/leases/{lease}/plan": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "PUT", path: "/v1/leases/" + f.leaseID(owner(foreign)) + "/plan",
				body: map[string]any{"kind": "reservation", "reservation": map[string]string{"rate": "2.50", "billing": "arrears"}}}
		}, want: allow(200, 403, 403, 403)},
		"GET /v1/leases/{lease}/plan": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "GET", path: "/v1/leases/" + f.leaseID(owner(foreign)) + "/plan"}
		}, want: allow(200, 200, 200, 200)},
		"POST /v1/invoices/run": {build: func(f *fixture, _ bool) req {
			return req{method: "POST", path: "/v1/invoices/run", body: map[string]string{"month": t0.Format("2006-01")}}
		}, want: allow(200, 403, 403, 403)},
		"GET /v1/invoices": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "GET", path: "/v1/invoices?tenant=" + owner(foreign)}
		}, want: allow(200, 200, 200, 200)},
		"GET /v1/invoices/{invoice}": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "GET", path: "/v1/invoices/" + f.readInvoiceID(owner(foreign))}
		}, want: allow(200, 200, 200, 200)},
		"POST /v1/invoices/{invoice}/finalize": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "POST", path: "/v1/invoices/" + f.invoiceID(owner(foreign), "") + "/finalize"}
		}, want: allow(200, 403, 403, 403)},
		"POST /v1/invoices/{invoice}/pay": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "POST", path: "/v1/invoices/" + f.invoiceID(owner(foreign), "finalize") + "/pay"}
		}, want: allow(200, 403, 403, 403)},
		"POST /v1/invoices/{invoice}/void": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "POST", path: "/v1/invoices/" + f.invoiceID(owner(foreign), "") + "/void"}
		}, want: allow(200, 403, 403, 403)},
		"POST /v1/invoices/{invoice}/credit-notes": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "POST", path: "/v1/invoices/" + f.invoiceID(owner(foreign), "finalize") + "/credit-notes",
				body: map[string]any{"reason": "goodwill", "lines": []map[string]string{{"description": "goodwill", "amount": "1.00"}}}}
		}, want: allow(200, 403, 403, 403)},
		"GET /v1/invoices/{invoice}/credit-notes": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "GET", path: "/v1/invoices/" + f.readInvoiceID(owner(foreign)) + "/credit-notes"}
		}, want: allow(200, 200, 200, 200)},
		"GET /v1/revenue": {build: simple("GET", "/v1/revenue?from="+t0.Format("2006-01")+"&to="+t0.Format("2006-01")), want: allow(200, 200, 403, 403)},

		// The stream itself is tested in events_test.go; follow=false
		// answers at once. Every caller reads its own scope.
		"GET /v1/events": {build: simple("GET", "/v1/events?follow=false"), want: allow(200, 200, 200, 200)},
		"GET /v1/webhooks": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "GET", path: "/v1/webhooks?tenant=" + owner(foreign)}
		}, want: allow(200, 200, 200, 403)},
		"POST /v1/webhooks": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "POST", path: "/v1/webhooks", body: map[string]string{"tenant": owner(foreign), "url": "https://hooks.example/n"}}
		}, want: allow(201, 403, 201, 403)},
		"DELETE /v1/webhooks/{webhook}": {hasObject: true, build: func(f *fixture, foreign bool) req {
			return req{method: "DELETE", path: "/v1/webhooks/" + f.webhookID(owner(foreign))}
		}, want: allow(200, 403, 200, 403)},
	}
}

// leaseBody is a one-node, one-hour reservation for tenantID, each call
// an hour later than the last so that they never compete.
func (f *fixture) leaseBody(tenantID string) map[string]any {
	start := t0.Add(time.Duration(1+f.seq.Add(1)) * time.Hour)
	return map[string]any{"tenant": tenantID, "kind": "reservation", "pool": "lab-1/H100-SXM",
		"start": start.Format(time.RFC3339), "end": start.Add(time.Hour).Format(time.RFC3339), "gpus": 8}
}

// leaseID admits a lease for tenantID (as the operator) and returns its ID.
func (f *fixture) leaseID(tenantID string) string {
	f.t.Helper()
	code, body := f.do(f.keys["operator-admin"], "POST", "/v1/leases", f.leaseBody(tenantID))
	if code != http.StatusCreated {
		f.t.Fatalf("create lease for %s: %d %s", tenantID, code, body)
	}
	var l struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &l); err != nil {
		f.t.Fatal(err)
	}
	return l.ID
}

// TestAuthorizationMatrix walks every registered route × role × own and
// foreign objects, plus requests without a key, with a malformed key and
// with a revoked key. Every refusal must leave a denial in the audit log.
func TestAuthorizationMatrix(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		m := matrix()
		seen := map[string]bool{}
		for _, r := range f.srv.Routes() {
			key := r.Method + " " + r.Path
			seen[key] = true
			e, ok := m[key]
			if !ok {
				t.Errorf("route %s (permission %q) has no entry in the authorization matrix", key, r.Perm)
				continue
			}
			public := r.Perm == "public"
			for _, caller := range callers {
				for _, foreign := range []bool{false, true} {
					if foreign && !e.hasObject {
						continue
					}
					want := e.want[caller]
					tenantCaller := strings.HasPrefix(caller, "tenant-")
					if foreign && tenantCaller && want/100 == 2 {
						want = http.StatusNotFound // another tenant's object answers like a missing one
					}
					rq := e.build(f, foreign)
					before := f.lastAuditSeq()
					code, body := f.do(f.keys[caller], rq.method, rq.path, rq.body)
					if code != want {
						t.Errorf("%s as %s (foreign=%v): %d, want %d: %s", key, caller, foreign, code, want, body)
					}
					if (code == 403 || code == 404) && f.lastAuditSeq() == before {
						t.Errorf("%s as %s (foreign=%v): refused with %d but no audit entry", key, caller, foreign, code)
					}
				}
			}
			// No key, a malformed key, a well-formed unknown key, a revoked key.
			// (Time passes so that the anonymous audit rate never folds
			// these four into a count.)
			f.clk.Advance(time.Minute)
			revoked := f.newKey("tenant-a", "tenant-admin")
			if _, err := f.eng.RevokeKey(t.Context(), f.admin, keyIDOf(revoked)); err != nil {
				t.Fatal(err)
			}
			for name, secret := range map[string]string{"none": "", "malformed": "hunter2", "unknown": "nc_" + strings.Repeat("a", 43), "revoked": revoked} {
				rq := e.build(f, false)
				before := f.lastAuditSeq()
				code, body := f.do(secret, rq.method, rq.path, rq.body)
				switch {
				case public && code/100 != 2:
					t.Errorf("%s with %s key: %d, want 2xx (public): %s", key, name, code, body)
				case !public && code != http.StatusUnauthorized:
					t.Errorf("%s with %s key: %d, want 401: %s", key, name, code, body)
				case !public && f.lastAuditSeq() == before:
					t.Errorf("%s with %s key: 401 without an audit entry", key, name)
				}
			}
		}
		for key := range m {
			if !seen[key] {
				t.Errorf("matrix entry %s matches no registered route", key)
			}
		}
		// Every operation in the OpenAPI document was registered through
		// register, and so declares a permission.
		for path, item := range f.srv.OpenAPI().Paths {
			for method, op := range map[string]*huma.Operation{"GET": item.Get, "POST": item.Post, "PUT": item.Put, "PATCH": item.Patch, "DELETE": item.Delete} {
				if op != nil && !seen[method+" "+path] {
					t.Errorf("OpenAPI operation %s %s is not in Routes()", method, path)
				}
			}
		}
	})
}

// invoiceID makes a draft invoice of tenantID for a month of its own (a
// one-node reservation of an hour in it, an invoice run), then applies
// verb ("finalize") if given, and returns its ID.
func (f *fixture) invoiceID(tenantID, verb string) string {
	f.t.Helper()
	month := t0.AddDate(0, int(f.months.Add(1)), 0)
	start := month.Add(time.Hour)
	code, body := f.do(f.keys["operator-admin"], "POST", "/v1/leases", map[string]any{"tenant": tenantID, "kind": "reservation",
		"pool": "lab-1/H100-SXM", "start": start.Format(time.RFC3339), "end": start.Add(time.Hour).Format(time.RFC3339), "gpus": 8})
	if code != http.StatusCreated {
		f.t.Fatalf("lease for %s: %d %s", tenantID, code, body)
	}
	if code, body := f.do(f.keys["operator-admin"], "POST", "/v1/invoices/run", map[string]string{"month": month.Format("2006-01")}); code != http.StatusOK {
		f.t.Fatalf("invoice run: %d %s", code, body)
	}
	id := "inv-" + tenantID + "-" + month.Format("200601")
	if verb != "" {
		if code, body := f.do(f.keys["operator-admin"], "POST", "/v1/invoices/"+id+"/"+verb, nil); code != http.StatusOK {
			f.t.Fatalf("%s %s: %d %s", verb, id, code, body)
		}
	}
	return id
}

// readInvoiceID returns an invoice of tenantID for requests that do not
// change it: the same one each time.
func (f *fixture) readInvoiceID(tenantID string) string {
	f.t.Helper()
	f.invMu.Lock()
	defer f.invMu.Unlock()
	if f.readInvoices == nil {
		f.readInvoices = map[string]string{}
	}
	if id, ok := f.readInvoices[tenantID]; ok {
		return id
	}
	id := f.invoiceID(tenantID, "")
	f.readInvoices[tenantID] = id
	return id
}
