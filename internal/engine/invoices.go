package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/tenant"
)

// Invoices lists invoices without their lines; a tenant sees only its own.
func (e *Engine) Invoices(ctx context.Context, p tenant.Principal, f InvoiceFilter) ([]billing.Invoice, error) {
	t, err := e.scope(ctx, p, tenant.PermBillingRead, "invoice.list", f.TenantID)
	if err != nil {
		return nil, err
	}
	f.TenantID = t
	if !f.Month.IsZero() {
		f.Month = stepStart(StepMonth, f.Month)
	}
	return e.store.Invoices(ctx, f)
}

// Invoice returns an invoice with its lines; ErrNotFound for a missing or
// another tenant's one.
func (e *Engine) Invoice(ctx context.Context, p tenant.Principal, id string) (billing.Invoice, error) {
	return e.invoiceFor(ctx, p, tenant.PermBillingRead, "invoice.get", id)
}

func (e *Engine) invoiceFor(ctx context.Context, p tenant.Principal, perm tenant.Permission, action, id string) (billing.Invoice, error) {
	inv, err := e.store.Invoice(ctx, id)
	owner := inv.TenantID
	if errors.Is(err, ErrNotFound) {
		owner = tenant.Missing
	} else if err != nil {
		return billing.Invoice{}, err
	}
	if err := e.check(ctx, p, perm, action, "invoice/"+id, owner); err != nil {
		return billing.Invoice{}, err
	}
	if owner == tenant.Missing {
		return billing.Invoice{}, fmt.Errorf("invoice %s: %w", id, ErrNotFound)
	}
	return inv, nil
}

// FinalizeInvoice rounds a draft's lines to the cent, totals and hashes
// it; from then on it never changes (the database refuses it too). An
// invoice that is not a draft is a billing.ErrTransition error.
func (e *Engine) FinalizeInvoice(ctx context.Context, p tenant.Principal, id string) (billing.Invoice, error) {
	return e.moveInvoice(ctx, p, "invoice.finalize", id, billing.Finalize)
}

// PayInvoice marks a finalized invoice paid.
func (e *Engine) PayInvoice(ctx context.Context, p tenant.Principal, id string) (billing.Invoice, error) {
	return e.moveInvoice(ctx, p, "invoice.pay", id, billing.Pay)
}

// VoidInvoice voids a draft or an unpaid finalized invoice; the next run
// for its month writes a new draft.
func (e *Engine) VoidInvoice(ctx context.Context, p tenant.Principal, id string) (billing.Invoice, error) {
	notes, err := e.store.CreditNotes(ctx, id)
	if err != nil {
		return billing.Invoice{}, err
	}
	if len(notes) > 0 {
		// Its credit notes refer to it: voiding it would leave them
		// crediting an invoice that no longer counts.
		if _, err := e.invoiceFor(ctx, p, tenant.PermBillingWrite, "invoice.void", id); err != nil {
			return billing.Invoice{}, err
		}
		return billing.Invoice{}, fmt.Errorf("invoice %s has %d credit notes: %w", id, len(notes), ErrConflict)
	}
	return e.moveInvoice(ctx, p, "invoice.void", id, billing.Void)
}

func (e *Engine) moveInvoice(ctx context.Context, p tenant.Principal, action, id string, move func(billing.Invoice, time.Time) (billing.Invoice, error)) (billing.Invoice, error) {
	inv, err := e.invoiceFor(ctx, p, tenant.PermBillingWrite, action, id)
	if err != nil {
		return billing.Invoice{}, err
	}
	out, err := move(inv, e.clock.Now())
	if err != nil {
		return billing.Invoice{}, err
	}
	err = e.write(ctx, p, func(tx Tx) (*tenant.AuditEntry, error) {
		if err := tx.UpdateInvoice(ctx, out); err != nil {
			return nil, err
		}
		return &tenant.AuditEntry{Action: action, Object: "invoice/" + id, TenantID: out.TenantID,
			Detail: fmt.Sprintf("%s -> %s, total %s", inv.State, out.State, out.Total)}, nil
	})
	if err != nil {
		return billing.Invoice{}, err
	}
	return out, nil
}

// IssueCreditNote credits a finalized (or paid) invoice: lines are
// negative adjustments (for one of its leases, or "" for the whole
// invoice). The credits of all notes never exceed the invoice's total.
func (e *Engine) IssueCreditNote(ctx context.Context, p tenant.Principal, invoiceID, reason string, lines []billing.Line) (billing.CreditNote, error) {
	inv, err := e.invoiceFor(ctx, p, tenant.PermBillingWrite, "credit-note.issue", invoiceID)
	if err != nil {
		return billing.CreditNote{}, err
	}
	prior, err := e.store.CreditNotes(ctx, invoiceID)
	if err != nil {
		return billing.CreditNote{}, err
	}
	id := fmt.Sprintf("cn-%s-%d", invoiceID, len(prior)+1)
	n, err := billing.IssueCreditNote(id, inv, prior, reason, lines, e.clock.Now())
	if err != nil {
		return billing.CreditNote{}, err
	}
	err = e.write(ctx, p, func(tx Tx) (*tenant.AuditEntry, error) {
		if err := tx.InsertCreditNote(ctx, n); err != nil {
			return nil, err
		}
		return &tenant.AuditEntry{Action: "credit-note.issue", Object: "invoice/" + invoiceID, TenantID: inv.TenantID,
			Detail: fmt.Sprintf("%s: %s", n.Total, reason)}, nil
	})
	if err != nil {
		return billing.CreditNote{}, err
	}
	return n, nil
}

