package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/tenant"
)

// HeldNodes returns the names among nodes that have an allocation ending
// after t, sorted and without repeats; names of no node are left out.
func (t *tx) HeldNodes(ctx context.Context, nodes []string, at time.Time) ([]string, error) {
	var held []string
	var err error
	if t.ix != nil {
		held, err = t.heldIndexed(ctx, nodes, at)
	} else {
		held, err = t.heldSQL(ctx, nodes, at)
	}
	if err != nil {
		return nil, fmt.Errorf("store: held nodes: %w", err)
	}
	slices.Sort(held)
	return slices.Compact(held), nil
}

// heldIndexed is HeldNodes through the allocation index: the ordinals of
// nodes come from the database, the allocations from the index.
func (t *tx) heldIndexed(ctx context.Context, nodes []string, at time.Time) ([]string, error) {
	ix, err := t.ix.use(ctx, t.c)
	if err != nil {
		return nil, err
	}
	byOrd := map[int64]string{}
	for batch := range slices.Chunk(nodes, t.c.d.batchRows(1)) {
		args := make([]any, len(batch))
		for i, n := range batch {
			args[i] = n
		}
		rows, err := t.c.query(ctx, `SELECT name, ord FROM nodes WHERE name IN (`+list(len(batch))+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var n string
			var ord int64
			if err := rows.Scan(&n, &ord); err != nil {
				rows.Close()
				return nil, err
			}
			byOrd[ord] = n
		}
		if err := closeRows(rows); err != nil {
			return nil, err
		}
	}
	ords := slices.Sorted(maps.Keys(byOrd))
	held := []string{}
	for i, h := range ix.held(ords, micros(at)) {
		if h {
			held = append(held, byOrd[ords[i]])
		}
	}
	return held, nil
}

// heldSQL is HeldNodes in one query per batch of nodes: the allocation
// holds the node when its run contains the ordinal, and [start, end) &&
// [at, ∞) exactly when end > at.
func (t *tx) heldSQL(ctx context.Context, nodes []string, at time.Time) ([]string, error) {
	const q = `SELECT n.name FROM nodes n WHERE EXISTS (SELECT 1 FROM allocations a
			WHERE int8range(a.node_from, a.node_to) @> n.ord
			AND int8range(a.start_us, a.end_us) && int8range(CAST(? AS BIGINT), NULL))`
	held := []string{}
	for batch := range slices.Chunk(nodes, t.c.d.batchRows(1)-1) {
		args := make([]any, 0, 1+len(batch))
		args = append(args, micros(at))
		for _, n := range batch {
			args = append(args, n)
		}
		rows, err := t.c.query(ctx, q+` AND n.name IN (`+list(len(batch))+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return nil, err
			}
			held = append(held, n)
		}
		if err := closeRows(rows); err != nil {
			return nil, err
		}
	}
	return held, nil
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
// committed. In SQLite the store alone guards against overlaps and taken
// IDs (the table has no constraint on either): it checks each allocation,
// in order, against its allocation index (allocIndex), which holds what
// the transaction sees, before the insert. In PostgreSQL the exclusion
// constraint does, during the insert, which runs under a savepoint: on a
// violation the savepoint is rolled back and the queries that name the
// culprit run (an overlap check before the insert would double the work of
// the common case), one statement per batch of up to 256 allocations.
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
	if t.ix != nil {
		return t.insertIndexed(ctx, as)
	}
	if within, other := overlapWithin(as); within >= 0 {
		return t.diagnose(ctx, as, within, other)
	}
	return t.insertAll(ctx, allocationsInsert, len(as), insertRow(as), func(err error) error {
		if !errors.Is(err, tenant.ErrExists) && !errors.Is(err, engine.ErrConflict) {
			return err
		}
		if derr := t.diagnose(ctx, as, -1, ""); derr != nil {
			return derr
		}
		return err // refused, though the checks find nothing: report the database's error
	})
}

// insertRow appends the columns of as[i] to args, for insertAll.
func insertRow(as []lease.Allocation) func(i int, args []any) ([]any, error) {
	return func(i int, args []any) ([]any, error) {
		a := as[i]
		return append(args, a.ID, a.LeaseID, a.TenantID, a.NodeFrom, a.NodeTo, micros(a.Start), micros(a.End)), nil
	}
}

