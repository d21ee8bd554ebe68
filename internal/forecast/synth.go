package forecast

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/neocloud/neocloud/internal/valid"
)

// Dist is the distribution of a synthetic series' noise.
type Dist int

// Noise distributions, all centred on zero.
const (
	Normal   Dist = iota
	Laplace       // double exponential: heavier tails than Normal
	StudentT      // heavier still, with Noise.Nu degrees of freedom
)

func (d Dist) String() string {
	switch d {
	case Normal:
		return "normal"
	case Laplace:
		return "laplace"
	case StudentT:
		return "student-t"
	}
	return fmt.Sprintf("Dist(%d)", int(d))
}

// Noise is the random part of a synthetic series. Each hour's noise has
// exactly the distribution Dist with standard deviation SD; consecutive
// hours are correlated through a Gaussian copula: a latent standard normal
// AR(1) process with lag-one correlation AR is mapped through the normal
// CDF and Dist's quantile function.
type Noise struct {
	Dist Dist
	SD   float64 // GPUs, >= 0
	Nu   float64 // degrees of freedom of StudentT, > 2
	AR   float64 // in [0, 1)
}

// Bursts are extra demand that comes and goes: each hour a burst starts
// with probability PerWeek/168, lasts an exponential number of hours with
// mean Hours (rounded up) and adds an exponential number of GPUs with mean
// GPUs for its duration. Bursts overlap freely.
type Bursts struct {
	PerWeek float64 // in [0, 168]
	Hours   float64 // >= 1 when PerWeek > 0
	GPUs    float64 // >= 0
}

// Synth describes a synthetic hourly demand series with a known
// distribution: a straight trend, a daily cycle, a weekend dip, noise and
// optional bursts, in GPUs. The same Synth, seed included, always generates
// the same series.
//
// The simulator's story, demand falling from 180k GPUs by 30k a year with a
// daytime peak, quieter weekends and bursts, reads:
//
//	forecast.Synth{Start: t, Hours: 8760, Seed: 7, Base: 180000, TrendPerYear: -30000,
//		Daily: 12000, PeakHour: 15, Weekend: 15000,
//		Noise:  forecast.Noise{SD: 2500, AR: 0.8},
//		Bursts: forecast.Bursts{PerWeek: 2, Hours: 12, GPUs: 10000}}
type Synth struct {
	Start time.Time // first hour, on a whole UTC hour
	Hours int       // 1 to MaxHistory+MaxHorizon
	Seed  uint64

	Base         float64 // GPUs at Start, before cycles, noise and bursts
	TrendPerYear float64 // GPUs added per 365 days; negative for a falling trend
	Daily        float64 // amplitude of the daily cosine, GPUs (half of peak to trough)
	PeakHour     int     // UTC hour of the daily peak, 0-23
	Weekend      float64 // GPUs less on Saturdays and Sundays (UTC)

	Noise  Noise
	Bursts Bursts
	// Missing is the probability that an hour is left out of Generate's
	// output, in [0, 0.5): gaps for the forecast to cope with.
	Missing float64
}

// Validate returns a *valid.Error naming each field and rule broken, or nil.
func (s Synth) Validate() error {
	var issues valid.Error
	finite := func(field string, v float64) bool {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			issues.Add(field, v, "must be a finite number")
			return false
		}
		return true
	}
	if s.Start.IsZero() || !s.Start.Equal(s.Start.Truncate(time.Hour)) {
		issues.Add("start", s.Start.UTC().Format(time.RFC3339Nano), "must be a whole UTC hour")
	}
	if s.Hours < 1 || s.Hours > MaxHistory+MaxHorizon {
		issues.Add("hours", s.Hours, "must be between 1 and %d", MaxHistory+MaxHorizon)
	}
	if finite("base", s.Base) && s.Base < 0 {
		issues.Add("base", s.Base, "must not be negative")
	}
	finite("trend_per_year", s.TrendPerYear)
	if finite("daily", s.Daily) && s.Daily < 0 {
		issues.Add("daily", s.Daily, "must not be negative")
	}
	if s.PeakHour < 0 || s.PeakHour > 23 {
		issues.Add("peak_hour", s.PeakHour, "must be an hour of the day, 0 to 23")
	}
	finite("weekend", s.Weekend)
	switch s.Noise.Dist {
	case Normal, Laplace:
	case StudentT:
		if !(s.Noise.Nu > 2) || math.IsInf(s.Noise.Nu, 0) {
			issues.Add("noise.nu", s.Noise.Nu, "must be a finite number above 2 (the variance is infinite below)")
		}
	default:
		issues.Add("noise.dist", int(s.Noise.Dist), "must be Normal, Laplace or StudentT")
	}
	if finite("noise.sd", s.Noise.SD) && s.Noise.SD < 0 {
		issues.Add("noise.sd", s.Noise.SD, "must not be negative")
	}
	if !(s.Noise.AR >= 0 && s.Noise.AR < 1) {
		issues.Add("noise.ar", s.Noise.AR, "must be at least 0 and less than 1")
	}
	if !(s.Bursts.PerWeek >= 0 && s.Bursts.PerWeek <= week) {
		issues.Add("bursts.per_week", s.Bursts.PerWeek, "must be between 0 and 168")
	}
	if s.Bursts.PerWeek > 0 && !(s.Bursts.Hours >= 1 && s.Bursts.Hours <= MaxHistory) {
		issues.Add("bursts.hours", s.Bursts.Hours, "must be between 1 and %d when bursts.per_week is set", MaxHistory)
	}
	if finite("bursts.gpus", s.Bursts.GPUs) && s.Bursts.GPUs < 0 {
		issues.Add("bursts.gpus", s.Bursts.GPUs, "must not be negative")
	}
	if !(s.Missing >= 0 && s.Missing < 0.5) {
		issues.Add("missing", s.Missing, "must be at least 0 and less than 0.5")
	}
	return issues.Err()
}

