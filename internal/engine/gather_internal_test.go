package engine

import "testing"

// TestGather: the writer takes the queued commands applyChunk at a time,
// within the room the batch being built has left (maxBatch), so that an
// idle committer gets the first of a burst's commands after applyChunk of
// them are applied, not after all.
func TestGather(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		queued  int // behind the first command
		batched int // in the batch being built; 0: none yet
		want    int
	}{
		"alone":                       {queued: 0, want: 1},
		"a few queued":                {queued: 9, want: 10},
		"exactly a chunk":             {queued: applyChunk - 1, want: applyChunk},
		"a burst, new batch":          {queued: maxBatch - 1, want: applyChunk},
		"a burst, batch under way":    {queued: maxBatch - 1, batched: 100, want: applyChunk},
		"the batch has less room":     {queued: maxBatch - 1, batched: maxBatch - 10, want: 10},
		"the batch has room for one":  {queued: 5, batched: maxBatch - 1, want: 1},
		"fewer queued than the chunk": {queued: 20, batched: maxBatch - 100, want: 21},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := &Engine{ops: make(chan *op, maxBatch)}
			for range tc.queued {
				e.ops <- &op{}
			}
			var next *job
			if tc.batched > 0 {
				next = &job{batch: make([]*op, tc.batched)}
			}
			first := &op{}
			got := e.gather(first, next)
			if len(got) != tc.want || got[0] != first {
				t.Errorf("gathered %d commands (first %t), want %d starting with the first", len(got), got[0] == first, tc.want)
			}
			if left := len(e.ops); left != tc.queued-(tc.want-1) {
				t.Errorf("%d commands left queued, want %d", left, tc.queued-(tc.want-1))
			}
		})
	}
}
