package billing

import (
	"cmp"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"time"

	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/valid"
)

// LeaseMonth is what Rate needs to rate one lease for one UTC calendar
// month: the lease, its plan, the month, and the month's facts.
type LeaseMonth struct {
	Lease lease.Lease
	Plan  Plan
	Month time.Time // the first instant of the month, UTC

	// EnergyMJ is the IT energy metered for the lease in the month, in
	// millijoules. It is billed only under an Energy pass-through.
	EnergyMJ int64
	// SLAApplies says whether the month's availability is measured and
	// counts (meter.Deliver ran for the month); AvailabilityPPM is then
	// meter.SLA.AvailabilityPPM. Credits need SLA terms in the plan.
	SLAApplies      bool
	AvailabilityPPM int64
	// Spot lists a spot lease's holding in the month at constant price
	// and GPU count. Pieces may come in any order and may reach outside
	// the month (they are clipped to it); pieces that overlap are
	// different GPUs, both billed.
	Spot []SpotPiece
}

// SpotPiece is a stretch of time [From, To) over which a spot lease held
// GPUs at PricePerGPUHour.
type SpotPiece struct {
	From, To        time.Time
	GPUs            int64
	PricePerGPUHour money.Money
}

// Rate returns the lines of one lease for one month, in invoice order.
// The committed quantities (GPU-hours, hours held) come from the lease's
// schedule; only energy, availability and spot holding are facts. A
// guaranteed lease that holds no time in the month has no lines (nil).
//
// Amounts are exact, rounded half-even to the micro-unit; rounding to
// cents happens when the invoice is finalized. It returns a *valid.Error
// naming every offending field when the plan, the lease (for its plan)
// or the facts are invalid, and money.ErrOverflow when an amount does not
// fit, each wrapped with the lease and month.
func Rate(in LeaseMonth) ([]Line, error) {
	lines, err := rate(in)
	if err != nil {
		return nil, fmt.Errorf("lease %s: rate %s: %w", in.Lease.ID, in.Month.UTC().Format("2006-01"), err)
	}
	return lines, nil
}

func rate(in LeaseMonth) ([]Line, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	ms := in.Month.UTC()
	me := ms.AddDate(0, 1, 0)
	switch in.Plan.Kind {
	case lease.Contract:
		return rateContract(in, ms, me)
	case lease.Reservation:
		return rateReservation(in, ms, me)
	default:
		return rateSpot(in, ms, me)
	}
}

// validate checks the plan for the lease and the month's facts.
func (in LeaseMonth) validate() error {
	var e valid.Error
	if err := in.Plan.ValidateFor(in.Lease); err != nil {
		var ve *valid.Error
		if !errors.As(err, &ve) {
			return err
		}
		e.Issues = append(e.Issues, ve.Issues...)
	}
	if !isMonth(in.Month) {
		e.Add("month", in.Month.Format(time.RFC3339Nano), "must be the first instant of a month in UTC")
	}
	if in.EnergyMJ < 0 {
		e.Add("energy_mj", in.EnergyMJ, "must not be negative")
	}
	if in.SLAApplies && (in.AvailabilityPPM < 0 || in.AvailabilityPPM > PPM) {
		e.Add("availability_ppm", in.AvailabilityPPM, "must be between 0 and %d", PPM)
	}
	if len(in.Spot) > 0 && in.Plan.Kind != lease.Spot {
		e.Add("spot", len(in.Spot), "is only for spot leases")
	}
	for i, pc := range in.Spot {
		f := func(name string) string { return fmt.Sprintf("spot[%d].%s", i, name) }
		if pc.From.IsZero() {
			e.Add(f("from"), nil, "is required")
		}
		if !pc.To.After(pc.From) {
			e.Add(f("to"), pc.To.Format(time.RFC3339Nano), "must be after from (%s)", pc.From.Format(time.RFC3339Nano))
		}
		if pc.GPUs < 1 || pc.GPUs > int64(lease.MaxGPUs) {
			e.Add(f("gpus"), pc.GPUs, "must be between 1 and %d", lease.MaxGPUs)
		}
		switch {
		case pc.PricePerGPUHour.Currency != in.Plan.Currency:
			e.Add(f("price_per_gpu_hour"), pc.PricePerGPUHour.String(), "must be in the plan's currency (%s)", in.Plan.Currency)
		case pc.PricePerGPUHour.Micros < 0:
			e.Add(f("price_per_gpu_hour"), pc.PricePerGPUHour.String(), "must not be negative")
		}
	}
	return e.Err()
}

