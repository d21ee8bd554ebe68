package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/valid"
)

// Point is one simulated hour of the whole fleet. Counts are GPUs over the
// hour [At, At+1h); since points are hourly, a sum of GPUs over points is
// GPU-hours. The lease counts (Contract, Reservation, Spot), the owner's
// use (InternalMet) and Sanitizing are disjoint: a GPU is in at most one
// of them.
type Point struct {
	// At is the start of the hour, UTC.
	At time.Time
	// Healthy is the GPUs that could be scheduled this hour: the fleet
	// less failed nodes and nodes in maintenance.
	Healthy int64
	// Internal is the owner's own demand this hour.
	Internal int64
	// InternalMet is the part of Internal served this hour (≤ Internal).
	InternalMet int64
	// InternalLate is the part of the unserved demand (Internal −
	// InternalMet) that has waited longer than the spot notice period:
	// demand that reclaiming spot could not explain away. The acceptance
	// target is zero.
	InternalLate int64
	// Holdback is the GPUs the holdback policy kept from guaranteed
	// leases this hour (a forecast quantile plus a buffer).
	Holdback int64
	// Contract, Reservation and Spot are the GPUs held by leases of each
	// kind this hour.
	Contract, Reservation, Spot int64
	// Sanitizing is the GPUs in hand-over (being wiped) this hour.
	Sanitizing int64
	// ContractUSD, ReservationUSD and SpotUSD are the revenue accrued
	// this hour by leases of each kind, in USD (a zero Money without a
	// currency counts as zero USD).
	ContractUSD, ReservationUSD, SpotUSD money.Money
	// Reclaims is the spot leases given a reclaim notice this hour, and
	// ReclaimedGPUs the GPUs those leases held.
	Reclaims      int
	ReclaimedGPUs int64
	// Failures is the node failures (unplanned outages) that began this
	// hour.
	Failures int
}

// Validate checks p's counts: none negative, InternalMet ≤ Internal and
// InternalLate ≤ Internal − InternalMet. The error is a *valid.Error whose
// fields are the JSON names ("internal_met").
func (p Point) Validate() error {
	counts := [...]struct {
		name string
		v    int64
	}{
		{"healthy", p.Healthy}, {"internal", p.Internal}, {"internal_met", p.InternalMet},
		{"internal_late", p.InternalLate}, {"holdback", p.Holdback}, {"contract", p.Contract},
		{"reservation", p.Reservation}, {"spot", p.Spot}, {"sanitizing", p.Sanitizing},
		{"reclaims", int64(p.Reclaims)}, {"reclaimed_gpus", p.ReclaimedGPUs}, {"failures", int64(p.Failures)},
	}
	ok := p.InternalMet <= p.Internal && p.InternalLate <= p.Internal-p.InternalMet
	for _, c := range counts {
		ok = ok && c.v >= 0
	}
	if ok { // the common case, without allocating an error
		return nil
	}
	var e valid.Error
	for _, c := range counts {
		if c.v < 0 {
			e.Add(c.name, c.v, "must not be negative")
		}
	}
	if p.InternalMet > p.Internal {
		e.Add("internal_met", p.InternalMet, "must not exceed internal (%d)", p.Internal)
	} else if p.InternalLate > p.Internal-p.InternalMet {
		e.Add("internal_late", p.InternalLate, "must not exceed internal − internal_met (%d)", p.Internal-p.InternalMet)
	}
	return e.Err()
}

// Revenue is money by lease kind, in USD. It marshals to JSON as exact
// decimal strings ("1250000000.00", "0.000001"), never as floats.
type Revenue struct {
	Contract, Reservation, Spot, Total money.Money
}

type revenueJSON struct {
	Contract    string `json:"contract"`
	Reservation string `json:"reservation"`
	Spot        string `json:"spot"`
	Total       string `json:"total"`
}

// MarshalJSON writes r as {"contract": "…", "reservation": "…", "spot":
// "…", "total": "…"}, amounts formatted by money.Format.
func (r Revenue) MarshalJSON() ([]byte, error) {
	return json.Marshal(revenueJSON{
		Contract: money.Format(r.Contract.Micros), Reservation: money.Format(r.Reservation.Micros),
		Spot: money.Format(r.Spot.Micros), Total: money.Format(r.Total.Micros),
	})
}

