package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/neocloud/neocloud/internal/engine"
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

func BenchmarkApplyFleet31k(b *testing.B) {
	storetest.BenchmarkApplyFleet(b, 31_500, func(b *testing.B) engine.Store { return sqlite.OpenTest(b) })
}

func BenchmarkAllNodes31k(b *testing.B) {
	storetest.BenchmarkAllNodes(b, 31_500, func(b *testing.B) engine.Store { return sqlite.OpenTest(b) })
}

func BenchmarkUpdateFleet31k(b *testing.B) {
	storetest.BenchmarkUpdateFleet(b, 31_500, func(b *testing.B) engine.Store { return sqlite.OpenTest(b) })
}
