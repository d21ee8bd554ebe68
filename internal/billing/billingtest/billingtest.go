// Package billingtest builds leases and price plans for tests of billing
// and of its callers: the anchor contract of DESIGN.md, reservations and
// spot leases, each a small function that returns a fresh value to edit.
package billingtest

import (
	"time"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/unit"
)

// Month returns the first instant of month m of year y, UTC.
func Month(y int, m time.Month) time.Time { return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC) }

// Lease returns a lease of kind over [start, end) holding gpus throughout.
func Lease(id string, kind lease.Kind, start, end time.Time, gpus unit.GPUs) lease.Lease {
	return lease.Lease{ID: id, TenantID: "tenant-" + id, Kind: kind, Pool: "ref-300mw/H100-SXM",
		Start: start, End: end, Schedule: []lease.Step{{From: start, GPUs: gpus}},
		Packing: lease.PackAny, Isolation: lease.SharedLeaf, State: lease.Scheduled}
}

// AnchorFeeMicros is the anchor contract's monthly fee: $1,250,000,000.
const AnchorFeeMicros = 1_250_000_000 * money.Micro

// Anchor returns the anchor contract of DESIGN.md — the whole site's
// surplus leased to a rival lab from 2026-09-01 until 2029-06-01 (the last
// month May 2029), ramping up over the first two months — and its plan:
// AnchorFeeMicros a month, the first two months at 50% off.
func Anchor() (lease.Lease, billing.Plan) {
	start, end := Month(2026, time.September), Month(2029, time.June)
	l := Lease("anchor", lease.Contract, start, end, 150_000)
	l.TenantID = "rival-lab"
	l.Schedule = []lease.Step{
		{From: start, GPUs: 60_000},
		{From: Month(2026, time.October), GPUs: 120_000},
		{From: Month(2026, time.November), GPUs: 200_000},
	}
	return l, billing.Plan{
		Kind:     lease.Contract,
		Currency: "USD",
		Fee:      &billing.Fee{Basis: billing.PerMonth, Rate: money.USD(AnchorFeeMicros)},
		Discounts: []billing.Discount{
			{Month: start, BasisPoints: 5_000},
			{Month: Month(2026, time.October), BasisPoints: 5_000},
		},
	}
}

// SLA returns the SLA terms of the tests: a 99.5% target; below 99.5%
// credits 10% of the month's fee, below 99.0% 30%, below 95.0% 100%; no
// cap.
func SLA() *billing.SLATerms {
	return &billing.SLATerms{TargetPPM: 995_000, Tiers: []billing.CreditTier{
		{BelowPPM: 995_000, CreditBP: 1_000},
		{BelowPPM: 990_000, CreditBP: 3_000},
		{BelowPPM: 950_000, CreditBP: 10_000},
	}}
}

// ReservationPlan returns a reservation plan at rate micro-dollars per
// GPU-hour, billed as billing says.
func ReservationPlan(rateMicros int64, b billing.ReservationBilling) billing.Plan {
	return billing.Plan{Kind: lease.Reservation, Currency: "USD",
		Reservation: &billing.ReservationTerms{Rate: money.USD(rateMicros), Billing: b}}
}

// SpotPlan returns a spot plan in USD.
func SpotPlan() billing.Plan { return billing.Plan{Kind: lease.Spot, Currency: "USD"} }
