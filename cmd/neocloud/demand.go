package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/neocloud/neocloud/internal/api"
	"github.com/neocloud/neocloud/internal/demand"
	"github.com/neocloud/neocloud/internal/forecast"
)

func newDemandCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demand",
		Short: "Internal demand: generate, forecast and backtest histories offline; import and show them on a server",
		Long: `demand works on CSV histories of the owner's own GPU use (pool,hour,gpus).
Offline: generate writes a synthetic one, forecast prints the monthly
quantiles and the holdback schedule they imply, backtest measures how well
the forecast's quantiles cover what happened. With a server: import stores
a history, show prints what is stored. See docs/forecast.md and
docs/spot-reclaim.md.`,
	}
	cmd.AddCommand(newDemandGenerateCmd(e), newDemandForecastCmd(e), newDemandBacktestCmd(e), newDemandImportCmd(e), newDemandShowCmd(e))
	return cmd
}

// readHistory reads the samples of pool from a demand CSV ("-" is stdin).
func (e *env) readHistory(path, pool string) ([]forecast.Point, error) {
	if path == "" {
		return nil, fmt.Errorf("-f: a demand history (CSV pool,hour,gpus) is required; neocloud demand generate writes one")
	}
	var r io.Reader = e.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	samples, err := demand.ParseCSV(bufio.NewReader(r))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	h := demand.History(samples, pool)
	if len(h) == 0 {
		pools := map[string]bool{}
		var names []string
		for _, s := range samples {
			if !pools[s.Pool] {
				pools[s.Pool] = true
				names = append(names, s.Pool)
			}
		}
		return nil, fmt.Errorf("--pool %q: no samples in %s (pools there: %v)", pool, path, names)
	}
	return h, nil
}