// insertIndexed checks as against the allocation index, adding each
// allocation to it once checked, so that later ones are checked against
// earlier ones too, then inserts them. On any error it leaves the index
// as it found it.
func (t *tx) insertIndexed(ctx context.Context, as []lease.Allocation) error {
	ix, err := t.ix.use(ctx, t.c)
	if err != nil {
		return err
	}
	for _, a := range as {
		if _, ok := ix.byID[a.ID]; ok {
			return fmt.Errorf("allocation %s: ID taken: %w", a.ID, tenant.ErrExists)
		}
	}
	mark := ix.mark()
	for _, a := range as {
		r := allocRec{id: a.ID, leaseID: a.LeaseID, from: a.NodeFrom, to: a.NodeTo, startUS: micros(a.Start), endUS: micros(a.End)}
		if other := ix.overlap(r.from, r.to, r.startUS, r.endUS); other >= 0 {
			err := fmt.Errorf("allocation %s overlaps allocation %s: %w", a.ID, ix.recs[other].id, engine.ErrConflict)
			ix.rollbackTo(mark)
			return err
		}
		ix.insert(r)
	}
	err = t.insertAll(ctx, allocationsInsert, len(as), insertRow(as), func(err error) error { return err })
	if err != nil {
		// The index saw no reason to refuse: the table holds what the
		// index does not know.
		ix.rollbackTo(mark)
		ix.invalidate()
		return err
	}
	return nil
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

// Columns of the batch statements of the checks PostgreSQL runs after a
// refused insert, cut by pow2Chunks.
const (
	idsCols     = 1
	overlapCols = 5
)

// allocationsInsert inserts allocations.
var allocationsInsert = bulkInsert{table: "allocations",
	columns: "id, lease_id, tenant_id, node_from, node_to, start_us, end_us", cols: 7}

// overlapQuery returns the least index of a row of v(i, f, t, s, e) that
// overlaps a stored allocation, with that allocation's ID; no row when
// none does. PostgreSQL's GiST index finds them.
func overlapQuery(n int) string {
	const row = `(CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT))`
	return `WITH v (i, f, t, s, e) AS (VALUES ` + tuples(row, n) + `)
		SELECT v.i, a.id FROM v JOIN allocations a
			ON int8range(a.start_us, a.end_us) && int8range(v.s, v.e)
			AND int8range(a.node_from, a.node_to) && int8range(v.f, v.t)
		ORDER BY v.i, a.id LIMIT 1`
}

// batchQueries returns every shape of every batch statement of d: the
// inserts of InsertAllocations, InsertLeases and AppendAudits, the writes
// of admission. PostgreSQL looks for overlaps only after its exclusion
// constraint refused an insert: overlapQuery is not among them.
func batchQueries(d *Dialect) []string {
	var qs []string
	for _, b := range []bulkInsert{allocationsInsert, leasesInsert, auditInsert} {
		for n := 1; n <= pow2Floor(d.batchRows(b.cols)); n *= 2 {
			qs = append(qs, b.query(d, n))
		}
	}
	if d.AllocIndex {
		for n := 1; n <= endChunk; n *= 2 {
			del, upd := endQueries(n)
			qs = append(qs, del, upd)
		}
	}
	return qs
}

// endChunk is the most allocations one pair of EndAllocations statements
// ends (with the allocation index); their shapes, powers of two up to it,
// are prepared once (a reclaim or a tick ends a few at a time, often).
const endChunk = 64

// endQueries returns the statements that end n allocations at a time:
// the delete of those starting at or after it and the update of the rest.
// Each allocation is named by its key in the allocations_lease index and
// its ID, so that SQLite looks each one up rather than reading all of its
// lease's (a contract has thousands).
func endQueries(n int) (del, upd string) {
	where := ` (lease_id, start_us, node_from, id) IN (VALUES ` + tuples("(?, ?, ?, ?)", n) + `)`
	return `DELETE FROM allocations WHERE start_us >= ? AND` + where, `UPDATE allocations SET end_us = ? WHERE end_us > ? AND` + where
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
// [1, MAX(ord)] and contains no retired node's ordinal: a binary search of
// the (few) retired nodes' ordinals per run, whatever the run's length.
// The largest ordinal and the retired ones are read once per transaction
// (again after ApplyFleet).
func (t *tx) checkRunsInService(ctx context.Context, as []lease.Allocation) error {
	if t.runs == nil {
		r, err := t.loadRuns(ctx)
		if err != nil {
			return fmt.Errorf("check nodes: %w", err)
		}
		t.runs = r
	}
	for _, a := range as {
		k, _ := slices.BinarySearch(t.runs.retired, a.NodeFrom)
		if a.NodeFrom < 1 || a.NodeTo > t.runs.last+1 || k < len(t.runs.retired) && t.runs.retired[k] < a.NodeTo {
			return fmt.Errorf("allocation %s: nodes [%d, %d): not all in service: %w", a.ID, a.NodeFrom, a.NodeTo, engine.ErrNotFound)
		}
	}
	return nil
}

// ordinals is what checkRunsInService knows of nodes: the largest ordinal
// and those of retired nodes, sorted.
type ordinals struct {
	last    int64
	retired []int64
}

func (t *tx) loadRuns(ctx context.Context) (*ordinals, error) {
	r := &ordinals{}
	if err := t.c.queryRow(ctx, `SELECT COALESCE(MAX(ord), 0) FROM nodes`).Scan(&r.last); err != nil {
		return nil, err
	}
	rows, err := t.c.query(ctx, `SELECT ord FROM nodes WHERE retired_us IS NOT NULL ORDER BY ord`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var o int64
		if err := rows.Scan(&o); err != nil {
			rows.Close()
			return nil, err
		}
		r.retired = append(r.retired, o)
	}
	return r, closeRows(rows)
}

// storedOverlap returns the index of the first allocation of as that
// overlaps a stored one, and the stored one's ID; -1 when none does.
func (t *tx) storedOverlap(ctx context.Context, as []lease.Allocation) (int, string, error) {
	for start, batch := range pow2Chunks(as, t.c.d.batchRows(overlapCols)) {
		args := make([]any, 0, len(batch)*overlapCols)
		for i, a := range batch {
			args = append(args, start+i, a.NodeFrom, a.NodeTo, micros(a.Start), micros(a.End))
		}
		var i int
		var id string
		err := t.c.queryRowPrepared(ctx, overlapQuery(len(batch)), args...).Scan(&i, &id)
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
	if err := t.endAllocations(ctx, ids, at); err != nil {
		return fmt.Errorf("store: end allocations: %w", err)
	}
	return nil
}

func (t *tx) endAllocations(ctx context.Context, ids []string, at time.Time) error {
	if t.ix != nil {
		return t.endIndexed(ctx, ids, at)
	}
	found, err := t.taken(ctx, `allocations`, ids)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if !found[id] {
			return fmt.Errorf("allocation %s: %w", id, engine.ErrNotFound)
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
			return fmt.Errorf("delete: %w", err)
		}
		if _, err := t.c.exec(ctx, `UPDATE allocations SET end_us = ? WHERE end_us > ? AND id IN (`+in+`)`, args...); err != nil {
			return fmt.Errorf("update: %w", err)
		}
	}
	return nil
}

// endIndexed is EndAllocations with the allocation index, which knows
// the IDs and the lease of each: the table's key starts with the lease,
// and IDs are unique.
func (t *tx) endIndexed(ctx context.Context, ids []string, at time.Time) error {
	ix, err := t.ix.use(ctx, t.c)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, ok := ix.byID[id]; !ok {
			return fmt.Errorf("allocation %s: %w", id, engine.ErrNotFound)
		}
	}
	us := micros(at)
	for _, batch := range pow2Chunks(ids, endChunk) {
		keys := make([]any, 0, 4*len(batch))
		for _, id := range batch {
			r := &ix.recs[ix.byID[id]]
			keys = append(keys, r.leaseID, r.startUS, r.from, id)
		}
		del, upd := endQueries(len(batch))
		_, err := t.c.execPrepared(ctx, del, append([]any{us}, keys...)...)
		if err != nil {
			err = fmt.Errorf("delete: %w", err)
		} else if _, err = t.c.execPrepared(ctx, upd, append([]any{us, us}, keys...)...); err != nil {
			err = fmt.Errorf("update: %w", err)
		}
		if err != nil {
			ix.invalidate() // the table may hold some of the changes
			return err
		}
	}
	for _, id := range ids {
		ix.end(id, us)
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
	if f.NodeTo > f.NodeFrom {
		q += ` AND node_from < ? AND node_to > ?`
		args = append(args, f.NodeTo, f.NodeFrom)
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
