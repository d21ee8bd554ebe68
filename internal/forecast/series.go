package forecast

import (
	"fmt"
	"math"
	"time"

	"github.com/neocloud/neocloud/internal/valid"
)

// Limits on a history, in hours.
const (
	// MinHistory is the fewest observed hours a history must hold: two
	// weeks, so that every hour of the week is seen at least twice.
	MinHistory = 2 * 7 * 24
	// MaxHistory is the longest span a history may cover: five years.
	MaxHistory = 5 * 8766
	// MaxHorizon is the longest forecast: 36 months, which are at most
	// 1,096 days.
	MaxHorizon = 1096 * 24
)

const (
	day  = 24
	week = 7 * day
	// maxIssues caps the issues reported for one history; valid.Error
	// prints ten.
	maxIssues = 20
)

// Point is one hour of a pool's internal demand: At is the start of the
// hour, GPUs the mean number of GPUs in use over it.
type Point struct {
	At   time.Time
	GPUs float64
}

// series is a validated history laid out densely: y[i] is the hour
// start+i, NaN where the history has no point.
type series struct {
	start    time.Time
	y        []float64
	observed int
}

// end returns the first hour after the series.
func (s series) end() time.Time { return s.start.Add(time.Duration(len(s.y)) * time.Hour) }

// newSeries validates points and lays them out densely. Points must be on
// whole UTC hours (any location is converted to UTC), strictly increasing,
// finite and not negative; hours without a point are gaps. The history must
// hold at least MinHistory points, span at most MaxHistory hours and miss at
// most half of the hours it spans. Issues are reported under field, as
// "history[3].at". The error is a *valid.Error.
func newSeries(field string, points []Point) (series, error) {
	var issues valid.Error
	var prev time.Time
	for i, p := range points {
		if issues.Len() >= maxIssues {
			break
		}
		at := p.At.UTC()
		switch {
		case at.IsZero():
			issues.Add(fmt.Sprintf("%s[%d].at", field, i), nil, "is required")
		case !at.Equal(at.Truncate(time.Hour)):
			issues.Add(fmt.Sprintf("%s[%d].at", field, i), at.Format(time.RFC3339Nano), "must be on a whole UTC hour")
		case i > 0 && !prev.IsZero() && !at.After(prev):
			issues.Add(fmt.Sprintf("%s[%d].at", field, i), at.Format(time.RFC3339Nano),
				"must be later than %s[%d].at (%s): points are hourly and strictly increasing", field, i-1, prev.Format(time.RFC3339))
		}
		prev = at
		switch {
		case math.IsNaN(p.GPUs) || math.IsInf(p.GPUs, 0):
			issues.Add(fmt.Sprintf("%s[%d].gpus", field, i), p.GPUs, "must be a finite number")
		case p.GPUs < 0:
			issues.Add(fmt.Sprintf("%s[%d].gpus", field, i), p.GPUs, "must not be negative")
		}
	}
	if err := issues.Err(); err != nil {
		return series{}, err
	}
	if len(points) < MinHistory {
		issues.Add(field, fmt.Sprintf("%d hourly points", len(points)), "need at least %d hourly points (two weeks)", MinHistory)
		return series{}, issues.Err()
	}
	start := points[0].At.UTC()
	last := points[len(points)-1].At.UTC()
	span := last.Sub(start)/time.Hour + 1
	if span > MaxHistory {
		issues.Add(field, fmt.Sprintf("%d hours from %s to %s", int64(span), start.Format(time.RFC3339), last.Format(time.RFC3339)),
			"must span at most %d hours (five years); pass the most recent part", MaxHistory)
		return series{}, issues.Err()
	}
	if 2*len(points) < int(span) {
		issues.Add(field, fmt.Sprintf("%d of %d hours missing", int(span)-len(points), int64(span)),
			"at most half of the hours it spans may be missing")
		return series{}, issues.Err()
	}
	s := series{start: start, y: make([]float64, span), observed: len(points)}
	for i := range s.y {
		s.y[i] = math.NaN()
	}
	for _, p := range points {
		s.y[p.At.UTC().Sub(start)/time.Hour] = p.GPUs
	}
	return s, nil
}

// prefix returns the first n hours of s.
func (s series) prefix(n int) series {
	p := series{start: s.start, y: s.y[:n]}
	for _, v := range p.y {
		if !math.IsNaN(v) {
			p.observed++
		}
	}
	return p
}

// checkQuantile returns a *valid.Error when q is not in (0, 1).
func checkQuantile(field string, q float64) error {
	if q > 0 && q < 1 {
		return nil
	}
	var issues valid.Error
	issues.Add(field, q, "must be a probability strictly between 0 and 1")
	return issues.Err()
}

// Hourly is a path of hourly values: GPUs[i] covers the hour
// [Start+i h, Start+(i+1) h).
type Hourly struct {
	Start time.Time
	GPUs  []float64
}

// End returns the end of the path's last hour.
func (h Hourly) End() time.Time { return h.Start.Add(time.Duration(len(h.GPUs)) * time.Hour) }

// At returns the value of the hour holding t, and false when t is outside
// [Start, End()).
func (h Hourly) At(t time.Time) (float64, bool) {
	if t.Before(h.Start) {
		return 0, false
	}
	i := int(t.Sub(h.Start) / time.Hour)
	if i >= len(h.GPUs) {
		return 0, false
	}
	return h.GPUs[i], true
}

// Agg says how the hours of a span are summed up.
type Agg int

// Aggregations.
const (
	// Peak is the largest hourly value: the level to hold back so that
	// every hour of the span is covered.
	Peak Agg = iota
	// Average is the mean hourly value.
	Average
)

// Span is a value over the half-open interval [Start, End).
type Span struct {
	Start, End time.Time
	GPUs       float64
}

// Daily returns one span per UTC calendar day that the path touches,
// clipped to the path: the first and last may be partial days.
func (h Hourly) Daily(agg Agg) []Span {
	return h.spans(agg, func(t time.Time) time.Time {
		y, m, d := t.Date()
		return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
	})
}

// Monthly returns one span per UTC calendar month that the path touches,
// clipped to the path: the first and last may be partial months. Note that
// the Peak of a quantile path is the highest hourly quantile, not the
// quantile of the month's peak.
func (h Hourly) Monthly(agg Agg) []Span {
	return h.spans(agg, func(t time.Time) time.Time {
		y, m, _ := t.Date()
		return time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
	})
}

func (h Hourly) spans(agg Agg, next func(time.Time) time.Time) []Span {
	var out []Span
	start := h.Start.UTC()
	for i := 0; i < len(h.GPUs); {
		from := start.Add(time.Duration(i) * time.Hour)
		// Rounded up, so that a start off the hour still moves on.
		j := i + int((next(from).Sub(from)+time.Hour-1)/time.Hour)
		j = min(j, len(h.GPUs))
		v := h.GPUs[i]
		sum := 0.0
		for _, x := range h.GPUs[i:j] {
			v = max(v, x)
			sum += x
		}
		if agg == Average {
			v = sum / float64(j-i)
		}
		out = append(out, Span{Start: from, End: start.Add(time.Duration(j) * time.Hour), GPUs: v})
		i = j
	}
	return out
}
