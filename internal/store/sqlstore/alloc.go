package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/tenant"
)

// minuteMicros is the R*Tree's unit of time, a minute, in microseconds.
const minuteMicros = 60_000_000

// rtreeMinutes returns the closed range of minutes since the epoch that
// [start, end) touches, clamped to 32 bits: the time side of the box that
// store/sqlite's triggers give an allocation in allocations_rtree.
// Clamping is monotone, so intervals that overlap keep ranges that
// intersect.
func rtreeMinutes(start, end time.Time) (lo, hi int64) {
	return clamp32(floorDiv(micros(start), minuteMicros)), clamp32(floorDiv(micros(end)-1, minuteMicros))
}

// floorDiv returns a / b rounded toward minus infinity, for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

func clamp32(v int64) int64 { return max(math.MinInt32, min(math.MaxInt32, v)) }

// HeldNodes returns the names among nodes that have an allocation ending
// after t, sorted and without repeats; names of no node are left out.
func (t *tx) HeldNodes(ctx context.Context, nodes []string, at time.Time) ([]string, error) {
	// The allocation holds the node when its run contains the ordinal.
	var q string
	var pre []any
	if t.c.d.RTree {
		_, minute := rtreeMinutes(at, at.Add(time.Microsecond))
		q = `SELECT n.name FROM nodes n WHERE EXISTS (SELECT 1 FROM allocations_rtree r JOIN allocations a ON a.seq = r.seq
				WHERE r.node_lo <= n.ord AND r.node_hi >= n.ord AND r.minute_hi >= ?
				AND a.node_from <= n.ord AND a.node_to > n.ord AND a.end_us > ?)`
		pre = []any{minute, micros(at)}
	} else {
		// [start, end) && [at, ∞) exactly when end > at.
		q = `SELECT n.name FROM nodes n WHERE EXISTS (SELECT 1 FROM allocations a
				WHERE int8range(a.node_from, a.node_to) @> n.ord
				AND int8range(a.start_us, a.end_us) && int8range(CAST(? AS BIGINT), NULL))`
		pre = []any{micros(at)}
	}
	held := []string{}
	for batch := range slices.Chunk(nodes, t.c.d.batchRows(1)-len(pre)) {
		args := make([]any, 0, len(pre)+len(batch))
		args = append(args, pre...)
		for _, n := range batch {
			args = append(args, n)
		}
		rows, err := t.c.query(ctx, q+` AND n.name IN (`+list(len(batch))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("store: held nodes: %w", err)
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: held nodes: %w", err)
			}
			held = append(held, n)
		}
		if err := closeRows(rows); err != nil {
			return nil, fmt.Errorf("store: held nodes: %w", err)
		}
	}
	slices.Sort(held)
	return slices.Compact(held), nil
}

// InsertAllocations stores every allocation of as, or none. Errors, in the
// order they are looked for: a plain error for an empty run or interval;
// one wrapping engine.ErrNotFound for a run that includes an ordinal of no
// node in service; tenant.ErrExists for an ID taken or given twice;
// engine.ErrConflict naming the first allocation that overlaps a stored
// one or an earlier one of as. After any of them nothing of as is stored
// and the transaction stays usable, in both databases.
//
// Writers take turns (SQLite has one writer; PostgreSQL's take the
// dialect's writer lock first), so each check sees what earlier writers
// committed. In SQLite the store alone guards against overlaps: the
// R*Tree finds them before the insert. In PostgreSQL the exclusion
// constraint does, during the insert, which runs under a savepoint: on a
// violation the savepoint is rolled back and the queries that name the
// culprit run (an overlap check before the insert would double the work of
// the common case). Every check takes one statement per batch of up to 256
// allocations, whatever the number stored.
func (t *tx) InsertAllocations(ctx context.Context, as []lease.Allocation) error {
	if len(as) == 0 {
		return nil
	}
	if err := t.insertAllocations(ctx, as); err != nil {
		return fmt.Errorf("store: insert allocations: %w", err)
	}
	return nil
}

