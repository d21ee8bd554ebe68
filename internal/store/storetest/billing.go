package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/money"
)

// draftInvoice is a one-line draft of tenant-a for T0's month.
func draftInvoice(t *testing.T, id string) billing.Invoice {
	t.Helper()
	l := billing.Adjustment("", "opening balance", T0, T0.AddDate(0, 1, 0), money.USD(1_234_567))
	inv, err := billing.Assemble("tenant-a", T0, []billing.Line{l})
	if err != nil {
		t.Fatal(err)
	}
	inv.ID, inv.Created = id, T0
	return inv
}

// testInvoicesFrozen: drafts are replaced by tenant and month; a finalized
// invoice reads back exactly (its hash verifies); no direct SQL changes it
// or its lines, only the move to paid; credit notes are append-only.
func testInvoicesFrozen(t *testing.T, s engine.Store) {
	ctx := t.Context()
	update(t, s, func(tx engine.Tx) error { return tx.PutDraft(ctx, draftInvoice(t, "inv-1")) })
	update(t, s, func(tx engine.Tx) error { return tx.PutDraft(ctx, draftInvoice(t, "inv-1")) }) // a rerun
	inv, err := s.Invoice(ctx, "inv-1")
	if err != nil {
		t.Fatal(err)
	}
	fin, err := billing.Finalize(inv, T0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	update(t, s, func(tx engine.Tx) error { return tx.UpdateInvoice(ctx, fin) })
	got, err := s.Invoice(ctx, "inv-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fin, got); diff != "" {
		t.Fatalf("finalized invoice read back (-want +got):\n%s", diff)
	}
	if err := billing.Verify(got); err != nil {
		t.Fatalf("Verify after reading back: %v", err)
	}
	// A new draft for the same tenant and month is a conflict.
	err = s.Update(ctx, func(tx engine.Tx) error { return tx.PutDraft(ctx, draftInvoice(t, "inv-2")) })
	if !errors.Is(err, engine.ErrConflict) {
		t.Errorf("PutDraft over a finalized invoice: %v, want ErrConflict", err)
	}
	// Rewriting it through the store is refused by the database.
	tampered := fin
	tampered.Total = money.USD(1)
	if err := s.Update(ctx, func(tx engine.Tx) error { return tx.UpdateInvoice(ctx, tampered) }); err == nil {
		t.Errorf("UpdateInvoice changing a finalized total: err = nil")
	}
	if d, ok := s.(DBer); ok {
		for _, q := range []string{
			`UPDATE invoices SET total_micros = 1`,
			`UPDATE invoices SET state = 'draft'`,
			`DELETE FROM invoices`,
			`UPDATE invoice_lines SET amount_micros = 0`,
			`DELETE FROM invoice_lines`,
			`INSERT INTO invoice_lines (invoice_id, seq, kind, lease_id, description, from_us, to_us, quantity, unit, unit_price_micros, per, amount_micros)
				VALUES ('inv-1', 9, 'adjustment', '', 'sneaky', 0, 1, '1', 'USD', 1, 1, 1)`,
			`TRUNCATE invoice_lines`, // PostgreSQL; a syntax error in SQLite
		} {
			if _, err := d.DB().ExecContext(ctx, q); err == nil {
				t.Errorf("%s: err = nil, want the finalized invoice's trigger to refuse", q)
			}
		}
	}
	if d, ok := s.(DBer); ok {
		// SQLite's INSERT OR REPLACE deletes the old row without firing
		// delete triggers: the insert trigger refuses it.
		_, err := d.DB().ExecContext(ctx, `INSERT OR REPLACE INTO invoices (id, tenant_id, month_us, currency, state, total_micros, hash, created_us)
			VALUES ('inv-1', 'tenant-a', 0, 'USD', 'draft', 1, '', 0)`)
		_ = err // PostgreSQL has no INSERT OR REPLACE: an error either way
	}
	got, err = s.Invoice(ctx, "inv-1")
	if err != nil || billing.Verify(got) != nil || got.State != billing.Finalized {
		t.Fatalf("after the attempts: %+v, %v, %v", got, err, billing.Verify(got))
	}
	// Paying is the one change allowed.
	paid, err := billing.Pay(fin, T0.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	update(t, s, func(tx engine.Tx) error { return tx.UpdateInvoice(ctx, paid) })
	if got, err := s.Invoice(ctx, "inv-1"); err != nil || got.State != billing.Paid || !got.Paid.Equal(paid.Paid) {
		t.Errorf("after paying: %+v, %v", got, err)
	}
	list, err := s.Invoices(ctx, engine.InvoiceFilter{TenantID: "tenant-a", Month: T0})
	if err != nil || len(list) != 1 || list[0].ID != "inv-1" {
		t.Errorf("Invoices: %+v, %v", list, err)
	}
	if list, err := s.Invoices(ctx, engine.InvoiceFilter{Limit: 1}); err != nil || len(list) != 1 {
		t.Errorf("Invoices, limit 1: %+v, %v", list, err)
	}
	// Credit notes are append-only.
	n, err := billing.IssueCreditNote("cn-1", paid, nil, "goodwill",
		[]billing.Line{billing.Adjustment("", "goodwill", T0, T0.AddDate(0, 1, 0), money.USD(-10_000))}, T0.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	update(t, s, func(tx engine.Tx) error { return tx.InsertCreditNote(ctx, n) })
	notes, err := s.CreditNotes(ctx, "inv-1")
	if err != nil || len(notes) != 1 || billing.VerifyCreditNote(notes[0]) != nil {
		t.Fatalf("CreditNotes: %+v, %v", notes, err)
	}
	if d, ok := s.(DBer); ok {
		for _, q := range []string{`UPDATE credit_notes SET reason = 'x'`, `DELETE FROM credit_notes`, `TRUNCATE credit_notes`,
			`INSERT OR REPLACE INTO credit_notes (id, invoice_id, invoice_hash, tenant_id, month_us, currency, reason, total_micros, issued_us, hash, lines)
				VALUES ('cn-1', 'inv-1', '', 'tenant-a', 0, 'USD', 'x', 0, 0, '', '[]')`} {
			if _, err := d.DB().ExecContext(ctx, q); err == nil {
				t.Errorf("%s: err = nil, want refusal", q)
			}
		}
	}
	if notes, err := s.CreditNotes(ctx, "inv-1"); err != nil || len(notes) != 1 || notes[0].Reason != "goodwill" || billing.VerifyCreditNote(notes[0]) != nil {
		t.Errorf("credit notes after the attempts: %+v, %v", notes, err)
	}
}

// testSpotPrices: the price in effect at from comes first, then the
// changes up to to, per tier.
func testSpotPrices(t *testing.T, s engine.Store) {
	ctx := t.Context()
	p := func(tier string, h int, usd int64) engine.SpotPrice {
		return engine.SpotPrice{Pool: "s1/H100-SXM", Tier: tier, From: T0.Add(time.Duration(h) * time.Hour), Price: money.USD(usd)}
	}
	all := []engine.SpotPrice{p("2m", 0, 1), p("2m", 5, 2), p("2m", 10, 3), p("30m", 1, 4), p("30m", 20, 5)}
	update(t, s, func(tx engine.Tx) error { return tx.AppendSpotPrices(ctx, all) })
	got, err := s.SpotPrices(ctx, "s1/H100-SXM", T0.Add(6*time.Hour), T0.Add(15*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []engine.SpotPrice{p("2m", 5, 2), p("2m", 10, 3), p("30m", 1, 4)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SpotPrices (-want +got):\n%s", diff)
	}
}
