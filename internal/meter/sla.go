package meter

import (
	"cmp"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/neocloud/neocloud/internal/valid"
)

// HourAmounts are one guaranteed lease's GPU-milliseconds in one hour.
type HourAmounts struct {
	Hour time.Time // the start of the hour, UTC
	// Committed is what the lease promised in the hour: its schedule's
	// GPUs × the milliseconds of the hour within the lease.
	Committed int64
	Held      int64 // what the lease's allocations actually held, GPUs × ms
	Unhealthy int64 // the part of Held that telemetry showed unhealthy
}

// Cause is a known reason for a shortfall over [From, To), such as an
// engine shortfall record ("node h100-a-n0001 failed: no replacement") or a
// health finding ("XID 79 on h100-a-n0002 GPU 3"). A zero To means the
// cause is still open; To equal to From is an instant (a finding's At),
// which belongs to the hour that contains it.
type Cause struct {
	From, To time.Time
	Text     string
}

// SLAInput is what Deliver needs for one guaranteed lease and one month.
type SLAInput struct {
	LeaseID, TenantID string
	Month             time.Time // the first instant of the month, UTC
	// Hours may come in any order; hours outside the month are ignored,
	// and a missing hour counts as zero in every amount.
	Hours  []HourAmounts
	Causes []Cause
}

// Episode is a maximal run of consecutive hours [From, To) each short of
// the commitment.
type Episode struct {
	From, To   time.Time
	ShortGPUms int64
	// Causes are the texts of the causes that overlap the episode, without
	// repeats, ordered by the cause's From and then text; when none
	// overlaps, one generic text: "held less than committed" or
	// "unhealthy GPU time".
	Causes []string
}

// Generic episode causes, when no known cause overlaps an episode.
const (
	CauseHeldShort = "held less than committed"
	CauseUnhealthy = "unhealthy GPU time"
)

// SLA is what a guaranteed lease was delivered in one month, in
// GPU-milliseconds. Delivered + Short == Committed.
type SLA struct {
	LeaseID, TenantID string
	Month             time.Time
	CommittedGPUms    int64
	HeldGPUms         int64
	UnhealthyGPUms    int64
	DeliveredGPUms    int64
	ShortGPUms        int64
	// AvailabilityPPM is DeliveredGPUms / CommittedGPUms in parts per
	// million, rounded down (the tenant is never told more than it got);
	// 1_000_000 when nothing was committed.
	AvailabilityPPM int64
	Episodes        []Episode // in time order; nil when nothing was short
}

// AvailabilityPct returns AvailabilityPPM as a percentage, for display
// only: credits are computed from the integer.
func (s SLA) AvailabilityPct() float64 {
	return float64(s.AvailabilityPPM) / 10_000
}

