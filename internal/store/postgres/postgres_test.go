package postgres_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/store/postgres"
	"github.com/neocloud/neocloud/internal/store/sqlstore"
	"github.com/neocloud/neocloud/internal/store/storetest"
)

// dsn returns the DSN of the test server from NEOCLOUD_TEST_POSTGRES, and
// skips the test when it is unset, unless NEOCLOUD_REQUIRE_POSTGRES=1.
func dsn(tb testing.TB) string {
	tb.Helper()
	d := os.Getenv("NEOCLOUD_TEST_POSTGRES")
	if d == "" {
		if os.Getenv("NEOCLOUD_REQUIRE_POSTGRES") == "1" {
			tb.Fatal("NEOCLOUD_REQUIRE_POSTGRES=1 but NEOCLOUD_TEST_POSTGRES holds no DSN")
		}
		tb.Skip("set NEOCLOUD_TEST_POSTGRES to a DSN (postgres://user@host:port/db?sslmode=disable) to test PostgreSQL")
	}
	return d
}

func TestConformance(t *testing.T) {
	d := dsn(t)
	storetest.Run(t,
		func(t *testing.T) engine.Store { return postgres.OpenTest(t, d) },
		storetest.WithPair(func(t *testing.T) (engine.Store, engine.Store) {
			schema := postgres.TestSchema(t, d)
			return postgres.OpenTestDSN(t, schema), postgres.OpenTestDSN(t, schema)
		}))
}

// TestExclusionConstraint checks that the database itself refuses
// overlapping allocations written by direct SQL, bypassing the store, while
// runs adjacent in nodes or in time are allowed; and that a second store's
// writer waits for the first one's transaction and then sees its
// allocation.
func TestExclusionConstraint(t *testing.T) {
	d := dsn(t)
	schema := postgres.TestSchema(t, d)
	a, b := postgres.OpenTestDSN(t, schema), postgres.OpenTestDSN(t, schema)
	ctx := t.Context()
	t0 := storetest.T0
	c := storetest.SyntheticFleet(10)
	if err := a.Update(ctx, func(tx engine.Tx) error { return tx.ApplyFleet(ctx, c) }); err != nil {
		t.Fatal(err)
	}
	h := func(n int) int64 { return t0.Add(time.Duration(n) * time.Hour).UnixMicro() }

	// Direct SQL.
	const insert = `INSERT INTO allocations (id, lease_id, tenant_id, node_from, node_to, start_us, end_us) VALUES ($1, 'l', 'acme', $2, $3, $4, $5)`
	for _, tc := range []struct {
		id       string
		from, to int64
		start    int64
		end      int64
		refused  bool
	}{
		{"sql-1", 2, 5, h(0), h(2), false},
		{"sql-overlap", 4, 6, h(1), h(3), true},
		{"sql-inside", 3, 4, h(1), h(1) + 1, true},
		{"sql-around", 1, 9, h(-1), h(5), true},
		{"sql-adjacent-below", 1, 2, h(0), h(2), false},
		{"sql-adjacent-above", 5, 7, h(0), h(2), false},
		{"sql-adjacent-after", 2, 5, h(2), h(3), false},
		{"sql-adjacent-before", 2, 5, h(-1), h(0), false},
	} {
		_, err := a.DB().ExecContext(ctx, insert, tc.id, tc.from, tc.to, tc.start, tc.end)
		var pe *pgconn.PgError
		switch {
		case tc.refused && (!errors.As(err, &pe) || pe.Code != "23P01"):
			t.Errorf("%s by direct SQL: err = %v, want SQLSTATE 23P01", tc.id, err)
		case !tc.refused && err != nil:
			t.Errorf("%s by direct SQL: %v", tc.id, err)
		}
	}

	// Two transactions: a inserts and waits; b waits for a's transaction
	// (the writer lock), then sees a's allocation.
	alloc := func(id string, from, to int64, start, end int) lease.Allocation {
		return lease.Allocation{ID: id, LeaseID: "l", TenantID: "acme", NodeFrom: from, NodeTo: to,
			Start: t0.Add(time.Duration(start) * time.Hour), End: t0.Add(time.Duration(end) * time.Hour)}
	}
	inserted, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	// A failed wait must still let a finish, or the schema's cleanup
	// would wait on a's locks forever.
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	errA := make(chan error, 1)
	go func() {
		errA <- a.Update(context.Background(), func(tx engine.Tx) error {
			if err := tx.InsertAllocations(context.Background(), []lease.Allocation{alloc("tx-a", 1, 4, 10, 12)}); err != nil {
				close(inserted)
				return err
			}
			close(inserted)
			<-release
			return nil
		})
	}()
	<-inserted
	errB := make(chan error, 1)
	go func() {
		errB <- b.Update(context.Background(), func(tx engine.Tx) error {
			return tx.InsertAllocations(context.Background(), []lease.Allocation{alloc("tx-b", 3, 6, 11, 13)})
		})
	}()
	waitForLockWait(t, a)
	releaseOnce.Do(func() { close(release) })
	if err := <-errA; err != nil {
		t.Fatalf("first writer: %v", err)
	}
	if err := <-errB; !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("second writer: err = %v, want ErrConflict", err)
	}
}

// waitForLockWait polls until a backend of the database waits on a
// heavyweight lock (the writer's advisory lock).
func waitForLockWait(t *testing.T, s *sqlstore.Store) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		var n int
		err := s.DB().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'
			AND query LIKE 'SELECT pg_advisory_xact_lock%'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("the second writer never waited on the first one's lock")
		}
	}
}

func BenchmarkApplyFleet31k(b *testing.B) {
	d := dsn(b)
	storetest.BenchmarkApplyFleet(b, 31_500, func(b *testing.B) engine.Store { return postgres.OpenTest(b, d) })
}

func BenchmarkAllNodes31k(b *testing.B) {
	d := dsn(b)
	storetest.BenchmarkAllNodes(b, 31_500, func(b *testing.B) engine.Store { return postgres.OpenTest(b, d) })
}

func BenchmarkUpdateFleet31k(b *testing.B) {
	d := dsn(b)
	storetest.BenchmarkUpdateFleet(b, 31_500, func(b *testing.B) engine.Store { return postgres.OpenTest(b, d) })
}

func BenchmarkInsertAllocations(b *testing.B) {
	d := dsn(b)
	storetest.BenchmarkInsertAllocations(b, func(b *testing.B) engine.Store { return postgres.OpenTest(b, d) })
}

func BenchmarkAdmissions(b *testing.B) {
	d := dsn(b)
	storetest.BenchmarkAdmissions(b, func(b *testing.B) engine.Store { return postgres.OpenTest(b, d) })
}

// TestAuditTruncate checks that TRUNCATE, which row triggers do not see,
// is refused too.
func TestAuditTruncate(t *testing.T) {
	s := postgres.OpenTest(t, dsn(t))
	if _, err := s.DB().ExecContext(t.Context(), `TRUNCATE audit_log`); err == nil {
		t.Errorf("TRUNCATE audit_log: err = nil, want the append-only trigger's refusal")
	}
}
