package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/tenant"
)

// HeldNodes returns the names among nodes that have an allocation ending
// after t, sorted and without repeats.
func (t *tx) HeldNodes(ctx context.Context, nodes []string, at time.Time) ([]string, error) {
	held := []string{}
	for batch := range slices.Chunk(nodes, t.c.d.batchRows(1)-1) {
		args := make([]any, 0, len(batch)+1)
		args = append(args, micros(at))
		for _, n := range batch {
			args = append(args, n)
		}
		rows, err := t.c.query(ctx, `SELECT DISTINCT node FROM allocations WHERE end_us > ? AND node IN (`+list(len(batch))+`)`, args...)
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
	sort.Strings(held)
	return slices.Compact(held), nil
}

// InsertAllocation stores a. It returns an error wrapping
// engine.ErrConflict when the node is already allocated over an
// overlapping interval, one wrapping tenant.ErrExists when the ID is taken
// and one wrapping engine.ErrNotFound when the node does not exist; after
// any of them, the transaction remains usable, in both databases.
//
// The node's row is locked first (in PostgreSQL; SQLite has one writer),
// so that writers allocating one node take turns and each sees what the
// previous one committed: the overlap is then found by a query, before the
// insert. PostgreSQL's exclusion constraint remains the guard against any
// writer that bypasses this path; its violation is also reported as
// engine.ErrConflict, but aborts the transaction. (Without the lock,
// concurrent inserts checked only by the constraint deadlock one another.)
func (t *tx) InsertAllocation(ctx context.Context, a lease.Allocation) error {
	if !a.Start.Before(a.End) {
		return fmt.Errorf("store: insert allocation %s: start %s is not before end %s",
			a.ID, a.Start.Format(time.RFC3339Nano), a.End.Format(time.RFC3339Nano))
	}
	var one int
	err := t.c.queryRow(ctx, `SELECT 1 FROM nodes WHERE name = ? AND retired_us IS NULL `+t.c.d.RowLock, a.Node).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("store: insert allocation %s: node %s: %w", a.ID, a.Node, engine.ErrNotFound)
	case err != nil:
		return fmt.Errorf("store: insert allocation %s: lock node %s: %w", a.ID, a.Node, err)
	}
	var id string
	err = t.c.queryRow(ctx, `SELECT id FROM allocations WHERE node = ? AND end_us > ? AND start_us < ? LIMIT 1`,
		a.Node, micros(a.Start), micros(a.End)).Scan(&id)
	switch {
	case err == nil:
		return fmt.Errorf("store: insert allocation %s: node %s overlaps allocation %s: %w", a.ID, a.Node, id, engine.ErrConflict)
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("store: insert allocation %s: check overlap: %w", a.ID, err)
	}
	// ON CONFLICT (id) answers a taken ID without aborting a PostgreSQL
	// transaction; the exclusion constraint still raises.
	n, err := t.c.execCount(ctx, `INSERT INTO allocations (id, lease_id, tenant_id, node, start_us, end_us)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		a.ID, a.LeaseID, a.TenantID, a.Node, micros(a.Start), micros(a.End))
	if err != nil {
		return fmt.Errorf("store: insert allocation %s: %w", a.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("store: insert allocation %s: %w", a.ID, tenant.ErrExists)
	}
	return nil
}
