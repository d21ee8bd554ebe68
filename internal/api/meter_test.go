package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/api"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/store/dbtest"
	"github.com/neocloud/neocloud/internal/tenant"
)

// TestTelemetryOverHTTP: the agent pushes CSV; a tenant reads its usage
// (JSON and CSV) and SLA, and nothing of another tenant's; bad pushes are
// 400s naming the field; a replayed batch changes nothing.
func TestTelemetryOverHTTP(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		agent := f.newKey("", tenant.OperatorAgent)
		pool := "lab-1/H100-SXM"
		start := t0.Add(time.Hour)
		code, body := f.do(f.keys["tenant-admin@tenant-a"], "POST", "/v1/leases", map[string]any{
			"kind": "reservation", "pool": pool, "gpus": 8, "start": start, "end": start.Add(time.Hour)})
		var l api.LeaseCreated
		if code != http.StatusCreated || json.Unmarshal(body, &l) != nil {
			t.Fatalf("lease: %d %s", code, body)
		}
		node := l.Allocations[0].Nodes[0]
		f.clk.Set(start.Add(2 * time.Hour))

		b := meter.Batch{ID: "agent-1-0001", Agent: "agent-1"}
		for ts := start; ts.Before(start.Add(time.Hour)); ts = ts.Add(10 * time.Second) {
			for g := range 8 {
				b.Readings = append(b.Readings, meter.Reading{Node: node, GPU: g, Time: ts, UtilPct: 90, EnergyMJ: ts.Sub(t0).Milliseconds()})
			}
		}
		var csvBody bytes.Buffer
		if err := meter.EncodeCSV(&csvBody, b); err != nil {
			t.Fatal(err)
		}
		push := func(key, contentType, data string) (int, api.TelemetryResult, []byte) {
			code, body := f.doHeader(key, "POST", "/v1/telemetry", data, map[string]string{"Content-Type": contentType})
			var r api.TelemetryResult
			_ = json.Unmarshal(body, &r)
			return code, r, body
		}
		code, r, body := push(agent, "text/csv", csvBody.String())
		if code != http.StatusOK || r.Accepted != len(b.Readings) || r.Replayed {
			t.Fatalf("push: %d %s", code, body)
		}
		code, r, body = push(agent, "text/csv", csvBody.String())
		if code != http.StatusOK || !r.Replayed || r.Accepted != len(b.Readings) {
			t.Fatalf("replay: %d %s", code, body)
		}
		// The JSON form, and bad input.
		code, r, body = push(agent, "application/json", `{"batch_id":"j1","readings":[{"node":"`+node+`","gpu":0,"time_ms":`+
			jsonInt(start.Add(time.Hour).UnixMilli())+`,"util_pct":50,"energy_mj":1}]}`)
		if code != http.StatusOK || r.Accepted != 1 {
			t.Fatalf("json push: %d %s", code, body)
		}
		for name, tc := range map[string]struct{ ct, body, field string }{
			"unknown node": {"application/json", `{"batch_id":"j2","readings":[{"node":"nope","gpu":0,"time_ms":1800000000000,"util_pct":5}]}`, "readings[0].node"},
			"util":         {"application/json", `{"batch_id":"j3","readings":[{"node":"` + node + `","gpu":0,"time_ms":1800000000000,"util_pct":500}]}`, "readings[0].util_pct"},
			"no batch id":  {"text/csv", "node,gpu,time_ms\n", "body"},
			"bad number":   {"text/csv", "# batch_id=x\nnode,gpu,time_ms\n" + node + ",zero,1\n", "body"},
			"media type":   {"application/xml", "<x/>", "Content-Type"},
		} {
			code, _, body := push(agent, tc.ct, tc.body)
			if code != http.StatusUnprocessableEntity && code != http.StatusBadRequest || !strings.Contains(string(body), tc.field) {
				t.Errorf("%s: %d %s, want a 4xx naming %s", name, code, body, tc.field)
			}
		}
		if code, _, _ := push(f.keys["tenant-admin@tenant-a"], "text/csv", csvBody.String()); code != http.StatusForbidden {
			t.Errorf("tenant push: %d, want 403", code)
		}

		q := "/v1/usage?step=day&from=" + t0.Format(time.RFC3339) + "&to=" + t0.Add(24*time.Hour).Format(time.RFC3339)
		var u api.Usage
		code, body = f.do(f.keys["tenant-viewer@tenant-a"], "GET", q, nil)
		if code != http.StatusOK || json.Unmarshal(body, &u) != nil || len(u.Items) != 1 {
			t.Fatalf("tenant usage: %d %s", code, body)
		}
		// A reading accounts for the time since the GPU's previous one:
		// those at the lease's start count before it, and the JSON one at
		// its end counts in it.
		if it := u.Items[0]; it.LeaseID != l.ID || it.AllocatedGPUHours != 8 || it.UsedGPUms != 8*3590_000+10_000 || it.Readings != int64(len(b.Readings))-8+1 {
			t.Errorf("usage row %+v", it)
		}
		code, body = f.do(f.keys["tenant-viewer@tenant-b"], "GET", q, nil)
		if code != http.StatusOK || json.Unmarshal(body, &u) != nil || len(u.Items) != 0 {
			t.Errorf("tenant-b sees: %d %s", code, body)
		}
		code, body = f.do(f.keys["tenant-viewer@tenant-a"], "GET", q+"&format=csv", nil)
		if code != http.StatusOK || !strings.HasPrefix(string(body), "from,to,pool,use,lease_id") || strings.Count(string(body), "\n") != 2 {
			t.Errorf("csv: %d %s", code, body)
		}
		code, body = f.do(f.keys["tenant-viewer@tenant-a"], "GET", "/v1/usage?from="+t0.Format(time.RFC3339)+"&to="+t0.Format(time.RFC3339), nil)
		if code != http.StatusBadRequest && code != http.StatusUnprocessableEntity || !strings.Contains(string(body), "to") {
			t.Errorf("empty window: %d %s", code, body)
		}
		var sla api.SLA
		code, body = f.do(f.keys["tenant-viewer@tenant-a"], "GET", "/v1/sla?lease="+l.ID+"&month="+t0.Format("2006-01"), nil)
		if code != http.StatusOK || json.Unmarshal(body, &sla) != nil || sla.CommittedGPUHours != 8 || sla.AvailabilityPct != 100 {
			t.Errorf("sla: %d %s", code, body)
		}
		if code, body := f.do(f.keys["tenant-viewer@tenant-b"], "GET", "/v1/sla?lease="+l.ID, nil); code != http.StatusNotFound {
			t.Errorf("tenant-b reading tenant-a's SLA: %d %s", code, body)
		}
	})
}

func jsonInt(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}
