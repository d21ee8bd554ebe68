package sqlite_test

import (
	"errors"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/store/sqlite"
	"github.com/neocloud/neocloud/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t,
		func(t *testing.T) engine.Store { return sqlite.OpenTest(t) },
		storetest.WithPair(func(t *testing.T) (engine.Store, engine.Store) {
			path := filepath.Join(t.TempDir(), "shared.db")
			return sqlite.OpenTestPath(t, path), sqlite.OpenTestPath(t, path)
		}))
}

func TestOpenRefusesNonFiles(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file::memory:?cache=shared", "db?mode=ro"} {
		if s, err := sqlite.Open(t.Context(), path); err == nil {
			s.Close()
			t.Errorf("Open(%q): err = nil, want an error", path)
		}
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "neocloud.db")
	s := sqlite.OpenTestPath(t, path)
	c := storetest.SyntheticFleet(10)
	if err := s.Update(t.Context(), func(tx engine.Tx) error { return tx.ApplyFleet(t.Context(), c) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := sqlite.OpenTestPath(t, path) // migrations already applied: a no-op
	nodes, err := s2.AllNodes(t.Context())
	if err != nil || len(nodes) != 10 {
		t.Fatalf("AllNodes after reopening = %d nodes, %v; want 10", len(nodes), err)
	}
	var mode string
	if err := s2.DB().QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
}

// TestRTreeInSync checks that allocations_rtree holds, for every
// allocation, the box of its ordinals and minutes, whatever wrote it: the
// store, or SQL that bypasses it.
func TestRTreeInSync(t *testing.T) {
	ctx := t.Context()
	s := sqlite.OpenTest(t)
	if err := s.Update(ctx, func(tx engine.Tx) error { return tx.ApplyFleet(ctx, storetest.SyntheticFleet(20)) }); err != nil {
		t.Fatal(err)
	}
	t0 := storetest.T0
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	as := []lease.Allocation{
		{ID: "hours", NodeFrom: 1, NodeTo: 5, Start: t0, End: t0.Add(2 * time.Hour)},
		{ID: "seconds", NodeFrom: 5, NodeTo: 6, Start: t0.Add(90 * time.Second), End: t0.Add(150*time.Second + time.Microsecond)},
		{ID: "far", NodeFrom: 6, NodeTo: 20, Start: far, End: far.Add(time.Hour)},
		{ID: "before 1970", NodeFrom: 1, NodeTo: 3, Start: time.Date(1960, 1, 1, 0, 0, 30, 0, time.UTC), End: time.Date(1960, 1, 1, 0, 1, 30, 0, time.UTC)},
		{ID: "ended", NodeFrom: 10, NodeTo: 12, Start: t0, End: t0.Add(10 * time.Hour)},
		{ID: "deleted", NodeFrom: 10, NodeTo: 12, Start: t0.Add(20 * time.Hour), End: t0.Add(21 * time.Hour)},
	}
	err := s.Update(ctx, func(tx engine.Tx) error {
		if err := tx.InsertAllocations(ctx, as); err != nil {
			return err
		}
		return tx.EndAllocations(ctx, []string{"ended", "deleted"}, t0.Add(5*time.Hour+30*time.Second))
	})
	if err != nil {
		t.Fatal(err)
	}
	db := s.DB()
	for _, q := range []string{
		`INSERT INTO allocations (id, lease_id, tenant_id, node_from, node_to, start_us, end_us) VALUES ('sql', 'l', 't', 15, 17, 0, 60000001)`,
		`UPDATE allocations SET node_to = 8, start_us = start_us - 1 WHERE id = 'seconds'`,
		`DELETE FROM allocations WHERE id = 'hours'`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// What SQL wrote, the store sees.
	err = s.Update(ctx, func(tx engine.Tx) error {
		return tx.InsertAllocations(ctx, []lease.Allocation{{ID: "x", NodeFrom: 16, NodeTo: 17, Start: time.UnixMicro(60000000), End: time.UnixMicro(60000002)}})
	})
	if !errors.Is(err, engine.ErrConflict) {
		t.Errorf("insert over an allocation written by SQL: err = %v, want ErrConflict", err)
	}

	type box struct{ Seq, NodeLo, NodeHi, MinuteLo, MinuteHi int64 }
	minute := func(us int64) int64 {
		return int64(max(math.MinInt32, min(math.MaxInt32, math.Floor(float64(us)/60e6))))
	}
	var want []box
	rows, err := db.QueryContext(ctx, `SELECT seq, node_from, node_to, start_us, end_us FROM allocations ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var seq, from, to, start, end int64
		if err := rows.Scan(&seq, &from, &to, &start, &end); err != nil {
			t.Fatal(err)
		}
		want = append(want, box{seq, from, to - 1, minute(start), minute(end - 1)})
	}
	rows.Close()
	var got []box
	rows, err = db.QueryContext(ctx, `SELECT seq, node_lo, node_hi, minute_lo, minute_hi FROM allocations_rtree ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var b box
		if err := rows.Scan(&b.Seq, &b.NodeLo, &b.NodeHi, &b.MinuteLo, &b.MinuteHi); err != nil {
			t.Fatal(err)
		}
		got = append(got, b)
	}
	rows.Close()
	if len(want) != 5 {
		t.Fatalf("%d allocations, want 5", len(want))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("allocations_rtree (-want +got):\n%s", diff)
	}
}

func BenchmarkApplyFleet31k(b *testing.B) {
	storetest.BenchmarkApplyFleet(b, 31_500, func(b *testing.B) engine.Store { return sqlite.OpenTest(b) })
}

func BenchmarkAllNodes31k(b *testing.B) {
	storetest.BenchmarkAllNodes(b, 31_500, func(b *testing.B) engine.Store { return sqlite.OpenTest(b) })
}

func BenchmarkUpdateFleet31k(b *testing.B) {
	storetest.BenchmarkUpdateFleet(b, 31_500, func(b *testing.B) engine.Store { return sqlite.OpenTest(b) })
}

func BenchmarkInsertAllocations(b *testing.B) {
	storetest.BenchmarkInsertAllocations(b, func(b *testing.B) engine.Store { return sqlite.OpenTest(b) })
}
