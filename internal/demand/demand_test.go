package demand

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/neocloud/neocloud/internal/forecast"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/valid"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestParseCSV(t *testing.T) {
	good := "pool,hour,gpus\nref/H100,2026-01-01T00:00:00Z,100\nref/H200,2026-01-01T00:00:00Z,5\nref/H100,2026-01-01T03:00:00+02:00,90\n"
	got, err := ParseCSV(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	want := []Sample{{"ref/H100", t0, 100}, {"ref/H200", t0, 5}, {"ref/H100", t0.Add(time.Hour), 90}}
	if len(got) != len(want) {
		t.Fatalf("ParseCSV = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].Pool != want[i].Pool || !got[i].Hour.Equal(want[i].Hour) || got[i].Hour.Location() != time.UTC || got[i].GPUs != want[i].GPUs {
			t.Errorf("sample %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if h := History(got, "ref/H100"); len(h) != 2 || h[1].GPUs != 90 {
		t.Errorf("History(ref/H100) = %v, want 2 points ending at 90", h)
	}

	tests := []struct {
		name, in string
		line     int
		column   string
	}{
		{"empty", "", 1, ""},
		{"no header", "ref/H100,2026-01-01T00:00:00Z,1\n", 1, ""},
		{"columns", "pool,hour,gpus\nref/H100,2026-01-01T00:00:00Z\n", 2, ""},
		{"no pool", "pool,hour,gpus\n,2026-01-01T00:00:00Z,1\n", 2, "pool"},
		{"bad hour", "pool,hour,gpus\np,yesterday,1\n", 2, "hour"},
		{"off the hour", "pool,hour,gpus\np,2026-01-01T00:30:00Z,1\n", 2, "hour"},
		{"not increasing", "pool,hour,gpus\np,2026-01-01T01:00:00Z,1\nq,2026-01-01T00:00:00Z,1\np,2026-01-01T01:00:00Z,1\n", 4, "hour"},
		{"negative", "pool,hour,gpus\np,2026-01-01T00:00:00Z,-1\n", 2, "gpus"},
		{"fraction", "pool,hour,gpus\np,2026-01-01T00:00:00Z,1.5\n", 2, "gpus"},
		{"quote", "pool,hour,gpus\n\"p,2026-01-01T00:00:00Z,1\n", 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCSV(strings.NewReader(tt.in))
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line != tt.line || pe.Column != tt.column {
				t.Fatalf("ParseCSV = %v, want a *ParseError at line %d column %q", err, tt.line, tt.column)
			}
		})
	}
}

func FuzzParseCSV(f *testing.F) {
	f.Add([]byte("pool,hour,gpus\nref/H100,2026-01-01T00:00:00Z,100\n"))
	f.Add([]byte("\uFEFFpool,hour,gpus\r\np,2026-01-01T00:00:00+01:00,0\r\n"))
	f.Add([]byte("pool,hour,gpus\np,2026-01-01T01:00:00Z,1\np,2026-01-01T00:00:00Z,1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ss, err := ParseCSV(bytes.NewReader(data))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 || pe.Rule == "" {
				t.Fatalf("ParseCSV error = %v (%T), want a *ParseError with a line and a rule", err, err)
			}
			return
		}
		last := map[string]time.Time{}
		for _, s := range ss {
			if s.Pool == "" || s.GPUs < 0 || s.GPUs > MaxSampleGPUs || s.Hour.Location() != time.UTC || !s.Hour.Equal(s.Hour.Truncate(time.Hour)) {
				t.Fatalf("accepted a sample breaking a rule: %+v", s)
			}
			if p, ok := last[s.Pool]; ok && !s.Hour.After(p) {
				t.Fatalf("accepted %s at %v after %v", s.Pool, s.Hour, p)
			}
			last[s.Pool] = s.Hour
		}
	})
}

func TestPolicyValidate(t *testing.T) {
	for _, tt := range []struct {
		p     Policy
		field string
	}{
		{DefaultPolicy(), ""},
		{Policy{Quantile: 0, BufferPermille: 50}, "quantile"},
		{Policy{Quantile: 1, BufferPermille: 50}, "quantile"},
		{Policy{Quantile: math.NaN(), BufferPermille: 50}, "quantile"},
		{Policy{Quantile: 0.9, BufferPermille: -1}, "buffer_permille"},
		{Policy{Quantile: 0.9, BufferPermille: 1001}, "buffer_permille"},
	} {
		err := tt.p.Validate()
		var ve *valid.Error
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("Validate(%+v) = %v, want nil", tt.p, err)
		case tt.field != "" && (!errors.As(err, &ve) || ve.Issues[0].Field != tt.field):
			t.Errorf("Validate(%+v) = %v, want an issue naming %s", tt.p, err, tt.field)
		}
	}
}

