package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/unit"
)

// scheduleStep is a lease.Step as stored in the JSON of leases.schedule.
type scheduleStep struct {
	FromUS int64 `json:"from_us"`
	GPUs   int64 `json:"gpus"`
	PowerW int64 `json:"power_w"`
}

// encodeSchedule returns the JSON of steps, as json.Marshal would write
// their scheduleSteps, without reflection: a lease row carries one.
func encodeSchedule(steps []lease.Step) string {
	b := make([]byte, 0, 2+len(steps)*56)
	b = append(b, '[')
	for i, s := range steps {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"from_us":`...)
		b = strconv.AppendInt(b, micros(s.From), 10)
		b = append(b, `,"gpus":`...)
		b = strconv.AppendInt(b, int64(s.GPUs), 10)
		b = append(b, `,"power_w":`...)
		b = strconv.AppendInt(b, int64(s.Power), 10)
		b = append(b, '}')
	}
	return string(append(b, ']'))
}

// decodeSchedule returns the steps of s; nil when there are none.
func decodeSchedule(s string) ([]lease.Step, error) {
	var in []scheduleStep
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, fmt.Errorf("decode schedule: %w", err)
	}
	var steps []lease.Step
	for _, st := range in {
		steps = append(steps, lease.Step{From: fromMicros(st.FromUS), GPUs: unit.GPUs(st.GPUs), Power: unit.Power(st.PowerW)})
	}
	return steps, nil
}

const leaseColumns = `id, tenant_id, kind, pool, start_us, end_us, schedule, packing, isolation, state, reason, created_us, cancelled_us, max_price_micros, notice, noticed_us`

func scanLease(row interface{ Scan(...any) error }) (lease.Lease, error) {
	var l lease.Lease
	var start, end, created int64
	var schedule string
	var cancelled, noticed sql.NullInt64
	var maxPrice int64
	if err := row.Scan(&l.ID, &l.TenantID, &l.Kind, &l.Pool, &start, &end, &schedule, &l.Packing, &l.Isolation,
		&l.State, &l.Reason, &created, &cancelled, &maxPrice, &l.Notice, &noticed); err != nil {
		return lease.Lease{}, err
	}
	if maxPrice != 0 {
		l.MaxPrice = money.USD(maxPrice)
	}
	l.Noticed = fromNullMicros(noticed)
	steps, err := decodeSchedule(schedule)
	if err != nil {
		return lease.Lease{}, fmt.Errorf("lease %s: %w", l.ID, err)
	}
	l.Start, l.End, l.Created, l.Cancelled, l.Schedule = fromMicros(start), fromMicros(end), fromMicros(created), fromNullMicros(cancelled), steps
	return l, nil
}

// Lease returns the lease with that ID, or an error wrapping
// engine.ErrNotFound.
func (r reader) Lease(ctx context.Context, id string) (lease.Lease, error) {
	l, err := scanLease(r.c.queryRow(ctx, `SELECT `+leaseColumns+` FROM leases WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return lease.Lease{}, fmt.Errorf("store: lease %s: %w", id, engine.ErrNotFound)
	}
	if err != nil {
		return lease.Lease{}, fmt.Errorf("store: lease %s: %w", id, err)
	}
	return l, nil
}

// Leases returns the leases f selects, ordered by ID.
func (r reader) Leases(ctx context.Context, f engine.LeaseFilter) ([]lease.Lease, error) {
	q := `SELECT ` + leaseColumns + ` FROM leases WHERE 1 = 1`
	var args []any
	if f.TenantID != "" {
		q += ` AND tenant_id = ?`
		args = append(args, f.TenantID)
	}
	if f.Pool != "" {
		q += ` AND pool = ?`
		args = append(args, f.Pool)
	}
	if f.After != "" {
		q += ` AND id > ?`
		args = append(args, f.After)
	}
	q += ` ORDER BY id`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := r.c.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: leases: %w", err)
	}
	leases := []lease.Lease{}
	for rows.Next() {
		l, err := scanLease(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: leases: %w", err)
		}
		leases = append(leases, l)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: leases: %w", err)
	}
	return leases, nil
}

// checkLease returns an error for the values of l the schema refuses, so
// that they are refused before PostgreSQL would abort the transaction.
func checkLease(l lease.Lease) error {
	var errs []error
	if !slices.Contains(lease.Kinds, l.Kind) {
		errs = append(errs, fmt.Errorf("kind %q: want one of %v", l.Kind, lease.Kinds))
	}
	if !slices.Contains(lease.States, l.State) {
		errs = append(errs, fmt.Errorf("state %q: want one of %v", l.State, lease.States))
	}
	if !l.Start.Before(l.End) {
		errs = append(errs, fmt.Errorf("start %s is not before end %s", l.Start.Format(time.RFC3339Nano), l.End.Format(time.RFC3339Nano)))
	}
	return errors.Join(errs...)
}

