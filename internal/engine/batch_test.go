package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/store/sqlite"
)

// slowStore makes every Update take at least delay, and fails the
// failAt-th (counting from 1; 0: none).
type slowStore struct {
	engine.Store
	delay   time.Duration
	failAt  int32
	updates atomic.Int32
}

func (s *slowStore) Update(ctx context.Context, fn func(engine.Tx) error) error {
	n := s.updates.Add(1)
	time.Sleep(s.delay)
	if n == s.failAt {
		return errors.New("disk full")
	}
	return s.Store.Update(ctx, fn)
}

// TestGroupCommitUnderLoad: lease requests that arrive while a commit is
// in progress share the next one; when a commit fails, exactly the leases
// answered without an error are stored, and the in-memory capacity is the
// one a fresh engine rebuilds from the store.
func TestGroupCommitUnderLoad(t *testing.T) {
	st := &slowStore{Store: sqlite.OpenTest(t)}
	e, clk := setup(t, st, 1_000_000)
	ctx := context.Background()
	st.delay, st.failAt = 20*time.Millisecond, st.updates.Load()+2
	before := st.updates.Load()

	const clients, each = 16, 6
	var wg sync.WaitGroup
	ids := make([][]string, clients)
	errs := make([][]error, clients)
	for c := range clients {
		wg.Go(func() {
			// Pipelined, so that requests arrive during each commit.
			var pending []engine.Pending
			for i := range each {
				p, err := e.SubmitLease(ctx, admin, "acme", reservation(8, 1+c*each+i, 1))
				if err != nil {
					t.Error(err)
					return
				}
				pending = append(pending, p)
				time.Sleep(st.delay / 2)
			}
			for _, p := range pending {
				v, err := p.Wait()
				res, _ := v.(engine.LeaseResult)
				ids[c] = append(ids[c], res.Lease.ID)
				errs[c] = append(errs[c], err)
			}
		})
	}
	wg.Wait()

	failed, stale := 0, 0
	for c := range clients {
		for i, err := range errs[c] {
			if err != nil {
				failed++
				if strings.Contains(err.Error(), "earlier batch") {
					stale++
				}
				continue
			}
			if _, err := st.Lease(ctx, ids[c][i]); err != nil {
				t.Errorf("lease %s answered admitted, not stored: %v", ids[c][i], err)
			}
		}
	}
	if failed == 0 || failed == clients*each {
		t.Errorf("%d of %d requests failed; want those of the failed commit only", failed, clients*each)
	}
	stored, err := st.Leases(ctx, engine.LeaseFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != clients*each-failed {
		t.Errorf("%d leases stored, %d answered admitted", len(stored), clients*each-failed)
	}
	commits := st.updates.Load() - before
	t.Logf("%d requests, %d commits, %d failed (%d applied after the failed batch)", clients*each, commits, failed, stale)
	if commits > clients {
		t.Errorf("%d commits for %d requests from %d clients: want them grouped", commits, clients*each, clients)
	}

	fresh, err := engine.New(engine.Config{Store: st.Store, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	got, err := e.Capacity(ctx, admin, pool, t0, t0.Add(100*time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want, err := fresh.Capacity(ctx, admin, pool, t0, t0.Add(100*time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("capacity after the failed commit (-rebuilt +in memory):\n%s", diff)
	}
}

// TestSync: reads after Sync see the commands submitted before it, before
// their commit answers them; Sync on a closed engine says so.
func TestSync(t *testing.T) {
	st := &slowStore{Store: sqlite.OpenTest(t)}
	e, clk := setup(t, st, 1_000_000)
	ctx := context.Background()
	clk.Set(t0.Add(10 * time.Minute))
	st.delay = 20 * time.Millisecond
	var pending []engine.Pending
	for _, gpus := range []int64{8, 16, 24} {
		p, err := e.SubmitInternalUse(ctx, admin, pool, gpus)
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, p)
	}
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := e.SpotMarkets(ctx, admin, pool)
	if err != nil {
		t.Fatal(err)
	}
	if m[0].Internal != 24 {
		t.Errorf("internal use after Sync: %d GPUs, want 24 (the last one submitted)", m[0].Internal)
	}
	for _, p := range pending {
		if _, err := p.Wait(); err != nil {
			t.Error(err)
		}
	}
	e.Close()
	if err := e.Sync(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Sync after Close: got %v, want ErrClosed", err)
	}
}
