package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/lease"
)

// chunkStore records the leases each InsertLeases of its one Update
// writes, reports each call on wrote, fails the failAt-th (counting from
// 1; 0: none) and fails the commit when failCommit is set.
type chunkStore struct {
	Store
	failAt     int
	failCommit bool
	calls      [][]string
	wrote      chan struct{}
	updates    int
}

func (s *chunkStore) Update(ctx context.Context, fn func(Tx) error) error {
	s.updates++
	if err := fn(chunkTx{s: s}); err != nil {
		return err
	}
	if s.failCommit {
		return errors.New("disk full")
	}
	return nil
}

type chunkTx struct {
	Tx
	s *chunkStore
}

func (t chunkTx) InsertLeases(_ context.Context, ls []lease.Lease) error {
	defer func() { t.s.wrote <- struct{}{} }()
	var ids []string
	for _, l := range ls {
		ids = append(ids, l.ID)
	}
	t.s.calls = append(t.s.calls, ids)
	if len(t.s.calls) == t.s.failAt {
		return errors.New("disk full")
	}
	return nil
}

// TestCommitOverlapsApply: the committer writes each chunk of a batch as
// the writer publishes it, in one transaction that commits once the batch
// is sealed; when a chunk's write or the commit fails, every command of
// the batch with effects gets the error, those published after the
// failure too, and the in-memory state is dropped.
func TestCommitOverlapsApply(t *testing.T) {
	tests := []struct {
		name       string
		failAt     int
		failCommit bool
		// reload, when set, loads the state again from the store (a
		// fleet change, the calendars' yearly roll) once the second
		// chunk is written: the batch's commands are not in it.
		reload    bool
		wantCalls [][]string
		wantOK    bool
	}{
		{name: "each chunk written as published, one commit", wantCalls: [][]string{{"a", "b"}, {"c"}, {"d", "e"}}, wantOK: true},
		{name: "the second chunk's write fails", failAt: 2, wantCalls: [][]string{{"a", "b"}, {"c"}}},
		{name: "the commit fails", failCommit: true, wantCalls: [][]string{{"a", "b"}, {"c"}, {"d", "e"}}},
		{name: "the state is loaded again mid-batch", reload: true, wantCalls: [][]string{{"a", "b"}, {"c"}, {"d", "e"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &chunkStore{failAt: tt.failAt, failCommit: tt.failCommit, wrote: make(chan struct{}, 8)}
			e := &Engine{store: st, cap: &capState{}, gen: 7}
			j := newJob(8)
			j.gen = e.gen
			// appendChunk applies commands into j: admissions of the IDs
			// given, a refusal (no effects) for "refused".
			appendChunk := func(ids ...string) {
				for _, id := range ids {
					j.batch = append(j.batch, &op{ctx: context.Background()})
					j.results = append(j.results, opResult{val: id})
					var eff *effect
					if id != "refused" {
						eff = &effect{insertLease: &lease.Lease{ID: id}}
					}
					j.effects = append(j.effects, eff)
					j.applied = append(j.applied, time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC))
				}
			}
			done := make(chan bool)
			go func() { done <- e.commit(j) }()
			for i, chunk := range [][]string{{"a", "b"}, {"refused", "c"}, {"d", "e"}} {
				appendChunk(chunk...)
				j.publish(i == 2)
				if i < len(tt.wantCalls) {
					<-st.wrote // written before the writer applies the next chunk
				}
				if tt.reload && i == 1 {
					e.capMu.Lock()
					e.cap, e.gen = &capState{}, e.gen+1 // as loadedLocked does
					e.capMu.Unlock()
				}
			}
			ok := <-done
			if ok != tt.wantOK {
				t.Errorf("commit = %v, want %v", ok, tt.wantOK)
			}
			if diff := cmp.Diff(tt.wantCalls, st.calls); diff != "" {
				t.Errorf("inserts (-want +got):\n%s", diff)
			}
			if st.updates != 1 {
				t.Errorf("%d transactions, want 1", st.updates)
			}
			for i, r := range j.results {
				failed := r.err != nil
				if want := !tt.wantOK && j.effects[i] != nil; failed != want {
					t.Errorf("command %d (%v): error %v, want failed %v", i, r.val, r.err, want)
				}
			}
			if tt.reload {
				// Nothing committed (the fn failed: chunkStore commits
				// only when it returns nil), and the state loaded
				// meanwhile stays: it holds what the store does.
				if e.cap == nil || e.gen != 8 {
					t.Errorf("after the stale commit: state %v, generation %d; want the reloaded state kept, generation 8", e.cap, e.gen)
				}
				for i, r := range j.results {
					if j.effects[i] != nil && !errors.Is(r.err, errStaleBatch) {
						t.Errorf("command %d: error %v, want %v", i, r.err, errStaleBatch)
					}
				}
				return
			}
			if dropped := e.cap == nil && e.gen == 8; dropped == tt.wantOK {
				t.Errorf("after the commit: state dropped %v, want %v", dropped, !tt.wantOK)
			}
		})
	}
}
