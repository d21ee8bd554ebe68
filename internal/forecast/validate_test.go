package forecast_test

import (
	"math"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/forecast"
)

// hourly returns n points from monday, one an hour, all of value v.
func hourly(n int, v float64) []forecast.Point {
	points := make([]forecast.Point, n)
	for i := range points {
		points[i] = forecast.Point{At: monday.Add(time.Duration(i) * time.Hour), GPUs: v}
	}
	return points
}

func TestFitValidation(t *testing.T) {
	t.Parallel()
	edit := func(f func([]forecast.Point) []forecast.Point) []forecast.Point { return f(hourly(400, 100)) }
	tests := map[string]struct {
		history []forecast.Point
		opts    forecast.Options
		field   string
		rule    string
	}{
		"empty":   {nil, forecast.Options{}, "history", "need at least 336 hourly points (two weeks)"},
		"13 days": {hourly(13*24, 1), forecast.Options{}, "history", "need at least 336"},
		"NaN": {edit(func(p []forecast.Point) []forecast.Point { p[7].GPUs = math.NaN(); return p }),
			forecast.Options{}, "history[7].gpus", "finite"},
		"infinite": {edit(func(p []forecast.Point) []forecast.Point { p[8].GPUs = math.Inf(1); return p }),
			forecast.Options{}, "history[8].gpus", "finite"},
		"negative": {edit(func(p []forecast.Point) []forecast.Point { p[9].GPUs = -1; return p }),
			forecast.Options{}, "history[9].gpus", "must not be negative"},
		"half past": {edit(func(p []forecast.Point) []forecast.Point { p[10].At = p[10].At.Add(30 * time.Minute); return p }),
			forecast.Options{}, "history[10].at", "whole UTC hour"},
		"a nanosecond late": {edit(func(p []forecast.Point) []forecast.Point { p[0].At = p[0].At.Add(1); return p }),
			forecast.Options{}, "history[0].at", "whole UTC hour"},
		"repeated hour": {edit(func(p []forecast.Point) []forecast.Point { p[11].At = p[10].At; return p }),
			forecast.Options{}, "history[11].at", "strictly increasing"},
		"out of order": {edit(func(p []forecast.Point) []forecast.Point { p[11], p[12] = p[12], p[11]; return p }),
			forecast.Options{}, "history[12].at", "strictly increasing"},
		"no time": {edit(func(p []forecast.Point) []forecast.Point { p[0].At = time.Time{}; return p }),
			forecast.Options{}, "history[0].at", "required"},
		"mostly gaps": {edit(func(p []forecast.Point) []forecast.Point {
			for i := range p {
				p[i].At = monday.Add(time.Duration(3*i) * time.Hour)
			}
			return p
		}), forecast.Options{}, "history", "at most half of the hours"},
		"six years": {edit(func(p []forecast.Point) []forecast.Point {
			p[len(p)-1].At = monday.AddDate(6, 0, 0)
			return p
		}), forecast.Options{}, "history", "at most 43830 hours"},
		"level above one": {hourly(400, 1), forecast.Options{Params: &forecast.Params{Level: 1.5, Damping: 1}}, "options.params.level", "between 0 and 1"},
		"no damping":      {hourly(400, 1), forecast.Options{Params: &forecast.Params{Damping: 0}}, "options.params.damping", "greater than 0"},
		"AR of one":       {hourly(400, 1), forecast.Options{Params: &forecast.Params{Damping: 1, AR: 1}}, "options.params.ar", "less than 1"},
		"half-lives crossed": {hourly(400, 1), forecast.Options{MinTrendHalfLife: 48 * time.Hour, MaxTrendHalfLife: 24 * time.Hour},
			"options.max_trend_half_life", "at least min_trend_half_life"},
		"half-life of a minute": {hourly(400, 1), forecast.Options{MinTrendHalfLife: time.Minute}, "options.min_trend_half_life", "at least 1h"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := forecast.Fit(tc.history, tc.opts)
			requireIssue(t, err, tc.field, tc.rule)
		})
	}
}