// UnmarshalJSON reads what MarshalJSON writes; amounts are USD.
func (r *Revenue) UnmarshalJSON(b []byte) error {
	var j revenueJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var out Revenue
	for _, f := range []struct {
		s string
		m *money.Money
	}{{j.Contract, &out.Contract}, {j.Reservation, &out.Reservation}, {j.Spot, &out.Spot}, {j.Total, &out.Total}} {
		micros, err := money.ParseMicros(f.s)
		if err != nil {
			return fmt.Errorf("revenue_usd: %w", err)
		}
		*f.m = money.USD(micros)
	}
	*r = out
	return nil
}

// Totals sums points. GPU-hour fields are sums of hourly GPU counts.
type Totals struct {
	// HealthyGPUHours is Σ Healthy.
	HealthyGPUHours int64 `json:"healthy_gpu_hours"`
	// InternalGPUHours is Σ Internal, InternalMetGPUHours Σ InternalMet.
	InternalGPUHours    int64 `json:"internal_gpu_hours"`
	InternalMetGPUHours int64 `json:"internal_met_gpu_hours"`
	// IdleGPUHours is Σ max(Healthy − InternalMet, 0): capacity the owner
	// did not use itself.
	IdleGPUHours int64 `json:"idle_gpu_hours"`
	// MonetizedGPUHours is Σ min(Contract + Reservation + Spot,
	// max(Healthy − InternalMet, 0)): the part of the idle capacity held
	// by leases.
	MonetizedGPUHours int64 `json:"monetized_gpu_hours"`
	// MonetizedPct is 100 × MonetizedGPUHours / IdleGPUHours rounded
	// half-up to 2 decimals; 0 when IdleGPUHours is 0.
	MonetizedPct float64 `json:"monetized_pct"`
	// ContractGPUHours, ReservationGPUHours, SpotGPUHours and
	// SanitizingGPUHours are Σ of each count.
	ContractGPUHours    int64 `json:"contract_gpu_hours"`
	ReservationGPUHours int64 `json:"reservation_gpu_hours"`
	SpotGPUHours        int64 `json:"spot_gpu_hours"`
	SanitizingGPUHours  int64 `json:"sanitizing_gpu_hours"`
	// InternalWaitGPUHours is Σ (Internal − InternalMet): internal demand
	// not served in its hour, however briefly it waited.
	InternalWaitGPUHours int64 `json:"internal_wait_gpu_hours"`
	// InternalShortfallGPUHours is Σ InternalLate: internal demand that
	// waited longer than the notice period. The acceptance target is 0.
	InternalShortfallGPUHours int64 `json:"internal_shortfall_gpu_hours"`
	// InternalShortfallHours is the number of hours with InternalLate > 0.
	InternalShortfallHours int64 `json:"internal_shortfall_hours"`
	// Preemptions is Σ Reclaims: spot leases given a reclaim notice.
	Preemptions int64 `json:"preemptions"`
	// ReclaimedGPUs is Σ ReclaimedGPUs.
	ReclaimedGPUs int64 `json:"reclaimed_gpus"`
	// Failures is Σ Failures: node failures.
	Failures int64 `json:"failures"`
	// PeakInternalGPUs, PeakInternalWaitGPUs, PeakInternalLateGPUs and
	// PeakSpotGPUs are the largest hourly Internal, Internal −
	// InternalMet, InternalLate and Spot; MinHealthyGPUs the smallest
	// hourly Healthy (0 without points).
	PeakInternalGPUs     int64 `json:"peak_internal_gpus"`
	PeakInternalWaitGPUs int64 `json:"peak_internal_wait_gpus"`
	PeakInternalLateGPUs int64 `json:"peak_internal_late_gpus"`
	PeakSpotGPUs         int64 `json:"peak_spot_gpus"`
	MinHealthyGPUs       int64 `json:"min_healthy_gpus"`
	// Revenue is Σ of each kind's USD and their total.
	Revenue Revenue `json:"revenue_usd"`
}

