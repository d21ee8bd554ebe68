package billing

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"time"

	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/valid"
)

// State is where an invoice is in its lifecycle:
// draft → finalized → paid | void, and draft → void.
type State string

// Invoice states. Only a draft changes; a finalized invoice's content is
// fixed by its hash, and paying or voiding it only stamps when.
const (
	Draft     State = "draft"
	Finalized State = "finalized"
	Paid      State = "paid"
	Voided    State = "void"
)

// States lists every state in lifecycle order.
var States = []State{Draft, Finalized, Paid, Voided}

// CanTransition reports whether an invoice may move from one state to
// another. Paid and void are final.
func CanTransition(from, to State) bool {
	switch from {
	case Draft:
		return to == Finalized || to == Voided
	case Finalized:
		return to == Paid || to == Voided
	}
	return false
}

// Errors of the invoice lifecycle. A refused transition is a
// *TransitionError, which matches ErrTransition and the specific reason
// (ErrNotDraft for Finalize, ErrNotFinalized for Pay).
var (
	ErrNotDraft     = errors.New("billing: invoice is not a draft")
	ErrNotFinalized = errors.New("billing: invoice is not finalized")
	ErrTransition   = errors.New("billing: illegal invoice state transition")
	ErrTampered     = errors.New("billing: document does not match its hash")
)

// TransitionError is a refused state transition.
type TransitionError struct {
	ID       string
	From, To State
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("invoice %s: cannot go from %s to %s", e.ID, e.From, e.To)
}

// Unwrap returns the reason: ErrNotDraft when finalizing, ErrNotFinalized
// when paying, ErrTransition otherwise.
func (e *TransitionError) Unwrap() error {
	switch e.To {
	case Finalized:
		return ErrNotDraft
	case Paid:
		return ErrNotFinalized
	}
	return ErrTransition
}

// Is reports whether target is ErrTransition: every refused transition
// is one.
func (e *TransitionError) Is(target error) bool { return target == ErrTransition }

// Invoice is what one tenant owes for one month in one currency.
//
// Lines, Total, ID, TenantID, Month, Currency, Created and Finalized are
// the content that Hash covers. State, Paid and Voided are the lifecycle:
// they change after finalization (only as CanTransition allows) and are
// checked for consistency with State, not hashed.
type Invoice struct {
	ID        string
	TenantID  string
	Month     time.Time // the first instant of the month, UTC
	Currency  string
	State     State
	Lines     []Line // in invoice order (see Assemble)
	Total     money.Money
	Hash      string // hex SHA-256 of the content; empty until finalized
	Created   time.Time
	Finalized time.Time // zero until finalized
	Paid      time.Time // zero until paid
	Voided    time.Time // zero until voided
}

// Assemble returns the draft invoice of tenantID for month holding lines,
// sorted into invoice order — by lease (lines without one last), then
// kind (LineKinds order), then service period and the remaining fields —
// so that the draft does not depend on the order lines came in. Total is
// the sum of the unrounded amounts. ID and Created are left for the
// caller (the engine) to stamp.
//
// It returns a *valid.Error when tenantID is empty, month is not the
// first instant of a UTC month, lines mix currencies, or a line's amount
// is not its quantity × unit price (ErrLineAmount); money.ErrOverflow
// when the total does not fit.
func Assemble(tenantID string, month time.Time, lines []Line) (Invoice, error) {
	inv := Invoice{TenantID: tenantID, Month: month.UTC(), State: Draft, Lines: slices.Clone(lines)}
	if len(lines) > 0 {
		inv.Currency = lines[0].Amount.Currency
	}
	var e valid.Error
	if tenantID == "" {
		e.Add("tenant_id", nil, "is required")
	}
	if !isMonth(month) {
		e.Add("month", month.Format(time.RFC3339Nano), "must be the first instant of a month in UTC")
	}
	checkLines(&e, inv.Currency, inv.Lines, false)
	if err := e.Err(); err != nil {
		return Invoice{}, fmt.Errorf("tenant %s: assemble invoice: %w", tenantID, err)
	}
	slices.SortStableFunc(inv.Lines, compareLines)
	t, err := total(inv.Lines)
	if err != nil {
		return Invoice{}, fmt.Errorf("tenant %s: assemble invoice: total: %w", tenantID, err)
	}
	inv.Total = t
	return inv, nil
}

