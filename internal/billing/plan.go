package billing

import (
	"fmt"
	"slices"
	"time"

	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/valid"
)

// Plan is how a lease is priced. Its Kind is the lease's kind, and every
// price in it is in Currency.
//
//   - A contract has a Fee (a monthly fee prorated by the hour, a committed
//     rate per GPU-hour, or a committed rate per MW-month), and may have
//     Discounts, an Energy pass-through and SLA terms. Contracts are
//     take-or-pay: the fee is billed on the commitment, whatever was used.
//   - A reservation has Reservation terms: a rate per GPU-hour, billed
//     upfront or monthly in arrears.
//   - A spot plan has nothing but its currency: the price is the one in
//     effect while the lease held capacity, which comes with each month's
//     facts (SpotPiece).
type Plan struct {
	Kind     lease.Kind
	Currency string // ISO 4217, e.g. "USD"

	Fee         *Fee
	Discounts   []Discount
	Energy      *Energy
	SLA         *SLATerms
	Reservation *ReservationTerms
}

// FeeBasis says how a contract's fee for a month is computed.
type FeeBasis string

// Fee bases.
const (
	// PerMonth: Rate is the fee for a whole calendar month; a month the
	// lease holds in part is prorated by the hour.
	PerMonth FeeBasis = "month"
	// PerGPUHour: Rate × the GPU-hours the lease's schedule commits in the
	// month.
	PerGPUHour FeeBasis = "gpu-hour"
	// PerMWMonth: Rate × Power in MW for a whole month, prorated by the
	// hour like PerMonth.
	PerMWMonth FeeBasis = "mw-month"
)

// FeeBases lists every fee basis.
var FeeBases = []FeeBasis{PerMonth, PerGPUHour, PerMWMonth}

// Fee is a contract's fee.
type Fee struct {
	Basis FeeBasis
	Rate  money.Money // per month, per GPU-hour or per MW-month
	// Power is the committed power a PerMWMonth fee is charged on (whole
	// watts, so that MW is an exact decimal); zero for other bases.
	Power unit.Power
}

// Discount takes a share or an amount off one month's fee. A share
// applies to the month's fee after proration; an amount larger than that
// fee takes the fee to zero, never below.
type Discount struct {
	Month       time.Time   // the first instant of the month, UTC
	BasisPoints int64       // 1..10000 (5000 = 50% off); zero when Amount is given
	Amount      money.Money // > 0; zero when BasisPoints is given
}

// Energy passes metered energy through: IT energy × PUE × Tariff.
type Energy struct {
	// PUEMilli is the power usage effectiveness in thousandths (1250 =
	// 1.25): facility energy per unit of IT energy.
	PUEMilli int64
	Tariff   money.Money // per kWh of facility energy
}

// SLATerms credits a month's fee when availability falls short.
type SLATerms struct {
	// TargetPPM is the availability promised, in parts per million
	// (995000 = 99.5%). No tier may credit at or above it.
	TargetPPM int64
	// Tiers, in order of decreasing BelowPPM: availability strictly below
	// a tier's BelowPPM earns its credit; the lowest tier that applies
	// wins.
	Tiers []CreditTier
	// CapBP caps the credit at this share of the month's fee, in basis
	// points; 0 means no cap beyond the fee itself.
	CapBP int64
}

// CreditTier is one SLA credit tier: availability strictly below BelowPPM
// credits CreditBP basis points of the month's fee after discounts.
type CreditTier struct {
	BelowPPM int64
	CreditBP int64
}

// ReservationBilling says when a reservation is invoiced.
type ReservationBilling string

// Reservation billings.
const (
	// Upfront puts the whole reservation on the invoice of the month it
	// starts in.
	Upfront ReservationBilling = "upfront"
	// Arrears puts each month's GPU-hours on that month's invoice.
	Arrears ReservationBilling = "arrears"
)

// ReservationBillings lists every reservation billing.
var ReservationBillings = []ReservationBilling{Upfront, Arrears}

// ReservationTerms price a reservation: Rate per GPU-hour × GPUs × hours.
type ReservationTerms struct {
	Rate    money.Money
	Billing ReservationBilling
}

// Limits on plan terms: they keep every product far from overflow and
// catch unit mistakes (a PUE of 1.25 given as 125).
const (
	MinPUEMilli = 1000
	MaxPUEMilli = 10_000
	PPM         = 1_000_000 // parts per million in a whole
	BP          = 10_000    // basis points in a whole
)

