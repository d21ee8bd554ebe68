package sim

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/neocloud/neocloud/internal/money"
)

// Report file names, in the directory given to WriteReport.
const (
	ReportFile   = "report.md"
	SummaryFile  = "summary.json"
	CapacityPlot = "capacity.svg"
	RevenuePlot  = "revenue.svg"
	ReclaimsPlot = "reclaims.svg"
)

// WriteReport writes the report of a run into dir, creating it if needed:
// report.md (the run against the baseline, the plots, what each figure
// means), the plots capacity.svg, revenue.svg and reclaims.svg, and
// summary.json (the bytes of s.JSON()). points are the run's and baseline
// the static partition's over the same hours (see Baseline); the files
// depend only on the arguments, byte for byte. It returns Summarize's
// errors for either series, an error when there are no points or the
// series differ in length, and the file system's errors.
func WriteReport(dir string, s Summary, points, baseline []Point) error {
	if len(points) == 0 {
		return errors.New("sim: report: no points")
	}
	if len(baseline) != len(points) {
		return fmt.Errorf("sim: report: %d baseline points for %d points", len(baseline), len(points))
	}
	if err := checkHourly(points); err != nil {
		return fmt.Errorf("sim: report: run: %w", err)
	}
	if err := checkHourly(baseline); err != nil {
		return fmt.Errorf("sim: report: baseline: %w", err)
	}
	sum, err := s.JSON()
	if err != nil {
		return err
	}
	rev, err := revenuePlot(points, baseline)
	if err != nil {
		return fmt.Errorf("sim: report: %w", err)
	}
	md, err := reportMarkdown(s)
	if err != nil {
		return fmt.Errorf("sim: report: %w", err)
	}
	files := []struct {
		name string
		data []byte
	}{
		{SummaryFile, sum},
		{CapacityPlot, capacityPlot(points)},
		{RevenuePlot, rev},
		{ReclaimsPlot, reclaimsPlot(points)},
		{ReportFile, md},
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("sim: report: %w", err)
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return fmt.Errorf("sim: report: %w", err)
		}
	}
	return nil
}

// span returns the hours [first point's At, last point's At + 1h).
func span(points []Point) (from, to time.Time) {
	return points[0].At.UTC(), points[len(points)-1].At.Add(time.Hour).UTC()
}

// capacityPlot stacks, hour by hour (averaged over runs of hours when there
// are more than maxPlotPoints): internal demand served, the holdback not
// used by anyone, contract, reservation, spot, sanitizing and idle, up to
// the healthy GPUs; with lines for healthy and for internal demand.
func capacityPlot(points []Point) []byte {
	from, to := span(points)
	names := []string{"internal (served)", "holdback (unused)", "contract", "reservation", "spot", "sanitizing", "idle"}
	colours := []string{colBlue, colSky, colGreen, colOrange, colPurple, colYellow, colGrey}
	bs := buckets(len(points))
	// stack[l][i] is the top of layer l in bucket i: the sum of layers 0..l.
	stack := make([][]float64, len(names))
	for l := range stack {
		stack[l] = make([]float64, len(bs))
	}
	healthy := make([]float64, len(bs))
	internal := make([]float64, len(bs))
	maxY := 0.0
	for i, bk := range bs {
		var sums [7]float64
		var h, in float64
		for _, p := range points[bk[0]:bk[1]] {
			held := p.InternalMet + p.Contract + p.Reservation + p.Spot + p.Sanitizing
			free := max(p.Healthy-held, 0)
			hold := min(max(p.Holdback-p.InternalMet, 0), free)
			for l, v := range [7]int64{p.InternalMet, hold, p.Contract, p.Reservation, p.Spot, p.Sanitizing, free - hold} {
				sums[l] += float64(v)
			}
			h += float64(p.Healthy)
			in += float64(p.Internal)
		}
		n := float64(bk[1] - bk[0])
		top := 0.0
		for l := range sums {
			top += sums[l] / n
			stack[l][i] = top
		}
		healthy[i], internal[i] = h/n, in/n
		maxY = max(maxY, top, healthy[i], internal[i])
	}
	// A bucket's value sits at its middle; the first and last extend to
	// the edges of the plot.
	at := func(vals []float64) []xy {
		out := make([]xy, 0, len(vals)+2)
		out = append(out, xy{from, vals[0]})
		for i, bk := range bs {
			mid := points[bk[0]].At.Add(time.Duration(bk[1]-bk[0]) * time.Hour / 2)
			out = append(out, xy{mid, vals[i]})
		}
		return append(out, xy{to, vals[len(vals)-1]})
	}
	unit := "GPUs"
	if len(bs) < len(points) {
		unit = fmt.Sprintf("GPUs, mean over each %d hours", bs[0][1]-bs[0][0])
	}
	c := newChart("Capacity by use", unit, from, to, maxY, false)
	// Painted from the outermost cumulative area inwards, so that each
	// layer's polygon needs only its top edge.
	for l := len(names) - 1; l >= 0; l-- {
		c.area(names[l], colours[l], at(stack[l]))
	}
	slices.Reverse(c.legend) // legend top to bottom as the stack reads
	c.polyline("healthy", colBlack, "", at(healthy))
	c.polyline("internal demand", colVermillion, dashed, at(internal))
	return c.bytes()
}