// rateContract rates a contract: the month's fee (prorated by the hour
// when the lease holds part of the month), the month's discount, the SLA
// credit on the fee after the discount, and the energy passed through.
func rateContract(in LeaseMonth, ms, me time.Time) ([]Line, error) {
	l, p := in.Lease, in.Plan
	from, to := later(l.Start, ms), earlier(l.End, me)
	if !from.Before(to) {
		return nil, nil
	}
	name := ms.Format("January 2006")
	inMonth, held := hours(ms, me), hours(from, to)
	lines := make([]Line, 0, 5)
	var err error
	push := func(kind LineKind, desc string, q decimal, u Unit, price money.Money, per int64) {
		if err != nil {
			return
		}
		var ln Line
		ln, err = newLine(kind, l.ID, desc, from, to, q, u, price, per)
		lines = append(lines, ln)
	}

	switch f := p.Fee; f.Basis {
	case PerMonth, PerMWMonth:
		if f.Basis == PerMonth {
			push(LineFee, "Monthly fee, "+name, dec(1, 0), UnitMonth, f.Rate, 1)
		} else {
			mw := dec(int64(f.Power), 6)
			push(LineFee, fmt.Sprintf("Committed power, %s: %s MW at %s per MW-month", name, mw, f.Rate), mw, UnitMWMonth, f.Rate, 1)
		}
		if err == nil && held < inMonth {
			// By the hour: the hours not held, at the month's fee per
			// hour of this month (672 to 744 of them).
			desc := fmt.Sprintf("Proration, %s: held %d of %d hours (%s to %s)", name, held, inMonth, stamp(from), stamp(to))
			push(LineProration, desc, dec(held-inMonth, 0), UnitHour, lines[0].Amount, inMonth)
		}
	case PerGPUHour:
		gh, ok := gpuHours(l, from, to)
		if !ok {
			return nil, fmt.Errorf("committed GPU-hours: %w", money.ErrOverflow)
		}
		push(LineFee, fmt.Sprintf("Committed GPU-hours, %s: take-or-pay at %s per GPU-hour", name, f.Rate), dec(gh, 0), UnitGPUHour, f.Rate, 1)
	}
	if err != nil {
		return nil, err
	}

	// A share (a discount, an SLA credit) is of the lines above it as the
	// invoice shows them, each rounded to the cent: then no rounding at
	// finalization can make a discount or a credit exceed the fee.
	fee, err := centsTotal(lines)
	if err != nil {
		return nil, err
	}
	if d, ok := discountFor(p.Discounts, ms); ok && fee.Micros > 0 {
		if d.BasisPoints > 0 {
			desc := fmt.Sprintf("Discount, %s: %s%% off the month's fee", name, dec(d.BasisPoints, 2))
			push(LineDiscount, desc, dec(-d.BasisPoints, 4), UnitMonth, fee, 1)
		} else {
			off, desc := d.Amount, fmt.Sprintf("Discount, %s: %s off the month's fee", name, d.Amount)
			if off.Micros > fee.Micros {
				off, desc = fee, desc+" (limited to the fee)"
			}
			push(LineDiscount, desc, dec(-1, 0), UnitMonth, off, 1)
		}
		if err != nil {
			return nil, err
		}
	}

	if s := p.SLA; s != nil && in.SLAApplies {
		base, berr := centsTotal(lines)
		if berr != nil {
			return nil, berr
		}
		if bp, tier, capped := s.creditBP(in.AvailabilityPPM); bp > 0 && base.Micros > 0 {
			desc := fmt.Sprintf("SLA credit, %s: availability %s%% is below %s%%: %s%% of the month's fee after discounts",
				name, dec(in.AvailabilityPPM, 4), dec(s.Tiers[tier].BelowPPM, 4), dec(s.Tiers[tier].CreditBP, 2))
			if capped {
				desc += fmt.Sprintf(", capped at %s%%", dec(s.CapBP, 2))
			}
			push(LineSLACredit, desc, dec(-bp, 4), UnitMonth, base, 1)
		}
	}

	if en := p.Energy; en != nil && in.EnergyMJ > 0 {
		mwh := facilityMWh(in.EnergyMJ, en.PUEMilli)
		desc := fmt.Sprintf("Energy pass-through, %s: %d mJ of IT energy × PUE %s = %s kWh at %s per kWh",
			name, in.EnergyMJ, dec(en.PUEMilli, 3), dec(mwh, 6), en.Tariff)
		push(LineEnergy, desc, dec(mwh, 6), UnitKWh, en.Tariff, 1)
	}
	if err != nil {
		return nil, err
	}
	return lines, nil
}