// ErrOverflow is returned when a sum does not fit an int64.
var ErrOverflow = errors.New("sim: sum out of range")

// Summarize sums points into Totals. Points must be valid (Point.Validate)
// and hourly: points[i].At = points[0].At + i hours. It returns a
// *valid.Error naming the first bad point ("points[12].internal_met"),
// ErrOverflow, or money.ErrCurrency when revenue is not in USD. No points
// sum to zero Totals.
func Summarize(points []Point) (Totals, error) {
	var t Totals
	if err := checkHourly(points); err != nil {
		return Totals{}, err
	}
	var s sum
	usd := [3]money.Money{money.USD(0), money.USD(0), money.USD(0)}
	for i, p := range points {
		idle := max(p.Healthy-p.InternalMet, 0)
		leased := s.add(s.add(p.Contract, p.Reservation), p.Spot)
		wait := p.Internal - p.InternalMet
		t.HealthyGPUHours = s.add(t.HealthyGPUHours, p.Healthy)
		t.InternalGPUHours = s.add(t.InternalGPUHours, p.Internal)
		t.InternalMetGPUHours = s.add(t.InternalMetGPUHours, p.InternalMet)
		t.IdleGPUHours = s.add(t.IdleGPUHours, idle)
		t.MonetizedGPUHours = s.add(t.MonetizedGPUHours, min(leased, idle))
		t.ContractGPUHours = s.add(t.ContractGPUHours, p.Contract)
		t.ReservationGPUHours = s.add(t.ReservationGPUHours, p.Reservation)
		t.SpotGPUHours = s.add(t.SpotGPUHours, p.Spot)
		t.SanitizingGPUHours = s.add(t.SanitizingGPUHours, p.Sanitizing)
		t.InternalWaitGPUHours = s.add(t.InternalWaitGPUHours, wait)
		t.InternalShortfallGPUHours = s.add(t.InternalShortfallGPUHours, p.InternalLate)
		if p.InternalLate > 0 {
			t.InternalShortfallHours++
		}
		t.Preemptions = s.add(t.Preemptions, int64(p.Reclaims))
		t.ReclaimedGPUs = s.add(t.ReclaimedGPUs, p.ReclaimedGPUs)
		t.Failures = s.add(t.Failures, int64(p.Failures))
		t.PeakInternalGPUs = max(t.PeakInternalGPUs, p.Internal)
		t.PeakInternalWaitGPUs = max(t.PeakInternalWaitGPUs, wait)
		t.PeakInternalLateGPUs = max(t.PeakInternalLateGPUs, p.InternalLate)
		t.PeakSpotGPUs = max(t.PeakSpotGPUs, p.Spot)
		if i == 0 || p.Healthy < t.MinHealthyGPUs {
			t.MinHealthyGPUs = p.Healthy
		}
		if s.err != nil {
			return Totals{}, fmt.Errorf("points[%d]: %w", i, s.err)
		}
		for k, m := range []money.Money{p.ContractUSD, p.ReservationUSD, p.SpotUSD} {
			var err error
			if usd[k], err = usd[k].Add(m); err != nil {
				return Totals{}, fmt.Errorf("sim: points[%d]: revenue: %w", i, err)
			}
		}
	}
	t.MonetizedPct = pct(t.MonetizedGPUHours, t.IdleGPUHours)
	t.Revenue = Revenue{Contract: usd[0], Reservation: usd[1], Spot: usd[2]}
	total, err := usd[0].Add(usd[1])
	if err == nil {
		total, err = total.Add(usd[2])
	}
	if err != nil {
		return Totals{}, fmt.Errorf("sim: revenue total: %w", err)
	}
	t.Revenue.Total = total
	return t, nil
}