// AddLines returns draft inv with lines added (in invoice order) and its
// total updated: how adjustments reach next month's draft. It returns an
// error wrapping ErrNotDraft when inv is not a draft, and Assemble's
// errors.
func AddLines(inv Invoice, lines ...Line) (Invoice, error) {
	if inv.State != Draft {
		return Invoice{}, fmt.Errorf("invoice %s is %s: add lines: %w", inv.ID, inv.State, ErrNotDraft)
	}
	out, err := Assemble(inv.TenantID, inv.Month, slices.Concat(inv.Lines, lines))
	if err != nil {
		return Invoice{}, fmt.Errorf("invoice %s: add lines: %w", inv.ID, err)
	}
	switch {
	case out.Currency == "":
		out.Currency = inv.Currency
	case inv.Currency != "" && out.Currency != inv.Currency:
		var e valid.Error
		e.Add("lines", out.Currency, "must be in the invoice's currency (%s)", inv.Currency)
		return Invoice{}, fmt.Errorf("invoice %s: add lines: %w", inv.ID, e.Err())
	}
	out.ID, out.Created = inv.ID, inv.Created
	return out, nil
}

// Finalize returns inv finalized at at: every line's amount rounded
// half-even to the cent, the total the sum of the rounded lines, times in
// UTC to the microsecond (what the stores keep), and Hash set over the
// content. The finalized invoice never changes again.
//
// It returns a *TransitionError (matching ErrNotDraft) when inv is not a
// draft; a *valid.Error when the ID, tenant, creation time, month or
// currency is missing or invalid, at is before Created, or a line is in
// another currency or does not check (ErrLineAmount); money.ErrOverflow
// when the total does not fit.
func Finalize(inv Invoice, at time.Time) (Invoice, error) {
	if inv.State != Draft {
		return Invoice{}, &TransitionError{ID: inv.ID, From: inv.State, To: Finalized}
	}
	var e valid.Error
	if inv.ID == "" {
		e.Add("id", nil, "is required")
	}
	if inv.TenantID == "" {
		e.Add("tenant_id", nil, "is required")
	}
	if !isMonth(inv.Month) {
		e.Add("month", inv.Month.Format(time.RFC3339Nano), "must be the first instant of a month in UTC")
	}
	if !isCurrency(inv.Currency) {
		e.Add("currency", inv.Currency, "must be a 3-letter ISO 4217 code")
	}
	if inv.Created.IsZero() {
		e.Add("created", nil, "is required")
	}
	if at.IsZero() || at.Before(inv.Created) {
		e.Add("finalized", at.Format(time.RFC3339Nano), "must be at or after created (%s)", inv.Created.Format(time.RFC3339Nano))
	}
	checkLines(&e, inv.Currency, inv.Lines, false)
	if err := e.Err(); err != nil {
		return Invoice{}, fmt.Errorf("invoice %s: finalize: %w", inv.ID, err)
	}

	out := inv
	out.Month, out.Created, out.Finalized = inv.Month.UTC(), norm(inv.Created), norm(at)
	out.Lines = make([]Line, len(inv.Lines))
	for i, ln := range inv.Lines {
		ln.From, ln.To = norm(ln.From), norm(ln.To)
		ln.Amount = ln.Amount.RoundCents()
		out.Lines[i] = ln
	}
	slices.SortStableFunc(out.Lines, compareLines)
	t, err := total(out.Lines)
	if err != nil {
		return Invoice{}, fmt.Errorf("invoice %s: finalize: total: %w", inv.ID, err)
	}
	out.Total = money.New(t.Micros, inv.Currency)
	out.State = Finalized
	out.Hash = invoiceHash(out)
	return out, nil
}

