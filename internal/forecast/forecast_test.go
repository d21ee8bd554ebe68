package forecast_test

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/forecast"
)

func generate(t testing.TB, s forecast.Synth) []forecast.Point {
	t.Helper()
	points, err := s.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return points
}

func fit(t testing.TB, points []forecast.Point, opts forecast.Options) *forecast.Model {
	t.Helper()
	m, err := forecast.Fit(points, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func predict(t testing.TB, m *forecast.Model, hours int) *forecast.Prediction {
	t.Helper()
	p, err := m.Predict(hours)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// maxDiff returns the largest |path - s.Expected| over the path's hours.
func maxDiff(s forecast.Synth, h forecast.Hourly) float64 {
	d := 0.0
	for i, v := range h.GPUs {
		d = max(d, math.Abs(v-s.Expected(h.Start.Add(time.Duration(i)*time.Hour))))
	}
	return d
}

// TestFitRecoversSeasonality fits series without noise, whose daily and
// weekly cycles the model must forecast to the GPU.
func TestFitRecoversSeasonality(t *testing.T) {
	t.Parallel()
	tests := map[string]forecast.Synth{
		"daytime peak, quiet weekend": {Base: 1000, Daily: 100, PeakHour: 14, Weekend: 150},
		"night peak, busy weekend":    {Base: 50000, Daily: 8000, PeakHour: 2, Weekend: -3000},
		"two weeks only":              {Hours: 2 * 7 * 24, Base: 1000, Daily: 100, PeakHour: 9, Weekend: 300},
		"starting on a thursday noon": {Start: monday.Add(3*24*time.Hour + 12*time.Hour), Base: 700, Daily: 50, PeakHour: 20, Weekend: 70},
	}
	for name, s := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if s.Start.IsZero() {
				s.Start = monday
			}
			if s.Hours == 0 {
				s.Hours = 6 * 7 * 24
			}
			m := fit(t, generate(t, s), forecast.Options{})
			p := predict(t, m, 2*7*24)
			if d := maxDiff(s, p.Point()); d > 0.01*s.Daily {
				t.Errorf("point forecast off by up to %.3f GPUs, want at most 1%% of the daily amplitude", d)
			}
			if d := maxDiff(s, p.MustQuantile(forecast.P99)); d > 0.01*s.Daily {
				t.Errorf("P99 off by up to %.3f GPUs on a series without noise", d)
			}
		})
	}
}

// TestFitFollowsTrend checks that the trend is carried a week ahead as it
// is and damped far ahead: 36 months out the forecast lies between the
// straight line and no trend at all.
func TestFitFollowsTrend(t *testing.T) {
	t.Parallel()
	for _, perYear := range []float64{-876, 876} {
		s := forecast.Synth{Start: monday, Hours: 8 * 7 * 24, Base: 10000, TrendPerYear: perYear, Daily: 500, PeakHour: 15, Weekend: 800}
		m := fit(t, generate(t, s), forecast.Options{})
		if hl := m.Params().TrendHalfLife(); hl < forecast.DefaultMinTrendHalfLife || hl > forecast.DefaultMaxTrendHalfLife+time.Hour {
			t.Errorf("trend %v: half-life %s outside the default bounds", perYear, hl)
		}
		p := predict(t, m, forecast.MaxHorizon)
		point := p.Point()
		week := forecast.Hourly{Start: point.Start, GPUs: point.GPUs[:7*24]}
		// 0.1 GPU an hour for a week is 16.8 GPUs of trend; the damping may
		// shave a little off it.
		if d := maxDiff(s, week); d > 0.5 {
			t.Errorf("trend %v: a week ahead, the forecast is off by up to %.2f GPUs", perYear, d)
		}
		perHour := perYear / (365 * 24)
		for i, v := range point.GPUs {
			at := point.Start.Add(time.Duration(i) * time.Hour)
			line := s.Expected(at)
			flat := line - perHour*float64(i+1)
			lo, hi := min(line, flat), max(line, flat)
			if v < lo-1 || v > hi+1 {
				t.Fatalf("trend %v: %d hours ahead the forecast %.1f is outside [%.1f, %.1f] (the line, no trend)", perYear, i+1, v, lo, hi)
			}
		}
		last := point.GPUs[len(point.GPUs)-1] - s.Expected(point.End().Add(-time.Hour))
		t.Logf("trend %v GPUs/year: 36 months out the forecast is %.0f GPUs off the line (%.0f of trend left out), %s", perYear, last, perHour*float64(forecast.MaxHorizon), m.Params())
	}
}

