package billing_test

import (
	"errors"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/billing/billingtest"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/valid"
)

// FuzzPlan builds a plan and a lease-month from arbitrary numbers. Validate
// never panics and refuses only with a *valid.Error; Rate refuses whatever
// Validate refuses, with a *valid.Error or an overflow; and whatever Rate
// accepts checks line by line and finalizes into an invoice that verifies.
func FuzzPlan(f *testing.F) {
	f.Add("contract", "USD", "month", int64(1_250_000_000_000_000), int64(0), int64(5000), int64(0), int64(1250), int64(85_000),
		int64(995_000), int64(995_000), int64(1000), int64(950_000), int64(10_000), int64(0), "", int64(0), int16(0), uint16(744), int64(1e12), int64(992_000), true)
	f.Add("contract", "USD", "mw-month", int64(4_000_000_000_000), int64(301_360_896), int64(0), int64(100_000_000), int64(1000), int64(0),
		int64(1_000_000), int64(1_000_000), int64(10_000), int64(1), int64(10_000), int64(5000), "", int64(0), int16(-5), uint16(10), int64(0), int64(0), true)
	f.Add("contract", "USD", "gpu-hour", int64(2_100_000), int64(0), int64(0), int64(0), int64(0), int64(0),
		int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), "", int64(0), int16(300), uint16(2000), int64(-1), int64(-1), false)
	f.Add("reservation", "USD", "", int64(0), int64(0), int64(0), int64(0), int64(0), int64(0),
		int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), "upfront", int64(2_500_000), int16(0), uint16(100), int64(0), int64(0), false)
	f.Add("spot", "EUR", "", int64(0), int64(0), int64(0), int64(0), int64(0), int64(0),
		int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), "", int64(2_500_000), int16(0), uint16(100), int64(0), int64(0), false)
	f.Fuzz(func(t *testing.T, kind, currency, basis string, rate, power, bp, amount, pue, tariff,
		target, below1, credit1, below2, credit2, capBP int64, resBilling string, resRate int64,
		startH int16, lenH uint16, energyMJ, ppm int64, slaApplies bool) {
		month := billingtest.Month(2027, time.February)
		p := billing.Plan{Kind: lease.Kind(kind), Currency: currency}
		switch lease.Kind(kind) {
		case lease.Contract:
			p.Fee = &billing.Fee{Basis: billing.FeeBasis(basis), Rate: money.New(rate, currency), Power: unit.Power(power)}
			if bp != 0 || amount != 0 {
				p.Discounts = []billing.Discount{{Month: month, BasisPoints: bp, Amount: money.New(amount, currency)}}
			}
			if pue != 0 {
				p.Energy = &billing.Energy{PUEMilli: pue, Tariff: money.New(tariff, currency)}
			}
			if target != 0 {
				p.SLA = &billing.SLATerms{TargetPPM: target, CapBP: capBP,
					Tiers: []billing.CreditTier{{BelowPPM: below1, CreditBP: credit1}, {BelowPPM: below2, CreditBP: credit2}}}
			}
		case lease.Reservation:
			p.Reservation = &billing.ReservationTerms{Rate: money.New(resRate, currency), Billing: billing.ReservationBilling(resBilling)}
		}
		verr := p.Validate()
		var ve *valid.Error
		if verr != nil && !errors.As(verr, &ve) {
			t.Fatalf("Validate() = %v, not a *valid.Error", verr)
		}

		start := month.Add(time.Duration(startH) * time.Hour)
		l := billingtest.Lease("l", p.Kind, start, start.Add(time.Duration(lenH)*time.Hour), 1000)
		in := billing.LeaseMonth{Lease: l, Plan: p, Month: month, EnergyMJ: energyMJ, SLAApplies: slaApplies, AvailabilityPPM: ppm}
		if p.Kind == lease.Spot {
			in.Spot = []billing.SpotPiece{{From: start, To: start.Add(time.Duration(lenH) * time.Minute), GPUs: 8, PricePerGPUHour: money.New(resRate, currency)}}
		}
		lines, err := billing.Rate(in)
		switch {
		case err != nil && !errors.As(err, &ve) && !errors.Is(err, money.ErrOverflow):
			t.Fatalf("Rate() = %v, neither a *valid.Error nor an overflow", err)
		case err == nil && verr != nil:
			t.Fatalf("Rate() accepted a plan Validate refuses: %v", verr)
		case err != nil:
			return
		}
		for i, ln := range lines {
			if err := ln.Check(); err != nil {
				t.Fatalf("lines[%d].Check() = %v", i, err)
			}
		}
		inv, err := billing.Assemble("tenant", month, lines)
		if errors.Is(err, money.ErrOverflow) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		inv.ID, inv.Created, inv.Currency = "INV", month.AddDate(0, 1, 0), currency
		inv, err = billing.Finalize(inv, inv.Created)
		if errors.Is(err, money.ErrOverflow) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := billing.Verify(inv); err != nil {
			t.Fatal(err)
		}
	})
}