func (t *tx) insertAllocations(ctx context.Context, as []lease.Allocation) error {
	seen := make(map[string]bool, len(as))
	dup := ""
	for _, a := range as {
		if a.NodeFrom >= a.NodeTo {
			return fmt.Errorf("allocation %s: node run [%d, %d) is empty", a.ID, a.NodeFrom, a.NodeTo)
		}
		if !a.Start.Before(a.End) {
			return fmt.Errorf("allocation %s: start %s is not before end %s",
				a.ID, a.Start.Format(time.RFC3339Nano), a.End.Format(time.RFC3339Nano))
		}
		if seen[a.ID] && dup == "" {
			dup = a.ID
		}
		seen[a.ID] = true
	}
	if err := t.checkRunsInService(ctx, as); err != nil {
		return err
	}
	if dup != "" {
		return fmt.Errorf("allocation %s: ID given twice: %w", dup, tenant.ErrExists)
	}
	within, other := overlapWithin(as)
	if within >= 0 {
		return t.diagnose(ctx, as, within, other)
	}
	if t.c.d.RTree {
		first, other, err := t.storedOverlap(ctx, as)
		if err != nil {
			return err
		}
		if first >= 0 {
			return t.diagnose(ctx, as, first, other)
		}
	}
	return t.insertAll(ctx, len(as), insertCols, insertQuery, func(i int, args []any) ([]any, error) {
		a := as[i]
		return append(args, a.ID, a.LeaseID, a.TenantID, a.NodeFrom, a.NodeTo, micros(a.Start), micros(a.End)), nil
	}, func(err error) error {
		if !errors.Is(err, tenant.ErrExists) && !errors.Is(err, engine.ErrConflict) {
			return err
		}
		if derr := t.diagnose(ctx, as, -1, ""); derr != nil {
			return derr
		}
		return err // refused, though the checks find nothing: report the database's error
	})
}

// insertAll inserts n rows of cols columns, appended to args by row, with
// the prepared multi-row statements query makes, under a savepoint: when
// one fails, it rolls back to the savepoint, so that no row is stored and
// the transaction stays usable (even in PostgreSQL), and returns what
// failed makes of the error.
func (t *tx) insertAll(ctx context.Context, n, cols int, query func(rows int) string,
	row func(i int, args []any) ([]any, error), failed func(error) error) error {
	const savepoint = `insert_all`
	if _, err := t.c.exec(ctx, `SAVEPOINT `+savepoint); err != nil {
		return err
	}
	rows := make([]struct{}, n) // pow2Chunks cuts indexes
	for start, batch := range pow2Chunks(rows, t.c.d.batchRows(cols)) {
		args := make([]any, 0, len(batch)*cols)
		for i := range batch {
			var err error
			if args, err = row(start+i, args); err != nil {
				return errors.Join(err, t.rollbackTo(ctx, savepoint))
			}
		}
		if _, err := t.c.execPrepared(ctx, query(len(batch)), args...); err != nil {
			if rbErr := t.rollbackTo(ctx, savepoint); rbErr != nil {
				return errors.Join(err, rbErr)
			}
			return failed(err)
		}
	}
	_, err := t.c.exec(ctx, `RELEASE SAVEPOINT `+savepoint)
	return err
}

// rollbackTo rolls back to savepoint and releases it.
func (t *tx) rollbackTo(ctx context.Context, savepoint string) error {
	if _, err := t.c.exec(ctx, `ROLLBACK TO SAVEPOINT `+savepoint); err != nil {
		return err
	}
	_, err := t.c.exec(ctx, `RELEASE SAVEPOINT `+savepoint)
	return err
}

// taken returns which of ids are IDs of rows of table.
func (t *tx) taken(ctx context.Context, table string, ids []string) (map[string]bool, error) {
	taken := map[string]bool{}
	for _, batch := range pow2Chunks(ids, t.c.d.batchRows(idsCols)) {
		args := make([]any, len(batch))
		for i, id := range batch {
			args[i] = id
		}
		rows, err := t.c.query(ctx, `SELECT id FROM `+table+` WHERE id IN (`+list(len(batch))+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			taken[id] = true
		}
		if err := closeRows(rows); err != nil {
			return nil, err
		}
	}
	return taken, nil
}

