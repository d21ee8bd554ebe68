package forecast_test

import (
	"testing"

	"github.com/neocloud/neocloud/internal/forecast"
)

// yearOfStory is a year of the simulator's story, bursts included.
func yearOfStory(b *testing.B) []forecast.Point {
	return generate(b, story(365*24, 1, forecast.Bursts{PerWeek: 2, Hours: 12, GPUs: 10000}))
}

// BenchmarkFitPredict fits a year of hourly history and forecasts 36 months
// of P95, summed up by month: what a holdback refresh of one pool costs.
func BenchmarkFitPredict(b *testing.B) {
	points := yearOfStory(b)
	b.ReportAllocs()
	for b.Loop() {
		m := fit(b, points, forecast.Options{})
		p := predict(b, m, forecast.MaxHorizon)
		if months := p.MustQuantile(forecast.P95).Monthly(forecast.Peak); len(months) < 36 {
			b.Fatalf("%d months", len(months))
		}
	}
}

// BenchmarkFit fits a year of hourly history.
func BenchmarkFit(b *testing.B) {
	points := yearOfStory(b)
	b.ReportAllocs()
	for b.Loop() {
		fit(b, points, forecast.Options{})
	}
}

// BenchmarkPredict forecasts 36 months from a fitted model, with P50, P90,
// P95 and P99.
func BenchmarkPredict(b *testing.B) {
	m := fit(b, yearOfStory(b), forecast.Options{})
	b.ReportAllocs()
	for b.Loop() {
		p := predict(b, m, forecast.MaxHorizon)
		for _, q := range []float64{forecast.P50, forecast.P90, forecast.P95, forecast.P99} {
			p.MustQuantile(q)
		}
	}
}

// BenchmarkBacktest runs the acceptance test's backtest once: 100 origins
// over 26 weeks, a week ahead, refitted at every tenth.
func BenchmarkBacktest(b *testing.B) {
	points := generate(b, story(26*7*24, 16, forecast.Bursts{PerWeek: 1, Hours: 8, GPUs: 5000}))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := forecast.Backtest(points, forecast.BacktestConfig{Origins: 100, Refit: 10}); err != nil {
			b.Fatal(err)
		}
	}
}
