package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
)

// allocIndex is an in-process index of the allocations table, kept by a
// store whose database has no exclusion constraint (SQLite): the writer
// checks new allocations against it, in the same transaction that inserts
// them. It mirrors what the store's one write connection sees:
//
//   - It is validated at the start of every write transaction, once the
//     transaction holds the database's write lock: by the connection (a
//     new one reloads), PRAGMA data_version (which changes when another
//     connection, in this process or another, commits) and
//     total_changes() (which changes when this connection writes outside
//     Update, through DB()). When any differs, it is reloaded from the
//     table, in that transaction, the first time the transaction needs it.
//   - A transaction changes it in place, logging how to undo each change:
//     a failed InsertAllocations undoes its own changes; a rollback undoes
//     the transaction's; a commit keeps them. When the store cannot tell
//     what the table holds (a write that failed half-way, a commit that
//     failed), the contents are dropped (valid = false), to be reloaded.
//
// Its contents: a hash of grid cells. An allocation is a rectangle, its
// run of ordinals by its interval; it is listed in every cell it touches
// of the finest grid (gridLevels) where that is at most maxCells cells,
// or, when none is that fine, in loose. A check compares the rectangle
// exactly with the allocations listed in the cells it touches, at every
// level, and with loose: a few map lookups and comparisons per
// allocation, whatever the number stored and the run's length. Nothing
// assumes that stored allocations are disjoint (SQL that bypassed the
// store may have stored some that overlap).
//
// Only the transaction that holds mu uses it.
type allocIndex struct {
	mu sync.Mutex

	// What the contents mirror: valid when they mirror the table as the
	// current transaction sees it (or, between transactions, as conn left
	// it, when data_version and total_changes still read dataVersion and
	// totalChanges).
	valid        bool
	conn         any // the driver connection; held, so that its address is not reused
	dataVersion  int64
	totalChanges int64

	recs  []allocRec
	free  []int32 // indexes of unused recs
	byID  map[string]int32
	cells map[uint64][]cellEntry // by cellKey
	// spans lists, per level and node block (cellKey with t = 0), the
	// time spans t that have a cell, sorted: a check of a long window
	// reads the cells that exist in it rather than every one it covers.
	spans  map[uint64][]int64
	levels [len(gridLevels)]int
	loose  []int32

	loads int // how many times the contents were loaded, for tests

	undo []undoStep
	// During the current transaction: used, whether it used the index;
	// reloaded, whether it reloaded it after using it (then the undo log
	// cannot restore what came before).
	used, reloaded bool
}

// allocRec is one allocation of the index.
type allocRec struct {
	id, leaseID    string
	from, to       int64 // ordinals [from, to)
	startUS, endUS int64
	// cellEndUS is the end the allocation's cells were chosen with: an
	// allocation ended early stays in them.
	cellEndUS int64
	level     int8 // index into gridLevels; -1: loose
	occupied  bool
}

// cellEntry is an allocation listed in a cell: its rectangle, up to its
// cellEndUS, for a check that reads the cell's list in order, and its rec.
type cellEntry struct {
	from, to, startUS, endUS int64
	rec                      int32
}

// A gridLevel cuts ordinals into blocks of 1<<nodeShift and time into
// spans of 1<<timeShift microseconds.
type gridLevel struct{ nodeShift, timeShift uint }

// gridLevels go from blocks of 64 nodes by 19 hours to blocks of about a
// million nodes by 570 years, each 8 to 64 times the area of the one
// before.
var gridLevels = [...]gridLevel{{6, 36}, {9, 40}, {12, 44}, {15, 48}, {20, 54}}

const (
	// maxCells is the most cells an allocation is listed in.
	maxCells = 16
	// maxQueryCells is the most node blocks of one level a check looks
	// up; past it, the check compares every allocation of that level
	// instead.
	maxQueryCells = 1024
)

// span returns the cells of level l that the rectangle touches: blocks
// [n0, n1] by spans [t0, t1]. Shifts round toward minus infinity.
func (l gridLevel) span(from, to, startUS, endUS int64) (n0, n1, t0, t1 int64) {
	return from >> l.nodeShift, (to - 1) >> l.nodeShift, startUS >> l.timeShift, (endUS - 1) >> l.timeShift
}

