package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/event"
	"github.com/neocloud/neocloud/internal/tenant"
)

// eventsInsert appends to the event outbox; the database numbers the rows
// (seq), in the order of the statement's rows.
var eventsInsert = bulkInsert{table: "events", columns: `at_us, type, tenant_id, lease_id, data`, cols: 5}

// eventQueries are the statements of AppendEvents, which the write pool
// prepares.
func eventQueries(d *Dialect) []string {
	var qs []string
	for n := 1; n <= pow2Floor(d.batchRows(eventsInsert.cols)); n *= 2 {
		qs = append(qs, eventsInsert.query(d, n))
	}
	if d.UndoByRowid {
		qs = append(qs, eventsInsert.lastRowidQuery())
	}
	return qs
}

// AppendEvents appends es in order with multi-row inserts; the database
// assigns their sequence numbers, increasing. Seq of es is ignored. After
// an error nothing of es is stored and the transaction stays usable.
func (t *tx) AppendEvents(ctx context.Context, es []event.Event) error {
	err := t.insertAll(ctx, eventsInsert, len(es), func(i int, args []any) ([]any, error) {
		e := es[i]
		data := string(e.Data)
		if len(e.Data) == 0 {
			data = "null"
		}
		return append(args, micros(e.At), string(e.Type), e.TenantID, e.LeaseID, data), nil
	}, func(err error) error { return err })
	if err != nil {
		return fmt.Errorf("store: append events: %w", err)
	}
	return nil
}

// Events returns the events f selects, by seq.
func (r reader) Events(ctx context.Context, f engine.EventFilter) ([]event.Event, error) {
	q := `SELECT seq, at_us, type, tenant_id, lease_id, data FROM events WHERE seq > ?`
	args := []any{f.After}
	if f.TenantID != "" {
		q += ` AND tenant_id = ?`
		args = append(args, f.TenantID)
	}
	if f.Before > 0 {
		q += ` AND seq < ?`
		args = append(args, f.Before)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	if f.Newest {
		q += ` ORDER BY seq DESC LIMIT ?`
	} else {
		q += ` ORDER BY seq LIMIT ?`
	}
	args = append(args, limit)
	rows, err := r.c.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	out := []event.Event{}
	for rows.Next() {
		var e event.Event
		var at int64
		var typ, data string
		if err := rows.Scan(&e.Seq, &at, &typ, &e.TenantID, &e.LeaseID, &data); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: events: %w", err)
		}
		e.At, e.Type, e.Data = fromMicros(at), event.Type(typ), []byte(data)
		out = append(out, e)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	return out, nil
}

// LastEventSeq returns the seq of the last event, 0 when there is none.
func (r reader) LastEventSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := r.c.queryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("store: last event: %w", err)
	}
	return seq, nil
}

const webhookColumns = `id, tenant_id, url, secret, created_us, disabled_us, last_seq, attempts, next_attempt_us, last_error, last_status`

func scanWebhook(row interface{ Scan(...any) error }) (event.Webhook, error) {
	var w event.Webhook
	var created int64
	var disabled, next sql.NullInt64
	d := &w.Delivery
	if err := row.Scan(&w.ID, &w.TenantID, &w.URL, &w.Secret, &created, &disabled, &d.LastSeq, &d.Attempts, &next,
		&d.LastError, &d.LastStatus); err != nil {
		return event.Webhook{}, err
	}
	w.Created, w.Disabled, d.NextAttempt = fromMicros(created), fromNullMicros(disabled), fromNullMicros(next)
	return w, nil
}

// Webhook returns the endpoint with that ID, disabled or not, or an error
// wrapping engine.ErrNotFound.
func (r reader) Webhook(ctx context.Context, id string) (event.Webhook, error) {
	w, err := scanWebhook(r.c.queryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return event.Webhook{}, fmt.Errorf("store: webhook %s: %w", id, engine.ErrNotFound)
	}
	if err != nil {
		return event.Webhook{}, fmt.Errorf("store: webhook %s: %w", id, err)
	}
	return w, nil
}

// Webhooks returns the endpoints f selects, by creation time then ID.
func (r reader) Webhooks(ctx context.Context, f engine.WebhookFilter) ([]event.Webhook, error) {
	q := `SELECT ` + webhookColumns + ` FROM webhooks WHERE 1 = 1`
	var args []any
	if f.TenantID != "" {
		q += ` AND tenant_id = ?`
		args = append(args, f.TenantID)
	}
	if !f.IncludeDisabled {
		q += ` AND disabled_us IS NULL`
	}
	q += ` ORDER BY created_us, id`
	rows, err := r.c.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: webhooks: %w", err)
	}
	out := []event.Webhook{}
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: webhooks: %w", err)
		}
		out = append(out, w)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: webhooks: %w", err)
	}
	return out, nil
}

// CreateWebhook stores w; an error wrapping tenant.ErrExists when the ID
// is taken (detected with ON CONFLICT DO NOTHING, so the transaction stays
// usable).
func (t *tx) CreateWebhook(ctx context.Context, w event.Webhook) error {
	d := w.Delivery
	n, err := t.c.execCount(ctx, `INSERT INTO webhooks (`+webhookColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		w.ID, w.TenantID, w.URL, w.Secret, micros(w.Created), nullMicros(w.Disabled), d.LastSeq, d.Attempts,
		nullMicros(d.NextAttempt), d.LastError, d.LastStatus)
	if err != nil {
		return fmt.Errorf("store: create webhook %s: %w", w.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("store: create webhook %s: %w", w.ID, tenant.ErrExists)
	}
	return nil
}

// DisableWebhook marks the endpoint disabled at at; one already disabled
// keeps its first time. An error wrapping engine.ErrNotFound when there is
// none.
func (t *tx) DisableWebhook(ctx context.Context, id string, at time.Time) error {
	n, err := t.c.execCount(ctx, `UPDATE webhooks SET disabled_us = ? WHERE id = ? AND disabled_us IS NULL`, micros(at), id)
	if err != nil {
		return fmt.Errorf("store: disable webhook %s: %w", id, err)
	}
	if n == 1 {
		return nil
	}
	if _, err := t.Webhook(ctx, id); err != nil {
		return fmt.Errorf("store: disable webhook %s: %w", id, engine.ErrNotFound)
	}
	return nil
}

// UpdateWebhookDelivery writes d over the endpoint's delivery state; an
// error wrapping engine.ErrNotFound when there is none.
func (t *tx) UpdateWebhookDelivery(ctx context.Context, id string, d event.Delivery) error {
	n, err := t.c.execCount(ctx, `UPDATE webhooks SET last_seq = ?, attempts = ?, next_attempt_us = ?, last_error = ?, last_status = ? WHERE id = ?`,
		d.LastSeq, d.Attempts, nullMicros(d.NextAttempt), d.LastError, d.LastStatus, id)
	if err != nil {
		return fmt.Errorf("store: update webhook %s delivery: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("store: update webhook %s delivery: %w", id, engine.ErrNotFound)
	}
	return nil
}
