package api_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/api"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/store/dbtest"
)

// TestDemandOverHTTP imports the owner's demand, reads it back by window,
// and checks that bad samples answer 422 naming the field and change
// nothing.
func TestDemandOverHTTP(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		op := f.keys["operator-admin"]
		hour := func(n int) string { return t0.Add(time.Duration(n) * time.Hour).Format(time.RFC3339) }
		sample := func(n int, gpus int64) map[string]any {
			return map[string]any{"pool": "lab-1/H100-SXM", "hour": hour(n), "gpus": gpus}
		}
		code, body := f.do(op, "POST", "/v1/demand", map[string]any{"samples": []any{sample(-3, 100), sample(-2, 120), sample(-1, 90)}})
		if code != 200 || !bytes.Contains(body, []byte(`"imported":3`)) {
			t.Fatalf("import: %d %s", code, body)
		}
		// Re-importing an hour replaces it.
		if code, body := f.do(op, "POST", "/v1/demand", map[string]any{"samples": []any{sample(-2, 64)}}); code != 200 {
			t.Fatalf("re-import: %d %s", code, body)
		}
		code, body = f.do(f.keys["operator-viewer"], "GET", "/v1/demand?pool=lab-1/H100-SXM&from="+hour(-2)+"&to="+hour(0), nil)
		var got api.Demand
		if code != 200 || json.Unmarshal(body, &got) != nil {
			t.Fatalf("get: %d %s", code, body)
		}
		if len(got.Samples) != 2 || got.Samples[0].GPUs != 64 || got.Samples[1].GPUs != 90 || !got.Samples[0].Hour.Equal(t0.Add(-2*time.Hour)) {
			t.Errorf("demand over [-2h, 0) = %+v, want 64 then 90", got.Samples)
		}

		before := dbtest.Dump(t, st)
		for name, tc := range map[string]struct {
			samples  []any
			location string
		}{
			"unknown pool":   {[]any{map[string]any{"pool": "lab-9/H100-SXM", "hour": hour(0), "gpus": 1}}, "samples[0].pool"},
			"off the hour":   {[]any{sample(0, 1), map[string]any{"pool": "lab-1/H100-SXM", "hour": t0.Add(time.Minute).Format(time.RFC3339), "gpus": 1}}, "samples[1].hour"},
			"negative gpus":  {[]any{sample(0, -1)}, "body.samples[0].gpus"},
			"hour twice":     {[]any{sample(0, 1), sample(1, 1), sample(0, 2)}, "samples[2].hour"},
			"no samples":     {[]any{}, "samples"},
			"not a time":     {[]any{map[string]any{"pool": "lab-1/H100-SXM", "hour": "yesterday", "gpus": 1}}, "body.samples[0].hour"},
			"unknown column": {[]any{map[string]any{"pool": "lab-1/H100-SXM", "hour": hour(0), "gpus": 1, "gpu": 2}}, "body.samples[0].gpu"},
		} {
			code, body := f.do(op, "POST", "/v1/demand", map[string]any{"samples": tc.samples})
			if code != 422 || !bytes.Contains(body, []byte(tc.location)) {
				t.Errorf("%s: %d %s; want 422 naming %s", name, code, body, tc.location)
			}
		}
		if after := dbtest.Dump(t, st); before != after {
			t.Error("bad demand changed the store")
		}
	})
}
