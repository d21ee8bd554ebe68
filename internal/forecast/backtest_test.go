package forecast_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/forecast"
	"github.com/neocloud/neocloud/internal/valid"
)

// monday is a Monday at midnight UTC: synthetic series start on it so that
// their weeks line up with the calendar's.
var monday = time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC)

// story is the simulator's story: demand falling by a sixth a year, a
// daytime peak, quiet weekends, correlated noise and bursts.
func story(hours int, seed uint64, bursts forecast.Bursts) forecast.Synth {
	return forecast.Synth{
		Start: monday, Hours: hours, Seed: seed,
		Base: 180000, TrendPerYear: -30000, Daily: 12000, PeakHour: 15, Weekend: 15000,
		Noise:  forecast.Noise{SD: 2500, AR: 0.8},
		Bursts: bursts,
	}
}

// TestBacktestCoverage is the acceptance test of the forecast: on synthetic
// series whose distribution is known, the rolling-origin P95 covers 95% of
// the actual hours, give or take 3 points; P50 and P90 likewise within 5.
// Each backtest forecasts a week from 100 origins 25 hours apart over the
// last 15 weeks of 26, fitting afresh at every tenth.
func TestBacktestCoverage(t *testing.T) {
	t.Parallel()
	const hours = 26 * 7 * 24
	flat := forecast.Synth{Start: monday, Hours: hours, Base: 10000, Daily: 1000, PeakHour: 14, Weekend: 1500}
	tests := map[string]forecast.Synth{
		"flat, normal noise": with(flat, 11, func(s *forecast.Synth) {
			s.Noise = forecast.Noise{SD: 200}
		}),
		"falling, normal noise AR 0.7": with(flat, 12, func(s *forecast.Synth) {
			s.TrendPerYear = -3000
			s.Noise = forecast.Noise{SD: 200, AR: 0.7}
		}),
		"rising, night peak, laplace noise": with(flat, 13, func(s *forecast.Synth) {
			s.TrendPerYear, s.Daily, s.PeakHour, s.Weekend = 2000, 800, 3, -500
			s.Noise = forecast.Noise{Dist: forecast.Laplace, SD: 300}
		}),
		"student-t(5) noise AR 0.5": with(flat, 14, func(s *forecast.Synth) {
			s.Noise = forecast.Noise{Dist: forecast.StudentT, Nu: 5, SD: 200, AR: 0.5}
		}),
		"10% of hours missing": with(flat, 15, func(s *forecast.Synth) {
			s.Noise = forecast.Noise{SD: 200, AR: 0.3}
			s.Missing = 0.1
		}),
		"story with bursts, seed 16": story(hours, 16, forecast.Bursts{PerWeek: 1, Hours: 8, GPUs: 5000}),
		"story with bursts, seed 17": story(hours, 17, forecast.Bursts{PerWeek: 1, Hours: 8, GPUs: 5000}),
	}
	want := map[float64]float64{forecast.P50: 0.05, forecast.P90: 0.05, forecast.P95: 0.03}
	for name, s := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			points, err := s.Generate()
			if err != nil {
				t.Fatal(err)
			}
			r, err := forecast.Backtest(points, forecast.BacktestConfig{Origins: 100, Refit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if r.Origins != 100 || r.Hours < 100*7*24*8/10 {
				t.Fatalf("backtest made %d forecasts over %d hours, want 100 over most of 16800", r.Origins, r.Hours)
			}
			for q, tol := range want {
				sc, ok := r.Score(q)
				if !ok {
					t.Fatalf("no score for %v", q)
				}
				if math.Abs(sc.Coverage-q) > tol {
					t.Errorf("P%.0f coverage = %.3f, want %.2f ± %.2f", q*100, sc.Coverage, q, tol)
				}
			}
			p95, _ := r.Score(forecast.P95)
			p99, _ := r.Score(forecast.P99)
			t.Logf("%s: P95 coverage %.3f (pinball %.1f), P99 %.3f, MAPE %.2f%%", name, p95.Coverage, p95.Pinball, p99.Coverage, 100*r.MAPE)
		})
	}
}

