package forecast_test

import (
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/forecast"
)

var study = flag.Bool("study", false, "run the backtest study behind docs/forecast.md (about 15 s)")

// TestBacktestStudy measures what docs/forecast.md reports: the spread of
// the week-ahead P95 coverage over 12 seeds for each shape of series, the
// month-ahead coverage on 18-month histories, and 36-month forecasts of the
// story. Run it with
//
//	go test -run TestBacktestStudy -study -v ./internal/forecast/
func TestBacktestStudy(t *testing.T) {
	if !*study {
		t.Skip("pass -study to run it")
	}
	const weeks26 = 26 * 7 * 24
	flat := forecast.Synth{Start: monday, Hours: weeks26, Base: 10000, Daily: 1000, PeakHour: 14, Weekend: 1500}
	shapes := []struct {
		name string
		s    forecast.Synth
	}{
		{"flat, normal noise", with(flat, 0, func(s *forecast.Synth) { s.Noise = forecast.Noise{SD: 200} })},
		{"falling, normal noise AR 0.7", with(flat, 0, func(s *forecast.Synth) {
			s.TrendPerYear = -3000
			s.Noise = forecast.Noise{SD: 200, AR: 0.7}
		})},
		{"rising, night peak, laplace noise", with(flat, 0, func(s *forecast.Synth) {
			s.TrendPerYear, s.Daily, s.PeakHour, s.Weekend = 2000, 800, 3, -500
			s.Noise = forecast.Noise{Dist: forecast.Laplace, SD: 300}
		})},
		{"student-t(5) noise AR 0.5", with(flat, 0, func(s *forecast.Synth) {
			s.Noise = forecast.Noise{Dist: forecast.StudentT, Nu: 5, SD: 200, AR: 0.5}
		})},
		{"10% of hours missing", with(flat, 0, func(s *forecast.Synth) {
			s.Noise = forecast.Noise{SD: 200, AR: 0.3}
			s.Missing = 0.1
		})},
		{"story, bursts 1/week 8 h 5k GPUs", story(weeks26, 0, forecast.Bursts{PerWeek: 1, Hours: 8, GPUs: 5000})},
		{"story, bursts 2/week 12 h 10k GPUs", story(weeks26, 0, forecast.Bursts{PerWeek: 2, Hours: 12, GPUs: 10000})},
	}
	var b strings.Builder
	b.WriteString("\n| series (26 weeks, 100 origins a week ahead) | P95 coverage over 12 seeds: min | mean | max |\n|---|---|---|---|\n")
	for _, sh := range shapes {
		lo, hi, sum := 1.0, 0.0, 0.0
		for seed := uint64(1); seed <= 12; seed++ {
			s := sh.s
			s.Seed = 101 * seed
			r, err := forecast.Backtest(generate(t, s), forecast.BacktestConfig{Origins: 100, Refit: 10})
			if err != nil {
				t.Fatal(err)
			}
			sc, _ := r.Score(forecast.P95)
			lo, hi, sum = min(lo, sc.Coverage), max(hi, sc.Coverage), sum+sc.Coverage
		}
		fmt.Fprintf(&b, "| %s | %.3f | %.3f | %.3f |\n", sh.name, lo, sum/12, hi)
	}

	const weeks78 = 78 * 7 * 24
	b.WriteString("\n| series (78 weeks, 40 origins a month ahead) | P50 | P90 | P95 | P99 | MAPE |\n|---|---|---|---|---|---|\n")
	for _, sh := range []struct {
		name string
		s    forecast.Synth
	}{
		{"flat, normal noise AR 0.5", forecast.Synth{Start: monday, Hours: weeks78, Seed: 1, Base: 10000, Daily: 1000, PeakHour: 14, Weekend: 1500, Noise: forecast.Noise{SD: 200, AR: 0.5}}},
		{"rising 20% a year", forecast.Synth{Start: monday, Hours: weeks78, Seed: 4, Base: 100000, TrendPerYear: 20000, Daily: 8000, PeakHour: 15, Weekend: 10000, Noise: forecast.Noise{SD: 2000, AR: 0.8}}},
		{"story, no bursts", story(weeks78, 2, forecast.Bursts{})},
		{"story, bursts 2/week 12 h 10k GPUs", story(weeks78, 3, forecast.Bursts{PerWeek: 2, Hours: 12, GPUs: 10000})},
	} {
		r, err := forecast.Backtest(generate(t, sh.s), forecast.BacktestConfig{Horizon: 30 * 24, Origins: 40, Step: 121, Refit: 5})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "| %s | %.3f | %.3f | %.3f | %.3f | %.2f%% |\n", sh.name,
			r.Scores[0].Coverage, r.Scores[1].Coverage, r.Scores[2].Coverage, r.Scores[3].Coverage, 100*r.MAPE)
	}

	s := story(365*24, 7, forecast.Bursts{})
	m := fit(t, generate(t, s), forecast.Options{})
	p := predict(t, m, forecast.MaxHorizon)
	point := p.Point().Monthly(forecast.Average)
	p95 := p.MustQuantile(forecast.P95).Monthly(forecast.Peak)
	fmt.Fprintf(&b, "\nstory without bursts, one year of history; %s\n\n| month | truth (mean) | point (mean) | P95 (peak) |\n|---|---|---|---|\n", m.Params())
	for i := 1; i < len(point)-1; i += 6 {
		truth := 0.0
		n := 0
		for at := point[i].Start; at.Before(point[i].End); at = at.Add(time.Hour) {
			truth += s.Expected(at)
			n++
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.0f |\n", point[i].Start.Format("2006-01"), truth/float64(n), point[i].GPUs, p95[i].GPUs)
	}
	t.Log(b.String())
}