// Verify checks a finalized (or paid, or voided after finalization)
// invoice: its hash matches its content, every line is its quantity ×
// unit price rounded to the cent, the total is the sum of the lines, and
// the lifecycle stamps agree with the state. It returns an error wrapping
// ErrNotFinalized for an invoice that never was finalized, and one
// wrapping ErrTampered for anything else that does not hold.
func Verify(inv Invoice) error {
	tampered := func(format string, args ...any) error {
		return fmt.Errorf("invoice %s: %w: %s", inv.ID, ErrTampered, fmt.Sprintf(format, args...))
	}
	if inv.Finalized.IsZero() && inv.Hash == "" && (inv.State == Draft || inv.State == Voided) {
		return fmt.Errorf("invoice %s is a %s: verify: %w", inv.ID, inv.State, ErrNotFinalized)
	}
	switch {
	case !slices.Contains(States, inv.State) || inv.State == Draft:
		return tampered("state %q after finalization", inv.State)
	case inv.Finalized.IsZero() || inv.Hash == "":
		return tampered("%s without a finalization time and hash", inv.State)
	case (inv.State == Paid) != !inv.Paid.IsZero():
		return tampered("state %s with paid time %q", inv.State, stampOrZero(inv.Paid))
	case (inv.State == Voided) != !inv.Voided.IsZero():
		return tampered("state %s with voided time %q", inv.State, stampOrZero(inv.Voided))
	case inv.State == Paid && inv.Paid.Before(inv.Finalized), inv.State == Voided && inv.Voided.Before(inv.Finalized):
		return tampered("%s before it was finalized", inv.State)
	}
	if h := invoiceHash(inv); h != inv.Hash {
		return tampered("content hashes to %s, not %s", h, inv.Hash)
	}
	var e valid.Error
	checkLines(&e, inv.Currency, inv.Lines, true)
	if !slices.IsSortedFunc(inv.Lines, compareLines) {
		e.Add("lines", nil, "must be in invoice order")
	}
	if t, err := total(inv.Lines); err != nil || t.Micros != inv.Total.Micros || inv.Total.Currency != inv.Currency {
		e.Add("total", inv.Total.String(), "must be the sum of the lines")
	}
	if err := e.Err(); err != nil {
		return tampered("%v", err)
	}
	return nil
}

// Pay returns finalized inv marked paid at at. It returns a
// *TransitionError (matching ErrNotFinalized) when inv is not finalized,
// Verify's error when it does not verify, and a *valid.Error when at is
// before its finalization.
func Pay(inv Invoice, at time.Time) (Invoice, error) {
	if inv.State != Finalized {
		return Invoice{}, &TransitionError{ID: inv.ID, From: inv.State, To: Paid}
	}
	if err := Verify(inv); err != nil {
		return Invoice{}, fmt.Errorf("pay: %w", err)
	}
	if at.IsZero() || at.Before(inv.Finalized) {
		var e valid.Error
		e.Add("paid", at.Format(time.RFC3339Nano), "must be at or after finalized (%s)", inv.Finalized.Format(time.RFC3339Nano))
		return Invoice{}, fmt.Errorf("invoice %s: pay: %w", inv.ID, e.Err())
	}
	out := inv
	out.State, out.Paid = Paid, norm(at)
	return out, nil
}

// Void returns inv voided at at: a draft that will not be sent, or a
// finalized invoice withdrawn before payment (its content and hash stay).
// A paid invoice is corrected by a credit note instead. It returns a
// *TransitionError (matching ErrTransition) from paid or void, Verify's
// error when a finalized inv does not verify, and a *valid.Error when at
// is before its creation or finalization.
func Void(inv Invoice, at time.Time) (Invoice, error) {
	if !CanTransition(inv.State, Voided) {
		return Invoice{}, &TransitionError{ID: inv.ID, From: inv.State, To: Voided}
	}
	if inv.State == Finalized {
		if err := Verify(inv); err != nil {
			return Invoice{}, fmt.Errorf("void: %w", err)
		}
	}
	if at.IsZero() || at.Before(inv.Created) || at.Before(inv.Finalized) {
		var e valid.Error
		e.Add("voided", at.Format(time.RFC3339Nano), "must be at or after created and finalized")
		return Invoice{}, fmt.Errorf("invoice %s: void: %w", inv.ID, e.Err())
	}
	out := inv
	out.State, out.Voided = Voided, norm(at)
	return out, nil
}

