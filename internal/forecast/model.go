package forecast

import (
	"fmt"
	"math"
	"time"

	"gonum.org/v1/gonum/optimize"

	"github.com/neocloud/neocloud/internal/valid"
)

// Params are the smoothing parameters of the double-seasonal Holt-Winters
// model. Each of the first four weighs the newest hour against the state
// carried so far: 0 never learns, 1 forgets everything older.
type Params struct {
	Level  float64 // α, in [0, 1]
	Trend  float64 // β, in [0, 1]
	Daily  float64 // γ, in [0, 1]: the 24-hour cycle
	Weekly float64 // ω, in [0, 1]: the 168-hour cycle
	// Damping is φ, in (0, 1]: the trend's contribution to each further
	// hour ahead shrinks by this factor, so a forecast adds at most
	// trend × φ/(1-φ) to the level however far ahead it looks.
	Damping float64
	// AR is λ, in [0, 1): the share of the last one-step error carried into
	// the next hour's forecast (fading as λ^h over h hours).
	AR float64
}

// TrendHalfLife returns the horizon at which the damped trend's hourly
// contribution has halved: ln 2 / -ln φ. It is infinite for φ = 1.
func (p Params) TrendHalfLife() time.Duration {
	if p.Damping >= 1 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(math.Ln2 / -math.Log(p.Damping) * float64(time.Hour))
}

func (p Params) validate(field string, issues *valid.Error) {
	unit := func(name string, v float64) {
		if !(v >= 0 && v <= 1) {
			issues.Add(field+"."+name, v, "must be between 0 and 1")
		}
	}
	unit("level", p.Level)
	unit("trend", p.Trend)
	unit("daily", p.Daily)
	unit("weekly", p.Weekly)
	if !(p.Damping > 0 && p.Damping <= 1) {
		issues.Add(field+".damping", p.Damping, "must be greater than 0 and at most 1")
	}
	if !(p.AR >= 0 && p.AR < 1) {
		issues.Add(field+".ar", p.AR, "must be at least 0 and less than 1")
	}
}

// Defaults of Options.
const (
	// DefaultMinTrendHalfLife and DefaultMaxTrendHalfLife bound the fitted
	// damping. One-step errors say little about how long a trend lasts, so
	// the bounds decide how much trend a long forecast carries: at most the
	// current hourly trend × MaxTrendHalfLife/ln 2, about 1.4 years' worth.
	DefaultMinTrendHalfLife = 7 * 24 * time.Hour
	DefaultMaxTrendHalfLife = 365 * 24 * time.Hour
	// DefaultMaxEvaluations caps the objective evaluations of one fit.
	DefaultMaxEvaluations = 600
)

// Options tune Fit. The zero value fits every parameter with the defaults.
type Options struct {
	// Params, when not nil, are used as given instead of being fitted.
	Params *Params
	// MinTrendHalfLife and MaxTrendHalfLife bound the fitted damping
	// through the trend's half-life (see Params.TrendHalfLife); zero means
	// the default.
	MinTrendHalfLife, MaxTrendHalfLife time.Duration
	// MaxEvaluations caps the evaluations of the one-step error while
	// fitting; zero means DefaultMaxEvaluations.
	MaxEvaluations int
}

func (o Options) withDefaults() Options {
	if o.MinTrendHalfLife == 0 {
		o.MinTrendHalfLife = DefaultMinTrendHalfLife
	}
	if o.MaxTrendHalfLife == 0 {
		o.MaxTrendHalfLife = DefaultMaxTrendHalfLife
	}
	if o.MaxEvaluations == 0 {
		o.MaxEvaluations = DefaultMaxEvaluations
	}
	return o
}

func (o Options) validate(field string, issues *valid.Error) {
	if o.Params != nil {
		o.Params.validate(field+".params", issues)
	}
	if o.MinTrendHalfLife < 0 || (o.MinTrendHalfLife > 0 && o.MinTrendHalfLife < time.Hour) {
		issues.Add(field+".min_trend_half_life", o.MinTrendHalfLife, "must be zero (the default) or at least 1h")
	}
	if o.MaxTrendHalfLife < 0 || (o.MaxTrendHalfLife > 0 && o.MaxTrendHalfLife < time.Hour) {
		issues.Add(field+".max_trend_half_life", o.MaxTrendHalfLife, "must be zero (the default) or at least 1h")
	}
	if d := o.withDefaults(); d.MaxTrendHalfLife < d.MinTrendHalfLife {
		issues.Add(field+".max_trend_half_life", d.MaxTrendHalfLife, "must be at least min_trend_half_life (%s)", d.MinTrendHalfLife)
	}
	if o.MaxEvaluations < 0 {
		issues.Add(field+".max_evaluations", o.MaxEvaluations, "must not be negative")
	}
}

