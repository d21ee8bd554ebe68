package forecast_test

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/forecast"
)

// TestSynthDistribution checks that the generated values have the
// distribution Synth.Quantile claims: the share of hours at or below each
// true quantile is the quantile.
func TestSynthDistribution(t *testing.T) {
	t.Parallel()
	for _, noise := range []forecast.Noise{
		{Dist: forecast.Normal, SD: 100},
		{Dist: forecast.Laplace, SD: 100, AR: 0.5},
		{Dist: forecast.StudentT, Nu: 3, SD: 100, AR: 0.9},
	} {
		s := forecast.Synth{Start: monday, Hours: 20000, Seed: 1, Base: 5000, TrendPerYear: -500, Daily: 300, Weekend: 400, Noise: noise}
		points := generate(t, s)
		for _, q := range []float64{0.01, 0.1, 0.5, 0.9, 0.95, 0.99} {
			// The noise's quantile, the same at every hour.
			v, err := s.Quantile(monday, q)
			if err != nil {
				t.Fatal(err)
			}
			v -= s.Expected(monday)
			below := 0
			for _, p := range points {
				if p.GPUs-s.Expected(p.At) <= v {
					below++
				}
			}
			// AR 0.9 leaves about 20000 × 0.1/1.9 ≈ 1000 independent hours.
			share := float64(below) / float64(len(points))
			if math.Abs(share-q) > 4*math.Sqrt(q*(1-q)/1000) {
				t.Errorf("%v noise: %.4f of the hours at or below the true q%v", noise.Dist, share, q)
			}
		}
	}
}

func TestSynthDeterministic(t *testing.T) {
	t.Parallel()
	s := story(2000, 42, forecast.Bursts{PerWeek: 3, Hours: 6, GPUs: 8000})
	s.Missing = 0.1
	a, b := generate(t, s), generate(t, s)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different series (-first +second):\n%s", diff)
	}
	s.Seed++
	if c := generate(t, s); cmp.Equal(a, c) {
		t.Error("another seed, same series")
	}
}

// TestSynthStreams turns bursts and gaps on and off: the noise stays the
// same, bursts only add, gaps only remove.
func TestSynthStreams(t *testing.T) {
	t.Parallel()
	plain := story(3000, 8, forecast.Bursts{})
	base := generate(t, plain)
	bursty := plain
	bursty.Bursts = forecast.Bursts{PerWeek: 5, Hours: 10, GPUs: 20000}
	withBursts := generate(t, bursty)
	raised := 0
	for i := range base {
		switch d := withBursts[i].GPUs - base[i].GPUs; {
		case d < -1e-6:
			t.Fatalf("hour %d: a burst took %.1f GPUs away", i, -d)
		case d > 0:
			raised++
		}
	}
	// 5 bursts a week of about 10 hours: some 30% of the hours.
	if share := float64(raised) / float64(len(base)); share < 0.15 || share > 0.5 {
		t.Errorf("bursts raised %.2f of the hours, want about 0.3", share)
	}
	holey := plain
	holey.Missing = 0.3
	kept := generate(t, holey)
	byHour := map[time.Time]float64{}
	for _, p := range base {
		byHour[p.At] = p.GPUs
	}
	for _, p := range kept {
		if byHour[p.At] != p.GPUs {
			t.Fatalf("%s: %.1f with gaps, %.1f without", p.At, p.GPUs, byHour[p.At])
		}
	}
	if share := 1 - float64(len(kept))/float64(len(base)); math.Abs(share-0.3) > 0.05 {
		t.Errorf("%.2f of the hours missing, want 0.3", share)
	}
}

func TestSynthClampsAtZero(t *testing.T) {
	t.Parallel()
	s := forecast.Synth{Start: monday, Hours: 500, Base: 10, Noise: forecast.Noise{SD: 100}}
	for _, p := range generate(t, s) {
		if p.GPUs < 0 {
			t.Fatalf("%s: %v GPUs", p.At, p.GPUs)
		}
	}
}