// checkLines records an issue for each line that is not in currency or
// does not check (rounded to the cent when finalized).
func checkLines(e *valid.Error, currency string, lines []Line, finalized bool) {
	for i, ln := range lines {
		f := func(name string) string { return fmt.Sprintf("lines[%d].%s", i, name) }
		if !slices.Contains(LineKinds, ln.Kind) {
			e.Add(f("kind"), string(ln.Kind), "must be one of %v", LineKinds)
		}
		switch {
		case ln.Amount.Currency != currency:
			e.Add(f("amount"), ln.Amount.String(), "must be in the invoice's currency (%s)", currency)
		case ln.UnitPrice.Currency != currency:
			e.Add(f("unit_price"), ln.UnitPrice.String(), "must be in the invoice's currency (%s)", currency)
		default:
			if err := ln.check(finalized); err != nil {
				e.Add(f("amount"), ln.Amount.String(), "%v", err)
			}
		}
	}
}

// norm returns t in UTC, truncated to the microsecond: what both stores
// keep, so that a finalized document reads back exactly as it was hashed.
func norm(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

func stampOrZero(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return stamp(t)
}

// invoiceHash returns the hex SHA-256 of inv's canonical content.
func invoiceHash(inv Invoice) string {
	c := newCanon()
	c.str("neocloud/billing/invoice/v1")
	c.str(inv.ID)
	c.str(inv.TenantID)
	c.time(inv.Month)
	c.str(inv.Currency)
	c.time(inv.Created)
	c.time(inv.Finalized)
	c.lines(inv.Lines)
	c.money(inv.Total)
	return c.sum()
}

// canon writes the canonical encoding that document hashes are taken
// over: each value as its length (uvarint) and bytes, so that no two
// documents encode alike; integers in decimal, times in RFC 3339 UTC with
// nanoseconds (empty when zero), money as micro-units and currency. It
// streams into the hash through one scratch buffer.
type canon struct {
	h       hash.Hash
	scratch []byte
}

func newCanon() *canon { return &canon{h: sha256.New(), scratch: make([]byte, 0, 128)} }

// value writes the scratch buffer from offset 16 on, prefixed by its length.
func (c *canon) value() {
	n := len(c.scratch) - 16
	prefix := binary.AppendUvarint(c.scratch[:0:16], uint64(n))
	c.h.Write(prefix)
	c.h.Write(c.scratch[16:])
}

func (c *canon) str(s string) {
	c.scratch = append(c.scratch[:16], s...)
	c.value()
}

func (c *canon) int(n int64) {
	c.scratch = strconv.AppendInt(c.scratch[:16], n, 10)
	c.value()
}

func (c *canon) time(t time.Time) {
	c.scratch = c.scratch[:16]
	if !t.IsZero() {
		c.scratch = t.UTC().AppendFormat(c.scratch, time.RFC3339Nano)
	}
	c.value()
}

func (c *canon) money(m money.Money) {
	c.int(m.Micros)
	c.str(m.Currency)
}

func (c *canon) lines(lines []Line) {
	c.int(int64(len(lines)))
	for _, ln := range lines {
		c.str(string(ln.Kind))
		c.str(ln.LeaseID)
		c.str(ln.Description)
		c.time(ln.From)
		c.time(ln.To)
		c.str(ln.Quantity)
		c.str(string(ln.Unit))
		c.money(ln.UnitPrice)
		c.int(ln.Per)
		c.money(ln.Amount)
	}
}

func (c *canon) sum() string { return hex.EncodeToString(c.h.Sum(nil)) }