// creditBP returns the credit in basis points for availability avail: the
// credit of the lowest tier whose threshold avail is strictly below (and
// that tier's index), limited to CapBP when one is set (capped reports
// whether it was). It returns 0 and -1 when no tier applies.
func (s SLATerms) creditBP(avail int64) (bp int64, tier int, capped bool) {
	tier = -1
	for i, t := range s.Tiers {
		if avail < t.BelowPPM {
			bp, tier = t.CreditBP, i
		}
	}
	if s.CapBP > 0 && bp > s.CapBP {
		bp, capped = s.CapBP, true
	}
	return bp, tier, capped
}

// rateReservation rates a reservation: the whole of it on the invoice of
// the month it starts (upfront), or each month's GPU-hours (arrears).
func rateReservation(in LeaseMonth, ms, me time.Time) ([]Line, error) {
	l, r := in.Lease, in.Plan.Reservation
	from, to := later(l.Start, ms), earlier(l.End, me)
	desc := fmt.Sprintf("Reservation, %s: %d GPUs at %s per GPU-hour, in arrears", ms.Format("January 2006"), l.MaxGPUs(), r.Rate)
	if r.Billing == Upfront {
		if l.Start.Before(ms) || !l.Start.Before(me) {
			return nil, nil
		}
		from, to = l.Start, l.End
		desc = fmt.Sprintf("Reservation, %s to %s: %d GPUs at %s per GPU-hour, billed upfront", stamp(from), stamp(to), l.MaxGPUs(), r.Rate)
	}
	if !from.Before(to) {
		return nil, nil
	}
	gh, ok := gpuHours(l, from, to)
	if !ok {
		return nil, fmt.Errorf("reserved GPU-hours: %w", money.ErrOverflow)
	}
	if gh == 0 {
		return nil, nil
	}
	ln, err := newLine(LineFee, l.ID, desc, from, to, dec(gh, 0), UnitGPUHour, r.Rate, 1)
	if err != nil {
		return nil, err
	}
	return []Line{ln}, nil
}

// spotGroup is the spot holding of one lease at one price in a month.
type spotGroup struct {
	price      money.Money
	gpuMinutes int64
	// from is the first minute billed, to the end of the last: where
	// pieces are split does not move them.
	from, to time.Time
}

// rateSpot rates a spot lease: one usage line per price, in the order the
// prices first applied. A GPU-minute is billed for each GPU held at each
// minute mark (hh:mm:00.000) of the month, at the price in effect then: a
// piece [From, To) counts the minute marks in it, so splitting a piece
// (at a price change) never changes the minutes billed.
func rateSpot(in LeaseMonth, ms, me time.Time) ([]Line, error) {
	var groups []spotGroup
	for i, pc := range in.Spot {
		// The minute marks in the piece and the month: [from, to) on
		// whole minutes.
		from, to := ceilMinute(later(pc.From, ms)), ceilMinute(earlier(pc.To, me))
		if !from.Before(to) {
			continue
		}
		gm, ok := mul64(pc.GPUs, int64(to.Sub(from)/time.Minute))
		if !ok {
			return nil, fmt.Errorf("spot[%d]: GPU-minutes: %w", i, money.ErrOverflow)
		}
		if gm == 0 {
			continue
		}
		j := -1
		for k := range groups {
			if groups[k].price == pc.PricePerGPUHour {
				j = k
				break
			}
		}
		if j < 0 {
			groups = append(groups, spotGroup{price: pc.PricePerGPUHour, from: from, to: to})
			j = len(groups) - 1
		}
		g := &groups[j]
		if g.gpuMinutes, ok = add64(g.gpuMinutes, gm); !ok {
			return nil, fmt.Errorf("spot[%d]: GPU-minutes: %w", i, money.ErrOverflow)
		}
		g.from, g.to = earlier(g.from, from), later(g.to, to)
	}
	slices.SortFunc(groups, func(a, b spotGroup) int {
		return cmp.Or(a.from.Compare(b.from), cmp.Compare(a.price.Micros, b.price.Micros))
	})
	if len(groups) == 0 {
		return nil, nil
	}
	name := ms.Format("January 2006")
	lines := make([]Line, 0, len(groups))
	var b []byte
	for _, g := range groups {
		// Appended, not Sprintf: spot makes most of a month's lines.
		b = append(b[:0], "Spot, "...)
		b = append(b, name...)
		b = append(b, ": GPU-minutes at "...)
		b = append(b, g.price.String()...)
		b = append(b, " per GPU-hour (minutes from "...)
		b = g.from.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, " to "...)
		b = g.to.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, ')')
		ln, err := newLine(LineUsage, in.Lease.ID, string(b), g.from, g.to, dec(g.gpuMinutes, 0), UnitGPUMinute, g.price, 60)
		if err != nil {
			return nil, err
		}
		lines = append(lines, ln)
	}
	return lines, nil
}