// InsertLease stores l; it returns an error wrapping tenant.ErrExists when
// the ID is taken, and a plain error for a kind or state the store does not
// know or an empty interval.
func (t *tx) InsertLease(ctx context.Context, l lease.Lease) error {
	return t.InsertLeases(ctx, []lease.Lease{l})
}

// InsertLeases stores ls, with multi-row inserts (insertAll). It
// returns a plain error for a kind or state the store does not know or an
// empty interval, and one wrapping tenant.ErrExists for an ID taken or
// given twice; after an error nothing of ls is stored and the transaction
// stays usable.
func (t *tx) InsertLeases(ctx context.Context, ls []lease.Lease) error {
	if len(ls) == 0 {
		return nil
	}
	if err := t.insertLeases(ctx, ls); err != nil {
		return fmt.Errorf("store: insert leases: %w", err)
	}
	return nil
}

func (t *tx) insertLeases(ctx context.Context, ls []lease.Lease) error {
	seen := make(map[string]bool, len(ls))
	for _, l := range ls {
		if err := checkLease(l); err != nil {
			return fmt.Errorf("lease %s: %w", l.ID, err)
		}
		if seen[l.ID] {
			return fmt.Errorf("lease %s: ID given twice: %w", l.ID, tenant.ErrExists)
		}
		seen[l.ID] = true
	}
	return t.insertAll(ctx, leasesInsert, len(ls), func(i int, args []any) ([]any, error) {
		l := ls[i]
		return append(args, l.ID, l.TenantID, string(l.Kind), l.Pool, micros(l.Start), micros(l.End), encodeSchedule(l.Schedule),
			string(l.Packing), string(l.Isolation), string(l.State), l.Reason, micros(l.Created), nullMicros(l.Cancelled),
			l.MaxPrice.Micros, l.Notice, nullMicros(l.Noticed)), nil
	}, func(err error) error {
		if !errors.Is(err, tenant.ErrExists) {
			return err
		}
		ids := make([]string, len(ls))
		for i, l := range ls {
			ids[i] = l.ID
		}
		taken, terr := t.taken(ctx, `leases`, ids)
		if terr != nil {
			return errors.Join(err, terr)
		}
		for _, l := range ls {
			if taken[l.ID] {
				return fmt.Errorf("lease %s: ID taken: %w", l.ID, tenant.ErrExists)
			}
		}
		return err
	})
}

// leasesInsert inserts leases.
var leasesInsert = bulkInsert{table: "leases", columns: leaseColumns, cols: 16}

// UpdateLease's statements, prepared: every spot reclaim updates its
// lease (tens of thousands in a simulated year).
const (
	leaseStartQuery  = `SELECT start_us FROM leases WHERE id = ?`
	updateLeaseQuery = `UPDATE leases SET state = ?, reason = ?, end_us = ?, cancelled_us = ?, noticed_us = ? WHERE id = ?`
)

// UpdateLease writes l's State, Reason, End, Cancelled and Noticed over the stored
// lease of l.ID; it returns an error wrapping engine.ErrNotFound when there
// is none, and a plain error for an unknown state or an End not after the
// stored Start.
func (t *tx) UpdateLease(ctx context.Context, l lease.Lease) error {
	var start int64
	err := t.c.queryRowPrepared(ctx, leaseStartQuery, l.ID).Scan(&start)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: update lease %s: %w", l.ID, engine.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: update lease %s: %w", l.ID, err)
	}
	if !slices.Contains(lease.States, l.State) {
		return fmt.Errorf("store: update lease %s: state %q: want one of %v", l.ID, l.State, lease.States)
	}
	if !fromMicros(start).Before(l.End) {
		return fmt.Errorf("store: update lease %s: end %s is not after the start %s", l.ID,
			l.End.Format(time.RFC3339Nano), fromMicros(start).Format(time.RFC3339Nano))
	}
	if _, err := t.c.execPrepared(ctx, updateLeaseQuery,
		string(l.State), l.Reason, micros(l.End), nullMicros(l.Cancelled), nullMicros(l.Noticed), l.ID); err != nil {
		return fmt.Errorf("store: update lease %s: %w", l.ID, err)
	}
	return nil
}

// Holdback returns every pool's holdback schedule, by pool ID, steps
// ordered by From; an empty map when no pool has one.
func (r reader) Holdback(ctx context.Context) (map[string][]engine.HoldbackStep, error) {
	rows, err := r.c.query(ctx, `SELECT pool, from_us, gpus FROM holdback_steps ORDER BY pool, from_us`)
	if err != nil {
		return nil, fmt.Errorf("store: holdback: %w", err)
	}
	out := map[string][]engine.HoldbackStep{}
	for rows.Next() {
		var pool string
		var from int64
		var s engine.HoldbackStep
		if err := rows.Scan(&pool, &from, &s.GPUs); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: holdback: %w", err)
		}
		s.From = fromMicros(from)
		out[pool] = append(out[pool], s)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: holdback: %w", err)
	}
	return out, nil
}