// TestFitDeterministic fits the same history twice and expects the same
// parameters and forecasts, bit for bit.
func TestFitDeterministic(t *testing.T) {
	t.Parallel()
	points := generate(t, story(8*7*24, 3, forecast.Bursts{PerWeek: 2, Hours: 12, GPUs: 10000}))
	predictAll := func() (forecast.Params, forecast.Hourly, forecast.Hourly) {
		m := fit(t, points, forecast.Options{})
		p := predict(t, m, 90*24)
		return m.Params(), p.Point(), p.MustQuantile(forecast.P95)
	}
	p1, point1, q1 := predictAll()
	p2, point2, q2 := predictAll()
	if diff := cmp.Diff(p1, p2); diff != "" {
		t.Errorf("params differ (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(point1, point2); diff != "" {
		t.Errorf("point forecasts differ (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(q1, q2); diff != "" {
		t.Errorf("P95 forecasts differ (-first +second):\n%s", diff)
	}
}

// TestFitGivenParams skips the fit when the parameters are given.
func TestFitGivenParams(t *testing.T) {
	t.Parallel()
	points := generate(t, story(4*7*24, 4, forecast.Bursts{}))
	want := forecast.Params{Level: 0.2, Trend: 0.01, Daily: 0.1, Weekly: 0.1, Damping: 0.999, AR: 0.5}
	m := fit(t, points, forecast.Options{Params: &want})
	if diff := cmp.Diff(want, m.Params()); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
	if m.Evaluations() != 0 {
		t.Errorf("%d evaluations with the parameters given", m.Evaluations())
	}
	if !m.Start().Equal(points[0].At) || !m.End().Equal(points[len(points)-1].At.Add(time.Hour)) {
		t.Errorf("model spans [%s, %s), want the history's", m.Start(), m.End())
	}
}

// TestFitWithGaps expects about the same forecast from a history with a
// fifth of its hours missing, one long gap included, as from the whole.
func TestFitWithGaps(t *testing.T) {
	t.Parallel()
	s := forecast.Synth{Start: monday, Hours: 10 * 7 * 24, Seed: 5, Base: 5000, TrendPerYear: -1000, Daily: 400, PeakHour: 16, Weekend: 600,
		Noise: forecast.Noise{SD: 50, AR: 0.5}}
	all := generate(t, s)
	s.Missing = 0.2
	holey := generate(t, s)
	// And a day and a half missing in the middle.
	cut := holey[:0:0]
	for _, p := range holey {
		if h := p.At.Sub(monday).Hours(); h < 800 || h >= 836 {
			cut = append(cut, p)
		}
	}
	pAll := predict(t, fit(t, all, forecast.Options{}), 7*24).Point()
	pCut := predict(t, fit(t, cut, forecast.Options{}), 7*24).Point()
	if !pAll.Start.Equal(pCut.Start) {
		// The last hour may be missing; compare from the same start.
		t.Skipf("histories end at different hours: %s, %s", pAll.Start, pCut.Start)
	}
	for i := range pAll.GPUs {
		if d := math.Abs(pAll.GPUs[i] - pCut.GPUs[i]); d > 2*s.Noise.SD {
			t.Fatalf("%d hours ahead the forecasts differ by %.1f GPUs, more than twice the noise", i+1, d)
		}
	}
	if d := maxDiff(s, pCut); d > 4*s.Noise.SD {
		t.Errorf("forecast from the holey history off the truth by up to %.1f GPUs", d)
	}
}

// TestQuantilesMatchTruth compares forecast quantiles a day to a week ahead
// with the generator's true ones: on average over the hours within half a
// standard deviation of the noise (P99: one). The forecast's errors add the
// model's own uncertainty to the noise, so its tails lie a little wider.
func TestQuantilesMatchTruth(t *testing.T) {
	t.Parallel()
	base := forecast.Synth{Start: monday, Hours: 26 * 7 * 24, Base: 10000, Daily: 1000, PeakHour: 14, Weekend: 1500}
	tests := map[string]forecast.Synth{
		"normal": with(base, 21, func(s *forecast.Synth) { s.Noise = forecast.Noise{SD: 200} }),
		"laplace, falling": with(base, 22, func(s *forecast.Synth) {
			s.TrendPerYear = -2000
			s.Noise = forecast.Noise{Dist: forecast.Laplace, SD: 200}
		}),
		"student-t(4) AR 0.6, rising": with(base, 23, func(s *forecast.Synth) {
			s.TrendPerYear = 1500
			s.Noise = forecast.Noise{Dist: forecast.StudentT, Nu: 4, SD: 200, AR: 0.6}
		}),
	}
	for name, s := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := predict(t, fit(t, generate(t, s), forecast.Options{}), 7*24)
			// The tail of heavy-tailed errors is estimated least well.
			tolerance := map[float64]float64{0.1: 0.5, forecast.P50: 0.5, forecast.P90: 0.5, forecast.P95: 0.5, forecast.P99: 1}
			for q, tol := range tolerance {
				h := p.MustQuantile(q)
				var sum float64
				for i := 24; i < len(h.GPUs); i++ {
					truth, err := s.Quantile(h.Start.Add(time.Duration(i)*time.Hour), q)
					if err != nil {
						t.Fatal(err)
					}
					sum += (h.GPUs[i] - truth) / s.Noise.SD
				}
				mean := sum / float64(len(h.GPUs)-24)
				t.Logf("q %v: forecast off the true quantile by %+.2f SD on average", q, mean)
				if math.Abs(mean) > tol {
					t.Errorf("q %v: forecast off the true quantile by %.2f SD on average, want at most %.1f", q, mean, tol)
				}
			}
		})
	}
}

