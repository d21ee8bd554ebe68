package forecast

import (
	"math"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

var monday = time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC)

// drawSynth draws a synthetic series of two to five weeks with any shape
// the generator can make.
func drawSynth(t *rapid.T) Synth {
	base := rapid.Float64Range(0, 1e5).Draw(t, "base")
	s := Synth{
		Start:        monday.Add(time.Duration(rapid.IntRange(0, 500).Draw(t, "start")) * time.Hour),
		Hours:        rapid.IntRange(MinHistory, 5*week).Draw(t, "hours"),
		Seed:         rapid.Uint64().Draw(t, "seed"),
		Base:         base,
		TrendPerYear: rapid.Float64Range(-base, base).Draw(t, "trend"),
		Daily:        rapid.Float64Range(0, base/2).Draw(t, "daily"),
		PeakHour:     rapid.IntRange(0, 23).Draw(t, "peak"),
		Weekend:      rapid.Float64Range(-base/4, base/4).Draw(t, "weekend"),
		Noise: Noise{
			Dist: rapid.SampledFrom([]Dist{Normal, Laplace, StudentT}).Draw(t, "dist"),
			SD:   rapid.Float64Range(0, base/5).Draw(t, "sd"),
			Nu:   rapid.Float64Range(2.5, 30).Draw(t, "nu"),
			AR:   rapid.Float64Range(0, 0.95).Draw(t, "ar"),
		},
		Missing: rapid.Float64Range(0, 0.3).Draw(t, "missing"),
	}
	if rapid.Bool().Draw(t, "bursts") {
		s.Bursts = Bursts{
			PerWeek: rapid.Float64Range(0, 5).Draw(t, "bursts_per_week"),
			Hours:   rapid.Float64Range(1, 24).Draw(t, "bursts_hours"),
			GPUs:    rapid.Float64Range(0, base/3).Draw(t, "bursts_gpus"),
		}
	}
	return s
}

// drawModel fits a drawn series, with drawn parameters or a short search.
func drawModel(t *rapid.T) *Model {
	s := drawSynth(t)
	points, err := s.Generate()
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	if len(points) < MinHistory {
		t.Skip("too many hours missing")
	}
	opts := Options{MaxEvaluations: 40}
	if rapid.Bool().Draw(t, "given_params") {
		opts.Params = &Params{
			Level:   rapid.Float64Range(0, 1).Draw(t, "level"),
			Trend:   rapid.Float64Range(0, 1).Draw(t, "trend_weight"),
			Daily:   rapid.Float64Range(0, 1).Draw(t, "daily_weight"),
			Weekly:  rapid.Float64Range(0, 1).Draw(t, "weekly_weight"),
			Damping: rapid.Float64Range(0.5, 1).Draw(t, "damping"),
			AR:      rapid.Float64Range(0, 0.99).Draw(t, "ar_weight"),
		}
	}
	m, err := Fit(points, opts)
	if err != nil {
		if s.Missing > 0 {
			t.Skip("too many hours missing")
		}
		t.Fatalf("fit: %v", err)
	}
	return m
}

// TestQuantilesMonotoneInQ: at every hour of every forecast, a higher q
// never gives a lower quantile, to the last bit.
func TestQuantilesMonotoneInQ(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		m := drawModel(t)
		p, err := m.Predict(rapid.IntRange(1, MaxHorizon).Draw(t, "horizon"))
		if err != nil {
			t.Fatal(err)
		}
		qs := []float64{P50, P90, P95, P99}
		for range 4 {
			qs = append(qs, rapid.Float64Range(1e-9, 1-1e-9).Draw(t, "q"))
		}
		slices.Sort(qs)
		var prev Hourly
		for i, q := range qs {
			h, err := p.Quantile(q)
			if err != nil {
				t.Fatal(err)
			}
			for j, v := range h.GPUs {
				if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("q %v, %d hours ahead: %v", q, j+1, v)
				}
				if i > 0 && v < prev.GPUs[j] {
					t.Fatalf("%d hours ahead: q %v gives %v, below q %v's %v", j+1, q, v, qs[i-1], prev.GPUs[j])
				}
			}
			prev = h
		}
	})
}

// TestQuantileSpreadWidens: before the clamp at zero, a quantile's distance
// from the median never shrinks as the horizon grows.
func TestQuantileSpreadWidens(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		m := drawModel(t)
		q := rapid.Float64Range(1e-6, 1-1e-6).Draw(t, "q")
		hours := rapid.IntRange(1, MaxHorizon).Draw(t, "horizon")
		med := m.errs.offsets(0.5, hours)
		off := m.errs.offsets(q, hours)
		sign := 1.0
		if q < 0.5 {
			sign = -1
		}
		for h := 1; h < hours; h++ {
			a, b := sign*(off[h-1]-med[h-1]), sign*(off[h]-med[h])
			if a < 0 {
				t.Fatalf("q %v, %d hours ahead: distance from the median has the wrong sign: %v", q, h, sign*a)
			}
			scale := 1e-9 * (1 + math.Abs(med[h]) + math.Abs(off[h]))
			if b < a-scale {
				t.Fatalf("q %v: distance from the median narrows from %v to %v at %d hours ahead", q, a, b, h+1)
			}
		}
	})
}

// TestSpansPartition: daily and monthly spans tile the path, each inside
// one calendar day or month, with the peak and average of its hours.
func TestSpansPartition(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		start := monday.Add(time.Duration(rapid.IntRange(-100000, 100000).Draw(t, "start")) * time.Hour)
		values := rapid.SliceOfN(rapid.Float64Range(0, 1e6), 0, 3000).Draw(t, "values")
		h := Hourly{Start: start, GPUs: values}
		for _, monthly := range []bool{false, true} {
			peaks, avgs := h.Daily(Peak), h.Daily(Average)
			if monthly {
				peaks, avgs = h.Monthly(Peak), h.Monthly(Average)
			}
			at := start
			i := 0
			for k, sp := range peaks {
				if !sp.Start.Equal(at) || !sp.End.After(sp.Start) || !avgs[k].Start.Equal(sp.Start) || !avgs[k].End.Equal(sp.End) {
					t.Fatalf("span %d [%s, %s) does not follow %s", k, sp.Start, sp.End, at)
				}
				last := sp.End.Add(-time.Hour)
				same := sp.Start.Year() == last.Year() && sp.Start.Month() == last.Month()
				if !monthly {
					same = same && sp.Start.Day() == last.Day()
				}
				if !same {
					t.Fatalf("span %d [%s, %s) crosses a calendar boundary", k, sp.Start, sp.End)
				}
				n := int(sp.End.Sub(sp.Start) / time.Hour)
				hours := values[i : i+n]
				if sp.GPUs != slices.Max(hours) {
					t.Fatalf("span %d peak %v, want %v", k, sp.GPUs, slices.Max(hours))
				}
				if avgs[k].GPUs > sp.GPUs*(1+1e-12) {
					t.Fatalf("span %d average %v above its peak %v", k, avgs[k].GPUs, sp.GPUs)
				}
				at, i = sp.End, i+n
			}
			if i != len(values) || (len(values) > 0 && !at.Equal(h.End())) {
				t.Fatalf("spans cover %d of %d hours", i, len(values))
			}
		}
	})
}