// Expected returns the series' value at t without noise or bursts: the
// trend, the daily cycle and the weekend dip.
func (s Synth) Expected(t time.Time) float64 {
	t = t.UTC()
	v := s.Base + s.TrendPerYear*t.Sub(s.Start).Hours()/(365*day)
	v += s.Daily * math.Cos(2*math.Pi*float64(t.Hour()-s.PeakHour)/day)
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		v -= s.Weekend
	}
	return v
}

// Quantile returns the true q-quantile of the series at t: Expected(t) plus
// the noise's quantile. It is known only without bursts, and ignores the
// clamp at zero (choose a Base far enough above the noise). It returns a
// *valid.Error when q is outside (0, 1), s is invalid or has bursts.
func (s Synth) Quantile(t time.Time, q float64) (float64, error) {
	if err := checkQuantile("q", q); err != nil {
		return 0, err
	}
	if err := s.Validate(); err != nil {
		return 0, err
	}
	if s.Bursts.PerWeek > 0 && s.Bursts.GPUs > 0 {
		var issues valid.Error
		issues.Add("bursts.per_week", s.Bursts.PerWeek, "must be 0: quantiles are known only without bursts")
		return 0, issues.Err()
	}
	return s.Expected(t) + s.Noise.quantile(q), nil
}

// quantile is the noise's quantile function.
func (n Noise) quantile(u float64) float64 {
	if n.SD == 0 {
		return 0
	}
	switch n.Dist {
	case Laplace:
		b := n.SD / math.Sqrt2
		if u < 0.5 {
			return b * math.Log(2*u)
		}
		return -b * math.Log(2*(1-u))
	case StudentT:
		return distuv.StudentsT{Mu: 0, Sigma: n.SD * math.Sqrt((n.Nu-2)/n.Nu), Nu: n.Nu}.Quantile(u)
	default:
		return n.SD * math.Sqrt2 * math.Erfinv(2*u-1)
	}
}

// fromLatent maps a standard normal z to the noise with the same rank. The
// tail is taken on the side where the normal CDF is small, so that it keeps
// its precision (Φ(8) rounds to 1, Φ(-8) does not round to 0).
func (n Noise) fromLatent(z float64) float64 {
	if n.Dist == Normal {
		return n.SD * z
	}
	if z > 0 {
		return -n.quantile(0.5 * math.Erfc(z/math.Sqrt2))
	}
	return n.quantile(0.5 * math.Erfc(-z/math.Sqrt2))
}

// Generate returns the series, one point per hour from Start, less the
// missing hours, clamped at zero. Noise, bursts and gaps draw from separate
// streams of the seed, so turning bursts or gaps on or off leaves the noise
// as it was. It returns s.Validate's error when s is invalid.
func (s Synth) Generate() ([]Point, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	noise := rand.New(rand.NewPCG(s.Seed, 1))
	bursts := rand.New(rand.NewPCG(s.Seed, 2))
	gaps := rand.New(rand.NewPCG(s.Seed, 3))
	start := s.Start.UTC()
	pStart := s.Bursts.PerWeek / week
	// ends holds the end hour and height of each burst under way.
	type burst struct {
		end  int
		gpus float64
	}
	var active []burst
	extra := 0.0
	z := noise.NormFloat64()
	rho := s.Noise.AR
	innov := math.Sqrt(1 - rho*rho)
	out := make([]Point, 0, s.Hours)
	for i := range s.Hours {
		if i > 0 {
			z = rho*z + innov*noise.NormFloat64()
		}
		// Bursts that end before this hour stop adding.
		kept := active[:0]
		for _, b := range active {
			if b.end > i {
				kept = append(kept, b)
			} else {
				extra -= b.gpus
			}
		}
		active = kept
		if pStart > 0 && bursts.Float64() < pStart {
			b := burst{
				end:  i + int(math.Ceil(bursts.ExpFloat64()*s.Bursts.Hours)),
				gpus: bursts.ExpFloat64() * s.Bursts.GPUs,
			}
			active = append(active, b)
			extra += b.gpus
		}
		if len(active) == 0 {
			extra = 0 // no drift from adding and taking away floats
		}
		missing := s.Missing > 0 && gaps.Float64() < s.Missing
		if missing {
			continue
		}
		t := start.Add(time.Duration(i) * time.Hour)
		v := s.Expected(t) + s.Noise.fromLatent(z) + extra
		out = append(out, Point{At: t, GPUs: max(v, 0)})
	}
	return out, nil
}