// Validate checks p on its own. It returns a *valid.Error naming every
// offending field (with the API's snake_case names, e.g.
// "discounts[1].basis_points") and the rule it broke, or nil.
func (p Plan) Validate() error {
	var e valid.Error
	p.validate(&e)
	return e.Err()
}

// ValidateFor checks p on its own and as the plan of l: the kinds match, a
// guaranteed lease has an end and whole hours (so that hours and
// GPU-hours are whole numbers), and discounts name months the lease
// holds. It returns a *valid.Error naming every offending field (the
// lease's prefixed "lease."), or nil.
func (p Plan) ValidateFor(l lease.Lease) error {
	var e valid.Error
	p.validate(&e)
	if l.Kind != p.Kind {
		e.Add("lease.kind", string(l.Kind), "must be the plan's kind (%s)", p.Kind)
	}
	if !l.Kind.Guaranteed() {
		return e.Err()
	}
	wholeHour(&e, "lease.start", l.Start)
	wholeHour(&e, "lease.end", l.End)
	if !l.End.After(l.Start) {
		e.Add("lease.end", l.End.Format(time.RFC3339Nano), "must be after start (%s)", l.Start.Format(time.RFC3339Nano))
	}
	for i, s := range l.Schedule {
		wholeHour(&e, fmt.Sprintf("lease.schedule[%d].from", i), s.From)
		if s.GPUs < 0 || s.GPUs > lease.MaxGPUs {
			e.Add(fmt.Sprintf("lease.schedule[%d].gpus", i), int64(s.GPUs), "must be between 0 and %d", lease.MaxGPUs)
		}
	}
	if e.Len() > 0 {
		return e.Err()
	}
	first, last := monthOf(l.Start), monthOf(l.End.Add(-time.Nanosecond))
	for i, d := range p.Discounts {
		if m := d.Month.UTC(); m.Before(first) || m.After(last) {
			e.Add(fmt.Sprintf("discounts[%d].month", i), d.Month.Format("2006-01"),
				"must be a month the lease holds (%s to %s)", first.Format("2006-01"), last.Format("2006-01"))
		}
	}
	return e.Err()
}

