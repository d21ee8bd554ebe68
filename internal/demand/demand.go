// Package demand turns the owner's internal demand into what may be sold.
//
// The owner measures its own GPU use per pool, hour by hour (Sample,
// ParseCSV). A forecast of it (package forecast) gives quantiles for the
// months ahead; the holdback Policy picks one (P95 by default) and adds a
// buffer, and Holdback turns the forecast into a schedule of monthly steps:
// GPUs the calendar never sells as guaranteed capacity. Sellable reports,
// month by month, the GPUs (and MW) that can still be promised, and the
// risk taken: how many hours and GPU-hours the owner's own demand is
// expected to exceed its holdback.
//
// The package is pure: no clock, no I/O beyond the reader it is given.
package demand

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/neocloud/neocloud/internal/forecast"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/valid"
)

// Sample is one hour of a pool's measured internal demand.
type Sample struct {
	Pool string
	Hour time.Time // a whole UTC hour
	GPUs int64
}

// ParseError names the line and column of the first problem in a CSV
// history, and the rule it broke.
type ParseError struct {
	Line   int
	Column string
	Rule   string
}

func (e *ParseError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("demand csv: line %d: %s", e.Line, e.Rule)
	}
	return fmt.Sprintf("demand csv: line %d: %s: %s", e.Line, e.Column, e.Rule)
}

// csvHeader is the header a history file starts with.
var csvHeader = []string{"pool", "hour", "gpus"}

// MaxSampleGPUs bounds one sample; no pool is near it.
const MaxSampleGPUs = 100_000_000

// ParseCSV reads a history: a header "pool,hour,gpus", then one line per
// pool and hour (RFC 3339, on a whole hour, any offset; stored in UTC) with
// the GPUs in use, 0 to MaxSampleGPUs. Within a pool, hours are strictly
// increasing. It returns the samples in file order, or a *ParseError.
func ParseCSV(r io.Reader) ([]Sample, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	var out []Sample
	last := map[string]time.Time{}
	pools := map[string]string{} // one copy of each pool's name
	for first := true; ; first = false {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			if first {
				return nil, &ParseError{Line: 1, Rule: "empty file: want the header pool,hour,gpus"}
			}
			return out, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, &ParseError{Line: pe.Line, Rule: pe.Err.Error()}
			}
			return nil, fmt.Errorf("demand csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if first {
			if !isHeader(rec) {
				return nil, &ParseError{Line: line, Rule: "want the header pool,hour,gpus"}
			}
			continue
		}
		if len(rec) != len(csvHeader) {
			return nil, &ParseError{Line: line, Rule: fmt.Sprintf("want %d columns (pool,hour,gpus), got %d", len(csvHeader), len(rec))}
		}
		pool, ok := pools[rec[0]]
		if !ok {
			if rec[0] == "" {
				return nil, &ParseError{Line: line, Column: "pool", Rule: "is required (site/MODEL)"}
			}
			pool = strings.Clone(rec[0])
			pools[pool] = pool
		}
		s := Sample{Pool: pool}
		t, err := time.Parse(time.RFC3339, rec[1])
		if err != nil {
			return nil, &ParseError{Line: line, Column: "hour", Rule: fmt.Sprintf("%q is not an RFC 3339 time", rec[1])}
		}
		s.Hour = t.UTC()
		if !s.Hour.Equal(s.Hour.Truncate(time.Hour)) {
			return nil, &ParseError{Line: line, Column: "hour", Rule: fmt.Sprintf("%s is not on a whole hour", rec[1])}
		}
		if prev, ok := last[pool]; ok && !s.Hour.After(prev) {
			return nil, &ParseError{Line: line, Column: "hour", Rule: fmt.Sprintf("%s is not after the pool's previous hour %s", rec[1], prev.Format(time.RFC3339))}
		}
		last[pool] = s.Hour
		s.GPUs, err = strconv.ParseInt(rec[2], 10, 64)
		if err != nil || s.GPUs < 0 || s.GPUs > MaxSampleGPUs {
			return nil, &ParseError{Line: line, Column: "gpus", Rule: fmt.Sprintf("%q is not a whole number from 0 to %d", rec[2], MaxSampleGPUs)}
		}
		out = append(out, s)
	}
}