// cellKey returns the key of a cell of level l. Keys of distinct cells may
// collide (a run of ordinals past 2^35, say): a cell lists candidates
// only, which are compared exactly.
func cellKey(l int, n, t int64) uint64 {
	return uint64(l)<<61 | (uint64(n)&(1<<29-1))<<32 | uint64(uint32(t))
}

// undoStep undoes one change to the allocation of ID id: its insert, its
// removal (rec holds it) or the change of its end from endUS.
type undoStep struct {
	kind  undoKind
	id    string
	endUS int64
	rec   allocRec
}

type undoKind uint8

const (
	undoInsert undoKind = iota
	undoRemove
	undoEnd
)

// beginTx validates the index for the write transaction that tx just
// began on the connection conn. Reloading waits for the first use.
func (ix *allocIndex) beginTx(ctx context.Context, tx *sql.Tx, conn any) error {
	ix.undo, ix.used, ix.reloaded = ix.undo[:0], false, false
	var dv, tc int64
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT data_version FROM pragma_data_version()), total_changes()`).Scan(&dv, &tc); err != nil {
		ix.valid = false
		return err
	}
	if !ix.valid || ix.conn != conn || ix.dataVersion != dv || ix.totalChanges != tc {
		ix.valid, ix.conn, ix.dataVersion = false, conn, dv
	}
	return nil
}

// txOutcome is how a write transaction ended.
type txOutcome uint8

const (
	txRolledBack txOutcome = iota
	txCommitted
	txUnknown // the commit failed
)

// endTx ends the transaction's use of the index: it keeps the changes of
// a committed transaction and undoes those of one rolled back; then it
// records the connection's total_changes, read on c (the transaction is
// over).
func (ix *allocIndex) endTx(ctx context.Context, c *sql.Conn, outcome txOutcome) {
	switch {
	case outcome == txUnknown:
		ix.valid = false
	case outcome == txRolledBack && ix.reloaded:
		ix.valid = false // undo cannot restore what came before the reload
	case outcome == txRolledBack && ix.valid:
		ix.rollbackTo(0)
	}
	clear(ix.undo)
	ix.undo = ix.undo[:0]
	if !ix.valid {
		return
	}
	if err := c.QueryRowContext(context.WithoutCancel(ctx), `SELECT total_changes()`).Scan(&ix.totalChanges); err != nil {
		ix.valid = false
	}
}

// invalidate drops the contents, for a write whose effect on the table is
// not known: the transaction's next use reloads them.
func (ix *allocIndex) invalidate() { ix.valid = false }

// use returns the index for the current transaction, reloading it through
// c first when it is not valid. The transaction changes allocations only
// through the index, so a reload at its first use reads what the
// transaction began with.
func (ix *allocIndex) use(ctx context.Context, c conn) (*allocIndex, error) {
	if !ix.valid {
		if err := ix.load(ctx, c); err != nil {
			return nil, fmt.Errorf("load allocations: %w", err)
		}
		ix.valid = true
		ix.reloaded = ix.reloaded || ix.used
		clear(ix.undo)
		ix.undo = ix.undo[:0]
	}
	ix.used = true
	return ix, nil
}

// load replaces the contents with the allocations table as c sees it.
func (ix *allocIndex) load(ctx context.Context, c conn) error {
	ix.reset()
	ix.loads++
	rows, err := c.query(ctx, `SELECT id, lease_id, node_from, node_to, start_us, end_us FROM allocations`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var r allocRec
		if err := rows.Scan(&r.id, &r.leaseID, &r.from, &r.to, &r.startUS, &r.endUS); err != nil {
			rows.Close()
			return err
		}
		r.cellEndUS = r.endUS
		ix.add(r)
	}
	return closeRows(rows)
}

// reset empties the index.
func (ix *allocIndex) reset() {
	ix.recs, ix.free, ix.loose = ix.recs[:0], ix.free[:0], ix.loose[:0]
	ix.byID = map[string]int32{}
	ix.cells = map[uint64][]cellEntry{}
	ix.spans = map[uint64][]int64{}
	ix.levels = [len(gridLevels)]int{}
}

// overlap returns a rec whose allocation overlaps the run [from, to) over
// [startUS, endUS), the one of least ID when several do; -1 when none
// does.
func (ix *allocIndex) overlap(from, to, startUS, endUS int64) int32 {
	found := int32(-1)
	// better records rec i, whose rectangle up to its cellEndUS overlaps:
	// its own may end earlier.
	better := func(i int32) {
		if r := &ix.recs[i]; startUS < r.endUS && (found < 0 || r.id < ix.recs[found].id) {
			found = i
		}
	}
	for l, lv := range gridLevels {
		if ix.levels[l] == 0 {
			continue
		}
		n0, n1, t0, t1 := lv.span(from, to, startUS, endUS)
		if n1-n0+1 > maxQueryCells {
			for i := range ix.recs {
				if r := &ix.recs[i]; r.occupied && int(r.level) == l &&
					r.from < to && from < r.to && r.startUS < endUS && startUS < r.cellEndUS {
					better(int32(i))
				}
			}
			continue
		}
		for n := n0; n <= n1; n++ {
			visit := func(t int64) {
				for _, e := range ix.cells[cellKey(l, n, t)] {
					if e.from < to && from < e.to && e.startUS < endUS && startUS < e.endUS {
						better(e.rec)
					}
				}
			}
			// A span or two are looked up; past that, the spans that
			// have a cell are (most of a long window's are empty at the
			// finer levels).
			if t1-t0 < 2 {
				for t := t0; t <= t1; t++ {
					visit(t)
				}
				continue
			}
			ts := ix.spans[cellKey(l, n, 0)]
			k, _ := slices.BinarySearch(ts, t0)
			for ; k < len(ts) && ts[k] <= t1; k++ {
				visit(ts[k])
			}
		}
	}
	for _, i := range ix.loose {
		if r := &ix.recs[i]; r.from < to && from < r.to && r.startUS < endUS {
			better(i)
		}
	}
	return found
}

// add adds r, listed in the cells of its rectangle up to r.cellEndUS, and
// returns its index.
func (ix *allocIndex) add(r allocRec) int32 {
	r.occupied, r.level = true, int8(finestLevel(r.from, r.to, r.startUS, r.cellEndUS))
	var i int32
	if n := len(ix.free); n > 0 {
		i, ix.free = ix.free[n-1], ix.free[:n-1]
		ix.recs[i] = r
	} else {
		i = int32(len(ix.recs))
		ix.recs = append(ix.recs, r)
	}
	ix.byID[r.id] = i
	if r.level < 0 {
		ix.loose = append(ix.loose, i)
		return i
	}
	l := int(r.level)
	ix.levels[l]++
	e := cellEntry{from: r.from, to: r.to, startUS: r.startUS, endUS: r.cellEndUS, rec: i}
	n0, n1, t0, t1 := gridLevels[l].span(r.from, r.to, r.startUS, r.cellEndUS)
	for n := n0; n <= n1; n++ {
		for t := t0; t <= t1; t++ {
			k := cellKey(l, n, t)
			list := ix.cells[k]
			if list == nil {
				list = make([]cellEntry, 0, 4)
				sk := cellKey(l, n, 0)
				ts := ix.spans[sk]
				j, _ := slices.BinarySearch(ts, t)
				ix.spans[sk] = slices.Insert(ts, j, t)
			}
			ix.cells[k] = append(list, e)
		}
	}
	return i
}

// remove removes rec i.
func (ix *allocIndex) remove(i int32) {
	r := &ix.recs[i]
	delete(ix.byID, r.id)
	if r.level < 0 {
		if k := slices.Index(ix.loose, i); k >= 0 {
			ix.loose[k] = ix.loose[len(ix.loose)-1]
			ix.loose = ix.loose[:len(ix.loose)-1]
		}
	} else {
		l := int(r.level)
		ix.levels[l]--
		n0, n1, t0, t1 := gridLevels[l].span(r.from, r.to, r.startUS, r.cellEndUS)
		for n := n0; n <= n1; n++ {
			for t := t0; t <= t1; t++ {
				key := cellKey(l, n, t)
				list := ix.cells[key]
				if k := slices.IndexFunc(list, func(e cellEntry) bool { return e.rec == i }); k >= 0 {
					list[k] = list[len(list)-1]
					list = list[:len(list)-1]
				}
				if len(list) > 0 {
					ix.cells[key] = list
				} else {
					delete(ix.cells, key)
					sk := cellKey(l, n, 0)
					ts := ix.spans[sk]
					if j, ok := slices.BinarySearch(ts, t); ok {
						ts = slices.Delete(ts, j, j+1)
					}
					if len(ts) > 0 {
						ix.spans[sk] = ts
					} else {
						delete(ix.spans, sk)
					}
				}
			}
		}
	}
	*r = allocRec{}
	ix.free = append(ix.free, i)
}

// insert adds the allocation r, logged for undo.
func (ix *allocIndex) insert(r allocRec) {
	r.cellEndUS = r.endUS
	ix.add(r)
	ix.undo = append(ix.undo, undoStep{kind: undoInsert, id: r.id})
}

// end ends the allocation of ID id at atUS as EndAllocations does, logged
// for undo: it is removed when it starts at or after atUS, else its end
// becomes atUS when that is earlier (it stays in its cells). It reports
// whether id is indexed.
func (ix *allocIndex) end(id string, atUS int64) bool {
	i, ok := ix.byID[id]
	if !ok {
		return false
	}
	r := ix.recs[i]
	switch {
	case r.startUS >= atUS:
		ix.remove(i)
		ix.undo = append(ix.undo, undoStep{kind: undoRemove, id: id, rec: r})
	case r.endUS > atUS && finestLevel(r.from, r.to, r.startUS, atUS) != int(r.level):
		// Filed again at the level its shorter span fits: a long
		// allocation cut short (a spot lease reclaimed, a lease cancelled)
		// would otherwise stay in a coarse level's cells, which every
		// check reads, for ever.
		ix.remove(i)
		ix.undo = append(ix.undo, undoStep{kind: undoRemove, id: id, rec: r})
		r.endUS = atUS
		ix.insert(r)
	case r.endUS > atUS:
		ix.recs[i].endUS = atUS
		ix.undo = append(ix.undo, undoStep{kind: undoEnd, id: id, endUS: r.endUS})
	}
	return true
}

// finestLevel returns the finest grid level where the rectangle takes at
// most maxCells cells, or -1 (loose).
func finestLevel(from, to, startUS, endUS int64) int {
	for l, lv := range gridLevels {
		if n0, n1, t0, t1 := lv.span(from, to, startUS, endUS); (n1-n0+1)*(t1-t0+1) <= maxCells {
			return l
		}
	}
	return -1
}

// mark returns a point to roll back to.
func (ix *allocIndex) mark() int { return len(ix.undo) }

// rollbackTo undoes the changes logged since mark, latest first.
func (ix *allocIndex) rollbackTo(mark int) {
	for k := len(ix.undo) - 1; k >= mark; k-- {
		switch u := ix.undo[k]; u.kind {
		case undoInsert:
			ix.remove(ix.byID[u.id])
		case undoRemove:
			ix.add(u.rec) // in the cells it was in, of its cellEndUS
		case undoEnd:
			ix.recs[ix.byID[u.id]].endUS = u.endUS
		}
	}
	clear(ix.undo[mark:]) // drop the strings
	ix.undo = ix.undo[:mark]
}

// held returns which of ords (sorted) an allocation holds at or after
// atUS (one that ends after atUS); it compares every allocation.
func (ix *allocIndex) held(ords []int64, atUS int64) []bool {
	out := make([]bool, len(ords))
	for i := range ix.recs {
		r := &ix.recs[i]
		if !r.occupied || r.endUS <= atUS {
			continue
		}
		k, _ := slices.BinarySearch(ords, r.from)
		for ; k < len(ords) && ords[k] < r.to; k++ {
			out[k] = true
		}
	}
	return out
}