func (p Plan) validate(e *valid.Error) {
	if !slices.Contains(lease.Kinds, p.Kind) {
		e.Add("kind", string(p.Kind), "must be one of %v", lease.Kinds)
	}
	if !isCurrency(p.Currency) {
		e.Add("currency", p.Currency, "must be a 3-letter ISO 4217 code (e.g. USD)")
	}
	price := func(field string, m money.Money, positive bool) {
		switch {
		case m.Currency != p.Currency:
			e.Add(field, m.String(), "must be in the plan's currency (%s)", p.Currency)
		case positive && m.Micros <= 0:
			e.Add(field, m.String(), "must be above 0")
		case m.Micros < 0:
			e.Add(field, m.String(), "must not be negative")
		}
	}
	only := func(field string, set bool, kind lease.Kind) {
		if set && p.Kind != kind {
			e.Add(field, nil, "is only for %s plans", kind)
		}
	}
	only("fee", p.Fee != nil, lease.Contract)
	only("discounts", len(p.Discounts) > 0, lease.Contract)
	only("energy", p.Energy != nil, lease.Contract)
	only("sla", p.SLA != nil, lease.Contract)
	only("reservation", p.Reservation != nil, lease.Reservation)
	switch {
	case p.Kind == lease.Contract && p.Fee == nil:
		e.Add("fee", nil, "is required for a contract")
	case p.Kind == lease.Reservation && p.Reservation == nil:
		e.Add("reservation", nil, "is required for a reservation")
	}

	if f := p.Fee; f != nil {
		if !slices.Contains(FeeBases, f.Basis) {
			e.Add("fee.basis", string(f.Basis), "must be one of %v", FeeBases)
		}
		price("fee.rate", f.Rate, true)
		switch {
		case f.Basis == PerMWMonth && (f.Power <= 0 || f.Power > 100_000*unit.Megawatt):
			e.Add("fee.power_w", int64(f.Power), "must be between 1 W and 100000 MW for a %s fee", PerMWMonth)
		case f.Basis != PerMWMonth && f.Power != 0:
			e.Add("fee.power_w", int64(f.Power), "is only for a %s fee", PerMWMonth)
		}
	}
	seen := map[int64]int{} // Unix seconds of a month -> its first index
	for i, d := range p.Discounts {
		f := func(name string) string { return fmt.Sprintf("discounts[%d].%s", i, name) }
		m := d.Month.UTC()
		switch {
		case d.Month.IsZero() || !m.Equal(monthOf(m)):
			e.Add(f("month"), d.Month.Format(time.RFC3339Nano), "must be the first instant of a month in UTC")
		default:
			if j, dup := seen[m.Unix()]; dup {
				e.Add(f("month"), m.Format("2006-01"), "must not repeat discounts[%d].month", j)
			} else {
				seen[m.Unix()] = i
			}
		}
		switch {
		case d.BasisPoints != 0 && !d.Amount.IsZero():
			e.Add(f("basis_points"), d.BasisPoints, "give basis_points or amount, not both")
		case d.BasisPoints == 0 && d.Amount.IsZero():
			e.Add(f("basis_points"), nil, "give basis_points (1 to %d) or amount", BP)
		case d.BasisPoints != 0 && (d.BasisPoints < 1 || d.BasisPoints > BP):
			e.Add(f("basis_points"), d.BasisPoints, "must be between 1 and %d", BP)
		case !d.Amount.IsZero():
			price(f("amount"), d.Amount, true)
		}
	}
	if en := p.Energy; en != nil {
		if en.PUEMilli < MinPUEMilli || en.PUEMilli > MaxPUEMilli {
			e.Add("energy.pue_milli", en.PUEMilli, "must be between %d and %d (thousandths: 1250 = PUE 1.25)", MinPUEMilli, MaxPUEMilli)
		}
		price("energy.tariff", en.Tariff, false)
	}
	if s := p.SLA; s != nil {
		if s.TargetPPM <= 0 || s.TargetPPM > PPM {
			e.Add("sla.target_ppm", s.TargetPPM, "must be between 1 and %d (995000 = 99.5%%)", PPM)
		}
		if len(s.Tiers) == 0 {
			e.Add("sla.tiers", nil, "must have at least one tier")
		}
		for i, t := range s.Tiers {
			f := func(name string) string { return fmt.Sprintf("sla.tiers[%d].%s", i, name) }
			switch {
			case t.BelowPPM <= 0 || t.BelowPPM > s.TargetPPM:
				e.Add(f("below_ppm"), t.BelowPPM, "must be between 1 and the target (%d)", s.TargetPPM)
			case i > 0 && t.BelowPPM >= s.Tiers[i-1].BelowPPM:
				e.Add(f("below_ppm"), t.BelowPPM, "must be below sla.tiers[%d].below_ppm (%d)", i-1, s.Tiers[i-1].BelowPPM)
			}
			switch {
			case t.CreditBP <= 0 || t.CreditBP > BP:
				e.Add(f("credit_bp"), t.CreditBP, "must be between 1 and %d", BP)
			case i > 0 && t.CreditBP < s.Tiers[i-1].CreditBP:
				e.Add(f("credit_bp"), t.CreditBP, "must be at least sla.tiers[%d].credit_bp (%d): lower availability never earns less", i-1, s.Tiers[i-1].CreditBP)
			}
		}
		if s.CapBP < 0 || s.CapBP > BP {
			e.Add("sla.cap_bp", s.CapBP, "must be between 0 (no cap) and %d", BP)
		}
	}
	if r := p.Reservation; r != nil {
		price("reservation.rate", r.Rate, true)
		if !slices.Contains(ReservationBillings, r.Billing) {
			e.Add("reservation.billing", string(r.Billing), "must be one of %v", ReservationBillings)
		}
	}
}

// monthOf returns the first instant of t's month in UTC.
func monthOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// isMonth reports whether t is the first instant of a month in UTC.
func isMonth(t time.Time) bool { return !t.IsZero() && t.Equal(monthOf(t)) }

func wholeHour(e *valid.Error, field string, t time.Time) {
	switch {
	case t.IsZero():
		e.Add(field, nil, "is required (on a whole UTC hour)")
	case !t.Equal(t.Truncate(time.Hour)):
		e.Add(field, t.Format(time.RFC3339Nano), "must be on a whole UTC hour")
	}
}

func isCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for _, r := range c {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}
