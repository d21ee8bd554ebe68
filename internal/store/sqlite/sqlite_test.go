package sqlite_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/store/sqlite"
	"github.com/neocloud/neocloud/internal/store/storetest"
	"github.com/neocloud/neocloud/internal/tenant"
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

// TestIndexSeesOtherWrites checks that the store's check of new
// allocations sees what others wrote to the allocations table: SQL on the
// store's own write connection (DB), another store on the same file, and
// SQL that stores overlapping allocations.
func TestIndexSeesOtherWrites(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "shared.db")
	s, other := sqlite.OpenTestPath(t, path), sqlite.OpenTestPath(t, path)
	if err := s.Update(ctx, func(tx engine.Tx) error { return tx.ApplyFleet(ctx, storetest.SyntheticFleet(20)) }); err != nil {
		t.Fatal(err)
	}
	t0 := storetest.T0
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	a := func(id string, from, to int64, start, end time.Time) lease.Allocation {
		return lease.Allocation{ID: id, LeaseID: "l", TenantID: "t", NodeFrom: from, NodeTo: to, Start: start, End: end}
	}
	insert := func(s engine.Store, as ...lease.Allocation) error {
		return s.Update(ctx, func(tx engine.Tx) error { return tx.InsertAllocations(ctx, as) })
	}
	held := func(at time.Time, names ...string) []string {
		var got []string
		err := s.Update(ctx, func(tx engine.Tx) (err error) {
			got, err = tx.HeldNodes(ctx, names, at)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	node := func(ord int) string { return storetest.SyntheticFleet(20).Add[ord-1].Name }
	if err := insert(s, a("hours", 1, 5, h(0), h(2)), a("moved", 5, 6, h(0), h(1))); err != nil {
		t.Fatal(err)
	}
	// SQL on the store's own connection.
	for _, q := range []string{
		`INSERT INTO allocations (id, lease_id, tenant_id, node_from, node_to, start_us, end_us) VALUES ('sql', 'l', 't', 15, 17, ` +
			strconv.FormatInt(h(0).UnixMicro(), 10) + `, ` + strconv.FormatInt(h(1).UnixMicro(), 10) + `)`,
		`UPDATE allocations SET node_from = 7, node_to = 8 WHERE id = 'moved'`,
		`DELETE FROM allocations WHERE id = 'hours'`,
	} {
		if _, err := s.DB().ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, tc := range []struct {
		a    lease.Allocation
		want error
	}{
		{a("over-sql", 16, 17, h(0), h(2)), engine.ErrConflict},
		{a("over-moved", 7, 8, h(0), h(2)), engine.ErrConflict},
		{a("where-moved-was", 5, 6, h(0), h(2)), nil},
		{a("where-hours-was", 1, 5, h(0), h(2)), nil},
		{a("sql", 18, 19, h(0), h(2)), tenant.ErrExists},
	} {
		if err := insert(s, tc.a); !errors.Is(err, tc.want) || (err != nil) != (tc.want != nil) {
			t.Errorf("insert %s after SQL wrote on the store's connection: err = %v, want %v", tc.a.ID, err, tc.want)
		}
	}
	if got, want := held(h(0), node(7), node(9), node(15)), []string{node(15), node(7)}; !slices.Equal(got, want) {
		t.Errorf("HeldNodes = %v, want %v", got, want)
	}

	// Another store, then SQL on its connection that stores allocations
	// that overlap each other.
	if err := insert(other, a("other", 10, 12, h(5), h(6))); err != nil {
		t.Fatal(err)
	}
	if err := insert(s, a("over-other", 11, 13, h(5), h(7))); !errors.Is(err, engine.ErrConflict) {
		t.Errorf("insert over another store's allocation: err = %v, want ErrConflict", err)
	}
	for _, q := range []string{
		`INSERT INTO allocations (id, lease_id, tenant_id, node_from, node_to, start_us, end_us) VALUES ` +
			`('bad-1', 'l', 't', 18, 20, ` + strconv.FormatInt(h(10).UnixMicro(), 10) + `, ` + strconv.FormatInt(h(20).UnixMicro(), 10) + `), ` +
			`('bad-2', 'l', 't', 19, 21, ` + strconv.FormatInt(h(11).UnixMicro(), 10) + `, ` + strconv.FormatInt(h(12).UnixMicro(), 10) + `)`,
	} {
		if _, err := other.DB().ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, tc := range []struct {
		a    lease.Allocation
		want error
	}{
		{a("over-bad-1", 18, 19, h(15), h(16)), engine.ErrConflict},
		{a("over-bad-2", 20, 21, h(11), h(12)), engine.ErrConflict},
		{a("between", 20, 21, h(12), h(13)), nil},
	} {
		if err := insert(s, tc.a); !errors.Is(err, tc.want) || (err != nil) != (tc.want != nil) {
			t.Errorf("insert %s after SQL stored overlapping allocations: err = %v, want %v", tc.a.ID, err, tc.want)
		}
	}
	if got, want := held(h(12), node(18), node(19), node(20)), []string{node(18), node(19), node(20)}; !slices.Equal(got, want) {
		t.Errorf("HeldNodes = %v, want %v", got, want)
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

func BenchmarkAdmissions(b *testing.B) {
	storetest.BenchmarkAdmissions(b, func(b *testing.B) engine.Store { return sqlite.OpenTest(b) })
}
