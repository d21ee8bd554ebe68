package billing

import (
	"errors"
	"fmt"
	"time"

	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
)

// ErrNoSchedule reports a plan whose charges cannot be known in advance:
// spot is priced by what it holds at the price of the moment.
var ErrNoSchedule = errors.New("billing: spot has no charge schedule")

// MonthCharge is what one month of a lease's term will be invoiced for
// its fee, before energy and SLA credits (which depend on the month's
// facts). Each part is rounded to the cent as the finalized invoice will
// round its lines, so Amount is what the invoice will say.
type MonthCharge struct {
	Month        time.Time   // the first instant of the month, UTC
	HoursHeld    int64       // hours of the month within the lease
	HoursInMonth int64       // 672 to 744
	Fee          money.Money // fee lines: the month's fee, a commitment, a reservation
	Proration    money.Money // ≤ 0: the hours of the month not held
	Discount     money.Money // ≤ 0
	Amount       money.Money // Fee + Proration + Discount
}

// Schedule returns, for a quote, each month that l holds under plan p with
// its charge, and the total over the term: exactly the sum the finalized
// invoices will carry for the fee, proration and discount lines. Months
// an upfront reservation does not bill are listed at zero.
//
// It returns ErrNoSchedule for a spot plan, and Rate's errors (a
// *valid.Error for a plan that does not fit the lease, money.ErrOverflow),
// each wrapped with the lease.
func Schedule(l lease.Lease, p Plan) ([]MonthCharge, money.Money, error) {
	wrap := func(err error) error { return fmt.Errorf("lease %s: schedule: %w", l.ID, err) }
	if p.Kind == lease.Spot {
		return nil, money.Money{}, wrap(ErrNoSchedule)
	}
	if err := p.ValidateFor(l); err != nil {
		return nil, money.Money{}, wrap(err)
	}
	sum := money.New(0, p.Currency)
	var out []MonthCharge
	for m := monthOf(l.Start); m.Before(l.End); m = m.AddDate(0, 1, 0) {
		end := m.AddDate(0, 1, 0)
		lines, err := Rate(LeaseMonth{Lease: l, Plan: p, Month: m})
		if err != nil {
			return nil, money.Money{}, wrap(err)
		}
		zero := money.New(0, p.Currency)
		c := MonthCharge{Month: m, HoursHeld: hours(later(l.Start, m), earlier(l.End, end)), HoursInMonth: hours(m, end),
			Fee: zero, Proration: zero, Discount: zero, Amount: zero}
		for _, ln := range lines {
			part := &c.Fee
			switch ln.Kind {
			case LineProration:
				part = &c.Proration
			case LineDiscount:
				part = &c.Discount
			}
			cents := ln.Amount.RoundCents()
			if *part, err = part.Add(cents); err != nil {
				return nil, money.Money{}, wrap(fmt.Errorf("%s: %w", m.Format("2006-01"), err))
			}
			if c.Amount, err = c.Amount.Add(cents); err != nil {
				return nil, money.Money{}, wrap(fmt.Errorf("%s: %w", m.Format("2006-01"), err))
			}
		}
		if sum, err = sum.Add(c.Amount); err != nil {
			return nil, money.Money{}, wrap(fmt.Errorf("total: %w", err))
		}
		out = append(out, c)
	}
	return out, sum, nil
}
