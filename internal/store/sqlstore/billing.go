package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/money"
)

// Plans are stored as the JSON of billing.Plan, which round-trips exactly
// (money as micro-units with its currency, times in RFC 3339).

// SetPlan stores lease id's price plan, replacing any.
func (t *tx) SetPlan(ctx context.Context, leaseID string, p billing.Plan, at time.Time) error {
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("store: plan of %s: %w", leaseID, err)
	}
	if _, err := t.c.exec(ctx, `DELETE FROM lease_plans WHERE lease_id = ?`, leaseID); err != nil {
		return fmt.Errorf("store: plan of %s: %w", leaseID, err)
	}
	if _, err := t.c.exec(ctx, `INSERT INTO lease_plans (lease_id, plan, set_us) VALUES (?, ?, ?)`, leaseID, string(data), micros(at)); err != nil {
		return fmt.Errorf("store: plan of %s: %w", leaseID, err)
	}
	return nil
}

// Plan returns lease id's plan, or engine.ErrNotFound.
func (r reader) Plan(ctx context.Context, leaseID string) (billing.Plan, error) {
	var data string
	err := r.c.queryRow(ctx, `SELECT plan FROM lease_plans WHERE lease_id = ?`, leaseID).Scan(&data)
	if isNoRows(err) {
		return billing.Plan{}, fmt.Errorf("plan of lease %s: %w", leaseID, engine.ErrNotFound)
	}
	if err != nil {
		return billing.Plan{}, fmt.Errorf("store: plan of %s: %w", leaseID, err)
	}
	var p billing.Plan
	if err := json.Unmarshal([]byte(data), &p); err != nil {
		return billing.Plan{}, fmt.Errorf("store: plan of %s: %w", leaseID, err)
	}
	return p, nil
}

// Plans returns every lease's plan, by lease ID.
func (r reader) Plans(ctx context.Context) (map[string]billing.Plan, error) {
	rows, err := r.c.query(ctx, `SELECT lease_id, plan FROM lease_plans`)
	if err != nil {
		return nil, fmt.Errorf("store: plans: %w", err)
	}
	out := map[string]billing.Plan{}
	for rows.Next() {
		var id, data string
		if err := rows.Scan(&id, &data); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: plans: %w", err)
		}
		var p billing.Plan
		if err := json.Unmarshal([]byte(data), &p); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: plan of %s: %w", id, err)
		}
		out[id] = p
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: plans: %w", err)
	}
	return out, nil
}

// AppendSpotPrices stores price points.
func (t *tx) AppendSpotPrices(ctx context.Context, ps []engine.SpotPrice) error {
	for _, p := range ps {
		if _, err := t.c.exec(ctx, `INSERT INTO spot_prices (pool, tier, from_us, price_micros) VALUES (?, ?, ?, ?)`,
			p.Pool, p.Tier, micros(p.From), p.Price.Micros); err != nil {
			return fmt.Errorf("store: spot price %s %s: %w", p.Pool, p.Tier, err)
		}
	}
	return nil
}

// SpotPrices returns pool's price points in [from, to), each tier's
// preceded by the one in effect at from.
func (r reader) SpotPrices(ctx context.Context, pool string, from, to time.Time) ([]engine.SpotPrice, error) {
	rows, err := r.c.query(ctx, `SELECT tier, from_us, price_micros FROM spot_prices p WHERE pool = ? AND from_us < ? AND
		from_us >= COALESCE((SELECT MAX(from_us) FROM spot_prices q WHERE q.pool = p.pool AND q.tier = p.tier AND q.from_us <= ?), ?)
		ORDER BY tier, from_us`, pool, micros(to), micros(from), micros(from))
	if err != nil {
		return nil, fmt.Errorf("store: spot prices: %w", err)
	}
	out := []engine.SpotPrice{}
	for rows.Next() {
		var x engine.SpotPrice
		var at, price int64
		if err := rows.Scan(&x.Tier, &at, &price); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: spot prices: %w", err)
		}
		x.Pool, x.From, x.Price = pool, fromMicros(at), money.USD(price)
		out = append(out, x)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: spot prices: %w", err)
	}
	return out, nil
}

const invoiceCols = `id, tenant_id, month_us, currency, state, total_micros, hash, created_us, finalized_us, paid_us, voided_us`