func isHeader(rec []string) bool {
	if len(rec) != len(csvHeader) {
		return false
	}
	for i, h := range csvHeader {
		if strings.TrimPrefix(strings.TrimSpace(rec[i]), "\uFEFF") != h {
			return false
		}
	}
	return true
}

// History returns the samples of pool as a forecast history.
func History(samples []Sample, pool string) []forecast.Point {
	var out []forecast.Point
	for _, s := range samples {
		if s.Pool == pool {
			out = append(out, forecast.Point{At: s.Hour, GPUs: float64(s.GPUs)})
		}
	}
	return out
}

// Policy is a pool's holdback policy: the forecast quantile held back
// from guaranteed leases, plus a buffer.
type Policy struct {
	Quantile       float64 `json:"quantile" yaml:"quantile"`               // in (0, 1); default 0.95
	BufferPermille int64   `json:"buffer_permille" yaml:"buffer_permille"` // added on top, in thousandths; default 50 (5%)
}

// DefaultPolicy is P95 plus 5%.
func DefaultPolicy() Policy { return Policy{Quantile: forecast.P95, BufferPermille: 50} }

// Validate checks p; the error is a *valid.Error naming each field.
func (p Policy) Validate() error {
	var e valid.Error
	if !(p.Quantile > 0 && p.Quantile < 1) {
		e.Add("quantile", p.Quantile, "must be strictly between 0 and 1 (0.95 holds back the P95)")
	}
	if p.BufferPermille < 0 || p.BufferPermille > 1000 {
		e.Add("buffer_permille", p.BufferPermille, "must be between 0 and 1000")
	}
	return e.Err()
}

// Step is a step of a holdback schedule: from From on, GPUs are held back.
type Step struct {
	From time.Time
	GPUs int64
}

// Holdback returns the holdback schedule that pred implies under p: one
// step per UTC calendar month (the first may start mid-month, at pred's
// start), each the month's peak hourly quantile times (1 + buffer),
// rounded up to a whole GPU and capped at capGPUs (the pool's GPUs: no
// more can be held back). A step equal to the one before is merged.
func Holdback(pred *forecast.Prediction, p Policy, capGPUs int64) ([]Step, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	q, err := pred.Quantile(p.Quantile)
	if err != nil {
		return nil, err
	}
	var out []Step
	for _, m := range q.Monthly(forecast.Peak) {
		g := min(int64(math.Ceil(m.GPUs*float64(1000+p.BufferPermille)/1000-1e-9)), capGPUs)
		g = max(g, 0)
		if n := len(out); n > 0 && out[n-1].GPUs == g {
			continue
		}
		out = append(out, Step{From: m.Start, GPUs: g})
	}
	return out, nil
}

// At returns the GPUs that steps (ordered by From) hold back at t: the
// last step from at or before t, or 0 before the first.
func At(steps []Step, t time.Time) int64 {
	var g int64
	for _, s := range steps {
		if s.From.After(t) {
			break
		}
		g = s.GPUs
	}
	return g
}

// Month is one row of the sellable report.
type Month struct {
	Start time.Time `json:"start"`
	// HealthyGPUs is the pool's least healthy capacity over the month.
	HealthyGPUs int64 `json:"healthy_gpus"`
	// HoldbackGPUs is the most held back in the month.
	HoldbackGPUs int64 `json:"holdback_gpus"`
	// GuaranteedGPUs is the most promised to contracts and reservations.
	GuaranteedGPUs int64 `json:"guaranteed_gpus"`
	// SellableGPUs = healthy − holdback − guaranteed, at least 0: what
	// can still be promised for the whole month.
	SellableGPUs int64 `json:"sellable_gpus"`
	// SellablePower is SellableGPUs at the pool's facility power per GPU.
	SellablePower unit.Power `json:"sellable_w"`
	// ExceedHours is the expected number of hours in the month the
	// owner's demand exceeds the holdback, ExceedGPUHours the expected
	// GPU-hours above it: the risk of selling down to the holdback.
	ExceedHours    float64 `json:"exceed_hours"`
	ExceedGPUHours float64 `json:"exceed_gpu_hours"`
}

