// Package dbtest runs a test against every store backend: SQLite always,
// PostgreSQL when NEOCLOUD_TEST_POSTGRES holds a DSN (scripts/test starts a
// throwaway server and sets it). With NEOCLOUD_REQUIRE_POSTGRES=1 a missing
// DSN fails the test instead of skipping it.
package dbtest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/store/postgres"
	"github.com/neocloud/neocloud/internal/store/sqlite"
)

// PostgresDSN returns the test database's DSN, or skips (or fails) t when
// there is none.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("NEOCLOUD_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("NEOCLOUD_REQUIRE_POSTGRES") == "1" {
			t.Fatal("NEOCLOUD_REQUIRE_POSTGRES=1 but NEOCLOUD_TEST_POSTGRES is empty")
		}
		t.Skip("NEOCLOUD_TEST_POSTGRES is not set; ./scripts/test starts a PostgreSQL and sets it")
	}
	return dsn
}

// Each runs fn as the subtests "sqlite" and "postgres", each on a fresh,
// migrated, empty store that is closed when the subtest ends.
func Each(t *testing.T, fn func(t *testing.T, st engine.Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, sqlite.OpenTest(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, postgres.OpenTest(t, PostgresDSN(t))) })
}

// Dump returns every row of every table of st as text, for tests that
// check what is (not) at rest.
func Dump(t testing.TB, st engine.Store) string {
	t.Helper()
	dber, ok := st.(interface{ DB() *sql.DB })
	if !ok {
		t.Fatalf("store %T does not expose DB()", st)
	}
	db := dber.DB()
	ctx := context.Background()
	tables, err := tableNames(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, table := range tables {
		rows, err := db.QueryContext(ctx, "SELECT * FROM "+table)
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("dump %s: %v", table, err)
			}
			b.WriteString(table)
			for _, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&b, "\t%v", v)
			}
			b.WriteByte('\n')
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		rows.Close()
	}
	return b.String()
}

func tableNames(ctx context.Context, db *sql.DB) ([]string, error) {
	q := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if _, err := db.ExecContext(ctx, `SELECT 1 FROM sqlite_master LIMIT 1`); err != nil {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out, rows.Err()
}
