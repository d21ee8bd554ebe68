package forecast

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/neocloud/neocloud/internal/valid"
)

// Quantiles a holdback policy usually picks.
const (
	P50 = 0.50
	P90 = 0.90
	P95 = 0.95
	P99 = 0.99
)

const (
	// bucketSamples is about how many errors each horizon bucket keeps.
	bucketSamples = 4096
	// minBucketSamples is the fewest errors a bucket needs to count; the
	// horizons past the last bucket that has them are extrapolated.
	minBucketSamples = 64
	// defaultGrowth is the exponent of the widening past the last bucket
	// when the errors cannot tell it: the square root of a random walk.
	defaultGrowth = 0.5
	maxGrowth     = 1.0
)

// errModel is the empirical distribution of the model's errors (actual
// minus forecast) by horizon. Bucket k holds the errors of forecasts
// 2^k to 2^(k+1)-1 hours ahead, replayed from origins all along the
// history after its warm-up with the fitted parameters.
type errModel struct {
	centers []float64   // geometric mean horizon of each bucket's errors, increasing
	errs    [][]float64 // each bucket's errors, sorted
	// growth is the exponent of the widening past the last bucket: the
	// spread at h is the last bucket's × (h/center)^growth.
	growth float64
}

func newErrModel(f *filter, p Params) errModel {
	n := len(f.y)
	first := f.burn - 1 // the first origin: the state after the warm-up
	maxH := n - 1 - first
	sums := make([]float64, maxH+1) // φ + φ² + ... + φ^h
	ars := make([]float64, maxH+1)  // λ^h
	ars[0] = 1
	for h := 1; h <= maxH; h++ {
		sums[h] = sums[h-1]*p.Damping + p.Damping
		ars[h] = ars[h-1] * p.AR
	}
	var m errModel
	for lo := 1; lo <= maxH; lo *= 2 {
		hi := min(2*lo-1, maxH)
		// Pairs (origin, horizon) available: origins first..n-1-h.
		pairs := 0
		for h := lo; h <= hi; h++ {
			pairs += n - h - first
		}
		// Thin the horizons to at most 64 and the origins to about
		// bucketSamples pairs in all; an origin stride coprime with 168
		// visits every hour of the week.
		hStep := max(1, (hi-lo+1)/64)
		nh := (hi-lo)/hStep + 1
		oStep := max(1, pairs/max(1, (hi-lo+1))*nh/bucketSamples)
		for gcd(oStep, week) != 1 {
			oStep++
		}
		var errs []float64
		logSum := 0.0
		for h := lo; h <= hi; h += hStep {
			k := len(errs)
			for o := first + h%oStep; o+h < n; o += oStep {
				y := f.y[o+h]
				if math.IsNaN(y) {
					continue
				}
				errs = append(errs, y-f.forecast(o, h, sums[h], ars[h]))
			}
			logSum += float64(len(errs)-k) * math.Log(float64(h))
		}
		if len(errs) < minBucketSamples {
			break
		}
		slices.Sort(errs)
		m.errs = append(m.errs, errs)
		m.centers = append(m.centers, math.Exp(logSum/float64(len(errs))))
	}
	m.growth = m.fitGrowth()
	return m
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// fitGrowth fits spread ∝ h^growth by least squares in logs over the last
// four buckets a day ahead or more, the spread being the widened P10-P90
// width. Shorter horizons are left out: there the AR correction, not the
// horizon, shapes the errors.
func (m *errModel) fitGrowth() float64 {
	hi, lo := m.levels(0.9), m.levels(0.1)
	var xs, ys []float64
	for k := len(m.centers) - 1; k >= 0 && len(xs) < 4; k-- {
		s := hi[k] - lo[k]
		if m.centers[k] < day || s <= 0 {
			continue
		}
		xs = append(xs, math.Log(m.centers[k]))
		ys = append(ys, math.Log(s))
	}
	if len(xs) < 2 {
		if len(m.errs) > 0 && hi[len(hi)-1] == lo[len(lo)-1] {
			return 0 // no spread at all: a series the model fits exactly
		}
		return defaultGrowth
	}
	var xm, ym float64
	for i := range xs {
		xm += xs[i]
		ym += ys[i]
	}
	xm /= float64(len(xs))
	ym /= float64(len(xs))
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - xm) * (ys[i] - ym)
		sxx += (xs[i] - xm) * (xs[i] - xm)
	}
	if sxx == 0 {
		return defaultGrowth
	}
	return min(max(sxy/sxx, 0), maxGrowth)
}

