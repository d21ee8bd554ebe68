package calendar

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"time"
)

// Calendar holds one int64 value per hourly UTC slot over a fixed horizon.
// The zero Calendar is not usable; make one with New.
//
// The tree has size leaves, the smallest power of two >= slots; node 1 is
// the root and node n has children 2n and 2n+1, so leaf i is node size+i.
// Leaves past slots are padding: every operation clamps its range to
// [0, slots) and only reads a node's summary when the node lies wholly
// inside the range, so padding never reaches a result.
//
// A node's summaries and pending delta sit side by side (24 bytes): a
// walk reads each node it visits from one cache line, where three arrays
// cost up to three; queries are bound by cache misses, not arithmetic.
type Calendar struct {
	origin time.Time
	slots  int
	size   int
	t      []node
}

// node is one node of the tree. min and max are the least and greatest
// values under it, counting the deltas added at it and below it but not
// those pending at its ancestors: the true value is min plus the adds on
// its path to the root. add is the delta pending for every slot under an
// internal node; a leaf's is always 0, folded into min and max.
type node struct {
	min, max, add int64
}

// New returns a calendar of slots hourly slots, all 0, starting at origin
// truncated to the UTC hour. It panics if slots <= 0.
//
// Memory is 48 bytes per leaf of the padded tree: 43,800 slots (five years)
// pad to 65,536 leaves and take 3 MiB.
func New(origin time.Time, slots int) *Calendar {
	if slots <= 0 {
		panic(fmt.Sprintf("calendar: New with %d slots, want at least 1", slots))
	}
	size := 1 << bits.Len(uint(slots-1))
	if bits.Len(uint(size)) > maxLevels {
		panic(fmt.Sprintf("calendar: New with %d slots, want at most 2^%d", slots, maxLevels))
	}
	return &Calendar{
		origin: origin.UTC().Truncate(time.Hour),
		slots:  slots,
		size:   size,
		t:      make([]node, 2*size),
	}
}

// Origin returns the start of slot 0, a UTC time on the hour.
func (c *Calendar) Origin() time.Time { return c.origin }

// Slots returns the number of slots.
func (c *Calendar) Slots() int { return c.slots }

// End returns the end of the last slot: Origin plus Slots hours.
func (c *Calendar) End() time.Time { return c.Time(c.slots) }

// Floor returns the index of the slot that contains t. It does not clamp:
// a time before Origin gives a negative index and one at or after End an
// index >= Slots, which range operations then clamp.
func (c *Calendar) Floor(t time.Time) int {
	d := t.Sub(c.origin)
	q := d / time.Hour
	if d%time.Hour < 0 {
		q--
	}
	return int(q)
}

// Ceil returns the smallest slot index whose start is at or after t: Floor(t)
// when t is on a slot boundary, Floor(t)+1 otherwise. Like Floor it does not
// clamp. A lease over [start, end) covers slots [Floor(start), Ceil(end)).
func (c *Calendar) Ceil(t time.Time) int {
	d := t.Sub(c.origin)
	q := d / time.Hour
	if d%time.Hour > 0 {
		q++
	}
	return int(q)
}

// Time returns the start of slot, in UTC. It accepts any index, including
// negative ones and those >= Slots.
func (c *Calendar) Time(slot int) time.Time {
	return c.origin.Add(time.Duration(slot) * time.Hour)
}

// clamp restricts [from, to) to [0, Slots). The result may be empty
// (from >= to).
func (c *Calendar) clamp(from, to int) (int, int) {
	return max(from, 0), min(to, c.slots)
}

// Add adds delta to every slot in [from, to), clamped to [0, Slots). An empty
// range, after clamping, is a no-op.
//
// It walks up from the range's two ends (a bottom-up segment tree): the
// nodes that tile the range take the delta, then the summaries on the two
// paths above the ends are recomputed.
func (c *Calendar) Add(from, to int, delta int64) {
	from, to = c.clamp(from, to)
	if from >= to || delta == 0 {
		return
	}
	l, r := from+c.size, to+c.size
	for l < r {
		if l&1 == 1 {
			c.apply(l, delta)
			l++
		}
		if r&1 == 1 {
			r--
			c.apply(r, delta)
		}
		l, r = l>>1, r>>1
	}
	// The two paths, level by level; they meet and go on as one.
	for a, b := (from+c.size)>>1, (to-1+c.size)>>1; a > 0; a, b = a>>1, b>>1 {
		c.pull(a)
		if b != a {
			c.pull(b)
		}
	}
}

// apply adds delta to every slot under node n.
func (c *Calendar) apply(n int, delta int64) {
	t := &c.t[n]
	t.min += delta
	t.max += delta
	if n < c.size {
		t.add += delta
	}
}