// SetHoldback replaces the holdback schedule of pool with steps; no steps
// removes it. Steps whose From is not strictly increasing, or with
// negative GPUs, are a plain error and change nothing.
func (t *tx) SetHoldback(ctx context.Context, pool string, steps []engine.HoldbackStep) error {
	for i, s := range steps {
		if s.GPUs < 0 {
			return fmt.Errorf("store: set holdback of %s: step %d: GPUs %d is negative", pool, i, s.GPUs)
		}
		if i > 0 && !steps[i-1].From.Before(s.From) {
			return fmt.Errorf("store: set holdback of %s: step %d: from %s is not after the previous step's",
				pool, i, s.From.Format(time.RFC3339Nano))
		}
	}
	if _, err := t.c.exec(ctx, `DELETE FROM holdback_steps WHERE pool = ?`, pool); err != nil {
		return fmt.Errorf("store: set holdback of %s: %w", pool, err)
	}
	const cols = 3
	for batch := range slices.Chunk(steps, t.c.d.batchRows(cols)) {
		args := make([]any, 0, len(batch)*cols)
		for _, s := range batch {
			args = append(args, pool, micros(s.From), int64(s.GPUs))
		}
		if _, err := t.c.exec(ctx, `INSERT INTO holdback_steps (pool, from_us, gpus) VALUES `+values(len(batch), cols), args...); err != nil {
			return fmt.Errorf("store: set holdback of %s: %w", pool, err)
		}
	}
	return nil
}

const shortfallColumns = `id, lease_id, tenant_id, node, gpus, from_us, to_us`

// InsertShortfall stores s; it returns an error wrapping tenant.ErrExists
// when the ID is taken, and a plain error when From is not before To.
func (t *tx) InsertShortfall(ctx context.Context, s lease.Shortfall) error {
	if !s.From.Before(s.To) {
		return fmt.Errorf("store: insert shortfall %s: from %s is not before to %s",
			s.ID, s.From.Format(time.RFC3339Nano), s.To.Format(time.RFC3339Nano))
	}
	n, err := t.c.execCount(ctx, `INSERT INTO shortfalls (`+shortfallColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		s.ID, s.LeaseID, s.TenantID, s.Node, int64(s.GPUs), micros(s.From), micros(s.To))
	if err != nil {
		return fmt.Errorf("store: insert shortfall %s: %w", s.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("store: insert shortfall %s: %w", s.ID, tenant.ErrExists)
	}
	return nil
}

// ShortfallCounts returns how many shortfalls each of leaseIDs has; a
// lease without any is absent.
func (r reader) ShortfallCounts(ctx context.Context, leaseIDs []string) (map[string]int, error) {
	out := map[string]int{}
	if len(leaseIDs) > engine.MaxLeasePage {
		return nil, fmt.Errorf("store: shortfall counts: %d leases, more than %d", len(leaseIDs), engine.MaxLeasePage)
	}
	if len(leaseIDs) == 0 {
		return out, nil
	}
	args := make([]any, len(leaseIDs))
	for i, id := range leaseIDs {
		args[i] = id
	}
	rows, err := r.c.query(ctx, `SELECT lease_id, COUNT(*) FROM shortfalls WHERE lease_id IN (`+list(len(leaseIDs))+`) GROUP BY lease_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: shortfall counts: %w", err)
	}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: shortfall counts: %w", err)
		}
		out[id] = n
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: shortfall counts: %w", err)
	}
	return out, nil
}

// Shortfalls returns the shortfalls of one lease, or of every lease when
// leaseID is "", ordered by From then ID.
func (r reader) Shortfalls(ctx context.Context, leaseID string) ([]lease.Shortfall, error) {
	q := `SELECT ` + shortfallColumns + ` FROM shortfalls`
	var args []any
	if leaseID != "" {
		q += ` WHERE lease_id = ?`
		args = append(args, leaseID)
	}
	q += ` ORDER BY from_us, id`
	rows, err := r.c.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: shortfalls: %w", err)
	}
	out := []lease.Shortfall{}
	for rows.Next() {
		var s lease.Shortfall
		var from, to int64
		if err := rows.Scan(&s.ID, &s.LeaseID, &s.TenantID, &s.Node, &s.GPUs, &from, &to); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: shortfalls: %w", err)
		}
		s.From, s.To = fromMicros(from), fromMicros(to)
		out = append(out, s)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: shortfalls: %w", err)
	}
	return out, nil
}