// Model is a double-seasonal Holt-Winters model fitted to one history, with
// the distribution of its errors at each horizon. It is immutable and safe
// for concurrent use.
type Model struct {
	params      Params
	start, end  time.Time
	rmse        float64
	evaluations int

	// The state after the last hour of history.
	level, trend, lastErr float64
	// daily[(h-1)%24] and weekly[(h-1)%168] are the seasonal components
	// of the hour h hours after the history.
	daily  [day]float64
	weekly [week]float64

	errs errModel
}

// Params returns the model's parameters, fitted or given.
func (m *Model) Params() Params { return m.params }

// End returns the first hour after the history: the first hour Predict
// forecasts.
func (m *Model) End() time.Time { return m.end }

// Start returns the first hour of the history.
func (m *Model) Start() time.Time { return m.start }

// RMSE returns the root mean squared one-step-ahead error over the history
// after its warm-up, in GPUs.
func (m *Model) RMSE() float64 { return m.rmse }

// Evaluations returns how many times the one-step error was evaluated while
// fitting: 0 when the parameters were given.
func (m *Model) Evaluations() int { return m.evaluations }

// Fit fits the model to an hourly history of internal demand in GPUs. The
// history needs at least MinHistory hourly points (two weeks) on whole UTC
// hours, strictly increasing, finite and not negative; hours without a
// point are gaps, at most half of the span. The parameters minimise the
// mean squared one-step-ahead error unless opts.Params gives them. Invalid
// input returns a *valid.Error naming each field and rule broken; so does a
// history with too few observed hours after its warm-up to measure the
// forecast's errors.
func Fit(history []Point, opts Options) (*Model, error) {
	var issues valid.Error
	opts.validate("options", &issues)
	if err := issues.Err(); err != nil {
		return nil, err
	}
	s, err := newSeries("history", history)
	if err != nil {
		return nil, err
	}
	return fit(s, opts.withDefaults(), nil)
}

// fit fits a valid series; start, when not nil, is where the search for
// parameters begins. It fails when too few hours follow the warm-up to
// tell the errors.
func fit(s series, opts Options, start *Params) (*Model, error) {
	f := newFilter(s.y)
	m := &Model{start: s.start, end: s.end()}
	if opts.Params != nil {
		m.params = *opts.Params
	} else {
		m.params, m.evaluations = f.optimize(opts, start)
	}
	m.setState(f)
	m.errs = newErrModel(f, m.params)
	if len(m.errs.errs) == 0 {
		var issues valid.Error
		issues.Add("history", fmt.Sprintf("%d of %d hours observed", s.observed, len(s.y)),
			"need at least %d observed hours after the first %d (the warm-up) to measure the forecast's errors", minBucketSamples, f.burn)
		return nil, issues.Err()
	}
	return m, nil
}

// advance returns a model with m's parameters and error distribution and
// the state after s, a longer history that m's is the start of.
func (m *Model) advance(s series) *Model {
	f := newFilter(s.y)
	a := &Model{params: m.params, start: s.start, end: s.end(), errs: m.errs}
	a.setState(f)
	return a
}

// setState runs f with m's parameters and keeps the state after the last
// hour and the one-step RMSE.
func (m *Model) setState(f *filter) {
	m.rmse = math.Sqrt(f.run(m.params))
	n := len(f.y)
	m.level, m.trend, m.lastErr = f.l[n-1], f.b[n-1], f.e[n-1]
	copy(m.daily[:], f.d[n:n+day])
	copy(m.weekly[:], f.w[n:n+week])
}

// filter runs the model over a history, keeping the state after every hour
// so that forecasts from any origin can be replayed.
type filter struct {
	y    []float64
	burn int // hours of warm-up: the initialisation window
	init initial

	// l, b, e: level, trend and one-step error after hour t. d[t+24] and
	// w[t+168] are the daily and weekly components of hour t, updated at t;
	// the first 24 and 168 entries are the initial ones.
	l, b, e []float64
	d, w    []float64
}