// Deliver computes what in's lease was delivered, hour by hour: in each
// hour, delivered = min(Committed, Held − Unhealthy) and short =
// Committed − delivered. Held beyond the commitment does not make up for
// another hour's shortfall.
//
// It returns a *valid.Error naming every offending field when Month is not
// the first instant of a month in UTC, an hour is not on the hour or
// appears twice, an amount is negative, Unhealthy exceeds Held, a month's
// total overflows int64, or a cause ends before it starts.
func Deliver(in SLAInput) (SLA, error) {
	var e valid.Error
	month := in.Month.UTC()
	if in.Month.IsZero() || !month.Equal(time.Date(month.Year(), month.Month(), 1, 0, 0, 0, 0, time.UTC)) {
		e.Add("month", in.Month.Format(time.RFC3339Nano), "must be the first instant of a month in UTC")
	}
	end := month.AddDate(0, 1, 0)

	hours := make([]HourAmounts, 0, len(in.Hours))
	index := make(map[int64]int, len(in.Hours)) // Unix seconds of an hour -> its first index in in.Hours
	for i, h := range in.Hours {
		f := func(name string) string { return "hours[" + strconv.Itoa(i) + "]." + name }
		at := h.Hour.UTC()
		// Truncate works from the zero time, which is on the hour in UTC.
		if !at.Equal(at.Truncate(time.Hour)) {
			e.Add(f("hour"), h.Hour.Format(time.RFC3339Nano), "must be on the hour")
		} else if j, dup := index[at.Unix()]; dup {
			e.Add(f("hour"), h.Hour.Format(time.RFC3339Nano), "must not repeat hours[%d]", j)
		} else {
			index[at.Unix()] = i
		}
		for _, a := range []struct {
			name string
			v    int64
		}{{"committed", h.Committed}, {"held", h.Held}, {"unhealthy", h.Unhealthy}} {
			if a.v < 0 {
				e.Add(f(a.name), a.v, "must not be negative")
			}
		}
		if h.Unhealthy > h.Held {
			e.Add(f("unhealthy"), h.Unhealthy, "must not exceed held (%d)", h.Held)
		}
		if !at.Before(month) && at.Before(end) {
			h.Hour = at
			hours = append(hours, h)
		}
	}
	for i, c := range in.Causes {
		if !c.To.IsZero() && c.To.Before(c.From) {
			e.Add("causes["+strconv.Itoa(i)+"].to", c.To.Format(time.RFC3339Nano), "must not be before from (%s)", c.From.Format(time.RFC3339Nano))
		}
	}
	if err := e.Err(); err != nil {
		return SLA{}, err
	}

	// Duplicates are refused above, so this order is total and the result
	// does not depend on the order of in.Hours.
	slices.SortFunc(hours, func(a, b HourAmounts) int { return a.Hour.Compare(b.Hour) })
	s := SLA{LeaseID: in.LeaseID, TenantID: in.TenantID, Month: month}
	var ok [5]bool
	var ep *Episode
	var epHeldShort bool // some hour of ep held less than committed
	var prevShort time.Time
	for _, h := range hours {
		delivered := min(h.Committed, h.Held-h.Unhealthy)
		short := h.Committed - delivered
		s.CommittedGPUms, ok[0] = add(s.CommittedGPUms, h.Committed)
		s.HeldGPUms, ok[1] = add(s.HeldGPUms, h.Held)
		s.UnhealthyGPUms, ok[2] = add(s.UnhealthyGPUms, h.Unhealthy)
		s.DeliveredGPUms, ok[3] = add(s.DeliveredGPUms, delivered)
		s.ShortGPUms, ok[4] = add(s.ShortGPUms, short)
		if slices.Contains(ok[:], false) {
			e.Add("hours", len(in.Hours), "must not total more than %d GPU-ms in a month", int64(1<<63-1))
			return SLA{}, e.Err()
		}
		if short == 0 {
			continue
		}
		if ep == nil || !h.Hour.Equal(prevShort.Add(time.Hour)) {
			s.Episodes = closeEpisode(s.Episodes, ep, epHeldShort, in.Causes)
			ep, epHeldShort = &Episode{From: h.Hour}, false
		}
		// Cannot overflow: the episode's shortfall is part of ShortGPUms.
		ep.ShortGPUms += short
		ep.To = h.Hour.Add(time.Hour)
		epHeldShort = epHeldShort || h.Held < h.Committed
		prevShort = h.Hour
	}
	s.Episodes = closeEpisode(s.Episodes, ep, epHeldShort, in.Causes)
	s.AvailabilityPPM = ppm(s.DeliveredGPUms, s.CommittedGPUms)
	return s, nil
}

// closeEpisode appends ep, if any, to eps with its causes filled in.
func closeEpisode(eps []Episode, ep *Episode, heldShort bool, causes []Cause) []Episode {
	if ep == nil {
		return eps
	}
	var hit []Cause
	for _, c := range causes {
		if overlaps(c, ep.From, ep.To) {
			hit = append(hit, c)
		}
	}
	slices.SortFunc(hit, func(a, b Cause) int {
		return cmp.Or(a.From.Compare(b.From), strings.Compare(a.Text, b.Text))
	})
	for _, c := range hit {
		if !slices.Contains(ep.Causes, c.Text) {
			ep.Causes = append(ep.Causes, c.Text)
		}
	}
	if len(ep.Causes) == 0 {
		if heldShort {
			ep.Causes = []string{CauseHeldShort}
		} else {
			ep.Causes = []string{CauseUnhealthy}
		}
	}
	return append(eps, *ep)
}

// overlaps reports whether c touches [from, to): an interval cause must
// share time with it, an instant cause (To == From) must lie in it, and an
// open cause (zero To) runs forever.
func overlaps(c Cause, from, to time.Time) bool {
	if !c.From.Before(to) {
		return false
	}
	switch {
	case c.To.IsZero():
		return true
	case c.To.Equal(c.From):
		return !c.From.Before(from)
	default:
		return c.To.After(from)
	}
}

// ppm returns num/den in parts per million, rounded down, for 0 <= num <=
// den; 1_000_000 when den is 0. The product num × 1e6 can exceed int64
// (a month of 200k GPUs is ~5e14 GPU-ms), so it is taken in 128 bits.
func ppm(num, den int64) int64 {
	if den <= 0 {
		return 1_000_000
	}
	hi, lo := bits.Mul64(uint64(num), 1_000_000)
	// hi < den because num <= den, so Div64 cannot panic.
	q, _ := bits.Div64(hi, lo, uint64(den))
	return int64(q)
}

// add returns a+b for non-negative a and b, and whether it did not
// overflow.
func add(a, b int64) (int64, bool) {
	s := a + b
	return s, s >= a
}
