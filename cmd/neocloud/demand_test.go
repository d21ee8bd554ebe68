package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neocloud/neocloud/internal/api"
)

// TestDemandOffline generates a history, forecasts it and backtests it
// through the CLI, and checks the errors for bad flags and files.
func TestDemandOffline(t *testing.T) {
	hist := filepath.Join(t.TempDir(), "hist.csv")
	if _, _, err := neocloud(t, "demand", "generate", "--weeks", "8", "--seed", "3", "-f", hist); err != nil {
		t.Fatal(err)
	}
	out, _, err := neocloud(t, "demand", "forecast", "-f", hist, "--months", "6", "--gpus", "125000", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []forecastMonth
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("forecast -o json: %v\n%s", err, out)
	}
	if len(rows) < 6 || len(rows) > 7 {
		t.Fatalf("forecast --months 6 gave %d rows, want 6 or 7 (a partial first month)", len(rows))
	}
	for _, r := range rows {
		if !(r.P50 <= r.P90 && r.P90 <= r.P95 && r.P95 <= r.P99) {
			t.Errorf("%s: quantile peaks not ordered: %+v", r.Start.Format("2006-01"), r)
		}
		if r.HoldbackGPUs < r.P95 && r.HoldbackGPUs != 125_000 || r.HoldbackGPUs > 125_000 {
			t.Errorf("%s: holdback %d, want P95 peak %d + 5%% capped at 125000", r.Start.Format("2006-01"), r.HoldbackGPUs, r.P95)
		}
	}
	out, _, err = neocloud(t, "demand", "backtest", "-f", hist, "--origins", "10", "--horizon", "48")
	if err != nil || !strings.Contains(out, "COVERAGE") || !strings.Contains(out, "0.95") {
		t.Fatalf("backtest = %q, %v; want a coverage table", out, err)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"demand", "forecast"}, "-f"},
		{[]string{"demand", "forecast", "-f", hist, "--pool", "nowhere/X"}, `--pool "nowhere/X"`},
		{[]string{"demand", "forecast", "-f", hist, "--months", "37"}, "--months"},
		{[]string{"demand", "forecast", "-f", hist, "--quantile", "1.5"}, "quantile"},
		{[]string{"demand", "generate", "--start", "2026-01-01T00:30:00Z"}, "start"},
		{[]string{"demand", "generate", "--noise-dist", "cauchy"}, "--noise-dist"},
		{[]string{"demand", "backtest", "-f", filepath.Join(t.TempDir(), "missing.csv")}, "missing.csv"},
	} {
		if _, _, err := neocloud(t, tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("neocloud %v: err = %v, want one naming %s", tt.args, err, tt.want)
		}
	}
}

// TestDemandImportShow sends a generated history to a real server and
// reads it back, on both stores.
func TestDemandImportShow(t *testing.T) {
	eachBackend(t, func(t *testing.T, db string) {
		s := startServer(t, db)
		dir := t.TempDir()
		fleetFile, hist := filepath.Join(dir, "fleet.yaml"), filepath.Join(dir, "hist.csv")
		if _, err := s.admin(t, "fleet", "generate", "--preset", "uniform", "--nodes", "64", "-f", fleetFile); err != nil {
			t.Fatal(err)
		}
		if _, err := s.admin(t, "fleet", "apply", "-f", fleetFile); err != nil {
			t.Fatal(err)
		}
		if _, err := s.admin(t, "demand", "generate", "--pool", "uni/H100-SXM", "--weeks", "3", "--base", "300",
			"--trend-per-year", "0", "--daily", "50", "--weekend", "20", "--noise-sd", "10", "--burst-gpus", "20", "-f", hist); err != nil {
			t.Fatal(err)
		}
		out, err := s.admin(t, "demand", "import", "-f", hist)
		if err != nil || !strings.Contains(out, "504") {
			t.Fatalf("import = %q, %v; want 504 samples imported", out, err)
		}
		got := mustJSON[api.Demand](t, s, "", "demand", "show", "--pool", "uni/H100-SXM", "--from", "2025-09-01T00:00:00Z", "--to", "2025-09-02T00:00:00Z")
		if len(got.Samples) != 24 {
			t.Errorf("show over one day: %d samples, want 24", len(got.Samples))
		}
		rep := mustJSON[api.Sellable](t, s, "", "sellable", "--pool", "uni/H100-SXM", "--months", "2")
		if len(rep.Months) != 2 || rep.HistoryHours != 504 || rep.Months[0].HealthyGPUs != 512 {
			t.Errorf("sellable = %+v, want 2 months of a 512-GPU pool fitted to 504 hours", rep)
		}
		hb := mustJSON[api.HoldbackPlan](t, s, "", "holdback", "plan", "--pool", "uni/H100-SXM", "--months", "2")
		if len(hb.Steps) == 0 || hb.Steps[0].GPUs <= 300 || hb.Steps[0].GPUs > 512 {
			t.Errorf("holdback plan = %+v, want steps above the 300-GPU base level", hb)
		}
		if _, err := s.admin(t, "sellable", "--pool", "uni/H100-SXM", "--months", "40"); err == nil || !strings.Contains(errText(err), "months") {
			t.Errorf("sellable --months 40: err = %v, want one naming months", err)
		}
		if _, err := s.admin(t, "demand", "show"); err == nil || !strings.Contains(errText(err), "pool") {
			t.Errorf("show without --pool: err = %v, want one naming pool", err)
		}
	})
}