func newFilter(y []float64) *filter {
	n := len(y)
	// Initialise over up to four weeks, leaving at least half the history
	// (and at least a week) to the errors.
	weeks := min(8, max(1, n/week/2))
	f := &filter{
		y:    y,
		burn: weeks * week,
		l:    make([]float64, n),
		b:    make([]float64, n),
		e:    make([]float64, n),
		d:    make([]float64, n+day),
		w:    make([]float64, n+week),
	}
	f.init = initialize(y[:f.burn])
	return f
}

// initial is the state before the first hour.
type initial struct {
	level, trend float64
	daily        [day]float64
	weekly       [week]float64
}

// initialize estimates the starting state from the first weeks: a straight
// line through the weekly means (whole weeks, so that the cycles cancel;
// flat over a single week), then the mean deviation from it at each hour of
// the day, then what is left at each hour of the week.
func initialize(y []float64) initial {
	var in initial
	var cs, ms []float64 // centre hour and mean of each week with data
	for k := 0; k+week <= len(y); k += week {
		var sum, n float64
		for _, v := range y[k : k+week] {
			if !math.IsNaN(v) {
				sum += v
				n++
			}
		}
		if n > 0 {
			cs = append(cs, float64(k)+(week-1)/2.0)
			ms = append(ms, sum/n)
		}
	}
	var cm, mm float64
	for i := range cs {
		cm += cs[i]
		mm += ms[i]
	}
	cm /= float64(len(cs))
	mm /= float64(len(cs))
	var sxy, sxx float64
	for i := range cs {
		sxy += (cs[i] - cm) * (ms[i] - mm)
		sxx += (cs[i] - cm) * (cs[i] - cm)
	}
	if sxx > 0 {
		in.trend = sxy / sxx
	}
	line := func(t int) float64 { return mm + in.trend*(float64(t)-cm) }
	in.level = line(-1)

	var dsum, dn [day]float64
	for t, v := range y {
		if !math.IsNaN(v) {
			dsum[t%day] += v - line(t)
			dn[t%day]++
		}
	}
	for p := range in.daily {
		if dn[p] > 0 {
			in.daily[p] = dsum[p] / dn[p]
		}
	}
	center(in.daily[:])
	var wsum, wn [week]float64
	for t, v := range y {
		if !math.IsNaN(v) {
			wsum[t%week] += v - line(t) - in.daily[t%day]
			wn[t%week]++
		}
	}
	for p := range in.weekly {
		if wn[p] > 0 {
			in.weekly[p] = wsum[p] / wn[p]
		}
	}
	center(in.weekly[:])
	return in
}

// center shifts xs to sum to zero, so that the seasonal components leave
// the level to the level.
func center(xs []float64) {
	m := 0.0
	for _, x := range xs {
		m += x
	}
	m /= float64(len(xs))
	for i := range xs {
		xs[i] -= m
	}
}

// run filters the history with p (the equations are in the package
// documentation) and returns the mean squared one-step error, with the AR
// correction, over the observed hours after the warm-up.
func (f *filter) run(p Params) float64 {
	a, bt, g, om, phi, lam := p.Level, p.Trend, p.Daily, p.Weekly, p.Damping, p.AR
	l, b, e := f.init.level, f.init.trend, 0.0
	copy(f.d, f.init.daily[:])
	copy(f.w, f.init.weekly[:])
	d, w := f.d, f.w
	var sse float64
	var n int
	for t, y := range f.y {
		dp, wp := d[t], w[t]
		base := l + phi*b
		if y != y { // a gap
			e *= lam
			l, b = base, phi*b
			d[t+day], w[t+week] = dp, wp
		} else {
			err := y - (base + dp + wp)
			if t >= f.burn {
				adj := err - lam*e
				sse += adj * adj
				n++
			}
			e = err
			nl := a*(y-dp-wp) + (1-a)*base
			b = bt*(nl-l) + (1-bt)*phi*b
			l = nl
			d[t+day] = g*(y-nl-wp) + (1-g)*dp
			w[t+week] = om*(y-nl-dp) + (1-om)*wp
		}
		f.l[t], f.b[t], f.e[t] = l, b, e
	}
	if n == 0 {
		return 0
	}
	mse := sse / float64(n)
	if math.IsNaN(mse) || math.IsInf(mse, 0) {
		return math.MaxFloat64
	}
	return mse
}