// pull recomputes the summaries of internal node n from its children.
func (c *Calendar) pull(n int) {
	t, l, r := &c.t[n], &c.t[2*n], &c.t[2*n+1]
	t.min = min(l.min, r.min) + t.add
	t.max = max(l.max, r.max) + t.add
}

// At returns the value of slot. It panics if slot is outside [0, Slots).
func (c *Calendar) At(slot int) int64 {
	if slot < 0 || slot >= c.slots {
		panic(fmt.Sprintf("calendar: At(%d) outside [0, %d)", slot, c.slots))
	}
	n := c.size + slot
	v := c.t[n].min
	for n >>= 1; n > 0; n >>= 1 {
		v += c.t[n].add
	}
	return v
}

// Min returns the least value over [from, to), clamped to [0, Slots). It
// returns math.MaxInt64, the identity of min, when the clamped range is
// empty, so "Min(a, b) >= need" holds for every need over an empty range.
func (c *Calendar) Min(from, to int) int64 {
	from, to = c.clamp(from, to)
	if from >= to {
		return math.MaxInt64
	}
	return c.minOf(from, to)
}

// Ceiling returns a value no slot's exceeds, in O(1): the greatest value
// over all slots, or 0 when that is below 0 and the tree has padding
// leaves (which stay 0).
func (c *Calendar) Ceiling() int64 { return c.t[1].max }

// Max returns the greatest value over [from, to), clamped to [0, Slots). It
// returns math.MinInt64, the identity of max, when the clamped range is
// empty.
func (c *Calendar) Max(from, to int) int64 {
	from, to = c.clamp(from, to)
	if from >= to {
		return math.MinInt64
	}
	return c.maxOf(from, to)
}

// maxOf returns the greatest value over the non-empty, in-range
// [from, to), bottom up: the nodes that tile the range are read from the
// two ends upward. A node's summary leaves out the adds pending at its
// ancestors; the parent of a node taken at the left end holds slot from-1
// (its left sibling does), so every ancestor of such a node is one of slot
// from-1, and those adds are added level by level as the walk climbs;
// likewise slot to for the right end. minOf is the same for the least.
func (c *Calendar) maxOf(from, to int) int64 {
	const none = math.MinInt64
	left, right := int64(none), int64(none)
	lb, rb := c.bounds(from, to)
	t := c.t
	l, r := from+c.size, to+c.size
	for l < r {
		if l&1 == 1 {
			left = max(left, t[l].max)
			l++
		}
		if r&1 == 1 {
			r--
			right = max(right, t[r].max)
		}
		l, r, lb, rb = l>>1, r>>1, lb>>1, rb>>1
		if left != none {
			left += t[lb].add
		}
		if right != none {
			right += t[rb].add
		}
	}
	for lb > 1 || rb > 1 {
		lb, rb = lb>>1, rb>>1
		if left != none {
			left += t[lb].add
		}
		if right != none {
			right += t[rb].add
		}
	}
	return max(left, right)
}

func (c *Calendar) minOf(from, to int) int64 {
	const none = math.MaxInt64
	left, right := int64(none), int64(none)
	lb, rb := c.bounds(from, to)
	t := c.t
	l, r := from+c.size, to+c.size
	for l < r {
		if l&1 == 1 {
			left = min(left, t[l].min)
			l++
		}
		if r&1 == 1 {
			r--
			right = min(right, t[r].min)
		}
		l, r, lb, rb = l>>1, r>>1, lb>>1, rb>>1
		if left != none {
			left += t[lb].add
		}
		if right != none {
			right += t[rb].add
		}
	}
	for lb > 1 || rb > 1 {
		lb, rb = lb>>1, rb>>1
		if left != none {
			left += t[lb].add
		}
		if right != none {
			right += t[rb].add
		}
	}
	return min(left, right)
}

// bounds returns the leaves of slots from-1 and to, from which maxOf and
// minOf climb the paths whose adds they count; 0 (whose add is always 0)
// for a slot outside the tree, where no node is taken on that side below
// the root.
func (c *Calendar) bounds(from, to int) (lb, rb int) {
	if from > 0 {
		lb = from - 1 + c.size
	}
	if to < c.size {
		rb = to + c.size
	}
	return lb, rb
}

// maxLevels bounds a tree's levels below the root: 2^maxLevels leaves is
// far more slots than memory holds.
const maxLevels = 48

