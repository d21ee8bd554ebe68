package sqlstore

import (
	"fmt"
	"strconv"
	"strings"
)

// Dialect is what one database does differently from the others.
type Dialect struct {
	// Name names the database in messages: "sqlite", "postgres".
	Name string
	// NumberedParams selects $1, $2, ... placeholders (PostgreSQL) instead
	// of ?.
	NumberedParams bool
	// MaxParams is the most bind parameters one statement may carry.
	MaxParams int
	// AllocIndex selects how overlapping allocations are refused: the
	// store checks each new allocation, in the transaction that inserts
	// it, against an index of the stored ones that it keeps in process and
	// validates at the start of every write transaction (SQLite, whose
	// single writer makes that check final), rather than leaving it to an
	// exclusion constraint (PostgreSQL; int8range values, served by the
	// constraint's GiST index).
	AllocIndex bool
	// UndoByRowid selects how a multi-row insert that fails half-way is
	// undone: by deleting the rows it added, found by rowid (SQLite),
	// rather than by rolling back to a savepoint (PostgreSQL, where a
	// failed statement aborts the transaction otherwise). See insertAll.
	UndoByRowid bool
	// WriterLock, when set, runs first in every write transaction and
	// blocks until no other transaction holds it: it makes writers from
	// several processes take turns (PostgreSQL: a transaction-scoped
	// advisory lock). SQLite needs none: it has one writer per file.
	WriterLock string
	// Checkpoint, when set, is a statement that copies the committed
	// write-ahead log into the database file without blocking readers or
	// the writer (SQLite: PRAGMA wal_checkpoint(PASSIVE)). The store runs
	// it on a read connection in the background every CheckpointEvery
	// commits, so that the writer's own checkpoint, which a commit that
	// crosses the log's size limit runs before it returns, is seldom due:
	// it would hold up every command of the group commit for as long as it
	// takes to copy the log.
	Checkpoint      string
	CheckpointEvery int
	// Classify maps a driver error to the store error it means:
	// tenant.ErrExists for a unique or primary-key violation,
	// engine.ErrConflict for an exclusion violation, nil for anything else.
	// It must inspect the error with errors.As, never its text.
	Classify func(error) error
}

// rebind rewrites the ? placeholders of q for d. Question marks inside
// single-quoted literals are left alone.
func (d *Dialect) rebind(q string) string {
	if !d.NumberedParams || strings.IndexByte(q, '?') < 0 {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + len(q)/2)
	n := 0
	inQuote := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			inQuote = !inQuote
			b.WriteByte(c)
		case c == '?' && !inQuote:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// batchRows returns how many rows of cols parameters one statement may
// carry: at most 500, and within the dialect's parameter limit.
func (d *Dialect) batchRows(cols int) int {
	n := 500
	if d.MaxParams > 0 && n*cols > d.MaxParams {
		n = d.MaxParams / cols
	}
	return max(n, 1)
}

// classify returns err joined with the store error it means, so that both
// errors.Is(err, tenant.ErrExists) and errors.As(err, &driverErr) hold.
func (d *Dialect) classify(err error) error {
	if err == nil || d.Classify == nil {
		return err
	}
	if sentinel := d.Classify(err); sentinel != nil {
		return fmt.Errorf("%w: %w", sentinel, err)
	}
	return err
}

// values returns "(?,?,?),(?,?,?)" for rows rows of cols placeholders.
func values(rows, cols int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
}

// list returns "?,?,?" for n placeholders.
func list(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
