package billing_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/billing/billingtest"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
)

// tenantLines returns a month of lines for one tenant holding the anchor
// contract (started mid-month, with energy and an SLA miss), a
// reservation and a spot lease.
func tenantLines(t testing.TB) []billing.Line {
	t.Helper()
	sep := billingtest.Month(2026, time.September)
	l, p := billingtest.Anchor()
	l.Start = at("2026-09-15T12:00:00Z")
	l.Schedule[0].From = l.Start
	p.SLA = billingtest.SLA()
	p.Energy = &billing.Energy{PUEMilli: 1_180, Tariff: money.USD(71_234)}
	lines := rate(t, billing.LeaseMonth{Lease: l, Plan: p, Month: sep, EnergyMJ: 123_456_789_012_345, SLAApplies: true, AvailabilityPPM: 991_234})
	r := billingtest.Lease("res-1", lease.Reservation, at("2026-09-28T00:00:00Z"), at("2026-10-03T00:00:00Z"), 64)
	lines = append(lines, rate(t, billing.LeaseMonth{Lease: r, Plan: billingtest.ReservationPlan(2_437_123, billing.Arrears), Month: sep})...)
	s := billingtest.Lease("spot-1", lease.Spot, time.Time{}, time.Time{}, 8)
	lines = append(lines, rate(t, billing.LeaseMonth{Lease: s, Plan: billingtest.SpotPlan(), Month: sep, Spot: []billing.SpotPiece{
		{From: at("2026-09-03T10:00:30Z"), To: at("2026-09-03T10:10:30Z"), GPUs: 8, PricePerGPUHour: money.USD(2_113_333)},
		{From: at("2026-09-03T10:10:30Z"), To: at("2026-09-04T10:20:00Z"), GPUs: 8, PricePerGPUHour: money.USD(3_150_001)},
	}})...)
	return lines
}

func TestAssembleIsDeterministic(t *testing.T) {
	lines := tenantLines(t)
	want, err := billing.Assemble("rival-lab", billingtest.Month(2026, time.September), lines)
	if err != nil {
		t.Fatal(err)
	}
	if want.State != billing.Draft || len(want.Lines) != len(lines) {
		t.Fatalf("Assemble = %s with %d lines, want a draft with %d", want.State, len(want.Lines), len(lines))
	}
	var kinds []billing.LineKind
	for _, l := range want.Lines {
		kinds = append(kinds, l.Kind)
	}
	wantKinds := []billing.LineKind{billing.LineFee, billing.LineProration, billing.LineDiscount, billing.LineSLACredit, billing.LineEnergy, // anchor
		billing.LineFee,                      // res-1
		billing.LineUsage, billing.LineUsage} // spot-1
	if diff := cmp.Diff(wantKinds, kinds); diff != "" {
		t.Errorf("line kinds (-want +got):\n%s", diff)
	}
	for _, perm := range [][]int{{7, 6, 5, 4, 3, 2, 1, 0}, {3, 1, 4, 0, 5, 7, 2, 6}} {
		shuffled := make([]billing.Line, len(lines))
		for i, j := range perm {
			shuffled[i] = lines[j]
		}
		got, err := billing.Assemble("rival-lab", billingtest.Month(2026, time.September), shuffled)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Assemble(%v) (-want +got):\n%s", perm, diff)
		}
	}
}