// Capacity is a pool's capacity over an hour, as Sellable reads it.
type Capacity struct {
	Healthy, Holdback, Guaranteed int64
}

// riskLevels are the quantile levels the risk is integrated over: the
// upper tail, where a holdback sits.
var riskLevels = []float64{0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.965, 0.975, 0.985, 0.99, 0.995, 0.998, 0.999}

// Sellable reports month by month, over pred's hours, what can still be
// sold as guaranteed capacity: capAt gives the pool's capacity at each
// hour (from the calendar), powerPerGPU the facility power of one of its
// GPUs. The risk columns integrate pred's quantiles (levels 0.5 to 0.999,
// the lower half taken as the mirror image of the upper).
func Sellable(pred *forecast.Prediction, capAt func(time.Time) Capacity, powerPerGPU unit.Power) ([]Month, error) {
	paths := make([]forecast.Hourly, len(riskLevels))
	for i, q := range riskLevels {
		h, err := pred.Quantile(q)
		if err != nil {
			return nil, err
		}
		paths[i] = h
	}
	var out []Month
	var cur *Month
	var curMonth time.Time // the calendar month cur sums up
	for i := range pred.Hours() {
		t := pred.Start().Add(time.Duration(i) * time.Hour).UTC()
		ms := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		if cur == nil || !curMonth.Equal(ms) {
			if cur != nil {
				out = append(out, finish(*cur, powerPerGPU))
			}
			// A month the forecast enters midway starts at its first hour.
			cur, curMonth = &Month{Start: t, HealthyGPUs: math.MaxInt64}, ms
		}
		c := capAt(t)
		cur.HealthyGPUs = min(cur.HealthyGPUs, c.Healthy)
		cur.HoldbackGPUs = max(cur.HoldbackGPUs, c.Holdback)
		cur.GuaranteedGPUs = max(cur.GuaranteedGPUs, c.Guaranteed)
		ex, gh := tail(paths, i, float64(c.Holdback))
		cur.ExceedHours += ex
		cur.ExceedGPUHours += gh
	}
	if cur != nil {
		out = append(out, finish(*cur, powerPerGPU))
	}
	return out, nil
}

func finish(m Month, powerPerGPU unit.Power) Month {
	m.SellableGPUs = max(m.HealthyGPUs-m.HoldbackGPUs-m.GuaranteedGPUs, 0)
	m.SellablePower = powerPerGPU * unit.Power(m.SellableGPUs)
	m.ExceedHours = math.Round(m.ExceedHours*1000) / 1000
	m.ExceedGPUHours = math.Round(m.ExceedGPUHours*1000) / 1000
	return m
}

// tail returns P(D > h) and E[(D − h)+] at hour i from the quantile paths
// of the upper tail, taking the lower tail as their mirror image about the
// median (Q(1−u) = 2·Q(0.5) − Q(u)) and the quantile function as linear
// between levels. Mass below the lowest level counts as exceeding by that
// level's margin; mass above the highest is not counted.
func tail(paths []forecast.Hourly, i int, h float64) (prob, excess float64) {
	n := len(riskLevels)
	med := paths[0].GPUs[i]
	level := func(k int) (u, q float64) { // k in [0, 2n−1): lower mirror, then upper
		if k < n-1 {
			j := n - 1 - k
			return 1 - riskLevels[j], 2*med - paths[j].GPUs[i]
		}
		j := k - (n - 1)
		return riskLevels[j], paths[j].GPUs[i]
	}
	if u0, q0 := level(0); q0 > h {
		prob, excess = u0, u0*(q0-h)
	}
	for k := 1; k < 2*n-1; k++ {
		u0, q0 := level(k - 1)
		u1, q1 := level(k)
		switch {
		case q1 <= h:
			continue
		case q0 >= h:
			prob += u1 - u0
			excess += (u1 - u0) * ((q0+q1)/2 - h)
		default: // Q crosses h between the levels
			uc := u0 + (u1-u0)*(h-q0)/(q1-q0)
			prob += u1 - uc
			excess += (u1 - uc) * (q1 - h) / 2
		}
	}
	return prob, excess
}