// revenuePlot stacks the run's cumulative revenue by lease kind and draws
// its total and the baseline's total as lines.
func revenuePlot(points, baseline []Point) ([]byte, error) {
	from, to := span(points)
	bs := buckets(len(points))
	kinds := 3
	cum := make([][]float64, kinds+1) // contract, +reservation, +spot; baseline total
	for k := range cum {
		cum[k] = make([]float64, len(bs))
	}
	run := [3]money.Money{money.USD(0), money.USD(0), money.USD(0)}
	base := money.USD(0)
	maxY := 0.0
	for i, bk := range bs {
		for h := bk[0]; h < bk[1]; h++ {
			p, q := points[h], baseline[h]
			var err error
			for k, m := range []money.Money{p.ContractUSD, p.ReservationUSD, p.SpotUSD} {
				if run[k], err = run[k].Add(m); err != nil {
					return nil, fmt.Errorf("revenue: points[%d]: %w", h, err)
				}
			}
			for _, m := range []money.Money{q.ContractUSD, q.ReservationUSD, q.SpotUSD} {
				if base, err = base.Add(m); err != nil {
					return nil, fmt.Errorf("revenue: baseline[%d]: %w", h, err)
				}
			}
		}
		top := 0.0
		for k := range kinds {
			top += float64(run[k].Micros) / money.Micro
			cum[k][i] = top
		}
		cum[kinds][i] = float64(base.Micros) / money.Micro
		maxY = max(maxY, top, cum[kinds][i])
	}
	// Cumulative values are exact at the end of each bucket.
	at := func(vals []float64) []xy {
		out := make([]xy, 0, len(vals)+1)
		out = append(out, xy{from, 0})
		for i, bk := range bs {
			out = append(out, xy{points[bk[1]-1].At.Add(time.Hour), vals[i]})
		}
		return out
	}
	c := newChart("Cumulative revenue", "USD", from, to, maxY, true)
	c.area("spot", colPurple, at(cum[2]))
	c.area("reservation", colOrange, at(cum[1]))
	c.area("contract", colGreen, at(cum[0]))
	slices.Reverse(c.legend)
	c.polyline("run total", colBlack, "", at(cum[2]))
	c.polyline("baseline total", colBlack, dashed, at(cum[3]))
	return c.bytes(), nil
}

// reclaimsPlot draws the spot leases given a reclaim notice per UTC day.
func reclaimsPlot(points []Point) []byte {
	from, to := span(points)
	day0 := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
	days := int((to.Sub(day0) + 24*time.Hour - 1) / (24 * time.Hour))
	perDay := make([]float64, days)
	for _, p := range points {
		perDay[int(p.At.Sub(day0)/(24*time.Hour))] += float64(p.Reclaims)
	}
	c := newChart("Spot reclaims per day", "spot leases given a reclaim notice, per UTC day", from, to, slices.Max(perDay), false)
	c.bars("reclaims", colVermillion, day0, 24*time.Hour, perDay)
	return c.bytes()
}