// diagnose returns the error that as deserves, for a batch known to be
// refused: tenant.ErrExists for the first allocation whose ID is taken,
// else engine.ErrConflict for the first allocation that overlaps a stored
// one or an earlier one of as (first, overlapping other, when first >= 0).
// It returns nil when it finds neither.
func (t *tx) diagnose(ctx context.Context, as []lease.Allocation, first int, other string) error {
	if err := t.checkIDsFree(ctx, as); err != nil {
		return err
	}
	if first < 0 {
		first, other = overlapWithin(as)
	}
	n := len(as)
	if first >= 0 {
		n = first // only an earlier allocation can be first
	}
	stored, storedOther, err := t.storedOverlap(ctx, as[:n])
	if err != nil {
		return err
	}
	if stored >= 0 {
		first, other = stored, storedOther
	}
	if first < 0 {
		return nil
	}
	return fmt.Errorf("allocation %s overlaps allocation %s: %w", as[first].ID, other, engine.ErrConflict)
}

// The batch statements of InsertAllocations, for n rows. Each comes in the
// shapes pow2Chunks makes, prepared once (batchQueries).
const (
	insertCols  = 7
	idsCols     = 1
	runsCols    = 3
	overlapCols = 5
	rtreeCols   = 7 // overlapCols and the R*Tree's minutes
)

func insertQuery(n int) string {
	return `INSERT INTO allocations (id, lease_id, tenant_id, node_from, node_to, start_us, end_us) VALUES ` + values(n, insertCols)
}

// runsQuery returns the least index of a row of v(i, f, t) whose run
// includes an ordinal of no node in service, or NULL.
func runsQuery(n int) string {
	const row = `(CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT))`
	return `WITH v (i, f, t) AS (VALUES ` + tuples(row, n) + `)
		SELECT MIN(v.i) FROM v WHERE v.f < 1 OR v.t > (SELECT COALESCE(MAX(ord), 0) + 1 FROM nodes)
			OR EXISTS (SELECT 1 FROM nodes n WHERE n.retired_us IS NOT NULL AND n.ord >= v.f AND n.ord < v.t)`
}

// overlapQuery returns the least index of a row of v(i, f, t, s, e) that
// overlaps a stored allocation, with that allocation's ID; no row when
// none does. With the R*Tree, v also has (ml, mh), the run's minutes: the
// R*Tree finds the allocations whose boxes intersect the run's box,
// ordinals [f, t - 1] by minutes [ml, mh], and the join checks them
// exactly. Otherwise PostgreSQL's GiST index finds them.
func overlapQuery(d *Dialect, n int) string {
	if d.RTree {
		return `WITH v (i, f, t, s, e, ml, mh) AS (VALUES ` + tuples(`(?, ?, ?, ?, ?, ?, ?)`, n) + `)
			SELECT v.i, a.id FROM v
			JOIN allocations_rtree r ON r.node_lo < v.t AND r.node_hi >= v.f AND r.minute_lo <= v.mh AND r.minute_hi >= v.ml
			JOIN allocations a ON a.seq = r.seq
			WHERE a.node_from < v.t AND a.node_to > v.f AND a.start_us < v.e AND a.end_us > v.s
			ORDER BY v.i, a.id LIMIT 1`
	}
	const row = `(CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT))`
	return `WITH v (i, f, t, s, e) AS (VALUES ` + tuples(row, n) + `)
		SELECT v.i, a.id FROM v JOIN allocations a
			ON int8range(a.start_us, a.end_us) && int8range(v.s, v.e)
			AND int8range(a.node_from, a.node_to) && int8range(v.f, v.t)
		ORDER BY v.i, a.id LIMIT 1`
}