// levels returns, per bucket, the q-quantile of the errors as the bucket's
// median plus a deviation from it that never narrows with the horizon: for
// q above one half the largest deviation of this bucket and all shorter
// ones, below one half the most negative. Each deviation is monotone in q,
// so the levels are too.
func (m *errModel) levels(q float64) []float64 {
	out := make([]float64, len(m.errs))
	var dev float64
	for k, errs := range m.errs {
		med := quantile(errs, 0.5)
		d := quantile(errs, q) - med
		switch {
		case k == 0:
			dev = d
		case q >= 0.5:
			dev = max(dev, d)
		default:
			dev = min(dev, d)
		}
		out[k] = med + dev
	}
	return out
}

// offsets returns the q-quantile of the error of each of the first hours
// ahead: piecewise linear in log h between the bucket centres, flat before
// the first, and past the last the last bucket's median plus its deviation
// widened by (h/center)^growth.
func (m *errModel) offsets(q float64, hours int) []float64 {
	out := make([]float64, hours)
	if len(m.errs) == 0 {
		return out
	}
	lv := m.levels(q)
	last := len(lv) - 1
	med := quantile(m.errs[last], 0.5)
	dev := lv[last] - med
	c := m.centers
	k := 0
	for i := range out {
		h := float64(i + 1)
		switch {
		case h <= c[0]:
			out[i] = lv[0]
		case h >= c[last]:
			out[i] = med + dev*math.Pow(h/c[last], m.growth)
		default:
			for c[k+1] < h {
				k++
			}
			// Weights rather than lv[k] + t·(lv[k+1]-lv[k]), which may
			// round the wrong way: each term is monotone in q, so the sum is.
			t := (math.Log(h) - math.Log(c[k])) / (math.Log(c[k+1]) - math.Log(c[k]))
			out[i] = (1-t)*lv[k] + t*lv[k+1]
		}
	}
	return out
}

// quantile is the q-quantile of sorted xs, interpolating linearly between
// order statistics (Hyndman and Fan's type 7, R's default). It is monotone
// in q, to the last bit: the interpolation is kept between its two order
// statistics, which rounding alone would not promise.
func quantile(xs []float64, q float64) float64 {
	pos := q * float64(len(xs)-1)
	i := int(pos)
	if i >= len(xs)-1 {
		return xs[len(xs)-1]
	}
	return min(xs[i]+(pos-float64(i))*(xs[i+1]-xs[i]), xs[i+1])
}

// Prediction is a forecast of the hours after a history: the model's point
// forecast and, around it, quantiles of the empirical error distribution at
// each horizon. It is immutable and safe for concurrent use.
type Prediction struct {
	start time.Time
	point []float64 // not clamped at zero
	errs  *errModel
}

// Predict forecasts the hours hours after the history, 1 to MaxHorizon (36
// months). Invalid hours return a *valid.Error.
func (m *Model) Predict(hours int) (*Prediction, error) {
	if hours < 1 || hours > MaxHorizon {
		var issues valid.Error
		issues.Add("hours", hours, "must be between 1 and %d (36 months)", MaxHorizon)
		return nil, issues.Err()
	}
	p := &Prediction{start: m.end, point: make([]float64, hours), errs: &m.errs}
	sum, ar := 0.0, 1.0
	for i := range p.point {
		h := i + 1
		sum = sum*m.params.Damping + m.params.Damping
		ar *= m.params.AR
		p.point[i] = m.level + m.trend*sum + m.daily[(h-1)%day] + m.weekly[(h-1)%week] + ar*m.lastErr
	}
	return p, nil
}

// Start returns the first hour forecast.
func (p *Prediction) Start() time.Time { return p.start }

// Hours returns the number of hours forecast.
func (p *Prediction) Hours() int { return len(p.point) }

// Point returns the model's point forecast (its conditional mean), clamped
// at zero.
func (p *Prediction) Point() Hourly {
	out := make([]float64, len(p.point))
	for i, v := range p.point {
		out[i] = max(v, 0)
	}
	return Hourly{Start: p.start, GPUs: out}
}

// Quantile returns the q-quantile forecast of every hour, clamped at zero:
// the point forecast plus the q-quantile of the errors at that horizon (see
// the package documentation). At every hour a higher q never gives a lower
// value, and a quantile's distance from the median never shrinks as the
// horizon grows. q must lie in (0, 1); otherwise it returns a *valid.Error.
func (p *Prediction) Quantile(q float64) (Hourly, error) {
	if err := checkQuantile("q", q); err != nil {
		return Hourly{}, err
	}
	out := p.errs.offsets(q, len(p.point))
	for i, v := range p.point {
		out[i] = max(v+out[i], 0)
	}
	return Hourly{Start: p.start, GPUs: out}, nil
}

// MustQuantile is Quantile for a q known to be valid, such as P95; it
// panics otherwise.
func (p *Prediction) MustQuantile(q float64) Hourly {
	h, err := p.Quantile(q)
	if err != nil {
		panic(fmt.Sprintf("forecast: %v", err))
	}
	return h
}
