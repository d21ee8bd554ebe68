package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/neocloud/neocloud/internal/store/sqlstore"
)

// OpenTest opens a store in a fresh schema of the database dsn names, and
// drops the schema when the test ends. It is for tests of any package.
func OpenTest(t testing.TB, dsn string) *sqlstore.Store {
	t.Helper()
	return OpenTestDSN(t, TestSchema(t, dsn))
}

// OpenTestDSN opens a store on dsn and closes it when the test ends; two
// calls with one TestSchema DSN give two stores on one schema, as two
// replicas would have.
func OpenTestDSN(t testing.TB, dsn string) *sqlstore.Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open postgres store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close postgres store: %v", err)
		}
	})
	return s
}

// TestSchema creates a schema t_<random> in the database dsn names and
// returns dsn with search_path set to it (then public). The schema is
// dropped when the test ends, after the cleanups registered later (closing
// the stores on it) have run.
func TestSchema(t testing.TB, dsn string) string {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("test schema: %v", err)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("test schema: %v", err)
	}
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		db.Close()
		t.Fatalf("test schema: create %s: %v", schema, err)
	}
	t.Cleanup(func() {
		defer db.Close()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("test schema: drop %s: %v", schema, err)
		}
	})
	out, err := withSearchPath(dsn, schema+",public")
	if err != nil {
		t.Fatalf("test schema: %v", err)
	}
	return out
}

// withSearchPath returns dsn with its search_path set to path.
func withSearchPath(dsn, path string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse dsn: %w", err)
		}
		q := u.Query()
		q.Set("search_path", path)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return dsn + " search_path=" + path, nil
}
