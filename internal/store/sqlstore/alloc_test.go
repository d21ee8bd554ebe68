package sqlstore

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/neocloud/neocloud/internal/lease"
)

func TestPow2Chunks(t *testing.T) {
	for _, tc := range []struct {
		n, most int
		want    [][2]int // start, length
	}{
		{0, 500, nil},
		{1, 500, [][2]int{{0, 1}}},
		{256, 500, [][2]int{{0, 256}}},
		{300, 500, [][2]int{{0, 256}, {256, 32}, {288, 8}, {296, 4}}},
		{600, 500, [][2]int{{0, 256}, {256, 256}, {512, 64}, {576, 16}, {592, 8}}},
		{7, 4, [][2]int{{0, 4}, {4, 2}, {6, 1}}},
	} {
		var got [][2]int
		for start, batch := range pow2Chunks(make([]int, tc.n), tc.most) {
			got = append(got, [2]int{start, len(batch)})
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("pow2Chunks(%d, %d) (-want +got):\n%s", tc.n, tc.most, diff)
		}
	}
}

// TestAllocIndex drives an allocIndex with random inserts (checked first,
// as InsertAllocations does), ends and rollbacks, and compares its answers
// with a brute-force model: overlap finds an overlapping allocation, and
// the one of least ID, exactly when one exists; held agrees; a rollback
// restores what was.
func TestAllocIndex(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ix := &allocIndex{}
		ix.reset()
		var model []allocRec
		type saved struct {
			mark  int
			model []allocRec
		}
		var marks []saved
		overlaps := func(a allocRec, from, to, s, e int64) bool {
			return a.from < to && from < a.to && a.startUS < e && s < a.endUS
		}
		// Ordinals and instants in units that put allocations in cells of
		// every level, and some loose.
		const hour = int64(1) << 32 // µs, about 72 minutes
		from := rapid.OneOf(rapid.Int64Range(1, 200), rapid.Int64Range(1, 1<<21), rapid.Int64Range(-5, 5))
		length := rapid.OneOf(rapid.Int64Range(1, 70), rapid.Int64Range(1, 1<<23))
		instant := rapid.OneOf(rapid.Int64Range(0, 40*hour), rapid.Int64Range(-1<<62, 1<<62))
		duration := rapid.OneOf(rapid.Int64Range(1, 20*hour), rapid.Int64Range(1, 1<<60), rapid.Int64Range(1, 3))
		rect := func() (int64, int64, int64, int64) {
			f := from.Draw(t, "from")
			st := instant.Draw(t, "start")
			return f, f + length.Draw(t, "len"), st, st + duration.Draw(t, "duration")
		}
		n := 0
		for range rapid.IntRange(1, 80).Draw(t, "steps") {
			switch rapid.IntRange(0, 11).Draw(t, "op") {
			case 0, 1, 2, 3, 4, 5: // check, then insert when free (or, as a load would, anyway)
				f, to, st, e := rect()
				want := ""
				for _, a := range model {
					if overlaps(a, f, to, st, e) && (want == "" || a.id < want) {
						want = a.id
					}
				}
				got := ""
				if r := ix.overlap(f, to, st, e); r >= 0 {
					got = ix.recs[r].id
				}
				if got != want {
					t.Fatalf("overlap(%d, %d, %d, %d) = %q, want %q (model %v)", f, to, st, e, got, want, model)
				}
				if want == "" || rapid.IntRange(0, 3).Draw(t, "force") == 0 {
					n++
					r := allocRec{id: fmt.Sprintf("a%03d", n), from: f, to: to, startUS: st, endUS: e}
					ix.insert(r)
					model = append(model, r)
				}
			case 6, 7: // end
				if len(model) == 0 {
					continue
				}
				i := rapid.IntRange(0, len(model)-1).Draw(t, "end")
				a := model[i]
				at := a.startUS + rapid.Int64Range(-1, a.endUS-a.startUS+1).Draw(t, "at")
				if !ix.end(a.id, at) {
					t.Fatalf("end(%s): not indexed", a.id)
				}
				model = slices.Clone(model)
				switch {
				case a.startUS >= at:
					model = slices.Delete(model, i, i+1)
				case a.endUS > at:
					model[i].endUS = at
				}
			case 8: // mark
				marks = append(marks, saved{ix.mark(), slices.Clone(model)})
			case 9, 10: // roll back to the last mark
				if len(marks) == 0 {
					continue
				}
				m := marks[len(marks)-1]
				marks = marks[:len(marks)-1]
				ix.rollbackTo(m.mark)
				model = m.model
			case 11: // held agrees with the model
				ords := slices.Compact(slices.Sorted(slices.Values(rapid.SliceOfN(from, 1, 5).Draw(t, "held"))))
				at := instant.Draw(t, "held_at")
				got := ix.held(ords, at)
				for k, o := range ords {
					want := slices.ContainsFunc(model, func(a allocRec) bool { return a.from <= o && o < a.to && a.endUS > at })
					if got[k] != want {
						t.Fatalf("held(%d, %d) = %v, want %v (model %v)", o, at, got[k], want, model)
					}
				}
			}
			if len(ix.byID) != len(model) {
				t.Fatalf("%d allocations indexed, want %d", len(ix.byID), len(model))
			}
		}
	})
}

// TestOverlapWithin compares overlapWithin with a brute-force search.
func TestOverlapWithin(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 30).Draw(t, "n")
		as := make([]lease.Allocation, n)
		t0 := time.Unix(0, 0)
		for i := range as {
			from := rapid.Int64Range(0, 20).Draw(t, "from")
			start := rapid.IntRange(0, 20).Draw(t, "start")
			as[i] = lease.Allocation{ID: string(rune('a' + i)), NodeFrom: from, NodeTo: from + rapid.Int64Range(1, 5).Draw(t, "len"),
				Start: t0.Add(time.Duration(start) * time.Hour), End: t0.Add(time.Duration(start+rapid.IntRange(1, 5).Draw(t, "hours")) * time.Hour)}
		}
		want, wantOther := -1, ""
	search:
		for i := range as {
			for j := range i {
				if as[i].Overlaps(as[j]) {
					want, wantOther = i, as[j].ID
					break search
				}
			}
		}
		got, other := overlapWithin(as)
		if got != want {
			t.Fatalf("overlapWithin = %d, want %d", got, want)
		}
		if j := slices.IndexFunc(as, func(a lease.Allocation) bool { return a.ID == other }); got >= 0 && (j < 0 || j >= got || !as[got].Overlaps(as[j])) {
			t.Fatalf("overlapWithin names %s, not an earlier allocation that %s overlaps (brute force: %s)", other, as[got].ID, wantOther)
		}
	})
}