func TestFinalize(t *testing.T) {
	draft, err := billing.Assemble("rival-lab", billingtest.Month(2026, time.September), tenantLines(t))
	if err != nil {
		t.Fatal(err)
	}
	draft.ID, draft.Created = "INV-1", at("2026-10-01T00:00:00.123456789Z")
	inv, err := billing.Finalize(draft, at("2026-10-01T01:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	if err := billing.Verify(inv); err != nil {
		t.Errorf("Verify(finalized) = %v", err)
	}
	sum := money.USD(0)
	for i, l := range inv.Lines {
		if l.Amount != draft.Lines[i].Amount.RoundCents() || l.Amount.Micros%10_000 != 0 {
			t.Errorf("lines[%d].Amount = %s, want %s rounded to the cent", i, l.Amount, draft.Lines[i].Amount)
		}
		sum = add(t, sum, l.Amount)
	}
	if inv.Total != sum || inv.State != billing.Finalized || len(inv.Hash) != 64 {
		t.Errorf("Finalize: total %s (lines %s), state %s, hash %q", inv.Total, sum, inv.State, inv.Hash)
	}
	if want := at("2026-10-01T00:00:00.123456Z"); !inv.Created.Equal(want) {
		t.Errorf("Created = %s, want it truncated to the microsecond: %s", inv.Created, want)
	}
	// The draft is untouched.
	if draft.State != billing.Draft || draft.Lines[1].Amount.Micros%10_000 == 0 {
		t.Errorf("Finalize changed its argument: %s, %s", draft.State, draft.Lines[1].Amount)
	}

	_, err = billing.Finalize(inv, at("2026-10-02T00:00:00Z"))
	var te *billing.TransitionError
	if !errors.Is(err, billing.ErrNotDraft) || !errors.Is(err, billing.ErrTransition) || !errors.As(err, &te) {
		t.Errorf("Finalize(finalized) = %v, want a *TransitionError matching ErrNotDraft", err)
	}
}

func TestFinalizeErrors(t *testing.T) {
	good := func() billing.Invoice {
		inv, err := billing.Assemble("rival-lab", billingtest.Month(2026, time.September), tenantLines(t))
		if err != nil {
			t.Fatal(err)
		}
		inv.ID, inv.Created = "INV-1", at("2026-10-01T00:00:00Z")
		return inv
	}
	tests := []struct {
		name   string
		edit   func(inv *billing.Invoice) time.Time
		fields []string
	}{
		{"no id, no created", func(inv *billing.Invoice) time.Time {
			inv.ID, inv.Created = "", time.Time{}
			return at("2026-10-01T00:00:00Z")
		}, []string{"id", "created"}},
		{"finalized before created", func(inv *billing.Invoice) time.Time { return at("2026-09-30T00:00:00Z") }, []string{"finalized"}},
		{"a line edited by hand", func(inv *billing.Invoice) time.Time {
			inv.Lines[0].Amount.Micros++
			return at("2026-10-01T00:00:00Z")
		}, []string{"lines[0].amount"}},
		{"a line in another currency", func(inv *billing.Invoice) time.Time {
			inv.Lines[2].UnitPrice.Currency = "EUR"
			inv.Lines[2].Amount.Currency = "EUR"
			return at("2026-10-01T00:00:00Z")
		}, []string{"lines[2].amount"}},
		{"month and tenant", func(inv *billing.Invoice) time.Time {
			inv.Month, inv.TenantID, inv.Currency = at("2026-09-01T00:00:01Z"), "", "X"
			return at("2026-10-01T00:00:00Z")
		}, append([]string{"tenant_id", "month", "currency"}, allLines(8)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := good()
			when := tt.edit(&inv)
			_, err := billing.Finalize(inv, when)
			if diff := cmp.Diff(tt.fields, fields(err)); diff != "" {
				t.Errorf("Finalize() = %v; fields (-want +got):\n%s", err, diff)
			}
		})
	}
}

// allLines returns "lines[i].amount" for i < n.
func allLines(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("lines[%d].amount", i))
	}
	return out
}

func TestAssembleErrors(t *testing.T) {
	lines := tenantLines(t)
	lines[3].Amount = money.New(lines[3].Amount.Micros, "EUR")
	_, err := billing.Assemble("", at("2026-09-02T00:00:00Z"), lines)
	if diff := cmp.Diff([]string{"tenant_id", "month", "lines[3].amount"}, fields(err)); diff != "" {
		t.Errorf("Assemble() = %v; fields (-want +got):\n%s", err, diff)
	}
}