// Span is a read of a range of a calendar: its greatest value, and the
// nodes that tile the range with the adds pending above each, so that
// LastAbove finds the last slot above a limit without walking the range's
// ends again. PowerShift-like searches ask for the greatest value and then
// for the last slot above a limit that depends on it. Fill one with
// Calendar.Span; it is valid until the calendar changes.
type Span struct {
	c           *Calendar
	max         int64
	nl, nr      int
	left, right [maxLevels]spanNode // taken left to right, and right to left
}

type spanNode struct {
	n   int32 // node
	acc int64 // adds pending at its ancestors
}

// Span reads [from, to), clamped to [0, Slots), into sp and returns its
// greatest value, math.MinInt64 when the clamped range is empty (as Max).
func (c *Calendar) Span(from, to int, sp *Span) int64 {
	from, to = c.clamp(from, to)
	sp.c, sp.nl, sp.nr, sp.max = c, 0, 0, math.MinInt64
	if from >= to {
		return sp.max
	}
	// As maxOf, noting each node taken with the adds counted so far on
	// its side's path: those below it. The adds above it are the path's
	// total less those.
	lb, rb := c.bounds(from, to)
	t := c.t
	var pl, pr int64
	l, r := from+c.size, to+c.size
	for l < r {
		if l&1 == 1 {
			sp.left[sp.nl] = spanNode{int32(l), pl}
			sp.nl++
			l++
		}
		if r&1 == 1 {
			r--
			sp.right[sp.nr] = spanNode{int32(r), pr}
			sp.nr++
		}
		l, r, lb, rb = l>>1, r>>1, lb>>1, rb>>1
		pl += t[lb].add
		pr += t[rb].add
	}
	for lb > 1 || rb > 1 {
		lb, rb = lb>>1, rb>>1
		pl += t[lb].add
		pr += t[rb].add
	}
	m := int64(math.MinInt64)
	for i := range sp.nl {
		e := &sp.left[i]
		e.acc = pl - e.acc
		m = max(m, t[e.n].max+e.acc)
	}
	for i := range sp.nr {
		e := &sp.right[i]
		e.acc = pr - e.acc
		m = max(m, t[e.n].max+e.acc)
	}
	sp.max = m
	return m
}

// Max returns the greatest value of the range read, as Calendar.Max.
func (sp *Span) Max() int64 { return sp.max }

// LastAbove returns the last slot of the range read whose value is >
// limit, or -1 if there is none, as Calendar.LastAbove.
func (sp *Span) LastAbove(limit int64) int {
	if sp.max <= limit {
		return -1
	}
	t := sp.c.t
	for i := range sp.nr {
		if e := sp.right[i]; t[e.n].max+e.acc > limit {
			return sp.c.lastOver(int(e.n), e.acc, limit)
		}
	}
	for i := sp.nl - 1; i >= 0; i-- {
		if e := sp.left[i]; t[e.n].max+e.acc > limit {
			return sp.c.lastOver(int(e.n), e.acc, limit)
		}
	}
	return -1
}

// lastOver returns the last slot under node n, whose ancestors add acc to
// it and which holds a value > limit, whose value is > limit.
func (c *Calendar) lastOver(n int, acc, limit int64) int {
	t := c.t
	for n < c.size {
		acc += t[n].add
		n = 2*n + 1
		if t[n].max+acc <= limit {
			n--
		}
	}
	return n - c.size
}

// FirstBelow returns the first slot s in [from, to), clamped to [0, Slots),
// whose value is < limit, or -1 if there is none or the range is empty.
func (c *Calendar) FirstBelow(from, to int, limit int64) int {
	from, to = c.clamp(from, to)
	if from >= to {
		return -1
	}
	return c.firstBelow(1, 0, c.size, from, to, limit, 0)
}

// firstBelow searches node n, whose ancestors add acc to it. Comparing
// its min+acc, a true value, with limit rather than min with limit-acc
// keeps the comparison free of overflow at any limit.
func (c *Calendar) firstBelow(n, lo, hi, from, to int, limit, acc int64) int {
	if from <= lo && hi <= to {
		if c.t[n].min+acc >= limit {
			return -1
		}
		// The answer is under n: take the leftmost child that holds one.
		for n < c.size {
			acc += c.t[n].add
			n *= 2
			if c.t[n].min+acc >= limit {
				n++
			}
		}
		return n - c.size
	}
	acc += c.t[n].add
	mid := lo + (hi-lo)/2
	if from < mid {
		if s := c.firstBelow(2*n, lo, mid, from, to, limit, acc); s >= 0 {
			return s
		}
	}
	if to > mid {
		return c.firstBelow(2*n+1, mid, hi, from, to, limit, acc)
	}
	return -1
}