// forecast returns the forecast of hour o+h made after hour o, without the
// clamp at zero; sum is the damped trend's multiplier φ+φ²+...+φ^h and arh
// is λ^h.
func (f *filter) forecast(o, h int, sum, arh float64) float64 {
	return f.l[o] + f.b[o]*sum + f.d[o+h-day*((h+day-1)/day)+day] + f.w[o+h-week*((h+week-1)/week)+week] + arh*f.e[o]
}

// bounds of the fitted parameters other than the damping. Smoothing
// weights above these make the hourly state chase noise (the trend most of
// all: its errors are multiplied by the horizon).
var (
	paramLo = [...]float64{0.001, 0, 0, 0, 0, 0}
	paramHi = [...]float64{0.9, 0.05, 0.5, 0.5, 1, 0.98}
)

// optimize fits the parameters by Nelder-Mead over an unbounded space
// mapped onto the bounds through a logistic, the damping through the log of
// its half-life. It returns the best parameters found and the number of
// evaluations.
func (f *filter) optimize(opts Options, start *Params) (Params, int) {
	loHL := opts.MinTrendHalfLife.Hours()
	hiHL := opts.MaxTrendHalfLife.Hours()
	toParams := func(x []float64) Params {
		var v [6]float64
		for i := range v {
			v[i] = paramLo[i] + (paramHi[i]-paramLo[i])*sigmoid(x[i])
		}
		hl := math.Exp(math.Log(loHL) + (math.Log(hiHL)-math.Log(loHL))*sigmoid(x[4]))
		return Params{Level: v[0], Trend: v[1], Daily: v[2], Weekly: v[3], Damping: math.Exp2(-1 / hl), AR: v[5]}
	}
	from := Params{Level: 0.1, Trend: 0.005, Daily: 0.05, Weekly: 0.05, AR: 0.5, Damping: math.Exp2(-1 / math.Sqrt(loHL*hiHL))}
	if start != nil {
		from = *start
	}
	x0 := []float64{
		logit((from.Level - paramLo[0]) / (paramHi[0] - paramLo[0])),
		logit((from.Trend - paramLo[1]) / (paramHi[1] - paramLo[1])),
		logit((from.Daily - paramLo[2]) / (paramHi[2] - paramLo[2])),
		logit((from.Weekly - paramLo[3]) / (paramHi[3] - paramLo[3])),
		logit((math.Log(-1/math.Log2(from.Damping)) - math.Log(loHL)) / (math.Log(hiHL) - math.Log(loHL))),
		logit((from.AR - paramLo[5]) / (paramHi[5] - paramLo[5])),
	}
	if loHL == hiHL {
		x0[4] = 0
	}
	evals := 0
	problem := optimize.Problem{Func: func(x []float64) float64 {
		evals++
		return f.run(toParams(x))
	}}
	settings := &optimize.Settings{
		FuncEvaluations: opts.MaxEvaluations,
		Converger:       &optimize.FunctionConverge{Relative: 1e-6, Iterations: 40},
	}
	res, err := optimize.Minimize(problem, x0, settings, &optimize.NelderMead{SimplexSize: 1})
	if err != nil || res == nil || len(res.X) != len(x0) {
		// Nelder-Mead reports no failure of its own; keep where it began
		// should the search stop before it moved.
		return toParams(x0), evals
	}
	return toParams(res.X), evals
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// logit is the inverse of sigmoid, kept finite at 0 and 1.
func logit(p float64) float64 {
	const eps = 1e-6
	if math.IsNaN(p) {
		return 0
	}
	p = min(max(p, eps), 1-eps)
	return math.Log(p / (1 - p))
}

// String formats the parameters for logs and reports.
func (p Params) String() string {
	return fmt.Sprintf("level=%.4g trend=%.4g daily=%.4g weekly=%.4g damping=%.8g (half-life %s) ar=%.4g",
		p.Level, p.Trend, p.Daily, p.Weekly, p.Damping, p.TrendHalfLife().Round(time.Hour), p.AR)
}
