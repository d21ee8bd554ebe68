package sqlstore

import (
	"context"
	"errors"
	"fmt"
)

// bulkInsert is the multi-row INSERT of one table that InsertAllocations,
// InsertLeases and AppendAudits make, in the shapes pow2Chunks cuts.
type bulkInsert struct {
	table   string
	columns string // the columns given, in order
	cols    int    // how many
	// appendOnly: the table refuses DELETE (audit_log), so that a failed
	// insert cannot be undone by deleting what it added.
	appendOnly bool
}

// query returns the statement that inserts n rows. With UndoByRowid it is
// INSERT OR FAIL: a row the table refuses stops the statement but keeps
// the rows before it, for insertAll to delete; that needs no statement
// journal, which plain INSERT (ABORT) would fill with a copy of every page
// the statement changes.
func (b bulkInsert) query(d *Dialect, n int) string {
	verb := `INSERT INTO `
	if d.UndoByRowid {
		verb = `INSERT OR FAIL INTO `
	}
	return verb + b.table + ` (` + b.columns + `) VALUES ` + values(n, b.cols)
}

// lastRowidQuery returns the statement that reads the largest rowid of
// b's table, which an insert with UndoByRowid reads first.
func (b bulkInsert) lastRowidQuery() string {
	return `SELECT COALESCE(MAX(rowid), 0) FROM ` + b.table
}

// insertAll inserts n rows into b's table, the columns of row i appended
// to args by row, with b's prepared multi-row statements. When one fails,
// nothing of the n rows stays stored and the transaction stays usable: it
// undoes what the earlier statements added and returns what failed makes
// of the error. PostgreSQL, where a failed statement would abort the
// transaction, inserts under a savepoint and rolls back to it. SQLite
// (UndoByRowid) deletes the rows whose rowid exceeds the table's largest
// before the insert (SQLite gives a new row a rowid larger than any in the
// table), as a savepoint would make every page the insert changes be
// copied to a statement journal first, which costs as much as the insert.
// For an append-only table, whose rows cannot be deleted, that leaves the
// transaction broken: Update then rolls it back.
func (t *tx) insertAll(ctx context.Context, b bulkInsert, n int,
	row func(i int, args []any) ([]any, error), failed func(error) error) error {
	if n == 0 {
		return nil
	}
	if t.broken != nil {
		return t.broken
	}
	undo, done, err := t.beginInsert(ctx, b)
	if err != nil {
		return err
	}
	rows := make([]struct{}, n)      // pow2Chunks cuts indexes
	defer func() { clear(t.args) }() // drop the rows' values
	for start, batch := range pow2Chunks(rows, t.c.d.batchRows(b.cols)) {
		args := t.args[:0]
		if cap(args) < len(batch)*b.cols {
			args = make([]any, 0, len(batch)*b.cols)
		}
		for i := range batch {
			var err error
			if args, err = row(start+i, args); err != nil {
				return errors.Join(err, undo())
			}
		}
		t.args = args[:cap(args)]
		if _, err := t.c.execPrepared(ctx, b.query(t.c.d, len(batch)), args...); err != nil {
			if uerr := undo(); uerr != nil {
				return errors.Join(err, uerr)
			}
			return failed(err)
		}
	}
	return done()
}

// beginInsert prepares to undo an insert into b's table: undo undoes it,
// done ends it.
func (t *tx) beginInsert(ctx context.Context, b bulkInsert) (undo, done func() error, err error) {
	if !t.c.d.UndoByRowid {
		const savepoint = `insert_all`
		if _, err := t.c.exec(ctx, `SAVEPOINT `+savepoint); err != nil {
			return nil, nil, err
		}
		undo = func() error {
			if _, err := t.c.exec(ctx, `ROLLBACK TO SAVEPOINT `+savepoint); err != nil {
				return err
			}
			_, err := t.c.exec(ctx, `RELEASE SAVEPOINT `+savepoint)
			return err
		}
		done = func() error {
			_, err := t.c.exec(ctx, `RELEASE SAVEPOINT `+savepoint)
			return err
		}
		return undo, done, nil
	}
	done = func() error { return nil }
	broken := func(err error) error {
		t.broken = fmt.Errorf("an insert into %s failed half-way and could not be undone: %w", b.table, err)
		return t.broken
	}
	if b.appendOnly {
		undo = func() error { return broken(errors.New("its rows cannot be deleted")) }
		return undo, done, nil
	}
	var last int64
	if err := t.c.queryRowPrepared(ctx, b.lastRowidQuery()).Scan(&last); err != nil {
		return nil, nil, err
	}
	undo = func() error {
		if _, err := t.c.exec(ctx, `DELETE FROM `+b.table+` WHERE rowid > ?`, last); err != nil {
			return broken(err)
		}
		return nil
	}
	return undo, done, nil
}
