package forecast

import (
	"fmt"
	"math"
	"time"

	"github.com/neocloud/neocloud/internal/valid"
)

// Backtest defaults.
const (
	DefaultBacktestHorizon = 7 * 24
	DefaultBacktestOrigins = 20
	// DefaultBacktestStep is 25 hours: coprime with the day and the week,
	// so that successive origins fall at every hour of the week.
	DefaultBacktestStep = 25
)

// BacktestConfig says how to roll the origin over a history.
type BacktestConfig struct {
	// Horizon is how many hours each origin forecasts, 1 to MaxHorizon;
	// zero means DefaultBacktestHorizon (a week).
	Horizon int
	// Origins is how many forecasts are made; zero means
	// DefaultBacktestOrigins.
	Origins int
	// Step is the hours between consecutive origins; zero means
	// DefaultBacktestStep.
	Step int
	// Quantiles are the quantiles scored, each in (0, 1); nil means P50,
	// P90, P95 and P99.
	Quantiles []float64
	// Options fit the model at each origin. Each refit starts its search
	// from the parameters of the previous one.
	Options Options
	// Refit is how often the model is fitted afresh: at every Refit-th
	// origin, from the first; zero or one means at every origin. Between
	// refits the parameters and the error distribution are kept and only
	// the state is brought up to each origin, so no origin sees a later
	// hour either way. A larger Refit makes a long backtest faster.
	Refit int
}

// Score is how one quantile fared in a backtest.
type Score struct {
	Q float64
	// Coverage is the fraction of actual hours at or below the forecast
	// quantile; a calibrated forecast has Coverage close to Q.
	Coverage float64
	// Pinball is the mean pinball (quantile) loss in GPUs:
	// q·(y-f) when y >= f, (1-q)·(f-y) otherwise.
	Pinball float64
}

// Report sums up a backtest.
type Report struct {
	Origins int // forecasts made
	Hours   int // actual hours compared, over all origins
	// First and Last are the first and last origins: the first hour each
	// of them forecast.
	First, Last time.Time
	Scores      []Score // one per quantile, in the order asked
	// MAPE is the mean absolute percentage error of the point forecast
	// over the actual hours above zero, as a fraction (0.05 is 5%).
	MAPE float64
	// MAE is the mean absolute error of the point forecast, in GPUs.
	MAE float64
}

// Backtest evaluates the forecast by rolling origin over a history. The
// last origin leaves Horizon hours of history after it; the others are Step
// hours apart before it. At each origin the model is fitted afresh to the
// history before it alone and forecasts Horizon hours, which are compared
// with the actual hours (gaps skipped). The history before the first origin
// must itself be a valid history (see Fit). Invalid input returns a
// *valid.Error naming each field and rule broken.
func Backtest(history []Point, cfg BacktestConfig) (Report, error) {
	var issues valid.Error
	cfg.Options.validate("options", &issues)
	if cfg.Horizon == 0 {
		cfg.Horizon = DefaultBacktestHorizon
	}
	if cfg.Origins == 0 {
		cfg.Origins = DefaultBacktestOrigins
	}
	if cfg.Step == 0 {
		cfg.Step = DefaultBacktestStep
	}
	if cfg.Quantiles == nil {
		cfg.Quantiles = []float64{P50, P90, P95, P99}
	}
	if cfg.Horizon < 1 || cfg.Horizon > MaxHorizon {
		issues.Add("horizon", cfg.Horizon, "must be between 1 and %d (36 months)", MaxHorizon)
	}
	if cfg.Origins < 1 || cfg.Origins > MaxHistory {
		issues.Add("origins", cfg.Origins, "must be between 1 and %d", MaxHistory)
	}
	if cfg.Step < 1 || cfg.Step > MaxHistory {
		issues.Add("step", cfg.Step, "must be between 1 and %d hours", MaxHistory)
	}
	if cfg.Refit < 0 {
		issues.Add("refit", cfg.Refit, "must not be negative")
	}
	for i, q := range cfg.Quantiles {
		if !(q > 0 && q < 1) {
			issues.Add(fmt.Sprintf("quantiles[%d]", i), q, "must be a probability strictly between 0 and 1")
		}
	}
	if err := issues.Err(); err != nil {
		return Report{}, err
	}
	s, err := newSeries("history", history)
	if err != nil {
		return Report{}, err
	}
	n := len(s.y)
	first := n - cfg.Horizon - (cfg.Origins-1)*cfg.Step
	if first < MinHistory {
		issues.Add("history", fmt.Sprintf("%d hours", n),
			"need at least %d hours: %d before the first origin, then %d origins %d hours apart and a horizon of %d hours after the last",
			MinHistory+cfg.Horizon+(cfg.Origins-1)*cfg.Step, MinHistory, cfg.Origins, cfg.Step, cfg.Horizon)
		return Report{}, issues.Err()
	}
	opts := cfg.Options.withDefaults()

	type acc struct{ below, loss float64 }
	accs := make([]acc, len(cfg.Quantiles))
	var r Report
	var ape, apeN, ae float64
	var m *Model
	for o := first; o+cfg.Horizon <= n; o += cfg.Step {
		hist := s.prefix(o)
		if 2*hist.observed < o || hist.observed < MinHistory {
			issues.Add("history", fmt.Sprintf("%d of %d hours observed before %s", hist.observed, o, hist.end().Format(time.RFC3339)),
				"the history before each origin needs at least %d points, at most half of its hours missing", MinHistory)
			return Report{}, issues.Err()
		}
		if m == nil || cfg.Refit <= 1 || r.Origins%cfg.Refit == 0 {
			var from *Params
			if m != nil {
				from = &m.params
			}
			if m, err = fit(hist, opts, from); err != nil {
				return Report{}, err
			}
		} else {
			m = m.advance(hist)
		}
		pred, err := m.Predict(cfg.Horizon)
		if err != nil {
			return Report{}, err
		}
		point := pred.Point().GPUs
		paths := make([][]float64, len(cfg.Quantiles))
		for j, q := range cfg.Quantiles {
			paths[j] = pred.MustQuantile(q).GPUs
		}
		for h, y := range s.y[o : o+cfg.Horizon] {
			if math.IsNaN(y) {
				continue
			}
			r.Hours++
			ae += math.Abs(y - point[h])
			if y > 0 {
				ape += math.Abs(y-point[h]) / y
				apeN++
			}
			for j, q := range cfg.Quantiles {
				f := paths[j][h]
				if y <= f {
					accs[j].below++
					accs[j].loss += (1 - q) * (f - y)
				} else {
					accs[j].loss += q * (y - f)
				}
			}
		}
		if r.Origins == 0 {
			r.First = hist.end()
		}
		r.Last = hist.end()
		r.Origins++
	}
	for j, q := range cfg.Quantiles {
		sc := Score{Q: q}
		if r.Hours > 0 {
			sc.Coverage = accs[j].below / float64(r.Hours)
			sc.Pinball = accs[j].loss / float64(r.Hours)
		}
		r.Scores = append(r.Scores, sc)
	}
	if r.Hours > 0 {
		r.MAE = ae / float64(r.Hours)
	}
	if apeN > 0 {
		r.MAPE = ape / apeN
	}
	return r, nil
}

// Score returns the score of quantile q, and false when q was not scored.
func (r Report) Score(q float64) (Score, bool) {
	for _, s := range r.Scores {
		if s.Q == q {
			return s, true
		}
	}
	return Score{}, false
}
