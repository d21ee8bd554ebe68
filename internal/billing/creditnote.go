package billing

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/valid"
)

// ErrOverCredit reports a credit note that would credit more than its
// invoice billed, counting the notes issued against it before.
var ErrOverCredit = errors.New("billing: credit exceeds what the invoice billed")

// CreditNote corrects a finalized (or paid) invoice without touching it:
// a document of its own, immutable once issued, that names the invoice by
// ID and by hash (so that it corrects exactly the content the tenant was
// sent) and credits negative adjustment lines, rounded to the cent when
// issued. The credits of all notes against an invoice never exceed its
// total. An undercharge is not a credit note: it goes on the next month's
// draft as a positive Adjustment line naming the invoice (AddLines).
type CreditNote struct {
	ID          string
	InvoiceID   string
	InvoiceHash string // the corrected invoice's Hash
	TenantID    string
	Month       time.Time // the corrected invoice's month
	Currency    string
	Reason      string
	Lines       []Line // adjustments, each below zero, in invoice order
	Total       money.Money
	Issued      time.Time
	Hash        string // hex SHA-256 of everything above
}

// IssueCreditNote returns credit note id against inv, issued at at for
// reason, crediting lines (Adjustment lines with negative amounts, for one
// of inv's leases or for the whole invoice). prior are the notes already
// issued against inv.
//
// It returns an error wrapping ErrNotFinalized when inv is neither
// finalized nor paid, Verify's error when inv or a prior note does not
// verify, ErrOverCredit when the credits would exceed inv's total, and a
// *valid.Error naming each offending field (id, reason, issued, a line's
// kind, lease, amount or currency, a prior note's invoice).
func IssueCreditNote(id string, inv Invoice, prior []CreditNote, reason string, lines []Line, at time.Time) (CreditNote, error) {
	wrap := func(err error) error { return fmt.Errorf("invoice %s: credit note %s: %w", inv.ID, id, err) }
	if inv.State != Finalized && inv.State != Paid {
		return CreditNote{}, wrap(fmt.Errorf("invoice is %s: %w", inv.State, ErrNotFinalized))
	}
	if err := Verify(inv); err != nil {
		return CreditNote{}, wrap(err)
	}
	var e valid.Error
	if id == "" {
		e.Add("id", nil, "is required")
	}
	if reason == "" {
		e.Add("reason", nil, "is required: say what the note corrects")
	}
	if at.IsZero() || at.Before(inv.Finalized) {
		e.Add("issued", at.Format(time.RFC3339Nano), "must be at or after the invoice was finalized (%s)", inv.Finalized.Format(time.RFC3339Nano))
	}
	if len(lines) == 0 {
		e.Add("lines", nil, "must have at least one line")
	}
	leases := map[string]bool{"": true}
	for _, ln := range inv.Lines {
		leases[ln.LeaseID] = true
	}
	checkLines(&e, inv.Currency, lines, false)
	for i, ln := range lines {
		if ln.Kind != LineAdjustment {
			e.Add(fmt.Sprintf("lines[%d].kind", i), string(ln.Kind), "must be %s", LineAdjustment)
		}
		if ln.Amount.RoundCents().Micros >= 0 {
			e.Add(fmt.Sprintf("lines[%d].amount", i), ln.Amount.String(), "must be at least a cent below zero: a credit note only credits")
		}
		if !leases[ln.LeaseID] {
			e.Add(fmt.Sprintf("lines[%d].lease_id", i), ln.LeaseID, "must be a lease on invoice %s, or empty", inv.ID)
		}
	}
	var credited money.Money
	for i, n := range prior {
		if n.InvoiceID != inv.ID || n.InvoiceHash != inv.Hash {
			e.Add(fmt.Sprintf("prior[%d].invoice_id", i), n.InvoiceID, "must be invoice %s", inv.ID)
			continue
		}
		if err := VerifyCreditNote(n); err != nil {
			return CreditNote{}, wrap(fmt.Errorf("prior[%d]: %w", i, err))
		}
		var err error
		if credited, err = credited.Add(n.Total); err != nil {
			return CreditNote{}, wrap(fmt.Errorf("prior credits: %w", err))
		}
	}
	if err := e.Err(); err != nil {
		return CreditNote{}, wrap(err)
	}

	n := CreditNote{ID: id, InvoiceID: inv.ID, InvoiceHash: inv.Hash, TenantID: inv.TenantID, Month: inv.Month,
		Currency: inv.Currency, Reason: reason, Issued: norm(at), Lines: make([]Line, len(lines))}
	for i, ln := range lines {
		ln.From, ln.To = norm(ln.From), norm(ln.To)
		ln.Amount = ln.Amount.RoundCents()
		n.Lines[i] = ln
	}
	slices.SortStableFunc(n.Lines, compareLines)
	t, err := total(n.Lines)
	if err != nil {
		return CreditNote{}, wrap(err)
	}
	n.Total = money.New(t.Micros, inv.Currency)
	all, err := credited.Add(n.Total)
	if err != nil {
		return CreditNote{}, wrap(err)
	}
	if -all.Micros > inv.Total.Micros {
		return CreditNote{}, wrap(fmt.Errorf("%w: %s credited before, %s now, invoice total %s", ErrOverCredit, credited, n.Total, inv.Total))
	}
	n.Hash = creditNoteHash(n)
	return n, nil
}

// VerifyCreditNote checks that n matches its hash, that every line is a
// negative adjustment rounded to the cent and the total their sum. It
// returns an error wrapping ErrTampered when anything does not hold.
func VerifyCreditNote(n CreditNote) error {
	if h := creditNoteHash(n); h != n.Hash {
		return fmt.Errorf("credit note %s: %w: content hashes to %s, not %s", n.ID, ErrTampered, h, n.Hash)
	}
	var e valid.Error
	checkLines(&e, n.Currency, n.Lines, true)
	for i, ln := range n.Lines {
		if ln.Kind != LineAdjustment || ln.Amount.Micros >= 0 {
			e.Add(fmt.Sprintf("lines[%d]", i), nil, "must be a negative adjustment")
		}
	}
	if t, err := total(n.Lines); err != nil || t.Micros != n.Total.Micros || n.Total.Currency != n.Currency {
		e.Add("total", n.Total.String(), "must be the sum of the lines")
	}
	if err := e.Err(); err != nil {
		return fmt.Errorf("credit note %s: %w: %v", n.ID, ErrTampered, err)
	}
	return nil
}

// creditNoteHash returns the hex SHA-256 of n's canonical content.
func creditNoteHash(n CreditNote) string {
	c := newCanon()
	c.str("neocloud/billing/credit-note/v1")
	c.str(n.ID)
	c.str(n.InvoiceID)
	c.str(n.InvoiceHash)
	c.str(n.TenantID)
	c.time(n.Month)
	c.str(n.Currency)
	c.str(n.Reason)
	c.time(n.Issued)
	c.lines(n.Lines)
	c.money(n.Total)
	return c.sum()
}