// checkHourly validates each point and their hourly spacing.
func checkHourly(points []Point) error {
	for i, p := range points {
		if err := p.Validate(); err != nil {
			var ve *valid.Error
			if errors.As(err, &ve) {
				var out valid.Error
				for _, is := range ve.Issues {
					out.Issues = append(out.Issues, valid.Issue{Field: fmt.Sprintf("points[%d].%s", i, is.Field), Value: is.Value, Rule: is.Rule})
				}
				return out.Err()
			}
			return err
		}
		if i > 0 && !p.At.Equal(points[0].At.Add(time.Duration(i)*time.Hour)) {
			var e valid.Error
			e.Add(fmt.Sprintf("points[%d].at", i), p.At.UTC().Format(time.RFC3339), "must be %d hours after points[0].at (%s): points are hourly", i, points[0].At.UTC().Format(time.RFC3339))
			return e.Err()
		}
	}
	return nil
}

// sum adds int64s and remembers the first overflow.
type sum struct{ err error }

func (s *sum) add(a, b int64) int64 {
	c := a + b
	if (c > a) != (b > 0) && s.err == nil {
		s.err = fmt.Errorf("%w: %d + %d", ErrOverflow, a, b)
	}
	return c
}

// pct returns 100 × num / den rounded half-up to 2 decimals, or 0 when den
// is 0; num is capped at den. The quotient is taken in 128 bits and is a
// whole number of hundredths, so the float is the one nearest to a
// decimal with two fraction digits and prints as one.
func pct(num, den int64) float64 {
	if den <= 0 || num <= 0 {
		return 0
	}
	num = min(num, den)
	hi, lo := bits.Mul64(uint64(num), 10_000)
	lo, carry := bits.Add64(lo, uint64(den)/2, 0)
	hi += carry
	q, _ := bits.Div64(hi, lo, uint64(den)) // hi < den since num ≤ den
	return float64(q) / 100
}

// Summary is what `neocloud simulate` writes as JSON: the run's totals
// inline, the static-partition baseline's totals, and engine counters.
type Summary struct {
	// Fleet names the fleet file or reference fleet simulated.
	Fleet string `json:"fleet"`
	// Seed drew the simulation's randomness.
	Seed uint64 `json:"seed"`
	// Months is the simulated span asked for.
	Months int `json:"months"`
	// Start and End bound the simulated hours [Start, End), UTC.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Hours is the number of simulated hours (points).
	Hours int `json:"hours"`
	Totals
	// Baseline is the static partition's totals over the same hours.
	Baseline Totals `json:"baseline"`
	// Engine holds counters from the engine (leases, commands, …); nil
	// marshals as {}.
	Engine map[string]int64 `json:"engine"`
}

// NewSummary returns the Summary of points and their baseline (see
// Baseline): Start is points[0].At, End one hour after the last point.
// Engine is left nil for the caller. It returns Summarize's errors, for
// either series, and an error when there are no points or the two series
// differ in length.
func NewSummary(fleet string, seed uint64, months int, points, baseline []Point) (Summary, error) {
	if len(points) == 0 {
		return Summary{}, errors.New("sim: summary: no points")
	}
	if len(baseline) != len(points) {
		return Summary{}, fmt.Errorf("sim: summary: %d baseline points for %d points", len(baseline), len(points))
	}
	run, err := Summarize(points)
	if err != nil {
		return Summary{}, fmt.Errorf("sim: summary: run: %w", err)
	}
	base, err := Summarize(baseline)
	if err != nil {
		return Summary{}, fmt.Errorf("sim: summary: baseline: %w", err)
	}
	return Summary{
		Fleet: fleet, Seed: seed, Months: months,
		Start: points[0].At.UTC(), End: points[len(points)-1].At.Add(time.Hour).UTC(),
		Hours: len(points), Totals: run, Baseline: base,
	}, nil
}

// summaryJSON drops Summary's methods, so that MarshalJSON can encode it.
type summaryJSON Summary

// MarshalJSON encodes s in struct field order with the totals inline,
// times in UTC and a nil Engine as {}: the same s gives the same bytes.
func (s Summary) MarshalJSON() ([]byte, error) {
	j := summaryJSON(s)
	j.Start, j.End = s.Start.UTC(), s.End.UTC()
	if j.Engine == nil {
		j.Engine = map[string]int64{}
	}
	return json.Marshal(j)
}

// JSON returns s as indented JSON with a final newline: the bytes of the
// --json file and of summary.json in the report.
func (s Summary) JSON() ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("sim: summary: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, fmt.Errorf("sim: summary: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
