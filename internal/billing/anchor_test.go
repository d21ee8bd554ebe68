package billing_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/billing/billingtest"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestAnchorGolden rates, assembles and finalizes every month of the
// anchor contract and compares the invoices with testdata/anchor.golden:
// 33 months from September 2026 through May 2029 at $1.25B, the first two
// at 50% off, $40B in all. A second golden file starts the same contract
// mid-month (prorated by the hour) and has one month at 99.2%
// availability (a 10% credit).
func TestAnchorGolden(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(l *lease.Lease, p *billing.Plan)
		facts    func(in *billing.LeaseMonth)
		total    string // of the invoices
		schedule string // Schedule's total: without SLA credits
	}{
		{"anchor.golden", func(l *lease.Lease, p *billing.Plan) {}, func(in *billing.LeaseMonth) {},
			"40000000000", "40000000000"},
		{"anchor-midmonth-sla.golden", func(l *lease.Lease, p *billing.Plan) {
			l.Start = time.Date(2026, 9, 15, 12, 0, 0, 0, time.UTC)
			l.Schedule[0].From = l.Start
			p.SLA = billingtest.SLA()
		}, func(in *billing.LeaseMonth) {
			in.SLAApplies, in.AvailabilityPPM = true, 999_000
			if in.Month.Equal(billingtest.Month(2027, time.March)) {
				in.AvailabilityPPM = 992_000
			}
		},
			// September: 1,250,000,000.00 − 604,166,666.67 − 322,916,666.66
			// = 322,916,666.67 instead of 625,000,000.00; March: −125,000,000.
			"39572916666.67", "39697916666.67"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, p := billingtest.Anchor()
			tt.edit(&l, &p)
			var b strings.Builder
			fmt.Fprintf(&b, "# Anchor contract %s of tenant %s: %s a month over [%s, %s), 50%% off the first two months.\n",
				l.ID, l.TenantID, p.Fee.Rate, l.Start.Format(time.RFC3339), l.End.Format(time.RFC3339))
			if p.SLA != nil {
				b.WriteString("# SLA: below 99.5% → 10%, below 99.0% → 30%, below 95.0% → 100% of the month's fee after discounts; 99.9% every month but March 2027 (99.2%).\n")
			}
			b.WriteString("# One finalized invoice a month: kind, quantity × unit price / per = amount (exact → finalized) | lease | description | period.\n")
			sum := money.USD(0)
			var totals []money.Money
			for m := billingtest.Month(l.Start.Year(), l.Start.Month()); m.Before(l.End); m = m.AddDate(0, 1, 0) {
				in := billing.LeaseMonth{Lease: l, Plan: p, Month: m}
				tt.facts(&in)
				exact := rate(t, in)
				inv := finalized(t, l.TenantID, m, exact)
				if err := billing.Verify(inv); err != nil {
					t.Fatalf("Verify(%s) = %v", inv.ID, err)
				}
				fmt.Fprintf(&b, "\n%s %s total %s sha256:%s\n", m.Format("2006-01"), inv.ID, inv.Total, inv.Hash)
				for i, ln := range inv.Lines {
					fmt.Fprintf(&b, "  %-10s %s %s × %s / %d = %s → %s | %s | %s | %s/%s\n", ln.Kind, ln.Quantity, ln.Unit, ln.UnitPrice, ln.Per,
						exact[i].Amount, ln.Amount, ln.LeaseID, ln.Description, ln.From.Format(time.RFC3339), ln.To.Format(time.RFC3339))
				}
				sum = add(t, sum, inv.Total)
				totals = append(totals, inv.Total)
			}
			fmt.Fprintf(&b, "\ncontract total %s over %d months\n", sum, len(totals))

			if want := usd(t, tt.total); sum != want || len(totals) != 33 {
				t.Errorf("contract total = %s over %d months, want %s over 33", sum, len(totals), want)
			}
			charges, total, err := billing.Schedule(l, p)
			if err != nil {
				t.Fatal(err)
			}
			if want := usd(t, tt.schedule); total != want {
				t.Errorf("Schedule total = %s, want %s", total, want)
			}
			var got []money.Money
			for _, c := range charges {
				got = append(got, c.Amount)
			}
			if p.SLA == nil {
				if diff := cmp.Diff(totals, got); diff != "" {
					t.Errorf("Schedule amounts vs invoice totals (-invoices +schedule):\n%s", diff)
				}
			}
			golden(t, tt.name, b.String())
		})
	}
}

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

func rate(t testing.TB, in billing.LeaseMonth) []billing.Line {
	t.Helper()
	lines, err := billing.Rate(in)
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// finalized assembles lines into tenant's invoice for month, stamped as
// the engine would (an ID, created when the month ends), and finalizes it
// an hour later.
func finalized(t testing.TB, tenant string, month time.Time, lines []billing.Line) billing.Invoice {
	t.Helper()
	inv, err := billing.Assemble(tenant, month, lines)
	if err != nil {
		t.Fatal(err)
	}
	inv.ID = "INV-" + tenant + "-" + month.Format("2006-01")
	inv.Created = month.AddDate(0, 1, 0)
	inv, err = billing.Finalize(inv, inv.Created.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func add(t testing.TB, a, b money.Money) money.Money {
	t.Helper()
	s, err := a.Add(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