// lastBelow returns the last slot in the non-empty, in-range [from, to)
// whose value is < limit, or -1.
func (c *Calendar) lastBelow(n, lo, hi, from, to int, limit, acc int64) int {
	if from <= lo && hi <= to {
		if c.t[n].min+acc >= limit {
			return -1
		}
		for n < c.size {
			acc += c.t[n].add
			n = 2*n + 1
			if c.t[n].min+acc >= limit {
				n--
			}
		}
		return n - c.size
	}
	acc += c.t[n].add
	mid := lo + (hi-lo)/2
	if to > mid {
		if s := c.lastBelow(2*n+1, mid, hi, from, to, limit, acc); s >= 0 {
			return s
		}
	}
	if from < mid {
		return c.lastBelow(2*n, lo, mid, from, to, limit, acc)
	}
	return -1
}

// FirstAbove returns the first slot s in [from, to), clamped to [0, Slots),
// whose value is > limit, or -1 if there is none or the range is empty.
func (c *Calendar) FirstAbove(from, to int, limit int64) int {
	from, to = c.clamp(from, to)
	if from >= to || limit == math.MaxInt64 {
		return -1
	}
	return c.firstAtLeast(1, 0, c.size, from, to, limit+1, 0)
}

// LastAbove returns the last slot s in [from, to), clamped to [0, Slots),
// whose value is > limit, or -1 if there is none or the range is empty.
// Every window that holds s has a value above limit: a search for a window
// whose greatest value is at most limit may go on from s+1.
func (c *Calendar) LastAbove(from, to int, limit int64) int {
	from, to = c.clamp(from, to)
	if from >= to || limit == math.MaxInt64 {
		return -1
	}
	return c.lastAtLeast(1, 0, c.size, from, to, limit+1, 0)
}

// lastAtLeast returns the last slot in the non-empty, in-range [from, to)
// whose value is >= limit, or -1.
func (c *Calendar) lastAtLeast(n, lo, hi, from, to int, limit, acc int64) int {
	if from <= lo && hi <= to {
		if c.t[n].max+acc < limit {
			return -1
		}
		for n < c.size {
			acc += c.t[n].add
			n = 2*n + 1
			if c.t[n].max+acc < limit {
				n--
			}
		}
		return n - c.size
	}
	acc += c.t[n].add
	mid := lo + (hi-lo)/2
	if to > mid {
		if s := c.lastAtLeast(2*n+1, mid, hi, from, to, limit, acc); s >= 0 {
			return s
		}
	}
	if from < mid {
		return c.lastAtLeast(2*n, lo, mid, from, to, limit, acc)
	}
	return -1
}

// firstAtLeast returns the first slot in the non-empty, in-range [from, to)
// whose value is >= limit, or -1.
func (c *Calendar) firstAtLeast(n, lo, hi, from, to int, limit, acc int64) int {
	if from <= lo && hi <= to {
		if c.t[n].max+acc < limit {
			return -1
		}
		for n < c.size {
			acc += c.t[n].add
			n *= 2
			if c.t[n].max+acc < limit {
				n++
			}
		}
		return n - c.size
	}
	acc += c.t[n].add
	mid := lo + (hi-lo)/2
	if from < mid {
		if s := c.firstAtLeast(2*n, lo, mid, from, to, limit, acc); s >= 0 {
			return s
		}
	}
	if to > mid {
		return c.firstAtLeast(2*n+1, mid, hi, from, to, limit, acc)
	}
	return -1
}

// EarliestFit returns the earliest start s >= max(from, 0) with
// s+length <= min(before, Slots) such that Min(s, s+length) >= need, and
// ok = true; it returns -1 and false when there is none. A length <= 0 asks
// for an empty window, which fits at max(from, 0) whenever that is <= before
// and <= Slots.
//
// Each step is O(log n): it finds the last slot below need in the current
// window, which every window starting at or before it would also hold, then
// jumps to the first slot at or above need after it. Steps are bounded by the
// number of runs of slots below need between from and the answer.
func (c *Calendar) EarliestFit(from, before, length int, need int64) (start int, ok bool) {
	s, end := c.clamp(from, before)
	length = max(length, 0)
	for s <= end-length {
		if length == 0 {
			return s, true
		}
		k := c.lastBelow(1, 0, c.size, s, s+length, need, 0)
		if k < 0 {
			return s, true
		}
		if k+1 >= end {
			break
		}
		if s = c.firstAtLeast(1, 0, c.size, k+1, end, need, 0); s < 0 {
			break
		}
	}
	return -1, false
}

// Clone returns a deep copy of c that shares no memory with it, for
// what-if quotes that must not touch the live calendar.
func (c *Calendar) Clone() *Calendar {
	d := *c
	d.t = slices.Clone(c.t)
	return &d
}