// batchQueries returns every shape of every batch statement of d: those
// of InsertAllocations, InsertLeases and AppendAudits, the writes of
// admission.
func batchQueries(d *Dialect) []string {
	type shaped struct {
		cols  int
		query func(int) string
	}
	all := []shaped{{insertCols, insertQuery}, {runsCols, runsQuery}, {leaseCols, leaseInsertQuery}, {auditCols, auditInsertQuery}}
	if d.RTree {
		// PostgreSQL looks for overlaps only after its exclusion
		// constraint refused an insert.
		all = append(all, shaped{rtreeCols, func(n int) string { return overlapQuery(d, n) }})
	}
	var qs []string
	for _, q := range all {
		for n := 1; n <= pow2Floor(d.batchRows(q.cols)); n *= 2 {
			qs = append(qs, q.query(n))
		}
	}
	return qs
}

// checkIDsFree returns an error wrapping tenant.ErrExists naming the first
// allocation of as whose ID is stored.
func (t *tx) checkIDsFree(ctx context.Context, as []lease.Allocation) error {
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = a.ID
	}
	taken, err := t.taken(ctx, `allocations`, ids)
	if err != nil {
		return fmt.Errorf("check IDs: %w", err)
	}
	for _, a := range as {
		if taken[a.ID] {
			return fmt.Errorf("allocation %s: ID taken: %w", a.ID, tenant.ErrExists)
		}
	}
	return nil
}

// checkRunsInService returns an error wrapping engine.ErrNotFound naming
// the first allocation of as whose run includes an ordinal of no node in
// service. Ordinals run from 1 to the largest without gaps and nodes are
// never deleted, so a run names nodes in service when it lies within
// [1, MAX(ord)] and contains no retired node's ordinal: one probe of an
// index of the (few) retired nodes per run, whatever the run's length.
func (t *tx) checkRunsInService(ctx context.Context, as []lease.Allocation) error {
	for start, batch := range pow2Chunks(as, t.c.d.batchRows(runsCols)) {
		args := make([]any, 0, len(batch)*runsCols)
		for i, a := range batch {
			args = append(args, start+i, a.NodeFrom, a.NodeTo)
		}
		var first sql.NullInt64
		if err := t.c.queryRowPrepared(ctx, runsQuery(len(batch)), args...).Scan(&first); err != nil {
			return fmt.Errorf("check nodes: %w", err)
		}
		if first.Valid {
			a := as[first.Int64]
			return fmt.Errorf("allocation %s: nodes [%d, %d): not all in service: %w", a.ID, a.NodeFrom, a.NodeTo, engine.ErrNotFound)
		}
	}
	return nil
}

// storedOverlap returns the index of the first allocation of as that
// overlaps a stored one, and the stored one's ID; -1 when none does.
func (t *tx) storedOverlap(ctx context.Context, as []lease.Allocation) (int, string, error) {
	cols := overlapCols
	if t.c.d.RTree {
		cols = rtreeCols
	}
	for start, batch := range pow2Chunks(as, t.c.d.batchRows(cols)) {
		args := make([]any, 0, len(batch)*cols)
		for i, a := range batch {
			args = append(args, start+i, a.NodeFrom, a.NodeTo, micros(a.Start), micros(a.End))
			if t.c.d.RTree {
				lo, hi := rtreeMinutes(a.Start, a.End)
				args = append(args, lo, hi)
			}
		}
		var i int
		var id string
		err := t.c.queryRowPrepared(ctx, overlapQuery(t.c.d, len(batch)), args...).Scan(&i, &id)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return -1, "", fmt.Errorf("check overlap: %w", err)
		}
		return i, id, nil
	}
	return -1, "", nil
}

// overlapWithin returns the index of the first allocation of as that
// overlaps an earlier one of as, and the ID of that earlier one; -1 when
// none does. It sorts by first ordinal and compares each allocation with
// those whose runs start before its run ends.
func overlapWithin(as []lease.Allocation) (int, string) {
	order := make([]int, len(as))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int { return cmp.Compare(as[i].NodeFrom, as[j].NodeFrom) })
	first, other := -1, ""
	for k, i := range order {
		for _, j := range order[k+1:] {
			if as[j].NodeFrom >= as[i].NodeTo {
				break
			}
			if !as[i].Overlaps(as[j]) {
				continue
			}
			late, early := max(i, j), min(i, j)
			if first < 0 || late < first {
				first, other = late, as[early].ID
			}
		}
	}
	return first, other
}

