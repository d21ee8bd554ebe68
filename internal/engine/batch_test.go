package engine_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/store/sqlite"
)

// slowStore makes every commit take at least delay once fn has written
// its rows (as a commit's fsync does), and fails the failAt-th Update
// (counting from 1; 0: none) there, rolling back what fn wrote.
type slowStore struct {
	engine.Store
	delay   time.Duration
	failAt  int32
	updates atomic.Int32
}

func (s *slowStore) Update(ctx context.Context, fn func(engine.Tx) error) error {
	n := s.updates.Add(1)
	return s.Store.Update(ctx, func(tx engine.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		time.Sleep(s.delay)
		if n == s.failAt {
			return errors.New("disk full")
		}
		return nil
	})
}

// failTxStore fails the failAt-th InsertLeases (counting from 1) of its
// Updates; stall delays the ones before it, so that the writer applies
// more of the batch meanwhile.
type failTxStore struct {
	engine.Store
	failAt int32
	stall  time.Duration
	calls  atomic.Int32
}

func (s *failTxStore) Update(ctx context.Context, fn func(engine.Tx) error) error {
	return s.Store.Update(ctx, func(tx engine.Tx) error { return fn(failTx{Tx: tx, s: s}) })
}

type failTx struct {
	engine.Tx
	s *failTxStore
}

func (t failTx) InsertLeases(ctx context.Context, ls []lease.Lease) error {
	switch n := t.s.calls.Add(1); {
	case n == t.s.failAt:
		return errors.New("disk full")
	case n < t.s.failAt:
		time.Sleep(t.s.stall)
	}
	return t.Tx.InsertLeases(ctx, ls)
}

// TestFailedOverlappedCommit: the committer writes a batch's chunks while
// the writer applies more of it; when a write fails half-way, or the
// commit at the end does, every command of that batch is answered with
// the error (those applied after it on the dropped state too), nothing of
// it is stored, and the commands after it apply to the state rebuilt
// from the store.
func TestFailedOverlappedCommit(t *testing.T) {
	tests := []struct {
		name  string
		store func(engine.Store) engine.Store
	}{
		{"first chunk's insert fails", func(st engine.Store) engine.Store { return &failTxStore{Store: st, failAt: 2} }},
		{"a later chunk's insert fails", func(st engine.Store) engine.Store {
			return &failTxStore{Store: st, failAt: 3, stall: 5 * time.Millisecond}
		}},
		{"a chunk of a later batch fails", func(st engine.Store) engine.Store {
			return &failTxStore{Store: st, failAt: 4, stall: 5 * time.Millisecond}
		}},
		{"the commit fails", func(st engine.Store) engine.Store { return &slowStore{Store: st, failAt: 2} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := sqlite.OpenTest(t)
			e, clk := setup(t, base, 1_000_000)
			// The same engine state on the wrapped store: setup's writes
			// are done.
			e.Close()
			st := tt.store(base)
			e, err := engine.New(engine.Config{Store: st, Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			ctx := context.Background()
			// One command first, so that the committer waits for the
			// batch below rather than starting after all of it is applied.
			first, err := e.RequestLease(ctx, admin, "beta", reservation(8, 200, 1))
			if err != nil {
				t.Fatal(err)
			}
			admitted := []string{first.Lease.ID}
			const n = 1200 // more than two batches
			pending := make([]engine.Pending, n)
			for i := range pending {
				// 1 node in one of 100 hours: each fits (16 nodes, 12
				// requests an hour).
				if pending[i], err = e.SubmitLease(ctx, admin, "acme", reservation(8, 1+i%100, 1)); err != nil {
					t.Fatal(err)
				}
			}
			var failed []int
			for i, p := range pending {
				v, err := p.Wait()
				if err != nil {
					failed = append(failed, i)
					continue
				}
				admitted = append(admitted, v.(engine.LeaseResult).Lease.ID)
			}
			if len(failed) == 0 || len(failed) == n {
				t.Fatalf("%d of %d requests failed; want those of the failed batch (and of one applied on top of it)", len(failed), n)
			}
			// Batches are runs of consecutive commands, and the commands
			// after the failed one apply to the rebuilt state.
			if last := failed[len(failed)-1]; last-failed[0]+1 != len(failed) {
				t.Errorf("failed requests %v: want one run of consecutive ones", failed)
			}
			stored, err := base.Leases(ctx, engine.LeaseFilter{})
			if err != nil {
				t.Fatal(err)
			}
			var storedIDs []string
			for _, l := range stored {
				storedIDs = append(storedIDs, l.ID)
			}
			slices.Sort(storedIDs)
			slices.Sort(admitted)
			if diff := cmp.Diff(admitted, storedIDs); diff != "" {
				t.Errorf("stored leases (-answered admitted +stored):\n%s", diff)
			}
			t.Logf("%d requests, %d failed (%d..%d)", n, len(failed), failed[0], failed[len(failed)-1])

			fresh, err := engine.New(engine.Config{Store: base, Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			defer fresh.Close()
			got, err := e.Capacity(ctx, admin, pool, t0, t0.Add(110*time.Hour), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			want, err := fresh.Capacity(ctx, admin, pool, t0, t0.Add(110*time.Hour), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("capacity after the failed commit (-rebuilt +in memory):\n%s", diff)
			}
		})
	}
}

// TestGroupCommitUnderLoad: lease requests that arrive while a commit is
// in progress share the next one; when a commit fails, exactly the leases
// answered without an error are stored, and the in-memory capacity is the
// one a fresh engine rebuilds from the store.
func TestGroupCommitUnderLoad(t *testing.T) {
	st := &slowStore{Store: sqlite.OpenTest(t)}
	e, clk := setup(t, st, 1_000_000)
	ctx := context.Background()
	st.delay, st.failAt = 50*time.Millisecond, st.updates.Load()+2
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