func scanInvoice(row interface{ Scan(...any) error }) (billing.Invoice, error) {
	var inv billing.Invoice
	var month, created, total int64
	var fin, paid, void *int64
	var state string
	if err := row.Scan(&inv.ID, &inv.TenantID, &month, &inv.Currency, &state, &total, &inv.Hash, &created, &fin, &paid, &void); err != nil {
		return inv, err
	}
	inv.Month, inv.Created, inv.State, inv.Total = fromMicros(month), fromMicros(created), billing.State(state), money.New(total, inv.Currency)
	for _, x := range []struct {
		v  *int64
		at *time.Time
	}{{fin, &inv.Finalized}, {paid, &inv.Paid}, {void, &inv.Voided}} {
		if x.v != nil {
			*x.at = fromMicros(*x.v)
		}
	}
	return inv, nil
}

// Invoice returns the invoice with that ID with its lines.
func (r reader) Invoice(ctx context.Context, id string) (billing.Invoice, error) {
	inv, err := scanInvoice(r.c.queryRow(ctx, `SELECT `+invoiceCols+` FROM invoices WHERE id = ?`, id))
	if isNoRows(err) {
		return billing.Invoice{}, fmt.Errorf("invoice %s: %w", id, engine.ErrNotFound)
	}
	if err != nil {
		return billing.Invoice{}, fmt.Errorf("store: invoice %s: %w", id, err)
	}
	lines, err := r.lines(ctx, `WHERE invoice_id = ?`, []any{id})
	if err != nil {
		return billing.Invoice{}, err
	}
	inv.Lines = lines[id]
	return inv, nil
}