// storyPrediction fits eight weeks of a falling, cycling demand around
// 60,000 GPUs and forecasts the next six months.
func storyPrediction(t testing.TB, seed uint64) (*forecast.Prediction, forecast.Synth) {
	t.Helper()
	s := forecast.Synth{Start: t0, Hours: 8 * 7 * 24, Seed: seed, Base: 60_000, TrendPerYear: -20_000,
		Daily: 3_000, PeakHour: 15, Weekend: 2_000, Noise: forecast.Noise{Dist: forecast.Normal, SD: 800}}
	hist, err := s.Generate()
	if err != nil {
		t.Fatal(err)
	}
	m, err := forecast.Fit(hist, forecast.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pred, err := m.Predict(183 * 24)
	if err != nil {
		t.Fatal(err)
	}
	return pred, s
}

func TestHoldback(t *testing.T) {
	pred, _ := storyPrediction(t, 1)
	steps, err := Holdback(pred, DefaultPolicy(), 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) < 6 || !steps[0].From.Equal(pred.Start()) {
		t.Fatalf("Holdback = %v, want a step a month from the forecast's start %v", steps, pred.Start())
	}
	peaks := pred.MustQuantile(forecast.P95).Monthly(forecast.Peak)
	for i, s := range steps {
		if i > 0 && (s.From.Day() != 1 || s.From.Hour() != 0 || s.GPUs == steps[i-1].GPUs) {
			t.Errorf("step %d = %+v: not at a month's start, or not a change", i, s)
		}
		for _, m := range peaks {
			if m.Start.Equal(s.From) {
				if want := int64(math.Ceil(m.GPUs * 1.05)); s.GPUs < want-1 || s.GPUs > want {
					t.Errorf("step %d = %d GPUs, want P95 peak %.1f × 1.05 rounded up = %d", i, s.GPUs, m.GPUs, want)
				}
			}
		}
	}
	capped, _ := Holdback(pred, DefaultPolicy(), 10_000)
	for _, s := range capped {
		if s.GPUs > 10_000 {
			t.Errorf("capped holdback step %+v above the pool's 10,000 GPUs", s)
		}
	}
	if _, err := Holdback(pred, Policy{Quantile: 2}, 1); err == nil {
		t.Error("Holdback with quantile 2: err = nil")
	}
}

// TestSellable checks the report's arithmetic and that its risk figures
// follow the truth: holding back the P95 of the forecast, the owner's
// demand exceeds it in a few percent of hours; holding back the median, in
// about half.
func TestSellable(t *testing.T) {
	pred, _ := storyPrediction(t, 2)
	steps, err := Holdback(pred, Policy{Quantile: 0.95}, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	perGPU := 1_700 * unit.Watt
	months, err := Sellable(pred, func(at time.Time) Capacity {
		return Capacity{Healthy: 100_000, Holdback: At(steps, at), Guaranteed: 20_000}
	}, perGPU)
	if err != nil {
		t.Fatal(err)
	}
	if len(months) < 6 || len(months) > 7 || !months[0].Start.Equal(pred.Start()) {
		t.Fatalf("Sellable gave %d months from %v, want 6 or 7 from the forecast's start %v", len(months), months[0].Start, pred.Start())
	}
	var hours, exceed float64
	for i, m := range months {
		if i > 0 && (m.Start.Day() != 1 || m.Start.Hour() != 0 || !m.Start.After(months[i-1].Start) || m.Start.Month() == months[i-1].Start.Month()) {
			t.Errorf("month %d starts %v after %v: want one row per calendar month", i, m.Start, months[i-1].Start)
		}
		if m.SellableGPUs != max(100_000-m.HoldbackGPUs-20_000, 0) || m.SellablePower != perGPU*unit.Power(m.SellableGPUs) {
			t.Errorf("month %v: sellable %d GPUs (%v) from healthy %d, holdback %d, guaranteed %d", m.Start, m.SellableGPUs, m.SellablePower, m.HealthyGPUs, m.HoldbackGPUs, m.GuaranteedGPUs)
		}
		exceed += m.ExceedHours
	}
	hours = float64(pred.Hours())
	// A monthly peak of the P95 exceeds most hours' P95: well under 5%.
	if frac := exceed / hours; frac <= 0 || frac > 0.05 {
		t.Errorf("expected share of hours over a P95-peak holdback = %.4f, want in (0, 0.05]", frac)
	}

	median := pred.MustQuantile(forecast.P50)
	months, _ = Sellable(pred, func(at time.Time) Capacity {
		v, _ := median.At(at)
		return Capacity{Healthy: 100_000, Holdback: int64(math.Round(v))}
	}, perGPU)
	exceed = 0
	for _, m := range months {
		exceed += m.ExceedHours
	}
	if frac := exceed / hours; math.Abs(frac-0.5) > 0.03 {
		t.Errorf("expected share of hours over a median holdback = %.3f, want 0.5 ± 0.03", frac)
	}
}

// TestTailMonotone checks the risk integral on random quantile paths: a
// higher holdback is never riskier, and the risk is within its bounds.
func TestTailMonotone(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		paths := make([]forecast.Hourly, len(riskLevels))
		v := rapid.Float64Range(0, 1000).Draw(t, "q50")
		for i := range paths {
			if i > 0 {
				v += rapid.Float64Range(0, 100).Draw(t, "step")
			}
			paths[i] = forecast.Hourly{GPUs: []float64{v}}
		}
		a := rapid.Float64Range(0, 3000).Draw(t, "a")
		b := rapid.Float64Range(a, 3000).Draw(t, "b")
		pa, ea := tail(paths, 0, a)
		pb, eb := tail(paths, 0, b)
		if pb > pa+1e-12 || eb > ea+1e-9 {
			t.Fatalf("holdback %.2f: P=%.4f E=%.2f; higher %.2f: P=%.4f E=%.2f", a, pa, ea, b, pb, eb)
		}
		if pa < 0 || pa > 1 || ea < 0 {
			t.Fatalf("tail(%.2f) = %.4f, %.2f out of bounds", a, pa, ea)
		}
	})
}
