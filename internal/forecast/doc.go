// Package forecast forecasts a pool's internal demand in GPUs from its
// hourly history, with quantiles for horizons up to 36 months, and
// backtests the forecast by rolling origin. It is pure: no I/O, no clock;
// every result follows from its inputs alone.
//
// # Input
//
// A history is a slice of Points, one per UTC hour (At, GPUs), strictly
// increasing, finite and not negative. Hours without a point are gaps: the
// model carries its state over them. Fit needs at least MinHistory points
// (two weeks), at most half of the hours spanned missing, and a span of at
// most MaxHistory hours. Bad input is answered with a *valid.Error whose
// issues name the field ("history[12].gpus"), the value and the rule.
//
// # Method
//
// The model is Taylor's additive double-seasonal Holt-Winters (J. W.
// Taylor, "Short-term electricity demand forecasting using double seasonal
// exponential smoothing", JORS 54, 2003) with a damped trend: a level l, a
// trend b damped by φ each hour ahead, a daily component d (24 hours), a
// weekly one w (168 hours), and an AR(1) correction of the last one-step
// error e. For an observed hour t, with base = l(t-1) + φ b(t-1):
//
//	e(t) = y(t) - (base + d(t-24) + w(t-168))
//	l(t) = α (y(t) - d(t-24) - w(t-168)) + (1-α) base
//	b(t) = β (l(t) - l(t-1)) + (1-β) φ b(t-1)
//	d(t) = γ (y(t) - l(t) - w(t-168)) + (1-γ) d(t-24)
//	w(t) = ω (y(t) - l(t) - d(t-24)) + (1-ω) w(t-168)
//
// and the forecast h hours after hour t is
//
//	l(t) + (φ + φ² + ... + φ^h) b(t) + d(t+h-24k) + w(t+h-168m) + λ^h e(t)
//
// with the latest seasonal values of the same hour of the day and week. A
// gap carries the state forward (the trend damped, the error replaced by
// its expectation λ e(t-1)).
//
// Fit initialises the state from the first weeks (up to eight, leaving at
// least half the history): a line through the weekly means, then the mean
// deviation from it by hour of the day, then by hour of the week. It fits
// α, β, γ, ω, φ and λ by Nelder-Mead (gonum/optimize) over a logistic map
// of their bounds, minimising the mean squared one-step-ahead error (with
// the AR correction) over the hours after the warm-up. The damping is
// searched through the trend's half-life, between Options.MinTrendHalfLife
// and MaxTrendHalfLife (7 and 365 days by default). One-step errors hardly
// tell how long a trend lasts — fits usually end at the upper bound — so
// that bound decides how far a long forecast follows the trend: however
// far ahead, it adds at most b(t) φ/(1-φ), about 1.44 half-lives' worth of
// the current hourly trend. Thirty-six months out, a falling or rising
// demand is thus forecast short of its straight line: safe for the
// holdback when demand falls, not when it rises.
//
// # Quantiles
//
// The point forecast comes with the empirical distribution of the model's
// own errors at each horizon: with the fitted parameters, forecasts are
// replayed from origins all along the history after its warm-up, and the
// errors (actual - forecast) are kept in buckets of horizons 1, 2-3, 4-7,
// ..., 2^k to 2^(k+1)-1 hours, about 4,096 per bucket. The q-quantile h
// hours ahead is the point forecast plus the q-quantile of the errors near
// h: interpolated in log h between bucket centres; widened so that its
// distance from the median never shrinks as h grows; and past the longest
// horizon the history can check, the last bucket's distance from its
// median grows as h^g, g fitted to how the spread grows over the last
// buckets (0 to 1). Quantiles are monotone in q at every hour and clamped
// at zero. P50, P90, P95 and P99 name the usual ones; any q in (0, 1)
// works. Hourly.Daily and Hourly.Monthly sum a path up by UTC calendar day
// or month, as its Peak (the holdback for every hour of the month) or its
// Average.
//
// # Backtest
//
// Backtest rolls the origin over a history: at each origin it fits the
// model to the hours before it alone, forecasts a horizon and scores each
// quantile by coverage (the fraction of actual hours at or below it) and
// pinball loss, and the point forecast by MAPE and MAE.
//
// # Synthetic series
//
// Synth generates series with a known distribution — a straight trend, a
// daily cosine, a weekend dip, noise of a chosen distribution (Normal,
// Laplace, Student's t) correlated hour to hour through a Gaussian AR(1)
// copula, bursts and gaps — deterministic from a seed. Synth.Quantile gives
// the true quantile of any hour when there are no bursts; tests check the
// forecast against it.
package forecast