// TestFitAcceptsOtherZones reads instants, not wall clocks: the same hours
// given in another zone fit the same model.
func TestFitAcceptsOtherZones(t *testing.T) {
	t.Parallel()
	s := story(3*7*24, 1, forecast.Bursts{})
	points := generate(t, s)
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	shifted := make([]forecast.Point, len(points))
	for i, p := range points {
		shifted[i] = forecast.Point{At: p.At.In(zone), GPUs: p.GPUs}
	}
	a := fit(t, points, forecast.Options{})
	b := fit(t, shifted, forecast.Options{})
	if a.Params() != b.Params() || !a.End().Equal(b.End()) || a.End().Location() != time.UTC {
		t.Errorf("fits differ: %v at %s, %v at %s", a.Params(), a.End(), b.Params(), b.End())
	}
}

func TestPredictValidation(t *testing.T) {
	t.Parallel()
	m := fit(t, hourly(400, 10), forecast.Options{})
	for _, hours := range []int{0, -1, forecast.MaxHorizon + 1} {
		_, err := m.Predict(hours)
		requireIssue(t, err, "hours", "between 1 and 26304 (36 months)")
	}
	p := predict(t, m, 10)
	for _, q := range []float64{0, 1, -0.5, 1.5, math.NaN(), math.Inf(1)} {
		_, err := p.Quantile(q)
		requireIssue(t, err, "q", "strictly between 0 and 1")
	}
	defer func() {
		if recover() == nil {
			t.Error("MustQuantile(1) did not panic")
		}
	}()
	p.MustQuantile(1)
}

func TestSynthValidation(t *testing.T) {
	t.Parallel()
	ok := forecast.Synth{Start: monday, Hours: 100, Base: 10}
	tests := map[string]struct {
		edit  func(*forecast.Synth)
		field string
		rule  string
	}{
		"start off the hour": {func(s *forecast.Synth) { s.Start = monday.Add(time.Minute) }, "start", "whole UTC hour"},
		"no hours":           {func(s *forecast.Synth) { s.Hours = 0 }, "hours", "between 1 and"},
		"negative base":      {func(s *forecast.Synth) { s.Base = -1 }, "base", "must not be negative"},
		"NaN trend":          {func(s *forecast.Synth) { s.TrendPerYear = math.NaN() }, "trend_per_year", "finite"},
		"peak at 24":         {func(s *forecast.Synth) { s.PeakHour = 24 }, "peak_hour", "0 to 23"},
		"student-t, nu 2":    {func(s *forecast.Synth) { s.Noise = forecast.Noise{Dist: forecast.StudentT, Nu: 2} }, "noise.nu", "above 2"},
		"unknown dist":       {func(s *forecast.Synth) { s.Noise.Dist = 9 }, "noise.dist", "Normal, Laplace or StudentT"},
		"AR of one":          {func(s *forecast.Synth) { s.Noise.AR = 1 }, "noise.ar", "less than 1"},
		"bursts without hours": {func(s *forecast.Synth) { s.Bursts = forecast.Bursts{PerWeek: 1, GPUs: 5} },
			"bursts.hours", "between 1 and"},
		"half missing": {func(s *forecast.Synth) { s.Missing = 0.5 }, "missing", "less than 0.5"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := ok
			tc.edit(&s)
			_, err := s.Generate()
			requireIssue(t, err, tc.field, tc.rule)
		})
	}
	if _, err := ok.Quantile(monday, 1); err == nil {
		t.Error("Synth.Quantile(1) is no error")
	}
	withBursts := ok
	withBursts.Bursts = forecast.Bursts{PerWeek: 1, Hours: 2, GPUs: 5}
	_, err := withBursts.Quantile(monday, 0.5)
	requireIssue(t, err, "bursts.per_week", "known only without bursts")
}

// TestFitNeedsHoursAfterWarmUp refuses a history whose hours after the
// warm-up are all missing: its errors cannot be measured.
func TestFitNeedsHoursAfterWarmUp(t *testing.T) {
	t.Parallel()
	points := hourly(336, 10)
	points = append(points, forecast.Point{At: monday.Add(671 * time.Hour), GPUs: 10})
	_, err := forecast.Fit(points, forecast.Options{})
	requireIssue(t, err, "history", "to measure the forecast's errors")
}