// TestPredictAggregates checks the paths Predict returns and their daily
// and monthly sums.
func TestPredictAggregates(t *testing.T) {
	t.Parallel()
	m := fit(t, generate(t, story(3*7*24, 9, forecast.Bursts{})), forecast.Options{})
	p := predict(t, m, forecast.MaxHorizon)
	if p.Hours() != forecast.MaxHorizon || !p.Start().Equal(m.End()) {
		t.Fatalf("prediction of %d hours from %s, want %d from %s", p.Hours(), p.Start(), forecast.MaxHorizon, m.End())
	}
	p95 := p.MustQuantile(forecast.P95)
	months := p95.Monthly(forecast.Peak)
	// From 2025-01-27 (3 weeks after monday), 1096 days reach into
	// January 2028: 37 calendar months, the first and last partial.
	if len(months) != 37 {
		t.Fatalf("%d months, want 37", len(months))
	}
	if !months[0].Start.Equal(p.Start()) || !months[1].Start.Equal(time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)) ||
		!months[len(months)-1].End.Equal(p95.End()) {
		t.Errorf("months %s..%s, %s...: not clipped to the path", months[0].Start, months[0].End, months[1].Start)
	}
	avg := p95.Monthly(forecast.Average)
	for i := range months {
		if avg[i].GPUs > months[i].GPUs {
			t.Errorf("month %s: average %.1f above peak %.1f", months[i].Start, avg[i].GPUs, months[i].GPUs)
		}
	}
	if v, ok := p95.At(months[3].Start.Add(90 * time.Minute)); !ok || v > months[3].GPUs {
		t.Errorf("At inside month 3 = %v, %v; want a value under its peak", v, ok)
	}
	if _, ok := p95.At(p95.End()); ok {
		t.Error("At(End()) is inside the path")
	}
	days := p95.Daily(forecast.Peak)
	if len(days) != forecast.MaxHorizon/24 {
		t.Errorf("%d days, want %d", len(days), forecast.MaxHorizon/24)
	}
}

func TestHourlySpans(t *testing.T) {
	t.Parallel()
	h := forecast.Hourly{Start: time.Date(2026, 1, 31, 22, 0, 0, 0, time.UTC), GPUs: []float64{1, 5, 2, 4, 3}}
	tests := map[string]struct {
		got  []forecast.Span
		want []forecast.Span
	}{
		"daily peak": {h.Daily(forecast.Peak), []forecast.Span{
			{Start: h.Start, End: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), GPUs: 5},
			{Start: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 2, 1, 3, 0, 0, 0, time.UTC), GPUs: 4},
		}},
		"monthly average": {h.Monthly(forecast.Average), []forecast.Span{
			{Start: h.Start, End: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), GPUs: 3},
			{Start: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 2, 1, 3, 0, 0, 0, time.UTC), GPUs: 3},
		}},
		"empty": {forecast.Hourly{Start: h.Start}.Monthly(forecast.Peak), nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.got); diff != "" {
				t.Errorf("spans (-want +got):\n%s", diff)
			}
		})
	}
}