// pow2Chunks cuts s into consecutive batches whose lengths are powers of
// two of at most n, largest first, so that statements over a batch come in
// few shapes; it returns each batch with the index of its first element.
func pow2Chunks[T any](s []T, n int) func(yield func(int, []T) bool) {
	most := pow2Floor(n)
	return func(yield func(int, []T) bool) {
		for start := 0; start < len(s); {
			size := min(most, pow2Floor(len(s)-start))
			if !yield(start, s[start:start+size]) {
				return
			}
			start += size
		}
	}
}

// pow2Floor returns the largest power of two at most n, for n >= 1.
func pow2Floor(n int) int { return 1 << (bits.Len(uint(n)) - 1) }

// tuples returns n copies of row joined by commas.
func tuples(row string, n int) string {
	return strings.TrimSuffix(strings.Repeat(row+",", n), ",")
}

// EndAllocations ends each allocation of ids at at: it is deleted when it
// starts at or after at, else its End becomes at when End is later. An ID
// of no allocation is an error wrapping engine.ErrNotFound, found before
// anything changes.
func (t *tx) EndAllocations(ctx context.Context, ids []string, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	found := map[string]bool{}
	for batch := range slices.Chunk(ids, t.c.d.batchRows(1)) {
		args := make([]any, len(batch))
		for i, id := range batch {
			args[i] = id
		}
		rows, err := t.c.query(ctx, `SELECT id FROM allocations WHERE id IN (`+list(len(batch))+`)`, args...)
		if err != nil {
			return fmt.Errorf("store: end allocations: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("store: end allocations: %w", err)
			}
			found[id] = true
		}
		if err := closeRows(rows); err != nil {
			return fmt.Errorf("store: end allocations: %w", err)
		}
	}
	for _, id := range ids {
		if !found[id] {
			return fmt.Errorf("store: end allocations: allocation %s: %w", id, engine.ErrNotFound)
		}
	}
	us := micros(at)
	for batch := range slices.Chunk(ids, t.c.d.batchRows(1)-2) {
		args := make([]any, 0, len(batch)+2)
		args = append(args, us, us)
		for _, id := range batch {
			args = append(args, id)
		}
		in := list(len(batch))
		if _, err := t.c.exec(ctx, `DELETE FROM allocations WHERE start_us >= ? AND id IN (`+in+`)`, args[1:]...); err != nil {
			return fmt.Errorf("store: end allocations: delete: %w", err)
		}
		if _, err := t.c.exec(ctx, `UPDATE allocations SET end_us = ? WHERE end_us > ? AND id IN (`+in+`)`, args...); err != nil {
			return fmt.Errorf("store: end allocations: update: %w", err)
		}
	}
	return nil
}

// Allocations returns the allocations f selects, ordered by lease ID,
// start, first ordinal and ID.
func (r reader) Allocations(ctx context.Context, f engine.AllocationFilter) ([]lease.Allocation, error) {
	q := `SELECT id, lease_id, tenant_id, node_from, node_to, start_us, end_us FROM allocations WHERE 1 = 1`
	var args []any
	if f.LeaseID != "" {
		q += ` AND lease_id = ?`
		args = append(args, f.LeaseID)
	}
	if !f.EndAfter.IsZero() {
		q += ` AND end_us > ?`
		args = append(args, micros(f.EndAfter))
	}
	q += ` ORDER BY lease_id, start_us, node_from, id`
	rows, err := r.c.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: allocations: %w", err)
	}
	out := []lease.Allocation{}
	for rows.Next() {
		var a lease.Allocation
		var start, end int64
		if err := rows.Scan(&a.ID, &a.LeaseID, &a.TenantID, &a.NodeFrom, &a.NodeTo, &start, &end); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: allocations: %w", err)
		}
		a.Start, a.End = fromMicros(start), fromMicros(end)
		out = append(out, a)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: allocations: %w", err)
	}
	return out, nil
}