// ceilMinute returns the first minute mark at or after t. Truncate counts
// from the zero time, which is on a minute.
func ceilMinute(t time.Time) time.Time {
	m := t.Truncate(time.Minute)
	if m.Before(t) {
		m = m.Add(time.Minute)
	}
	return m
}

// facilityMWh returns IT energy itMJ (millijoules) × PUE pueMilli/1000 in
// milliwatt-hours (3600 mJ), rounded half-even: the metering resolution
// of billed energy. 128-bit intermediates: the product can pass 2^63.
func facilityMWh(itMJ, pueMilli int64) int64 {
	const mJPerMWh = 3_600 * 1_000 // 3600 mJ per mWh, × 1000 for the PUE's thousandths
	hi, lo := bits.Mul64(uint64(itMJ), uint64(pueMilli))
	// hi < mJPerMWh since itMJ < 2^63 and pueMilli <= MaxPUEMilli.
	q, r := bits.Div64(hi, lo, mJPerMWh)
	if 2*r > mJPerMWh || 2*r == mJPerMWh && q%2 == 1 {
		q++
	}
	return int64(q)
}

// gpuHours returns the GPU-hours l's schedule commits within [from, to),
// and false on overflow. The schedule is on whole hours (ValidateFor).
func gpuHours(l lease.Lease, from, to time.Time) (int64, bool) {
	var sum int64
	for _, s := range l.Segments() {
		a, b := later(s.Start, from), earlier(s.End, to)
		if !a.Before(b) {
			continue
		}
		gh, ok := mul64(int64(s.GPUs), hours(a, b))
		if !ok {
			return 0, false
		}
		if sum, ok = add64(sum, gh); !ok {
			return 0, false
		}
	}
	return sum, true
}

// discountFor returns the discount naming month, if any.
func discountFor(ds []Discount, month time.Time) (Discount, bool) {
	for _, d := range ds {
		if d.Month.Equal(month) {
			return d, true
		}
	}
	return Discount{}, false
}

// total returns the sum of the lines' amounts, or money.ErrOverflow or
// money.ErrCurrency.
func total(lines []Line) (money.Money, error) {
	var sum money.Money
	for i, ln := range lines {
		var err error
		if sum, err = sum.Add(ln.Amount); err != nil {
			return money.Money{}, fmt.Errorf("lines[%d]: %w", i, err)
		}
	}
	return sum, nil
}

// centsTotal returns the sum of the lines' amounts, each rounded half-even
// to the cent as Finalize will; or money.ErrOverflow or ErrCurrency.
func centsTotal(lines []Line) (money.Money, error) {
	var sum money.Money
	for i, ln := range lines {
		var err error
		if sum, err = sum.Add(ln.Amount.RoundCents()); err != nil {
			return money.Money{}, fmt.Errorf("lines[%d]: %w", i, err)
		}
	}
	return sum, nil
}

// hours returns the whole hours in [from, to).
func hours(from, to time.Time) int64 { return int64(to.Sub(from) / time.Hour) }

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// stamp formats an instant for descriptions: RFC 3339 in UTC, with
// fractions of a second only when present.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