// lines reads invoice lines matching where, by invoice and seq.
func (r reader) lines(ctx context.Context, where string, args []any) (map[string][]billing.Line, error) {
	rows, err := r.c.query(ctx, `SELECT l.invoice_id, l.kind, l.lease_id, l.description, l.from_us, l.to_us, l.quantity, l.unit,
		l.unit_price_micros, l.per, l.amount_micros, i.currency FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id `+where+` ORDER BY l.invoice_id, l.seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: invoice lines: %w", err)
	}
	out := map[string][]billing.Line{}
	for rows.Next() {
		var id, kind, unit, cur string
		var l billing.Line
		var from, to, price, amount int64
		if err := rows.Scan(&id, &kind, &l.LeaseID, &l.Description, &from, &to, &l.Quantity, &unit, &price, &l.Per, &amount, &cur); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: invoice lines: %w", err)
		}
		l.Kind, l.Unit, l.From, l.To = billing.LineKind(kind), billing.Unit(unit), fromMicros(from), fromMicros(to)
		l.UnitPrice, l.Amount = money.New(price, cur), money.New(amount, cur)
		out[id] = append(out[id], l)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: invoice lines: %w", err)
	}
	return out, nil
}

// Invoices returns the invoices f selects, without lines.
func (r reader) Invoices(ctx context.Context, f engine.InvoiceFilter) ([]billing.Invoice, error) {
	q := `SELECT ` + invoiceCols + ` FROM invoices WHERE 1=1`
	var args []any
	if f.TenantID != "" {
		q += ` AND tenant_id = ?`
		args = append(args, f.TenantID)
	}
	if !f.Month.IsZero() {
		q += ` AND month_us = ?`
		args = append(args, micros(f.Month))
	}
	if f.State != "" {
		q += ` AND state = ?`
		args = append(args, string(f.State))
	}
	if f.Limit > 0 {
		q += ` ORDER BY month_us DESC, tenant_id, id LIMIT ?`
		args = append(args, f.Limit)
	} else {
		q += ` ORDER BY month_us, tenant_id, id`
	}
	rows, err := r.c.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: invoices: %w", err)
	}
	out := []billing.Invoice{}
	for rows.Next() {
		inv, err := scanInvoice(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: invoices: %w", err)
		}
		out = append(out, inv)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: invoices: %w", err)
	}
	return out, nil
}

// InvoiceLines returns the lines of the invoices of months in [from, to)
// that are not void, by invoice ID.
func (r reader) InvoiceLines(ctx context.Context, from, to time.Time) (map[string][]billing.Line, error) {
	return r.lines(ctx, `WHERE i.month_us >= ? AND i.month_us < ? AND i.state <> 'void'`, []any{micros(from), micros(to)})
}

// PutDraft replaces the tenant-month draft with inv.
func (t *tx) PutDraft(ctx context.Context, inv billing.Invoice) error {
	var id, state string
	err := t.c.queryRow(ctx, `SELECT id, state FROM invoices WHERE tenant_id = ? AND month_us = ? AND state <> 'void'`, inv.TenantID, micros(inv.Month)).Scan(&id, &state)
	switch {
	case isNoRows(err):
	case err != nil:
		return fmt.Errorf("store: draft of %s: %w", inv.TenantID, err)
	case state != string(billing.Draft):
		return fmt.Errorf("invoice %s of %s for %s is %s: %w", id, inv.TenantID, inv.Month.Format("2006-01"), state, engine.ErrConflict)
	default:
		if _, err := t.c.exec(ctx, `DELETE FROM invoice_lines WHERE invoice_id = ?`, id); err != nil {
			return fmt.Errorf("store: draft %s: %w", id, err)
		}
		if _, err := t.c.exec(ctx, `DELETE FROM invoices WHERE id = ?`, id); err != nil {
			return fmt.Errorf("store: draft %s: %w", id, err)
		}
	}
	if _, err := t.c.exec(ctx, `INSERT INTO invoices (`+invoiceCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, invoiceArgs(inv)...); err != nil {
		return fmt.Errorf("store: invoice %s: %w", inv.ID, err)
	}
	return t.insertLines(ctx, inv)
}

func invoiceArgs(inv billing.Invoice) []any {
	return []any{inv.ID, inv.TenantID, micros(inv.Month), inv.Currency, string(inv.State), inv.Total.Micros, inv.Hash, micros(inv.Created),
		nullMicros(inv.Finalized), nullMicros(inv.Paid), nullMicros(inv.Voided)}
}

func (t *tx) insertLines(ctx context.Context, inv billing.Invoice) error {
	const cols = 12
	for start := 0; start < len(inv.Lines); start += 400 {
		chunk := inv.Lines[start:min(start+400, len(inv.Lines))]
		args := make([]any, 0, len(chunk)*cols)
		for i, l := range chunk {
			args = append(args, inv.ID, start+i, string(l.Kind), l.LeaseID, l.Description, micros(l.From), micros(l.To), l.Quantity, string(l.Unit),
				l.UnitPrice.Micros, l.Per, l.Amount.Micros)
		}
		if _, err := t.c.exec(ctx, `INSERT INTO invoice_lines (invoice_id, seq, kind, lease_id, description, from_us, to_us, quantity, unit,
			unit_price_micros, per, amount_micros) VALUES `+values(len(chunk), cols), args...); err != nil {
			return fmt.Errorf("store: lines of invoice %s: %w", inv.ID, err)
		}
	}
	return nil
}

// DeleteDraft deletes draft id and its lines.
func (t *tx) DeleteDraft(ctx context.Context, id string) error {
	var state string
	err := t.c.queryRow(ctx, `SELECT state FROM invoices WHERE id = ?`, id).Scan(&state)
	if isNoRows(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: draft %s: %w", id, err)
	}
	if state != string(billing.Draft) {
		return fmt.Errorf("invoice %s is %s: %w", id, state, engine.ErrConflict)
	}
	if _, err := t.c.exec(ctx, `DELETE FROM invoice_lines WHERE invoice_id = ?`, id); err != nil {
		return fmt.Errorf("store: draft %s: %w", id, err)
	}
	if _, err := t.c.exec(ctx, `DELETE FROM invoices WHERE id = ?`, id); err != nil {
		return fmt.Errorf("store: draft %s: %w", id, err)
	}
	return nil
}

// UpdateInvoice writes inv over the stored invoice: while it is a draft
// its lines are replaced first, then the row (the database allows a
// finalized invoice only its move to paid or void).
func (t *tx) UpdateInvoice(ctx context.Context, inv billing.Invoice) error {
	var state string
	err := t.c.queryRow(ctx, `SELECT state FROM invoices WHERE id = ?`, inv.ID).Scan(&state)
	if isNoRows(err) {
		return fmt.Errorf("invoice %s: %w", inv.ID, engine.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: invoice %s: %w", inv.ID, err)
	}
	if state == string(billing.Draft) {
		if _, err := t.c.exec(ctx, `DELETE FROM invoice_lines WHERE invoice_id = ?`, inv.ID); err != nil {
			return fmt.Errorf("store: invoice %s: %w", inv.ID, err)
		}
		if err := t.insertLines(ctx, inv); err != nil {
			return err
		}
	}
	a := invoiceArgs(inv)
	if _, err := t.c.exec(ctx, `UPDATE invoices SET tenant_id = ?, month_us = ?, currency = ?, state = ?, total_micros = ?, hash = ?,
		created_us = ?, finalized_us = ?, paid_us = ?, voided_us = ? WHERE id = ?`, append(a[1:], inv.ID)...); err != nil {
		return fmt.Errorf("store: invoice %s: %w", inv.ID, err)
	}
	return nil
}

// InsertCreditNote stores n.
func (t *tx) InsertCreditNote(ctx context.Context, n billing.CreditNote) error {
	lines, err := json.Marshal(n.Lines)
	if err != nil {
		return fmt.Errorf("store: credit note %s: %w", n.ID, err)
	}
	if _, err := t.c.exec(ctx, `INSERT INTO credit_notes (id, invoice_id, invoice_hash, tenant_id, month_us, currency, reason, total_micros,
		issued_us, hash, lines) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, n.ID, n.InvoiceID, n.InvoiceHash, n.TenantID, micros(n.Month),
		n.Currency, n.Reason, n.Total.Micros, micros(n.Issued), n.Hash, string(lines)); err != nil {
		return fmt.Errorf("store: credit note %s: %w", n.ID, err)
	}
	return nil
}

// CreditNotes returns the notes against an invoice ("" all), by issue.
func (r reader) CreditNotes(ctx context.Context, invoiceID string) ([]billing.CreditNote, error) {
	q := `SELECT id, invoice_id, invoice_hash, tenant_id, month_us, currency, reason, total_micros, issued_us, hash, lines FROM credit_notes`
	var args []any
	if invoiceID != "" {
		q += ` WHERE invoice_id = ?`
		args = append(args, invoiceID)
	}
	rows, err := r.c.query(ctx, q+` ORDER BY issued_us, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: credit notes: %w", err)
	}
	out := []billing.CreditNote{}
	for rows.Next() {
		var n billing.CreditNote
		var month, total, issued int64
		var lines string
		if err := rows.Scan(&n.ID, &n.InvoiceID, &n.InvoiceHash, &n.TenantID, &month, &n.Currency, &n.Reason, &total, &issued, &n.Hash, &lines); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: credit notes: %w", err)
		}
		n.Month, n.Total, n.Issued = fromMicros(month), money.New(total, n.Currency), fromMicros(issued)
		if err := json.Unmarshal([]byte(lines), &n.Lines); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: credit note %s: %w", n.ID, err)
		}
		out = append(out, n)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: credit notes: %w", err)
	}
	return out, nil
}

// UsageByLease sums each lease's rollup rows with hours in [from, to):
// from the monthly sums when from and to are month starts, else from the
// hourly rows.
func (r reader) UsageByLease(ctx context.Context, from, to time.Time) (map[string]meter.Usage, error) {
	table, col := "usage_hours", "hour_ms"
	if from.UnixMilli() == monthStartMs(from.UnixMilli()) && to.UnixMilli() == monthStartMs(to.UnixMilli()) {
		table, col = "usage_months", "month_ms"
	}
	rows, err := r.c.query(ctx, `SELECT lease_id, SUM(gpu_ms), SUM(used_ms), SUM(healthy_ms), SUM(energy_mj), SUM(readings)
		FROM `+table+` WHERE `+col+` >= ? AND `+col+` < ? AND use = 'lease' GROUP BY lease_id`, from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("store: usage by lease: %w", err)
	}
	out := map[string]meter.Usage{}
	for rows.Next() {
		var id string
		var u meter.Usage
		if err := rows.Scan(&id, &u.GPUms, &u.UsedMs, &u.HealthyMs, &u.EnergyMJ, &u.Readings); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: usage by lease: %w", err)
		}
		out[id] = u
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: usage by lease: %w", err)
	}
	return out, nil
}

// UnhealthyHours returns the lease rows of [from, to) with unhealthy
// time: the leases that had any are found from the monthly sums, then
// their hours read through the lease index.
func (r reader) UnhealthyHours(ctx context.Context, from, to time.Time) ([]meter.Row, error) {
	rows, err := r.c.query(ctx, `SELECT DISTINCT lease_id FROM usage_months WHERE month_ms >= ? AND month_ms < ? AND use = 'lease' AND healthy_ms < gpu_ms`,
		monthStartMs(from.UnixMilli()), to.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("store: unhealthy leases: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: unhealthy leases: %w", err)
		}
		ids = append(ids, id)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: unhealthy leases: %w", err)
	}
	out := []meter.Row{}
	for _, id := range ids {
		rs, err := r.UsageRows(ctx, engine.UsageFilter{From: from, To: to, LeaseID: id, Unhealthy: true})
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}
