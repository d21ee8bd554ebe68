package api_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/api"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/forecast"
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

// TestSellableOverHTTP imports three weeks of demand around 100 GPUs of
// the fixture's 256-GPU H100 pool, books a reservation, and checks the
// report's arithmetic and refusals.
func TestSellableOverHTTP(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		op := f.keys["operator-admin"]
		syn := forecast.Synth{Start: t0.Add(-21 * 24 * time.Hour), Hours: 21 * 24, Seed: 5, Base: 100, Daily: 20, PeakHour: 15,
			Noise: forecast.Noise{Dist: forecast.Normal, SD: 4}}
		hist, err := syn.Generate()
		if err != nil {
			t.Fatal(err)
		}
		var samples []any
		for _, p := range hist {
			samples = append(samples, map[string]any{"pool": "lab-1/H100-SXM", "hour": p.At.Format(time.RFC3339), "gpus": int64(p.GPUs + 0.5)})
		}
		if code, body := f.do(op, "POST", "/v1/demand", map[string]any{"samples": samples}); code != 200 {
			t.Fatalf("import: %d %s", code, body)
		}
		start := t0.Add(24 * time.Hour)
		lease := map[string]any{"tenant": "tenant-a", "kind": "reservation", "pool": "lab-1/H100-SXM",
			"start": start.Format(time.RFC3339), "end": start.Add(48 * time.Hour).Format(time.RFC3339), "gpus": 64}
		if code, body := f.do(op, "POST", "/v1/leases", lease); code != 201 {
			t.Fatalf("lease: %d %s", code, body)
		}
		code, body := f.do(f.keys["operator-viewer"], "GET", "/v1/sellable?pool=lab-1/H100-SXM&months=3", nil)
		var rep api.Sellable
		if code != 200 || json.Unmarshal(body, &rep) != nil {
			t.Fatalf("sellable: %d %s", code, body)
		}
		if len(rep.Months) != 3 || !rep.Months[0].Start.Equal(t0) || rep.HistoryHours != 21*24 || !rep.HistoryEnd.Equal(t0) {
			t.Fatalf("sellable = %+v, want 3 months from %v fitted to 504 hours", rep, t0)
		}
		for i, m := range rep.Months {
			if m.HealthyGPUs != 256 || m.HoldbackGPUs < 110 || m.HoldbackGPUs > 180 {
				t.Errorf("month %d: healthy %d, holdback %d; want 256 and a P95 peak +5%% of a 100 ± 20 demand", i, m.HealthyGPUs, m.HoldbackGPUs)
			}
			if m.SellableGPUs != max(m.HealthyGPUs-m.HoldbackGPUs-m.GuaranteedGPUs, 0) || m.SellableMW <= 0 {
				t.Errorf("month %d: sellable %d GPUs (%.3f MW) from %+v", i, m.SellableGPUs, m.SellableMW, m)
			}
			if m.ExceedHours < 0 || m.ExceedHours > 0.05*31*24 {
				t.Errorf("month %d: %.1f hours over a P95 holdback expected, want a few", i, m.ExceedHours)
			}
		}
		if rep.Months[0].GuaranteedGPUs != 64 || rep.Months[1].GuaranteedGPUs != 0 {
			t.Errorf("guaranteed by month = %d, %d; want the 64-GPU reservation in the first month only", rep.Months[0].GuaranteedGPUs, rep.Months[1].GuaranteedGPUs)
		}

		for name, tc := range map[string]struct{ query, location string }{
			"no history":     {"pool=lab-1/H200-SXM", "pool"},
			"unknown pool":   {"pool=lab-9/H100-SXM", "pool"},
			"months 0":       {"pool=lab-1/H100-SXM&months=0", "months"},
			"months 37":      {"pool=lab-1/H100-SXM&months=37", "months"},
			"quantile 1":     {"pool=lab-1/H100-SXM&quantile=1", "quantile"},
			"buffer over 1k": {"pool=lab-1/H100-SXM&buffer_permille=2000", "buffer_permille"},
		} {
			code, body := f.do(op, "GET", "/v1/sellable?"+tc.query, nil)
			if code != 422 || !bytes.Contains(body, []byte(tc.location)) {
				t.Errorf("%s: %d %s; want 422 naming %s", name, code, body, tc.location)
			}
		}
	})
}
