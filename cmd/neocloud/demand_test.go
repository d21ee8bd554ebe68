package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
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