// reportMarkdown writes report.md: the headline table, the engine
// counters, the plots and what each figure means.
func reportMarkdown(s Summary) ([]byte, error) {
	var b bytes.Buffer
	r, base := s.Totals, s.Baseline
	fmt.Fprintf(&b, "# Simulation report\n\n")
	fmt.Fprintf(&b, "Fleet `%s`, seed %d, %d months: %s to %s (%s hours, UTC, end excluded).\n\n",
		strings.ReplaceAll(s.Fleet, "`", "'"), s.Seed, s.Months, s.Start.UTC().Format(time.RFC3339), s.End.UTC().Format(time.RFC3339), group(int64(s.Hours)))
	b.WriteString("The **run** is the engine's operation of the fleet: holdback, guaranteed leases, spot sold on\n" +
		"what is idle each hour and reclaimed when the owner's demand returns. The **baseline** is a static\n" +
		"partition over the same hours: the same anchor contract, a fixed share leased as reservations and\n" +
		"never reclaimed, no spot. Its definition is at the end.\n\n")

	b.WriteString("## Headline\n\n")
	b.WriteString("| | run | baseline | run − baseline |\n|---|---:|---:|---:|\n")
	row := func(name string, run, base int64) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, group(run), group(base), signed(run-base))
	}
	row("Idle GPU-hours (capacity the owner did not use)", r.IdleGPUHours, base.IdleGPUHours)
	row("Monetized GPU-hours (idle capacity held by leases)", r.MonetizedGPUHours, base.MonetizedGPUHours)
	fmt.Fprintf(&b, "| Monetized share of idle | %.2f%% | %.2f%% | %+.2f pp |\n", r.MonetizedPct, base.MonetizedPct, r.MonetizedPct-base.MonetizedPct)
	row("Internal demand served (GPU-hours)", r.InternalMetGPUHours, base.InternalMetGPUHours)
	row("Internal demand waiting (GPU-hours)", r.InternalWaitGPUHours, base.InternalWaitGPUHours)
	row("Internal demand waiting beyond notice (GPU-hours; target 0)", r.InternalShortfallGPUHours, base.InternalShortfallGPUHours)
	row("Hours with internal demand waiting beyond notice", r.InternalShortfallHours, base.InternalShortfallHours)
	row("Spot reclaims (leases)", r.Preemptions, base.Preemptions)
	row("Reclaimed GPUs", r.ReclaimedGPUs, base.ReclaimedGPUs)
	row("Node failures", r.Failures, base.Failures)
	for _, m := range []struct {
		name      string
		run, base money.Money
	}{
		{"Revenue, contract (USD)", r.Revenue.Contract, base.Revenue.Contract},
		{"Revenue, reservation (USD)", r.Revenue.Reservation, base.Revenue.Reservation},
		{"Revenue, spot (USD)", r.Revenue.Spot, base.Revenue.Spot},
		{"**Revenue, total (USD)**", r.Revenue.Total, base.Revenue.Total},
	} {
		d, err := m.run.Sub(m.base)
		if err != nil {
			return nil, fmt.Errorf("revenue: %w", err)
		}
		sign := ""
		if d.Micros >= 0 {
			sign = "+"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s%s |\n", m.name, usd(m.run), usd(m.base), sign, usd(d))
	}
	b.WriteString("\n")

	b.WriteString("## Capacity\n\n")
	b.WriteString("| | run | baseline |\n|---|---:|---:|\n")
	for _, x := range []struct {
		name      string
		run, base int64
	}{
		{"Healthy GPU-hours", r.HealthyGPUHours, base.HealthyGPUHours},
		{"Internal demand (GPU-hours)", r.InternalGPUHours, base.InternalGPUHours},
		{"Contract GPU-hours", r.ContractGPUHours, base.ContractGPUHours},
		{"Reservation GPU-hours", r.ReservationGPUHours, base.ReservationGPUHours},
		{"Spot GPU-hours", r.SpotGPUHours, base.SpotGPUHours},
		{"Sanitizing GPU-hours", r.SanitizingGPUHours, base.SanitizingGPUHours},
		{"Peak internal demand (GPUs)", r.PeakInternalGPUs, base.PeakInternalGPUs},
		{"Peak internal demand waiting (GPUs)", r.PeakInternalWaitGPUs, base.PeakInternalWaitGPUs},
		{"Peak internal demand waiting beyond notice (GPUs)", r.PeakInternalLateGPUs, base.PeakInternalLateGPUs},
		{"Peak spot (GPUs)", r.PeakSpotGPUs, base.PeakSpotGPUs},
		{"Fewest healthy GPUs in an hour", r.MinHealthyGPUs, base.MinHealthyGPUs},
	} {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", x.name, group(x.run), group(x.base))
	}
	b.WriteString("\n")

	if len(s.Engine) > 0 {
		b.WriteString("## Engine\n\n| counter | value |\n|---|---:|\n")
		keys := make([]string, 0, len(s.Engine))
		for k := range s.Engine {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "| %s | %s |\n", mdCell(k), group(s.Engine[k]))
		}
		b.WriteString("\n")
	}

	b.WriteString(reportFigures)
	b.WriteString(reportFields)
	return b.Bytes(), nil
}

