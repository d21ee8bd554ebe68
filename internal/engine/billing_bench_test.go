package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/clock"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/store/sqlite"
	"github.com/neocloud/neocloud/internal/tenant"
)

// BenchmarkInvoiceRun is the monthly invoice run of issue 6's target:
// 1,000 tenants, 10,000 leases (1,000 contracts with a fee, SLA terms and
// energy pass-through, 6,000 reservations of 1-5 days at the list price,
// 3,000 spot leases across 3 price changes) and a month of hourly usage
// (a rollup row per lease and hour held: ~1.4 M rows), on SQLite. Target
// ≤ 5 s per run.
//
//	go test -run '^$' -bench InvoiceRun -benchtime 3x ./internal/engine/
func BenchmarkInvoiceRun(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "b.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	month := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	clk := clock.NewFake(month)
	e, err := engine.New(engine.Config{Store: st, Clock: clk})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	spec, err := fleet.Uniform(6000)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.ApplyFleet(ctx, admin, spec, false); err != nil {
		b.Fatal(err)
	}
	pools, err := e.Pools(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	pool := pools[0].ID
	for i := range 1000 {
		if _, err := e.CreateTenant(ctx, admin, tenant.Tenant{ID: fmt.Sprintf("t%04d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := e.RecordSpotPrices(ctx); err != nil {
		b.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	type made struct {
		id       string
		from, to time.Time
	}
	var leases []made
	var pend []engine.Pending
	var reqs []lease.Request
	submit := func(t string, r lease.Request) {
		p, err := e.SubmitLease(ctx, admin, t, r)
		if err != nil {
			b.Fatal(err)
		}
		pend, reqs = append(pend, p), append(reqs, r)
	}
	end := month.AddDate(0, 1, 0)
	for i := range 1000 {
		submit(fmt.Sprintf("t%04d", i), lease.Request{Kind: lease.Contract, Pool: pool, Start: month, End: end, GPUs: 8})
	}
	for i := range 6000 {
		start := month.Add(time.Duration(rnd.IntN(24*25)) * time.Hour)
		submit(fmt.Sprintf("t%04d", i%1000), lease.Request{Kind: lease.Reservation, Pool: pool, Start: start,
			End: start.Add(time.Duration(24+rnd.IntN(96)) * time.Hour), GPUs: 8})
	}
	for i := range 3000 {
		submit(fmt.Sprintf("t%04d", i%1000), lease.Request{Kind: lease.Spot, Pool: pool, GPUs: 8, MaxPrice: money.USD(100_000_000), Notice: "30m"})
	}
	plan := billing.Plan{Kind: lease.Contract, Currency: "USD",
		Fee:    &billing.Fee{Basis: billing.PerMonth, Rate: money.USD(20_000_000_000)},
		Energy: &billing.Energy{PUEMilli: 1250, Tariff: money.USD(80_000)},
		SLA:    &billing.SLATerms{TargetPPM: 995_000, Tiers: []billing.CreditTier{{BelowPPM: 995_000, CreditBP: 1000}}}}
	for i, p := range pend {
		v, err := p.Wait()
		if err != nil {
			continue // a reservation that did not fit: fewer leases
		}
		l := v.(engine.LeaseResult).Lease
		leases = append(leases, made{l.ID, l.Start, l.End})
		if reqs[i].Kind == lease.Contract {
			if err := e.SetPlan(ctx, admin, l.ID, plan); err != nil {
				b.Fatal(err)
			}
		}
	}
	// Prices move three times in the month (utilization changes).
	for _, at := range []time.Duration{72 * time.Hour, 300 * time.Hour, 600 * time.Hour} {
		clk.Set(month.Add(at))
		if err := st.Update(ctx, func(tx engine.Tx) error {
			return tx.AppendSpotPrices(ctx, []engine.SpotPrice{{Pool: pool, Tier: "30m", From: month.Add(at), Price: money.USD(int64(at/time.Hour) * 10_000)}})
		}); err != nil {
			b.Fatal(err)
		}
	}
	// A month of hourly usage: a row per lease and hour it held, some
	// unhealthy.
	var rows []meter.Row
	flush := func() {
		if err := st.Update(ctx, func(tx engine.Tx) error { return tx.Meter(ctx).AddUsage(rows) }); err != nil {
			b.Fatal(err)
		}
		rows = rows[:0]
	}
	for _, l := range leases {
		for h := l.from.Truncate(time.Hour); h.Before(l.to) && h.Before(end); h = h.Add(time.Hour) {
			u := meter.Usage{GPUms: 8 * 3_600_000, UsedMs: 8 * 3_000_000, HealthyMs: 8 * 3_600_000, EnergyMJ: 8 * 2_500_000_000, Readings: 8 * 360}
			if rnd.IntN(2000) == 0 {
				u.HealthyMs -= 3_600_000
			}
			rows = append(rows, meter.Row{UsageKey: meter.UsageKey{Hour: h.UnixMilli(), Pool: pool, Use: meter.UseLease, LeaseID: l.id, TenantID: "x"}, Usage: u})
			if len(rows) == 50_000 {
				flush()
			}
		}
	}
	flush()
	clk.Set(end.Add(time.Hour))
	b.Logf("%d leases", len(leases))
	var run engine.InvoiceRun
	for b.Loop() {
		if run, err = e.RunInvoices(ctx, admin, month); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(run.Drafts), "invoices")
	b.ReportMetric(float64(run.Lines), "lines")
	b.ReportMetric(float64(run.Leases), "leases")
}
