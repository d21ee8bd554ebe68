package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/neocloud/neocloud/internal/store/sqlite"
	"github.com/neocloud/neocloud/internal/tenant"
)

// FuzzRequestDecoding sends arbitrary bodies to the mutating routes: the
// answer is never a 5xx, and every refusal is a problem document with a
// detail.
func FuzzRequestDecoding(f *testing.F) {
	fx := newFixture(f, sqlite.OpenTest(f))
	lab, err := json.Marshal(smallLab(f))
	if err != nil {
		f.Fatal(err)
	}
	routes := []string{"/v1/tenants", "/v1/keys", "/v1/fleet/apply?dry_run=true"}
	seeds := []string{
		`{"id":"acme","display_name":"Acme"}`,
		`{"role":"tenant-admin","tenant":"tenant-a","name":"ci"}`,
		string(lab),
		`{"id":`, `[]`, `null`, `{"id":"a","id":"b"}`, `{"role":"operator-admin","tenant":""}`,
		`{"version":1,"sites":[{"name":"s","pods":[{"name":"p{n}","count":1e9}]}]}`,
		`{"version":1,"sites":[{"name":"s","facility_mw":-1,"pue":0,"timezone":"Mars/Olympus"}]}`,
		"\xff\xfe", `{"id":"\u0000"}`,
	}
	for i, s := range seeds {
		for r := range routes {
			f.Add(uint8(r+i), []byte(s))
		}
	}
	admin := fx.keys["operator-admin"]
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		path := routes[int(route)%len(routes)]
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+admin)
		rec := httptest.NewRecorder()
		fx.srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q = %d: %s", path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var p problemBody
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Detail == "" {
				t.Fatalf("POST %s %q = %d with a body that is not a problem document: %s", path, body, rec.Code, rec.Body)
			}
		}
	})
}

// FuzzTelemetryPush sends arbitrary telemetry bodies, as CSV and as JSON:
// never a 5xx, and a refusal is a problem document with a detail.
func FuzzTelemetryPush(f *testing.F) {
	fx := newFixture(f, sqlite.OpenTest(f))
	seeds := []string{
		"# batch_id=b1 agent=a\nnode,gpu,time_ms,util_pct,energy_mj\nlab-1-h100-l1-n01,0,1788220800000,50,1000\n",
		"# batch_id=b2\nnode,gpu,time_ms\nnope,0,1\n",
		"# batch_id=b3\nnode,gpu,time_ms\nlab-1-h100-l1-n01,99,1\n",
		`{"batch_id":"j1","readings":[{"node":"lab-1-h100-l1-n01","gpu":1,"time_ms":1788220800000,"util_pct":5}]}`,
		`{"batch_id":"j2","readings":[{"node":"lab-1-h100-l1-n01","gpu":-1,"time_ms":-1,"util_pct":500,"energy_mj":-3}]}`,
		`{"batch_id":"","readings":null}`, `[]`, "#", "\xff",
	}
	for i, s := range seeds {
		f.Add(i%2 == 0, []byte(s))
	}
	agent := fx.newKey("", tenant.OperatorAgent)
	f.Fuzz(func(t *testing.T, csv bool, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/telemetry", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", map[bool]string{true: "text/csv", false: "application/json"}[csv])
		req.Header.Set("Authorization", "Bearer "+agent)
		rec := httptest.NewRecorder()
		fx.srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("push %q = %d: %s", body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var p problemBody
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Detail == "" {
				t.Fatalf("push %q = %d with a body that is not a problem document: %s", body, rec.Code, rec.Body)
			}
		}
	})
}