const reportFigures = `## Figures

### Capacity by use

![Capacity by use](` + CapacityPlot + `)

GPUs of the run, hour by hour (averaged over runs of hours when the run is longer than 2,000
hours), stacked from the bottom: the owner's demand served (**internal (served)**); the
**holdback (unused)**, the part of the holdback above what the owner used that no lease held
either; then GPUs held by **contract**, **reservation** and **spot** leases; GPUs being wiped
between holders (**sanitizing**); and **idle**, the rest of the healthy GPUs. The solid line is
the **healthy** GPUs (failed and maintained nodes excluded); the dashed line is the owner's
**internal demand**, served or not: where it rises above the blue area, demand is waiting.

### Cumulative revenue

![Cumulative revenue](` + RevenuePlot + `)

The run's revenue accrued since the start, stacked by lease kind (**contract**,
**reservation**, **spot**); the solid line is the **run total**, the dashed line the
**baseline total**. The gap between the two lines at the right edge is what operating the fleet
dynamically earned over the static partition.

### Spot reclaims per day

![Spot reclaims per day](` + ReclaimsPlot + `)

Spot leases given a reclaim notice each UTC day: the owner's demand returning, a guaranteed lease
starting on nodes spot held, or a failed node replaced from spot.

`

const reportFields = `## Fields

Each figure is a sum over the simulated hours of one fleet-wide point per hour, so a sum of GPUs
is GPU-hours. Per hour: *healthy* schedulable GPUs, the owner's *internal* demand, *met* the part
of it served, *late* the part of the unserved that has waited longer than the spot notice period,
and the GPUs held by *contract*, *reservation* and *spot* leases.

- **Idle GPU-hours**: Σ max(healthy − met, 0), the capacity the owner did not use itself.
- **Monetized GPU-hours**: Σ min(contract + reservation + spot, max(healthy − met, 0)).
- **Monetized share of idle**: 100 × monetized / idle, 2 decimals; 0 when idle is 0.
- **Internal demand served**: Σ met.
- **Internal demand waiting**: Σ (internal − met), however briefly it waited.
- **Internal demand waiting beyond notice**: Σ late. Reclaiming spot takes up to the notice
  period, so some waiting is expected; waiting beyond it means the holdback or reclaim failed the
  owner. The target is 0.
- **Spot reclaims** and **reclaimed GPUs**: spot leases given a reclaim notice, and the GPUs they
  held.
- **Node failures**: unplanned node outages that began in the run (the same trace in both worlds).
- **Revenue**: money accrued by leases of each kind, exact to the micro-dollar.
- **Peaks**: the largest hourly value; **fewest healthy** the smallest.

## Baseline

The static partition over the same hours: the same healthy GPUs, internal demand and anchor
contract (GPUs and revenue); on top, a fixed share leased as reservations at a flat rate per
GPU-hour, never reclaimed; no spot. Per hour:

- reservation = min(leased, max(healthy − contract, 0)), revenue = reservation × rate;
- met = min(internal, max(healthy − contract − reservation, 0));
- late = internal − met: nothing can be reclaimed, so all unmet demand waits beyond notice;
- spot, sanitizing and reclaims are 0.
`

// group formats n with thousands separated by commas: 1,234,567.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// signed is group with a sign: +1,234, −5, 0.
func signed(n int64) string {
	if n > 0 {
		return "+" + group(n)
	}
	return group(n)
}

// usd formats m's whole dollars grouped, and its cents or finer as
// money.Format does: 1,250,000,000.00.
func usd(m money.Money) string {
	whole, frac, _ := strings.Cut(money.Format(m.Micros), ".")
	neg := strings.HasPrefix(whole, "-")
	n, _ := strconv.ParseInt(strings.TrimPrefix(whole, "-"), 10, 64) // from Format: digits only
	s := group(n) + "." + frac
	if neg {
		return "-" + s
	}
	return s
}

// mdCell escapes what would break a Markdown table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