// CreditNotes returns the credit notes against an invoice.
func (e *Engine) CreditNotes(ctx context.Context, p tenant.Principal, invoiceID string) ([]billing.CreditNote, error) {
	if _, err := e.invoiceFor(ctx, p, tenant.PermBillingRead, "credit-note.list", invoiceID); err != nil {
		return nil, err
	}
	return e.store.CreditNotes(ctx, invoiceID)
}

// Revenue kinds.
const (
	RevenueContract    = "contract"
	RevenueReservation = "reservation"
	RevenueSpot        = "spot"
	RevenueEnergy      = "energy"
	RevenueCredits     = "credits" // SLA credits and credit notes, negative
)

// RevenueRow is one month's revenue of one kind: invoiced (finalized or
// paid), still in drafts, and forecast from signed contracts' schedules
// for months not invoiced yet.
type RevenueRow struct {
	Month    time.Time
	Kind     string
	Invoiced money.Money
	Draft    money.Money
	Forecast money.Money
}

// Revenue returns revenue by month and kind over the UTC months that
// [from, to) touches (operators only): invoice lines by the kind of their
// lease (energy and credits apart), credit notes as credits, and for each
// month without invoices for a contract, the contract's scheduled charge
// as forecast.
func (e *Engine) Revenue(ctx context.Context, p tenant.Principal, from, to time.Time) ([]RevenueRow, error) {
	if !p.Role.IsOperator() {
		err := fmt.Errorf("%w: the revenue report is for operators", tenant.ErrForbidden)
		e.RecordDenial(ctx, p, "revenue.get", "", err.Error())
		return nil, err
	}
	if err := e.check(ctx, p, tenant.PermBillingRead, "revenue.get", "", ""); err != nil {
		return nil, err
	}
	start, end := stepStart(StepMonth, from), stepStart(StepMonth, to)
	if end.Before(to) {
		end = end.AddDate(0, 1, 0)
	}
	leases, err := e.store.Leases(ctx, LeaseFilter{})
	if err != nil {
		return nil, err
	}
	kindOf := map[string]lease.Kind{}
	for _, l := range leases {
		kindOf[l.ID] = l.Kind
	}
	invs, err := e.store.Invoices(ctx, InvoiceFilter{})
	if err != nil {
		return nil, err
	}
	state := map[string]billing.Invoice{}
	for _, inv := range invs {
		state[inv.ID] = inv
	}
	lines, err := e.store.InvoiceLines(ctx, start, end)
	if err != nil {
		return nil, err
	}
	type key struct {
		month time.Time
		kind  string
	}
	rows := map[key]*RevenueRow{}
	add := func(month time.Time, kind string, m money.Money, bucket func(*RevenueRow) *money.Money) error {
		k := key{month, kind}
		r := rows[k]
		if r == nil {
			r = &RevenueRow{Month: month, Kind: kind, Invoiced: money.USD(0), Draft: money.USD(0), Forecast: money.USD(0)}
			rows[k] = r
		}
		b := bucket(r)
		sum, err := b.Add(m)
		if err != nil {
			return fmt.Errorf("revenue: %w", err)
		}
		*b = sum
		return nil
	}
	invoicedLease := map[key]bool{} // (month, lease ID) with an invoice line
	for id, ls := range lines {
		inv := state[id]
		bucket := func(r *RevenueRow) *money.Money { return &r.Invoiced }
		if inv.State == billing.Draft {
			bucket = func(r *RevenueRow) *money.Money { return &r.Draft }
		}
		for _, l := range ls {
			kind := string(kindOf[l.LeaseID])
			switch l.Kind {
			case billing.LineEnergy:
				kind = RevenueEnergy
			case billing.LineSLACredit:
				kind = RevenueCredits
			}
			if kind == "" {
				kind = RevenueCredits // whole-invoice adjustments
			}
			if err := add(inv.Month, kind, l.Amount, bucket); err != nil {
				return nil, err
			}
			invoicedLease[key{inv.Month, l.LeaseID}] = true
		}
	}
	notes, err := e.store.CreditNotes(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		if !n.Month.Before(start) && n.Month.Before(end) {
			if err := add(n.Month, RevenueCredits, n.Total, func(r *RevenueRow) *money.Money { return &r.Invoiced }); err != nil {
				return nil, err
			}
		}
	}
	plans, err := e.store.Plans(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range leases {
		plan, ok := plans[l.ID]
		if l.Kind != lease.Contract || !ok || l.State == lease.Cancelled {
			continue
		}
		sched, _, err := billing.Schedule(l, plan)
		if err != nil {
			continue // a plan that cannot schedule (validated at set time): nothing to forecast
		}
		for _, mc := range sched {
			if mc.Month.Before(start) || !mc.Month.Before(end) || invoicedLease[key{mc.Month, l.ID}] {
				continue
			}
			if err := add(mc.Month, RevenueContract, mc.Amount, func(r *RevenueRow) *money.Money { return &r.Forecast }); err != nil {
				return nil, err
			}
		}
	}
	out := make([]RevenueRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b RevenueRow) int {
		return cmp.Or(a.Month.Compare(b.Month), cmp.Compare(a.Kind, b.Kind))
	})
	return out, nil
}