func newDemandGenerateCmd(e *env) *cobra.Command {
	var (
		file, pool, start string
		s                 forecast.Synth
		weeks             int
		dist              string
	)
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Write a synthetic hourly demand history (CSV)",
		Long: `generate writes an hourly history of internal demand for one pool: a
straight trend, a daily cycle peaking at --peak-hour UTC, a weekend dip,
noise and bursts. The defaults tell the story's H100 pool: about 120,000
GPUs in use, falling by 20,000 a year. The same flags and seed give the
same file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := time.Parse(time.RFC3339, start)
			if err != nil {
				return fmt.Errorf("--start %q: want an RFC 3339 time on a whole hour", start)
			}
			s.Start, s.Hours = t.UTC(), weeks*7*24
			switch dist {
			case "normal":
				s.Noise.Dist = forecast.Normal
			case "laplace":
				s.Noise.Dist = forecast.Laplace
			case "student-t":
				s.Noise.Dist = forecast.StudentT
			default:
				return fmt.Errorf("--noise-dist %q: want normal, laplace or student-t", dist)
			}
			if s.Noise.Dist == forecast.StudentT && s.Noise.Nu == 0 {
				s.Noise.Nu = 5
			}
			points, err := s.Generate()
			if err != nil {
				return err
			}
			w := e.stdout
			if file != "" && file != "-" {
				f, err := os.Create(file)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			bw := bufio.NewWriter(w)
			fmt.Fprintln(bw, "pool,hour,gpus")
			for _, p := range points {
				fmt.Fprintf(bw, "%s,%s,%d\n", pool, p.At.Format(time.RFC3339), int64(p.GPUs+0.5))
			}
			return bw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "write here instead of standard output")
	f.StringVar(&pool, "pool", "ref-300mw/H100-SXM", "pool the samples are for")
	f.StringVar(&start, "start", "2025-09-01T00:00:00Z", "first hour (RFC 3339, whole hour)")
	f.IntVar(&weeks, "weeks", 52, "weeks of history")
	f.Uint64Var(&s.Seed, "seed", 1, "random seed")
	f.Float64Var(&s.Base, "base", 120_000, "GPUs in use at the start, before cycles and noise")
	f.Float64Var(&s.TrendPerYear, "trend-per-year", -20_000, "GPUs added per year (negative: falling)")
	f.Float64Var(&s.Daily, "daily", 8_000, "amplitude of the daily cycle, GPUs")
	f.IntVar(&s.PeakHour, "peak-hour", 15, "UTC hour of the daily peak")
	f.Float64Var(&s.Weekend, "weekend", 10_000, "GPUs less on Saturdays and Sundays")
	f.StringVar(&dist, "noise-dist", "normal", "noise distribution: normal, laplace or student-t")
	f.Float64Var(&s.Noise.SD, "noise-sd", 2_000, "noise standard deviation, GPUs")
	f.Float64Var(&s.Noise.AR, "noise-ar", 0.8, "noise autocorrelation from hour to hour, 0 to <1")
	f.Float64Var(&s.Bursts.PerWeek, "bursts-per-week", 1, "mean bursts a week")
	f.Float64Var(&s.Bursts.Hours, "burst-hours", 8, "mean burst length, hours")
	f.Float64Var(&s.Bursts.GPUs, "burst-gpus", 5_000, "mean burst size, GPUs")
	return cmd
}

// forecastMonth is a row of neocloud demand forecast.
type forecastMonth struct {
	Start        time.Time `json:"start"`
	P50          int64     `json:"p50_peak_gpus"`
	P90          int64     `json:"p90_peak_gpus"`
	P95          int64     `json:"p95_peak_gpus"`
	P99          int64     `json:"p99_peak_gpus"`
	HoldbackGPUs int64     `json:"holdback_gpus"`
}

func newDemandForecastCmd(e *env) *cobra.Command {
	var (
		file, pool string
		months     int
		pol        = demand.DefaultPolicy()
		capGPUs    int64
	)
	cmd := &cobra.Command{
		Use:   "forecast -f HISTORY.csv",
		Short: "Forecast a pool's demand and print the holdback it implies, month by month",
		Long: `forecast fits the demand model to a pool's history and prints, for each
coming month, the peak hourly P50/P90/P95/P99 forecast and the holdback the
policy (--quantile plus --buffer-permille) implies: GPUs never sold as
guaranteed capacity. Fitting a year of hours takes well under a second.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if months < 1 || months > 36 {
				return fmt.Errorf("--months %d: want 1 to 36", months)
			}
			if err := pol.Validate(); err != nil {
				return err
			}
			hist, err := e.readHistory(file, pool)
			if err != nil {
				return err
			}
			m, err := forecast.Fit(hist, forecast.Options{})
			if err != nil {
				return fmt.Errorf("fit %s: %w", pool, err)
			}
			start := m.End()
			end := time.Date(start.Year(), start.Month()+time.Month(months), 1, 0, 0, 0, 0, time.UTC)
			pred, err := m.Predict(int(end.Sub(start) / time.Hour))
			if err != nil {
				return err
			}
			steps, err := demand.Holdback(pred, pol, capGPUs)
			if err != nil {
				return err
			}
			peaks := map[float64][]forecast.Span{}
			for _, q := range []float64{forecast.P50, forecast.P90, forecast.P95, forecast.P99} {
				peaks[q] = pred.MustQuantile(q).Monthly(forecast.Peak)
			}
			var rows []forecastMonth
			for i, sp := range peaks[forecast.P50] {
				ceil := func(v float64) int64 { return int64(math.Ceil(v)) }
				r := forecastMonth{Start: sp.Start, P50: ceil(sp.GPUs), P90: ceil(peaks[forecast.P90][i].GPUs),
					P95: ceil(peaks[forecast.P95][i].GPUs), P99: ceil(peaks[forecast.P99][i].GPUs), HoldbackGPUs: demand.At(steps, sp.Start)}
				rows = append(rows, r)
			}
			fmt.Fprintf(e.stderr, "fitted %d hours of %s (%s); params %s\n", len(hist), pool, m.Start().Format(time.RFC3339)+" to "+m.End().Format(time.RFC3339), m.Params())
			return e.print(rows, func() [][]string {
				out := [][]string{{"MONTH", "P50", "P90", "P95", "P99", "HOLDBACK"}}
				for _, r := range rows {
					out = append(out, []string{r.Start.Format("2006-01"), i64(r.P50), i64(r.P90), i64(r.P95), i64(r.P99), i64(r.HoldbackGPUs)})
				}
				return out
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "demand history CSV (pool,hour,gpus); - for stdin")
	f.StringVar(&pool, "pool", "ref-300mw/H100-SXM", "pool to forecast")
	f.IntVar(&months, "months", 12, "months to forecast, 1 to 36")
	f.Float64Var(&pol.Quantile, "quantile", pol.Quantile, "forecast quantile held back, in (0, 1)")
	f.Int64Var(&pol.BufferPermille, "buffer-permille", pol.BufferPermille, "buffer on top of the quantile, thousandths")
	f.Int64Var(&capGPUs, "gpus", 1<<40, "the pool's GPUs: no holdback step exceeds them")
	return cmd
}

func newDemandBacktestCmd(e *env) *cobra.Command {
	var (
		file, pool string
		cfg        forecast.BacktestConfig
	)
	cmd := &cobra.Command{
		Use:   "backtest -f HISTORY.csv",
		Short: "Measure how well the forecast's quantiles cover a pool's history",
		Long: `backtest rolls the forecast's origin over the history: at each origin it
fits the model to the hours before it alone, forecasts --horizon hours and
compares. A calibrated forecast has each quantile's coverage close to it
(P95 covering about 95% of the actual hours).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hist, err := e.readHistory(file, pool)
			if err != nil {
				return err
			}
			rep, err := forecast.Backtest(hist, cfg)
			if err != nil {
				return err
			}
			return e.print(rep, func() [][]string {
				out := [][]string{{"QUANTILE", "COVERAGE", "PINBALL"}}
				for _, s := range rep.Scores {
					out = append(out, []string{strconv.FormatFloat(s.Q, 'f', -1, 64), fmt.Sprintf("%.3f", s.Coverage), fmt.Sprintf("%.1f", s.Pinball)})
				}
				out = append(out, []string{}, []string{"origins", i64(int64(rep.Origins)), ""},
					[]string{"hours", i64(int64(rep.Hours)), ""}, []string{"MAPE", fmt.Sprintf("%.2f%%", rep.MAPE*100), ""})
				return out
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "demand history CSV (pool,hour,gpus); - for stdin")
	f.StringVar(&pool, "pool", "ref-300mw/H100-SXM", "pool to backtest")
	f.IntVar(&cfg.Horizon, "horizon", forecast.DefaultBacktestHorizon, "hours each origin forecasts")
	f.IntVar(&cfg.Origins, "origins", 40, "forecasts made")
	f.IntVar(&cfg.Refit, "refit", 5, "refit the model at every n-th origin (others only move its state)")
	return cmd
}

func newDemandImportCmd(e *env) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "import -f HISTORY.csv",
		Short: "Send a demand history (CSV pool,hour,gpus) to the server",
		Long: `import reads a demand history and stores it on the server (operator-admin),
in requests of at most 100,000 samples; each sample replaces any stored for
its pool and hour, so importing again is harmless.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("-f: a demand history (CSV pool,hour,gpus) is required")
			}
			var r io.Reader = e.stdin
			if file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			samples, err := demand.ParseCSV(bufio.NewReader(r))
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			total := 0
			for len(samples) > 0 {
				n := min(len(samples), 100_000)
				in := api.DemandIn{Samples: make([]api.DemandSample, n)}
				for i, s := range samples[:n] {
					in.Samples[i] = api.DemandSample{Pool: s.Pool, Hour: s.Hour, GPUs: s.GPUs}
				}
				var out api.DemandImport
				if err := e.call(cmd.Context(), "POST", "/v1/demand", nil, in, &out); err != nil {
					return fmt.Errorf("after %d samples imported: %w", total, err)
				}
				total += out.Imported
				samples = samples[n:]
			}
			return e.print(api.DemandImport{Imported: total}, func() [][]string {
				return [][]string{{"IMPORTED"}, {i64(int64(total))}}
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "demand history CSV (pool,hour,gpus); - for stdin")
	return cmd
}

func newDemandShowCmd(e *env) *cobra.Command {
	var pool, from, to string
	cmd := &cobra.Command{
		Use:   "show --pool site/MODEL [--from T] [--to T]",
		Short: "Print a pool's stored demand history (operators)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{"pool": {pool}}
			if from != "" {
				q.Set("from", from)
			}
			if to != "" {
				q.Set("to", to)
			}
			var out api.Demand
			if err := e.call(cmd.Context(), "GET", "/v1/demand", q, nil, &out); err != nil {
				return err
			}
			return e.print(out, func() [][]string {
				rows := [][]string{{"HOUR", "GPUS"}}
				for _, s := range out.Samples {
					rows = append(rows, []string{s.Hour.Format(time.RFC3339), i64(s.GPUs)})
				}
				return rows
			})
		},
	}
	cmd.Flags().StringVar(&pool, "pool", "", "pool (site/MODEL)")
	cmd.Flags().StringVar(&from, "from", "", "first hour (RFC 3339)")
	cmd.Flags().StringVar(&to, "to", "", "end, exclusive (RFC 3339)")
	return cmd
}

func newSellableCmd(e *env) *cobra.Command {
	var (
		pool   string
		months int
		pol    = demand.DefaultPolicy()
	)
	cmd := &cobra.Command{
		Use:   "sellable --pool site/MODEL [--months 12]",
		Short: "What a pool can still sell as guaranteed capacity, month by month, and the risk (operators)",
		Long: `sellable asks the server to fit the demand forecast to the pool's stored
history (neocloud demand import) and report, for this month and the next
ones, the GPUs and MW that can still be promised if the holdback followed
the policy (--quantile plus --buffer-permille): healthy − holdback −
guaranteed; and the risk: the expected hours and GPU-hours of the owner's
demand above that holdback.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{"pool": {pool}, "months": {strconv.Itoa(months)},
				"quantile": {strconv.FormatFloat(pol.Quantile, 'f', -1, 64)}, "buffer_permille": {i64(pol.BufferPermille)}}
			var out api.Sellable
			if err := e.call(cmd.Context(), "GET", "/v1/sellable", q, nil, &out); err != nil {
				return err
			}
			return e.print(out, func() [][]string {
				rows := [][]string{{"MONTH", "HEALTHY", "HOLDBACK", "GUARANTEED", "SELLABLE", "SELLABLE_MW", "EXCEED_H", "EXCEED_GPUH"}}
				for _, m := range out.Months {
					rows = append(rows, []string{m.Start.Format("2006-01"), i64(m.HealthyGPUs), i64(m.HoldbackGPUs), i64(m.GuaranteedGPUs),
						i64(m.SellableGPUs), f1(m.SellableMW), f1(m.ExceedHours), fmt.Sprintf("%.0f", m.ExceedGPUHours)})
				}
				return rows
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&pool, "pool", "", "pool (site/MODEL)")
	f.IntVar(&months, "months", 12, "months to report, 1 to 36")
	f.Float64Var(&pol.Quantile, "quantile", pol.Quantile, "forecast quantile held back, in (0, 1)")
	f.Int64Var(&pol.BufferPermille, "buffer-permille", pol.BufferPermille, "buffer on top of the quantile, thousandths")
	return cmd
}
