package billing_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/billing/billingtest"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/unit"
)

// benchLeases returns n lease-months of March 2027 for tenants tenants:
// 20% contracts (every fee basis, discounts, SLA terms, energy), 30%
// reservations (upfront and arrears) and 50% spot leases with about 50
// price pieces each.
func benchLeases(n, tenants int) []billing.LeaseMonth {
	rng := rand.New(rand.NewPCG(1, 2))
	month := billingtest.Month(2027, time.March)
	hour := func(h int) time.Time { return month.Add(time.Duration(h) * time.Hour) }
	out := make([]billing.LeaseMonth, 0, n)
	for i := range n {
		id := fmt.Sprintf("lease-%05d", i)
		var in billing.LeaseMonth
		switch r := i % 10; {
		case r < 2:
			l := billingtest.Lease(id, lease.Contract, hour(-24*rng.IntN(400)), hour(24*rng.IntN(800)+1), unit.GPUs(8*(1+rng.IntN(2000))))
			p := billing.Plan{Kind: lease.Contract, Currency: "USD", SLA: billingtest.SLA(),
				Energy: &billing.Energy{PUEMilli: 1_250, Tariff: money.USD(85_000)}}
			switch i % 3 {
			case 0:
				p.Fee = &billing.Fee{Basis: billing.PerMonth, Rate: money.USD(int64(1+rng.IntN(50_000)) * money.Micro * 100)}
			case 1:
				p.Fee = &billing.Fee{Basis: billing.PerGPUHour, Rate: money.USD(int64(1_500_000 + rng.IntN(1_500_000)))}
			default:
				p.Fee = &billing.Fee{Basis: billing.PerMWMonth, Rate: money.USD(4_000_000 * money.Micro), Power: unit.Power(rng.Int64N(50_000_000))}
			}
			if rng.IntN(4) == 0 {
				p.Discounts = []billing.Discount{{Month: month, BasisPoints: 2_500}}
			}
			in = billing.LeaseMonth{Lease: l, Plan: p, EnergyMJ: rng.Int64N(1e15), SLAApplies: true, AvailabilityPPM: 950_000 + rng.Int64N(50_001)}
		case r < 5:
			start := hour(rng.IntN(1400) - 700)
			l := billingtest.Lease(id, lease.Reservation, start, start.Add(time.Duration(1+rng.IntN(1400))*time.Hour), unit.GPUs(8*(1+rng.IntN(64))))
			b := billing.Arrears
			if i%2 == 0 {
				b = billing.Upfront
			}
			in = billing.LeaseMonth{Lease: l, Plan: billingtest.ReservationPlan(int64(2_000_000+rng.IntN(1_000_000)), b)}
		default:
			l := billingtest.Lease(id, lease.Spot, time.Time{}, time.Time{}, 8)
			pieces := make([]billing.SpotPiece, 50)
			at := month.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))
			for j := range pieces {
				d := time.Duration(rng.Int64N(int64(12 * time.Hour)))
				pieces[j] = billing.SpotPiece{From: at, To: at.Add(d), GPUs: int64(8 * (1 + rng.IntN(4))),
					PricePerGPUHour: money.USD(int64(1_000_000 + 250_000*rng.IntN(12)))}
				at = at.Add(d)
			}
			in = billing.LeaseMonth{Lease: l, Plan: billingtest.SpotPlan(), Spot: pieces}
		}
		in.Month = month
		in.Lease.TenantID = fmt.Sprintf("tenant-%04d", i%tenants)
		out = append(out, in)
	}
	return out
}

// BenchmarkRateMonth rates one month of 10,000 leases; one op is all of
// them.
func BenchmarkRateMonth(b *testing.B) {
	ins := benchLeases(10_000, 1_000)
	var lines int
	for b.Loop() {
		lines = 0
		for _, in := range ins {
			got, err := billing.Rate(in)
			if err != nil {
				b.Fatal(err)
			}
			lines += len(got)
		}
	}
	b.ReportMetric(float64(lines), "lines/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(ins)), "ns/lease")
}

// BenchmarkCloseMonth rates, assembles and finalizes (hashes) one month
// for 1,000 tenants holding 10,000 leases; one op is all of them.
func BenchmarkCloseMonth(b *testing.B) {
	ins := benchLeases(10_000, 1_000)
	month := ins[0].Month
	for b.Loop() {
		byTenant := map[string][]billing.Line{}
		for _, in := range ins {
			got, err := billing.Rate(in)
			if err != nil {
				b.Fatal(err)
			}
			byTenant[in.Lease.TenantID] = append(byTenant[in.Lease.TenantID], got...)
		}
		for tenant, lines := range byTenant {
			inv, err := billing.Assemble(tenant, month, lines)
			if err != nil {
				b.Fatal(err)
			}
			inv.ID, inv.Created, inv.Currency = "INV-"+tenant, month.AddDate(0, 1, 0), "USD"
			if _, err := billing.Finalize(inv, inv.Created); err != nil {
				b.Fatal(err)
			}
		}
	}
}
