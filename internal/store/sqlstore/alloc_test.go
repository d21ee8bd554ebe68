package sqlstore

import (
	"math"
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

// TestRTreeMinutes checks that intervals that overlap get minute ranges
// that intersect, and that minute-aligned intervals that do not overlap
// get ranges that do not.
func TestRTreeMinutes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		us := rapid.OneOf(rapid.Int64Range(-1e12, 1e12), rapid.Int64Range(math.MinInt64/4, math.MaxInt64/4))
		s1 := us.Draw(t, "s1")
		e1 := s1 + rapid.Int64Range(1, 1e12).Draw(t, "len1")
		s2 := s1 + rapid.Int64Range(-2e12, 2e12).Draw(t, "off2")
		e2 := s2 + rapid.Int64Range(1, 1e12).Draw(t, "len2")
		lo1, hi1 := rtreeMinutes(time.UnixMicro(s1), time.UnixMicro(e1))
		lo2, hi2 := rtreeMinutes(time.UnixMicro(s2), time.UnixMicro(e2))
		if lo1 > hi1 || lo2 > hi2 {
			t.Fatalf("empty minute range: [%d, %d], [%d, %d]", lo1, hi1, lo2, hi2)
		}
		overlap := s1 < e2 && s2 < e1
		if overlap && (lo1 > hi2 || lo2 > hi1) {
			t.Fatalf("[%d, %d) and [%d, %d) overlap, minutes [%d, %d] and [%d, %d] do not", s1, e1, s2, e2, lo1, hi1, lo2, hi2)
		}
	})
	const m = minuteMicros
	for _, tc := range []struct{ s, e, lo, hi int64 }{
		{0, m, 0, 0},
		{0, m + 1, 0, 1},
		{m, 2 * m, 1, 1},
		{-1, 1, -1, 0},
		{-m, 0, -1, -1},
		{-m - 1, -m, -2, -2},
		{math.MaxInt64 / 2, math.MaxInt64/2 + 1, math.MaxInt32, math.MaxInt32},
		{math.MinInt64 / 2, math.MinInt64/2 + 1, math.MinInt32, math.MinInt32},
	} {
		lo, hi := rtreeMinutes(time.UnixMicro(tc.s), time.UnixMicro(tc.e))
		if lo != tc.lo || hi != tc.hi {
			t.Errorf("rtreeMinutes(%d, %d) = [%d, %d], want [%d, %d]", tc.s, tc.e, lo, hi, tc.lo, tc.hi)
		}
	}
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
