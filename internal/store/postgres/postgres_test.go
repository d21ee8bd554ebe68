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
// overlapping allocations written by direct SQL, bypassing the store, and
// that a second store's writer waits for the first one's transaction and
// then sees its allocation.
func TestExclusionConstraint(t *testing.T) {
	d := dsn(t)
	schema := postgres.TestSchema(t, d)
	a, b := postgres.OpenTestDSN(t, schema), postgres.OpenTestDSN(t, schema)
	ctx := t.Context()
	t0 := storetest.T0
	c := storetest.SyntheticFleet(1)
	if err := a.Update(ctx, func(tx engine.Tx) error { return tx.ApplyFleet(ctx, c) }); err != nil {
		t.Fatal(err)
	}
	nodeName := c.Add[0].Name
	alloc := func(id string, from, to time.Duration) lease.Allocation {
		return lease.Allocation{ID: id, LeaseID: "l", TenantID: "acme", Node: nodeName, Start: t0.Add(from), End: t0.Add(to)}
	}

	// Direct SQL.
	const insert = `INSERT INTO allocations (id, lease_id, tenant_id, node, start_us, end_us) VALUES ($1, 'l', 'acme', $2, $3, $4)`
	if _, err := a.DB().ExecContext(ctx, insert, "sql-1", nodeName, t0.UnixMicro(), t0.Add(time.Hour).UnixMicro()); err != nil {
		t.Fatal(err)
	}
	_, err := a.DB().ExecContext(ctx, insert, "sql-2", nodeName, t0.Add(30*time.Minute).UnixMicro(), t0.Add(2*time.Hour).UnixMicro())
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23P01" {
		t.Fatalf("overlapping INSERT by direct SQL: err = %v, want SQLSTATE 23P01", err)
	}
	if _, err := a.DB().ExecContext(ctx, insert, "sql-3", nodeName, t0.Add(time.Hour).UnixMicro(), t0.Add(2*time.Hour).UnixMicro()); err != nil {
		t.Fatalf("adjacent INSERT by direct SQL: %v", err)
	}

	// Two transactions: a inserts and waits; b waits for a's transaction
	// (the writer lock, or the node's row lock behind it), then sees a's
	// allocation.
	inserted, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	// A failed wait must still let a finish, or the schema's cleanup
	// would wait on a's locks forever.
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	errA := make(chan error, 1)
	go func() {
		errA <- a.Update(context.Background(), func(tx engine.Tx) error {
			if err := tx.InsertAllocation(context.Background(), alloc("tx-a", 10*time.Hour, 12*time.Hour)); err != nil {
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
			return tx.InsertAllocation(context.Background(), alloc("tx-b", 11*time.Hour, 13*time.Hour))
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
// heavyweight lock (the writer's advisory lock or a node row's lock).
func waitForLockWait(t *testing.T, s *sqlstore.Store) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		var n int
		err := s.DB().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'
			AND (query LIKE 'SELECT pg_advisory_xact_lock%' OR query LIKE 'SELECT 1 FROM nodes%')`).Scan(&n)
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

// TestAuditTruncate checks that TRUNCATE, which row triggers do not see,
// is refused too.
func TestAuditTruncate(t *testing.T) {
	s := postgres.OpenTest(t, dsn(t))
	if _, err := s.DB().ExecContext(t.Context(), `TRUNCATE audit_log`); err == nil {
		t.Errorf("TRUNCATE audit_log: err = nil, want the append-only trigger's refusal")
	}
}
