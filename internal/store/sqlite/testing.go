package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/neocloud/neocloud/internal/store/sqlstore"
)

// OpenTest opens a store on a fresh database file in t.TempDir() and
// closes it when the test ends. It is for tests of any package.
func OpenTest(t testing.TB) *sqlstore.Store {
	t.Helper()
	return OpenTestPath(t, filepath.Join(t.TempDir(), "neocloud.db"))
}

// OpenTestPath opens a store on the database file at path and closes it
// when the test ends; two calls with one path give two stores on one
// database, as two processes would have.
func OpenTestPath(t testing.TB, path string) *sqlstore.Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open sqlite store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close sqlite store: %v", err)
		}
	})
	return s
}
