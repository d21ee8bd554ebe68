package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/store/dbtest"
	"github.com/neocloud/neocloud/internal/tenant"
)

// TestInvoiceRun: a contract with a plan (a discounted first month, SLA
// tiers), a reservation on the list price and a spot lease across a price
// change are rated into one draft per tenant; a rerun changes nothing; a
// finalized invoice is left alone by the next run and cannot be changed;
// tenants see their own invoices only; a viewer cannot finalize.
func TestInvoiceRun(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		e, clk := setup(t, st, 1_000_000)
		ctx := context.Background()
		acme := acmeAdmin()
		contract := lease.Request{Kind: lease.Contract, Pool: pool, Start: t0, End: t0.AddDate(0, 3, 0), GPUs: 16}
		c, err := e.RequestLease(ctx, admin, "acme", contract)
		if err != nil {
			t.Fatal(err)
		}
		plan := billing.Plan{Kind: lease.Contract, Currency: "USD",
			Fee:       &billing.Fee{Basis: billing.PerMonth, Rate: money.USD(1_000_000_000_000)},
			Discounts: []billing.Discount{{Month: t0, BasisPoints: 5000}},
			SLA:       &billing.SLATerms{TargetPPM: 995_000, Tiers: []billing.CreditTier{{BelowPPM: 995_000, CreditBP: 1000}, {BelowPPM: 990_000, CreditBP: 3000}}}}
		if err := e.SetPlan(ctx, acme, c.Lease.ID, plan); !errors.Is(err, tenant.ErrForbidden) {
			t.Errorf("a tenant setting its own plan: %v", err)
		}
		if err := e.SetPlan(ctx, admin, c.Lease.ID, plan); err != nil {
			t.Fatal(err)
		}
		r, err := e.RequestLease(ctx, admin, "beta", reservation(8, 24, 48))
		if err != nil {
			t.Fatal(err)
		}
		clk.Set(t0.Add(10 * 24 * time.Hour))
		if _, err := e.RecordSpotPrices(ctx); err != nil {
			t.Fatal(err)
		}
		s, err := e.RequestLease(ctx, admin, "beta", lease.Request{Kind: lease.Spot, Pool: pool, GPUs: 8, MaxPrice: money.USD(50_000_000), Notice: "2m"})
		if err != nil {
			t.Fatal(err)
		}
		clk.Set(t0.Add(10*24*time.Hour + 30*time.Minute))
		if n, err := e.RecordSpotPrices(ctx); err != nil || n == 0 {
			t.Fatalf("recording the price after spot took capacity: %d, %v", n, err)
		}
		clk.Set(t0.Add(10*24*time.Hour + 90*time.Minute))
		if _, err := e.CancelLease(ctx, admin, s.Lease.ID, "done"); err != nil {
			t.Fatal(err)
		}

		clk.Set(t0.AddDate(0, 1, 1))
		run, err := e.RunInvoices(ctx, admin, t0)
		if err != nil {
			t.Fatal(err)
		}
		if run.Drafts != 2 || len(run.NoPlan) != 0 || len(run.Skipped) != 0 {
			t.Fatalf("run %+v", run)
		}
		again, err := e.RunInvoices(ctx, admin, t0)
		if err != nil || again.Total != run.Total || again.Lines != run.Lines {
			t.Fatalf("rerun %+v, %v; first %+v", again, err, run)
		}
		mine, err := e.Invoices(ctx, acme, engine.InvoiceFilter{})
		if err != nil || len(mine) != 1 || mine[0].TenantID != "acme" {
			t.Fatalf("acme's invoices: %+v, %v", mine, err)
		}
		inv, err := e.Invoice(ctx, acme, mine[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		// $1M fee, 50% off: $500,000.
		if inv.Total != money.USD(500_000_000_000) {
			t.Errorf("acme's September total %s, want 500000.00; lines %+v", inv.Total, inv.Lines)
		}
		beta, err := e.Invoices(ctx, admin, engine.InvoiceFilter{TenantID: "beta"})
		if err != nil || len(beta) != 1 {
			t.Fatalf("beta's invoices: %+v, %v", beta, err)
		}
		bi, err := e.Invoice(ctx, admin, beta[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[billing.LineKind]int{}
		for _, l := range bi.Lines {
			kinds[l.Kind]++
			if l.LeaseID == r.Lease.ID && l.Amount != money.USD(8*48*engine.DefaultReservationRates["H100-SXM"]) {
				t.Errorf("reservation line %+v, want 8 GPUs × 48 h × list price", l)
			}
		}
		if kinds[billing.LineFee] != 1 || kinds[billing.LineUsage] == 0 {
			t.Errorf("beta's lines by kind %v, want a reservation fee and spot usage", kinds)
		}
		if _, err := e.Invoice(ctx, acme, beta[0].ID); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("acme reading beta's invoice: %v", err)
		}
		viewer := tenant.Principal{KeyID: "v", Role: tenant.OperatorViewer}
		if _, err := e.FinalizeInvoice(ctx, viewer, inv.ID); !errors.Is(err, tenant.ErrForbidden) {
			t.Errorf("a viewer finalizing: %v", err)
		}
		fin, err := e.FinalizeInvoice(ctx, admin, inv.ID)
		if err != nil || fin.State != billing.Finalized || billing.Verify(fin) != nil {
			t.Fatalf("finalize: %+v, %v", fin, err)
		}
		if _, err := e.FinalizeInvoice(ctx, admin, inv.ID); !errors.Is(err, billing.ErrTransition) {
			t.Errorf("finalizing twice: %v", err)
		}
		third, err := e.RunInvoices(ctx, admin, t0)
		if err != nil || len(third.Skipped) != 1 || third.Skipped[0] != "acme" {
			t.Fatalf("run after finalizing: %+v, %v", third, err)
		}
		if got, err := e.Invoice(ctx, admin, inv.ID); err != nil || billing.Verify(got) != nil || got.Total != fin.Total {
			t.Errorf("finalized invoice after a rerun: %+v, %v", got, err)
		}
		// Revenue: September invoiced (contract) and drafted (beta), and
		// the contract's next two months forecast.
		rev, err := e.Revenue(ctx, admin, t0, t0.AddDate(0, 3, 0))
		if err != nil {
			t.Fatal(err)
		}
		var forecast, invoiced money.Money = money.USD(0), money.USD(0)
		for _, row := range rev {
			forecast, _ = forecast.Add(row.Forecast)
			invoiced, _ = invoiced.Add(row.Invoiced)
		}
		if forecast != money.USD(2_000_000_000_000) || invoiced != money.USD(500_000_000_000) {
			t.Errorf("revenue %+v: forecast %s, invoiced %s", rev, forecast, invoiced)
		}
		if _, err := e.Revenue(ctx, acme, t0, t0.AddDate(0, 1, 0)); !errors.Is(err, tenant.ErrForbidden) {
			t.Errorf("a tenant reading revenue: %v", err)
		}
	})
}

// A rerun drops the draft of a tenant with nothing left to bill; an
// invoice with credit notes cannot be voided; plans are USD only.
func TestInvoiceRunCorrections(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		e, _ := setup(t, st, 1_000_000)
		ctx := context.Background()
		a, err := e.RequestLease(ctx, admin, "acme", reservation(8, 48, 24))
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.RequestLease(ctx, admin, "beta", reservation(8, 72, 24))
		if err != nil {
			t.Fatal(err)
		}
		eur := billing.Plan{Kind: lease.Reservation, Currency: "EUR", Reservation: &billing.ReservationTerms{Rate: money.New(2_000_000, "EUR"), Billing: billing.Arrears}}
		var ve interface{ Len() int }
		if err := e.SetPlan(ctx, admin, a.Lease.ID, eur); !errors.As(err, &ve) {
			t.Errorf("an EUR plan: %v, want a validation error", err)
		}
		run, err := e.RunInvoices(ctx, admin, t0)
		if err != nil || run.Drafts != 2 {
			t.Fatalf("run %+v, %v", run, err)
		}
		if _, err := e.CancelLease(ctx, admin, b.Lease.ID, "changed plans"); err != nil {
			t.Fatal(err)
		}
		run, err = e.RunInvoices(ctx, admin, t0)
		if err != nil || run.Drafts != 1 {
			t.Fatalf("rerun %+v, %v", run, err)
		}
		if left, err := e.Invoices(ctx, admin, engine.InvoiceFilter{TenantID: "beta"}); err != nil || len(left) != 0 {
			t.Errorf("beta's invoices after its lease was cancelled before its start: %+v, %v", left, err)
		}
		id := run.Invoices[0]
		fin, err := e.FinalizeInvoice(ctx, admin, id)
		if err != nil {
			t.Fatal(err)
		}
		neg, _ := money.USD(1_000_000).Neg()
		if _, err := e.IssueCreditNote(ctx, admin, id, "goodwill", []billing.Line{billing.Adjustment("", "goodwill", t0, t0.AddDate(0, 1, 0), neg)}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.VoidInvoice(ctx, admin, id); !errors.Is(err, engine.ErrConflict) {
			t.Errorf("voiding an invoice with a credit note: %v, want ErrConflict", err)
		}
		if got, err := e.Invoice(ctx, admin, id); err != nil || got.State != billing.Finalized || got.Hash != fin.Hash {
			t.Errorf("after the refused void: %+v, %v", got, err)
		}
	})
}