func with(s forecast.Synth, seed uint64, f func(*forecast.Synth)) forecast.Synth {
	s.Seed = seed
	f(&s)
	return s
}

// TestBacktestScores checks the arithmetic of the scores on a series the
// model forecasts exactly: every quantile covers every hour and no loss is
// left.
func TestBacktestScores(t *testing.T) {
	t.Parallel()
	s := forecast.Synth{Start: monday, Hours: 5 * 7 * 24, Base: 1000, Daily: 100, PeakHour: 12, Weekend: 200}
	points, err := s.Generate()
	if err != nil {
		t.Fatal(err)
	}
	r, err := forecast.Backtest(points, forecast.BacktestConfig{Horizon: 48, Origins: 3, Step: 24, Quantiles: []float64{0.2, 0.5}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Origins != 3 || r.Hours != 3*48 {
		t.Fatalf("origins %d, hours %d; want 3 and 144", r.Origins, r.Hours)
	}
	if want := points[len(points)-48].At; !r.Last.Equal(want) {
		t.Errorf("last origin %s, want %s", r.Last, want)
	}
	if want := points[len(points)-48-2*24].At; !r.First.Equal(want) {
		t.Errorf("first origin %s, want %s", r.First, want)
	}
	if r.MAPE > 1e-6 || r.MAE > 1e-3 {
		t.Errorf("MAPE %g, MAE %g on a series without noise", r.MAPE, r.MAE)
	}
	for _, sc := range r.Scores {
		if sc.Pinball > 1e-3 {
			t.Errorf("q %v: pinball %g on a series without noise", sc.Q, sc.Pinball)
		}
	}
}

func TestBacktestValidation(t *testing.T) {
	t.Parallel()
	s := forecast.Synth{Start: monday, Hours: 3 * 7 * 24, Base: 1000, Daily: 100, Noise: forecast.Noise{SD: 10}}
	points, err := s.Generate()
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		cfg   forecast.BacktestConfig
		field string
		rule  string
	}{
		"too short for the origins": {forecast.BacktestConfig{}, "history", "before the first origin"},
		"negative horizon":          {forecast.BacktestConfig{Horizon: -1}, "horizon", "between 1 and"},
		"horizon past 36 months":    {forecast.BacktestConfig{Horizon: forecast.MaxHorizon + 1}, "horizon", "36 months"},
		"negative origins":          {forecast.BacktestConfig{Origins: -2}, "origins", "between 1 and"},
		"huge step":                 {forecast.BacktestConfig{Step: 1 << 40}, "step", "between 1 and"},
		"quantile of one":           {forecast.BacktestConfig{Origins: 1, Horizon: 24, Quantiles: []float64{0.5, 1}}, "quantiles[1]", "strictly between 0 and 1"},
		"negative refit":            {forecast.BacktestConfig{Origins: 1, Horizon: 24, Refit: -1}, "refit", "negative"},
		"bad options":               {forecast.BacktestConfig{Origins: 1, Horizon: 24, Options: forecast.Options{MaxEvaluations: -1}}, "options.max_evaluations", "negative"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := forecast.Backtest(points, tc.cfg)
			requireIssue(t, err, tc.field, tc.rule)
		})
	}
}

// requireIssue fails unless err is a *valid.Error with an issue on field
// whose rule contains rule.
func requireIssue(t *testing.T, err error, field, rule string) {
	t.Helper()
	var ve *valid.Error
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *valid.Error", err)
	}
	for _, is := range ve.Issues {
		if is.Field == field && strings.Contains(is.Rule, rule) {
			return
		}
	}
	t.Fatalf("error %q has no issue on %s with rule %q", err, field, rule)
}
