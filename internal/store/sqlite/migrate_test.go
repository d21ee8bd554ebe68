package sqlite

import (
	"database/sql"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/lease"
)

// TestMigrateDropsRTree checks that a database made before migration 3
// (allocations mirrored in an R*Tree) keeps its allocations, that the
// store then refuses an overlapping one, and that migration 3 goes down
// and up again.
func TestMigrateDropsRTree(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path+"?"+pragmas)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for _, row := range [][]any{
		{"a1", "l1", "t1", 1, 5, 0, 3_600_000_000},
		{"a2", "l2", "t2", 5, 9, 0, 7_200_000_000},
	} {
		if _, err := db.ExecContext(ctx, `INSERT INTO allocations (id, lease_id, tenant_id, node_from, node_to, start_us, end_us)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, row...); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open migrates a version-2 database: %v", err)
	}
	defer s.Close()
	got, err := s.Allocations(ctx, engine.AllocationFilter{})
	if err != nil || len(got) != 2 || got[0].ID != "a1" || got[1].ID != "a2" || got[1].NodeFrom != 5 {
		t.Fatalf("allocations after migration 3 = %+v, %v; want a1 and a2 as stored", got, err)
	}
	var n int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name LIKE 'allocations_rtree%'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("R*Tree objects left after migration 3: %d, %v; want 0", n, err)
	}
	overlap := lease.Allocation{ID: "a3", LeaseID: "l3", TenantID: "t3", NodeFrom: 4, NodeTo: 6,
		Start: time.UnixMicro(0), End: time.UnixMicro(60_000_000)}
	if err := s.Update(ctx, func(tx engine.Tx) error { return tx.InsertAllocations(ctx, []lease.Allocation{overlap}) }); err == nil {
		t.Error("InsertAllocations of an allocation overlapping a migrated one: err = nil, want a refusal")
	}

	down, err := goose.NewProvider(goose.DialectSQLite3, s.DB(), fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := down.DownTo(ctx, 2); err != nil {
		t.Fatalf("migration 3 down: %v", err)
	}
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM allocations_rtree WHERE node_lo = 5 AND node_hi = 8`).Scan(&n); err != nil || n != 1 {
		t.Errorf("R*Tree rows for a2 after migration 3 down: %d, %v; want 1", n, err)
	}
	if _, err := down.Up(ctx); err != nil {
		t.Fatalf("migration 3 up again: %v", err)
	}
}