// TestLifecycle walks every state through every transition: draft →
// finalized → paid | void, draft → void; nothing else.
func TestLifecycle(t *testing.T) {
	draft, err := billing.Assemble("rival-lab", billingtest.Month(2026, time.September), tenantLines(t))
	if err != nil {
		t.Fatal(err)
	}
	draft.ID, draft.Created = "INV-1", at("2026-10-01T00:00:00Z")
	when := at("2026-10-02T00:00:00Z")
	fin, err := billing.Finalize(draft, when)
	if err != nil {
		t.Fatal(err)
	}
	paid, err := billing.Pay(fin, when.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	voided, err := billing.Void(fin, when.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	voidDraft, err := billing.Void(draft, when)
	if err != nil {
		t.Fatal(err)
	}
	from := map[billing.State]billing.Invoice{billing.Draft: draft, billing.Finalized: fin, billing.Paid: paid, billing.Voided: voided}
	ops := map[billing.State]func(billing.Invoice) (billing.Invoice, error){
		billing.Finalized: func(inv billing.Invoice) (billing.Invoice, error) {
			return billing.Finalize(inv, when.Add(2*time.Hour))
		},
		billing.Paid:   func(inv billing.Invoice) (billing.Invoice, error) { return billing.Pay(inv, when.Add(2*time.Hour)) },
		billing.Voided: func(inv billing.Invoice) (billing.Invoice, error) { return billing.Void(inv, when.Add(2*time.Hour)) },
	}
	for _, s := range billing.States {
		for _, to := range []billing.State{billing.Finalized, billing.Paid, billing.Voided} {
			got, err := ops[to](from[s])
			if billing.CanTransition(s, to) {
				if err != nil || got.State != to {
					t.Errorf("%s → %s: %s, %v; want %s", s, to, got.State, err, to)
				}
				if to != billing.Finalized && s != billing.Draft {
					if err := billing.Verify(got); err != nil {
						t.Errorf("%s → %s: Verify = %v", s, to, err)
					}
				}
				continue
			}
			if !errors.Is(err, billing.ErrTransition) {
				t.Errorf("%s → %s: err = %v, want ErrTransition", s, to, err)
			}
		}
	}
	if err := billing.Verify(voidDraft); !errors.Is(err, billing.ErrNotFinalized) {
		t.Errorf("Verify(voided draft) = %v, want ErrNotFinalized", err)
	}
	if err := billing.Verify(draft); !errors.Is(err, billing.ErrNotFinalized) {
		t.Errorf("Verify(draft) = %v, want ErrNotFinalized", err)
	}
	if _, err := billing.Pay(draft, when); !errors.Is(err, billing.ErrNotFinalized) {
		t.Errorf("Pay(draft) = %v, want ErrNotFinalized", err)
	}
	if _, err := billing.Pay(fin, when.Add(-time.Hour)); fields(err) == nil {
		t.Errorf("Pay before finalized = %v, want a *valid.Error", err)
	}
	tampered := fin
	tampered.Total.Micros += 10_000
	if _, err := billing.Pay(tampered, when.Add(time.Hour)); !errors.Is(err, billing.ErrTampered) {
		t.Errorf("Pay(tampered) = %v, want ErrTampered", err)
	}
}

func TestAddLines(t *testing.T) {
	lines := tenantLines(t)
	draft, err := billing.Assemble("rival-lab", billingtest.Month(2026, time.September), lines[:3])
	if err != nil {
		t.Fatal(err)
	}
	draft.ID, draft.Created = "INV-1", at("2026-10-01T00:00:00Z")
	got, err := billing.AddLines(draft, lines[3:]...)
	if err != nil {
		t.Fatal(err)
	}
	want, err := billing.Assemble("rival-lab", billingtest.Month(2026, time.September), lines)
	if err != nil {
		t.Fatal(err)
	}
	want.ID, want.Created = draft.ID, draft.Created
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AddLines (-want +got):\n%s", diff)
	}
	fin, err := billing.Finalize(got, at("2026-10-01T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := billing.AddLines(fin, lines[0]); !errors.Is(err, billing.ErrNotDraft) {
		t.Errorf("AddLines(finalized) = %v, want ErrNotDraft", err)
	}
}

func TestLineCheck(t *testing.T) {
	good := billing.Line{Kind: billing.LineUsage, Quantity: "240", Unit: billing.UnitGPUMinute, UnitPrice: money.USD(2_100_000), Per: 60, Amount: money.USD(8_400_000)}
	tests := []struct {
		name string
		edit func(l *billing.Line)
		ok   bool
	}{
		{"good", func(l *billing.Line) {}, true},
		{"amount off by a micro", func(l *billing.Line) { l.Amount.Micros++ }, false},
		{"quantity not a decimal", func(l *billing.Line) { l.Quantity = "2.4e2" }, false},
		{"same value, other spelling", func(l *billing.Line) { l.Quantity = "240.000" }, true},
		{"per zero", func(l *billing.Line) { l.Per = 0 }, false},
		{"overflow", func(l *billing.Line) { l.Quantity = "9223372036854775807"; l.UnitPrice.Micros = 1 << 40 }, false},
	}
	for _, tt := range tests {
		l := good
		tt.edit(&l)
		err := l.Check()
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, billing.ErrLineAmount) {
			t.Errorf("%s: Check() = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestCreditNote(t *testing.T) {
	inv := finalized(t, "rival-lab", billingtest.Month(2026, time.September), tenantLines(t))
	issued := at("2026-11-05T00:00:00Z")
	credit := func(leaseID string, micros int64) billing.Line {
		return billing.Adjustment(leaseID, "Credit: spot minutes billed twice", at("2026-09-03T10:00:00Z"), at("2026-09-04T00:00:00Z"), money.USD(micros))
	}
	n1, err := billing.IssueCreditNote("CN-1", inv, nil, "duplicate spot piece", []billing.Line{credit("spot-1", -1_234_565)}, issued)
	if err != nil {
		t.Fatal(err)
	}
	want := billing.CreditNote{ID: "CN-1", InvoiceID: inv.ID, InvoiceHash: inv.Hash, TenantID: "rival-lab", Month: inv.Month,
		Currency: "USD", Reason: "duplicate spot piece", Issued: issued, Total: money.USD(-1_230_000), Hash: n1.Hash,
		// Rounded half-even to the cent when issued.
		Lines: []billing.Line{func() billing.Line { l := credit("spot-1", -1_234_565); l.Amount = money.USD(-1_230_000); return l }()}}
	if diff := cmp.Diff(want, n1); diff != "" {
		t.Errorf("IssueCreditNote (-want +got):\n%s", diff)
	}
	if err := billing.VerifyCreditNote(n1); err != nil {
		t.Errorf("VerifyCreditNote = %v", err)
	}
	tampered := n1
	tampered.Reason = "something else"
	if err := billing.VerifyCreditNote(tampered); !errors.Is(err, billing.ErrTampered) {
		t.Errorf("VerifyCreditNote(tampered) = %v, want ErrTampered", err)
	}

	rest := inv.Total.Micros + n1.Total.Micros
	if _, err := billing.IssueCreditNote("CN-2", inv, nil, "x", nil, issued); err == nil {
		t.Error("a note without lines was issued")
	}
	if _, err := billing.IssueCreditNote("CN-2", inv, []billing.CreditNote{n1}, "all of it", []billing.Line{credit("", -rest-10_000)}, issued); !errors.Is(err, billing.ErrOverCredit) {
		t.Errorf("over-credit: err = %v, want ErrOverCredit", err)
	}
	if _, err := billing.IssueCreditNote("CN-2", inv, []billing.CreditNote{n1}, "all the rest", []billing.Line{credit("", -rest)}, issued); err != nil {
		t.Errorf("crediting the rest: %v", err)
	}

	bad := credit("nobody", 5)
	bad.Kind = billing.LineFee
	_, err = billing.IssueCreditNote("", inv, []billing.CreditNote{{InvoiceID: "INV-other"}}, "", []billing.Line{bad}, inv.Finalized.Add(-time.Second))
	wantFields := []string{"id", "reason", "issued", "lines[0].kind", "lines[0].amount", "lines[0].lease_id", "prior[0].invoice_id"}
	if diff := cmp.Diff(wantFields, fields(err)); diff != "" {
		t.Errorf("IssueCreditNote() = %v; fields (-want +got):\n%s", err, diff)
	}

	draft, err := billing.Assemble("rival-lab", billingtest.Month(2026, time.September), tenantLines(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := billing.IssueCreditNote("CN-3", draft, nil, "x", []billing.Line{credit("", -10_000)}, issued); !errors.Is(err, billing.ErrNotFinalized) {
		t.Errorf("credit note on a draft: err = %v, want ErrNotFinalized", err)
	}
}

func TestSchedule(t *testing.T) {
	r := billingtest.Lease("res-1", lease.Reservation, at("2026-09-28T00:00:00Z"), at("2026-10-03T00:00:00Z"), 64)
	zero := money.USD(0)
	tests := []struct {
		name  string
		l     lease.Lease
		p     billing.Plan
		want  []billing.MonthCharge
		total money.Money
	}{
		{"reservation upfront", r, billingtest.ReservationPlan(2_500_000, billing.Upfront), []billing.MonthCharge{
			{Month: billingtest.Month(2026, time.September), HoursHeld: 72, HoursInMonth: 720, Fee: money.USD(19_200_000_000), Proration: zero, Discount: zero, Amount: money.USD(19_200_000_000)},
			{Month: billingtest.Month(2026, time.October), HoursHeld: 48, HoursInMonth: 744, Fee: zero, Proration: zero, Discount: zero, Amount: zero},
		}, money.USD(19_200_000_000)},
		{"reservation in arrears", r, billingtest.ReservationPlan(2_500_000, billing.Arrears), []billing.MonthCharge{
			{Month: billingtest.Month(2026, time.September), HoursHeld: 72, HoursInMonth: 720, Fee: money.USD(11_520_000_000), Proration: zero, Discount: zero, Amount: money.USD(11_520_000_000)},
			{Month: billingtest.Month(2026, time.October), HoursHeld: 48, HoursInMonth: 744, Fee: money.USD(7_680_000_000), Proration: zero, Discount: zero, Amount: money.USD(7_680_000_000)},
		}, money.USD(19_200_000_000)},
		{"contract starting mid-month", func() lease.Lease {
			l, _ := billingtest.Anchor()
			l.Start, l.End = at("2026-09-15T12:00:00Z"), at("2026-11-01T00:00:00Z")
			l.Schedule = l.Schedule[:2]
			l.Schedule[0].From = l.Start
			return l
		}(), func() billing.Plan { _, p := billingtest.Anchor(); return p }(), []billing.MonthCharge{
			{Month: billingtest.Month(2026, time.September), HoursHeld: 372, HoursInMonth: 720, Fee: usd(t, "1250000000"),
				Proration: usd(t, "-604166666.67"), Discount: usd(t, "-322916666.66"), Amount: usd(t, "322916666.67")},
			{Month: billingtest.Month(2026, time.October), HoursHeld: 744, HoursInMonth: 744, Fee: usd(t, "1250000000"),
				Proration: zero, Discount: usd(t, "-625000000"), Amount: usd(t, "625000000")},
		}, usd(t, "947916666.67")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, total, err := billing.Schedule(tt.l, tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Schedule (-want +got):\n%s", diff)
			}
			if total != tt.total {
				t.Errorf("Schedule total = %s, want %s", total, tt.total)
			}
		})
	}
	s := billingtest.Lease("spot-1", lease.Spot, time.Time{}, time.Time{}, 8)
	if _, _, err := billing.Schedule(s, billingtest.SpotPlan()); !errors.Is(err, billing.ErrNoSchedule) {
		t.Errorf("Schedule(spot) = %v, want ErrNoSchedule", err)
	}
	l, p := billingtest.Anchor()
	l.End = l.End.Add(time.Minute)
	if _, _, err := billing.Schedule(l, p); !slices.Contains(fields(err), "lease.end") {
		t.Errorf("Schedule(off-hour end) = %v, want an issue with lease.end", err)
	}
}
