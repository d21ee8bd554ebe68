package calendar_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/neocloud/neocloud/internal/calendar"
)

var origin = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func TestNew(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	tests := map[string]struct {
		origin     time.Time
		slots      int
		wantOrigin time.Time
	}{
		"on the hour":    {origin, 10, origin},
		"one slot":       {origin, 1, origin},
		"inside an hour": {origin.Add(59*time.Minute + 59*time.Second + 999), 10, origin},
		"before zero":    {origin.Add(-time.Nanosecond), 10, origin.Add(-time.Hour)},
		"other zone":     {time.Date(2026, 3, 1, 1, 30, 0, 0, berlin), 10, origin},
		"half-hour zone": {time.Date(2026, 3, 1, 5, 15, 0, 0, time.FixedZone("IST", 5*3600+30*60)), 10, origin.Add(-time.Hour)},
		"five years":     {origin, 43800, origin},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			c := calendar.New(tt.origin, tt.slots)
			if got := c.Origin(); !got.Equal(tt.wantOrigin) || got.Location() != time.UTC {
				t.Errorf("Origin() = %v, want %v in UTC", got, tt.wantOrigin)
			}
			if got := c.Slots(); got != tt.slots {
				t.Errorf("Slots() = %d, want %d", got, tt.slots)
			}
			if end := tt.wantOrigin.Add(time.Duration(tt.slots) * time.Hour); !c.End().Equal(end) {
				t.Errorf("End() = %v, want %v", c.End(), end)
			}
			for s := range c.Slots() {
				if v := c.At(s); v != 0 {
					t.Fatalf("At(%d) = %d in a new calendar, want 0", s, v)
				}
			}
		})
	}
	for _, slots := range []int{0, -1, math.MinInt} {
		if !panics(func() { calendar.New(origin, slots) }) {
			t.Errorf("New(origin, %d) did not panic", slots)
		}
	}
}

func TestFloorCeilTime(t *testing.T) {
	c := calendar.New(origin, 24)
	tokyo := time.FixedZone("JST", 9*3600)
	tests := map[string]struct {
		t           time.Time
		floor, ceil int
	}{
		"origin":                 {origin, 0, 0},
		"just after origin":      {origin.Add(time.Nanosecond), 0, 1},
		"inside slot 0":          {origin.Add(30 * time.Minute), 0, 1},
		"just before slot 1":     {origin.Add(time.Hour - time.Nanosecond), 0, 1},
		"slot 1 boundary":        {origin.Add(time.Hour), 1, 1},
		"last slot":              {origin.Add(23*time.Hour + time.Minute), 23, 24},
		"end":                    {origin.Add(24 * time.Hour), 24, 24},
		"past end":               {origin.Add(100*time.Hour + time.Second), 100, 101},
		"just before origin":     {origin.Add(-time.Nanosecond), -1, 0},
		"an hour before":         {origin.Add(-time.Hour), -1, -1},
		"inside slot -2":         {origin.Add(-90 * time.Minute), -2, -1},
		"other zone on boundary": {time.Date(2026, 3, 1, 12, 0, 0, 0, tokyo), 3, 3},
		"other zone inside":      {time.Date(2026, 3, 1, 12, 15, 0, 0, tokyo), 3, 4},
		"other zone before":      {time.Date(2026, 3, 1, 8, 15, 0, 0, tokyo), -1, 0},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := [2]int{c.Floor(tt.t), c.Ceil(tt.t)}
			if diff := cmp.Diff([2]int{tt.floor, tt.ceil}, got); diff != "" {
				t.Errorf("Floor, Ceil (-want +got):\n%s", diff)
			}
			if start := c.Time(tt.floor); start.After(tt.t) || !start.Add(time.Hour).After(tt.t) {
				t.Errorf("Time(Floor(t)) = %v does not hold %v", start, tt.t)
			}
			if start := c.Time(tt.ceil); start.Before(tt.t) || !start.Add(-time.Hour).Before(tt.t) {
				t.Errorf("Time(Ceil(t)) = %v is not the first boundary at or after %v", start, tt.t)
			}
		})
	}
	for _, slot := range []int{-5, 0, 1, 23, 24, 1000} {
		got := c.Time(slot)
		if want := origin.Add(time.Duration(slot) * time.Hour); !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("Time(%d) = %v, want %v in UTC", slot, got, want)
		}
		if f, cl := c.Floor(got), c.Ceil(got); f != slot || cl != slot {
			t.Errorf("Floor, Ceil of Time(%d) = %d, %d", slot, f, cl)
		}
	}
}

// ranges is the calendar of 10 slots used by TestRanges:
//
//	slot   0  1  2  3  4  5  6  7  8  9
//	value  5  5  3  3  7  7  7  1  5  5
func ranges() *calendar.Calendar {
	c := calendar.New(origin, 10)
	c.Add(-100, 100, 5)
	c.Add(2, 4, -2)
	c.Add(4, 7, 2)
	c.Add(7, 8, -4)
	c.Add(3, 3, 1000) // empty
	c.Add(9, 2, 1000) // empty
	c.Add(10, 20, 1000)
	c.Add(-20, 0, 1000)
	return c
}

func TestRanges(t *testing.T) {
	c := ranges()
	want := []int64{5, 5, 3, 3, 7, 7, 7, 1, 5, 5}
	got := make([]int64, c.Slots())
	for s := range got {
		got[s] = c.At(s)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("values (-want +got):\n%s", diff)
	}
	type result struct {
		Min, Max                 int64
		FirstBelow4, FirstAbove6 int
		LastAbove4               int
	}
	tests := map[string]struct {
		from, to int
		want     result
	}{
		"all":             {0, 10, result{1, 7, 2, 4, 9}},
		"clamped both":    {-5, 50, result{1, 7, 2, 4, 9}},
		"one slot":        {4, 5, result{7, 7, -1, 4, 4}},
		"first slot":      {0, 1, result{5, 5, -1, -1, 0}},
		"last slot":       {9, 10, result{5, 5, -1, -1, 9}},
		"tail":            {5, 10, result{1, 7, 7, 5, 9}},
		"dip at the end":  {2, 8, result{1, 7, 2, 4, 6}},
		"from past end":   {10, 12, result{math.MaxInt64, math.MinInt64, -1, -1, -1}},
		"to before start": {-3, 0, result{math.MaxInt64, math.MinInt64, -1, -1, -1}},
		"empty":           {3, 3, result{math.MaxInt64, math.MinInt64, -1, -1, -1}},
		"reversed":        {8, 2, result{math.MaxInt64, math.MinInt64, -1, -1, -1}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := result{c.Min(tt.from, tt.to), c.Max(tt.from, tt.to), c.FirstBelow(tt.from, tt.to, 4), c.FirstAbove(tt.from, tt.to, 6),
				c.LastAbove(tt.from, tt.to, 4)}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("[%d, %d) (-want +got):\n%s", tt.from, tt.to, diff)
			}
		})
	}
	limits := map[string]struct {
		below, above, lastAbove int
	}{
		fmt.Sprint(int64(math.MinInt64)): {-1, 0, 9},
		"1":                              {-1, 0, 9},
		"2":                              {7, 0, 9},
		"7":                              {0, -1, -1},
		"8":                              {0, -1, -1},
		fmt.Sprint(int64(math.MaxInt64)): {0, -1, -1},
	}
	for name, tt := range limits {
		var limit int64
		fmt.Sscan(name, &limit)
		if got := c.FirstBelow(0, 10, limit); got != tt.below {
			t.Errorf("FirstBelow(0, 10, %d) = %d, want %d", limit, got, tt.below)
		}
		if got := c.FirstAbove(0, 10, limit); got != tt.above {
			t.Errorf("FirstAbove(0, 10, %d) = %d, want %d", limit, got, tt.above)
		}
		if got := c.LastAbove(0, 10, limit); got != tt.lastAbove {
			t.Errorf("LastAbove(0, 10, %d) = %d, want %d", limit, got, tt.lastAbove)
		}
	}
	for _, slot := range []int{-1, 10, 16} {
		if !panics(func() { c.At(slot) }) {
			t.Errorf("At(%d) did not panic", slot)
		}
	}
}

func TestEarliestFit(t *testing.T) {
	c := ranges() // 5 5 3 3 7 7 7 1 5 5
	type fit struct {
		Start int
		OK    bool
	}
	tests := map[string]struct {
		from, before, length int
		need                 int64
		want                 fit
	}{
		"fits at from":             {0, 10, 2, 5, fit{0, true}},
		"skips a dip":              {0, 10, 3, 5, fit{4, true}},
		"skips two dips":           {0, 10, 2, 6, fit{4, true}},
		"ends at before":           {7, 10, 2, 5, fit{8, true}},
		"before cuts it off":       {7, 9, 2, 5, fit{-1, false}},
		"whole horizon":            {0, 10, 10, 1, fit{0, true}},
		"whole horizon too high":   {0, 10, 10, 2, fit{-1, false}},
		"negative from clamps":     {-7, 10, 3, 5, fit{4, true}},
		"before past end clamps":   {7, 99, 2, 5, fit{8, true}},
		"longer than horizon":      {0, 99, 11, 0, fit{-1, false}},
		"need above every value":   {0, 10, 1, 8, fit{-1, false}},
		"need of MinInt64":         {3, 10, 4, math.MinInt64, fit{3, true}},
		"one slot":                 {0, 10, 1, 7, fit{4, true}},
		"from past end":            {10, 10, 1, 0, fit{-1, false}},
		"zero length at from":      {3, 10, 0, 100, fit{3, true}},
		"zero length at end":       {10, 10, 0, 100, fit{10, true}},
		"zero length past before":  {6, 5, 0, 100, fit{-1, false}},
		"negative length":          {2, 10, -4, 100, fit{2, true}},
		"from after before":        {6, 5, 1, 0, fit{-1, false}},
		"dip is the last slot":     {0, 8, 2, 3, fit{0, true}},
		"window straddles the dip": {6, 10, 2, 2, fit{8, true}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			start, ok := c.EarliestFit(tt.from, tt.before, tt.length, tt.need)
			if diff := cmp.Diff(tt.want, fit{start, ok}); diff != "" {
				t.Errorf("EarliestFit(%d, %d, %d, %d) (-want +got):\n%s", tt.from, tt.before, tt.length, tt.need, diff)
			}
		})
	}
}

func TestClone(t *testing.T) {
	c := ranges()
	d := c.Clone()
	d.Add(0, 10, 100)
	c.Add(0, 5, -1)
	if got, want := c.Min(0, 10), int64(1); got != want {
		t.Errorf("original Min = %d after changing the clone, want %d", got, want)
	}
	if got, want := d.Min(0, 10), int64(101); got != want {
		t.Errorf("clone Min = %d after changing the original, want %d", got, want)
	}
	if !d.Origin().Equal(c.Origin()) || d.Slots() != c.Slots() {
		t.Errorf("clone spans %v+%d, want %v+%d", d.Origin(), d.Slots(), c.Origin(), c.Slots())
	}
}

// TestAllocs checks that the operations on the engine's hot path do not
// allocate.
func TestAllocs(t *testing.T) {
	c := busy(rand.New(rand.NewPCG(1, 2)), 43800, 1000)
	ops := map[string]func(){
		"Add":         func() { c.Add(100, 30000, 1) },
		"Min":         func() { c.Min(100, 30000) },
		"Max":         func() { c.Max(100, 30000) },
		"At":          func() { c.At(12345) },
		"FirstBelow":  func() { c.FirstBelow(100, 30000, 450) },
		"FirstAbove":  func() { c.FirstAbove(100, 30000, 450) },
		"LastAbove":   func() { c.LastAbove(100, 30000, 450) },
		"EarliestFit": func() { c.EarliestFit(100, 43800, 168, 450) },
	}
	for name, op := range ops {
		if n := testing.AllocsPerRun(100, op); n != 0 {
			t.Errorf("%s allocates %v times per call, want 0", name, n)
		}
	}
}

// ref is the brute-force model the calendar is checked against.
type ref []int64

func (r ref) clamp(from, to int) (int, int) { return max(from, 0), min(to, len(r)) }

func (r ref) add(from, to int, delta int64) {
	from, to = r.clamp(from, to)
	for s := from; s < to; s++ {
		r[s] += delta
	}
}

func (r ref) min(from, to int) int64 {
	from, to = r.clamp(from, to)
	m := int64(math.MaxInt64)
	for s := from; s < to; s++ {
		m = min(m, r[s])
	}
	return m
}

func (r ref) max(from, to int) int64 {
	from, to = r.clamp(from, to)
	m := int64(math.MinInt64)
	for s := from; s < to; s++ {
		m = max(m, r[s])
	}
	return m
}

func (r ref) first(from, to int, ok func(int64) bool) int {
	from, to = r.clamp(from, to)
	for s := from; s < to; s++ {
		if ok(r[s]) {
			return s
		}
	}
	return -1
}

func (r ref) last(from, to int, ok func(int64) bool) int {
	from, to = r.clamp(from, to)
	for s := to - 1; s >= from; s-- {
		if ok(r[s]) {
			return s
		}
	}
	return -1
}

func (r ref) earliestFit(from, before, length int, need int64) (int, bool) {
	length = max(length, 0)
	for s := max(from, 0); s+length <= min(before, len(r)); s++ {
		if r.min(s, s+length) >= need {
			return s, true
		}
	}
	return -1, false
}

// op is one operation on a calendar and its reference; kind picks which.
type op struct {
	kind             int
	from, to, length int
	value            int64
}

const kinds = 10

// apply runs o on c and r and describes the first disagreement, or returns
// "" when they agree. c and r may be replaced (Clone).
func apply(c **calendar.Calendar, r *ref, o op) string {
	cal, rf := *c, *r
	// Ceiling, before every operation: the values' greatest, or 0 where
	// that is below 0 and the tree has padding leaves.
	ceiling := rf.max(0, len(rf))
	if len(rf)&(len(rf)-1) != 0 {
		ceiling = max(ceiling, 0)
	}
	if got := cal.Ceiling(); got != ceiling {
		return fmt.Sprintf("Ceiling() = %d, want %d (values %v)", got, ceiling, []int64(rf))
	}
	var got, want any
	switch o.kind {
	case 0, 1:
		cal.Add(o.from, o.to, o.value)
		rf.add(o.from, o.to, o.value)
		return ""
	case 2:
		got, want = cal.Min(o.from, o.to), rf.min(o.from, o.to)
	case 3:
		got, want = cal.Max(o.from, o.to), rf.max(o.from, o.to)
	case 4:
		got, want = cal.FirstBelow(o.from, o.to, o.value), rf.first(o.from, o.to, func(v int64) bool { return v < o.value })
	case 5:
		got, want = cal.FirstAbove(o.from, o.to, o.value), rf.first(o.from, o.to, func(v int64) bool { return v > o.value })
	case 6:
		s, ok := cal.EarliestFit(o.from, o.to, o.length, o.value)
		ws, wok := rf.earliestFit(o.from, o.to, o.length, o.value)
		got, want = [2]any{s, ok}, [2]any{ws, wok}
	case 8:
		got, want = cal.LastAbove(o.from, o.to, o.value), rf.last(o.from, o.to, func(v int64) bool { return v > o.value })
	case 9:
		var sp calendar.Span
		m := cal.Span(o.from, o.to, &sp)
		got = [3]int64{m, sp.Max(), int64(sp.LastAbove(o.value))}
		want = [3]int64{rf.max(o.from, o.to), rf.max(o.from, o.to), int64(rf.last(o.from, o.to, func(v int64) bool { return v > o.value }))}
	case 7:
		// Continue on a clone, leaving the original to check afterwards
		// that the clone's changes did not reach it.
		old, oldRef := cal, append(ref(nil), rf...)
		*c, *r = cal.Clone(), append(ref(nil), rf...)
		(*c).Add(0, len(rf), 1)
		(*r).add(0, len(rf), 1)
		if diff := cmp.Diff([]int64(oldRef), values(old)); diff != "" {
			return "original changed by its clone (-want +got):\n" + diff
		}
		return ""
	}
	if diff := cmp.Diff(want, got); diff != "" {
		return fmt.Sprintf("%+v (-want +got):\n%s", o, diff)
	}
	if o.from >= 0 && o.from < len(rf) {
		if got, want := cal.At(o.from), rf[o.from]; got != want {
			return fmt.Sprintf("At(%d) = %d, want %d", o.from, got, want)
		}
	}
	return ""
}

func values(c *calendar.Calendar) []int64 {
	v := make([]int64, c.Slots())
	for s := range v {
		v[s] = c.At(s)
	}
	return v
}

// TestAgainstReference runs random operations on calendars of small and odd
// sizes, so that the padded part of the tree is always in play, and compares
// every answer with the brute-force reference.
func TestAgainstReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		slots := rapid.IntRange(1, 300).Draw(t, "slots")
		c, r := calendar.New(origin, slots), make(ref, slots)
		// Bounds reach a little past both ends to exercise clamping; values
		// stay near the limits so searches both hit and miss.
		bound := rapid.IntRange(-3, slots+3)
		for i := range rapid.IntRange(1, 100).Draw(t, "ops") {
			o := op{
				kind:   rapid.IntRange(0, kinds-1).Draw(t, "kind"),
				from:   bound.Draw(t, "from"),
				to:     bound.Draw(t, "to"),
				length: rapid.IntRange(-1, slots+1).Draw(t, "length"),
				value:  rapid.Int64Range(-8, 8).Draw(t, "value"),
			}
			if msg := apply(&c, &r, o); msg != "" {
				t.Fatalf("op %d: %s", i, msg)
			}
		}
		if diff := cmp.Diff([]int64(r), values(c)); diff != "" {
			t.Fatalf("values after all ops (-want +got):\n%s", diff)
		}
	})
}

// FuzzCalendar reads operations of five bytes each from program and checks
// them against the reference like TestAgainstReference.
func FuzzCalendar(f *testing.F) {
	f.Add(uint8(0), []byte{})
	f.Add(uint8(9), []byte{0, 2, 7, 3, 200, 6, 0, 10, 2, 3, 4, 0, 9, 0, 1})
	f.Add(uint8(255), []byte{1, 0, 255, 0, 5, 7, 0, 0, 0, 0, 2, 3, 250, 0, 0, 6, 0, 255, 30, 4})
	f.Fuzz(func(t *testing.T, size uint8, program []byte) {
		slots := int(size) + 1
		c, r := calendar.New(origin, slots), make(ref, slots)
		for i := 0; i+5 <= len(program) && i < 5*200; i += 5 {
			b := program[i : i+5]
			o := op{
				kind:   int(b[0]) % kinds,
				from:   int(b[1]) - 3,
				to:     int(b[2]) - 3,
				length: int(b[3]) - 1,
				value:  int64(int8(b[4])),
			}
			if msg := apply(&c, &r, o); msg != "" {
				t.Fatalf("op %d: %s", i/5, msg)
			}
		}
	})
}

func panics(f func()) (panicked bool) {
	defer func() { panicked = recover() != nil }()
	f()
	return false
}

// busy returns a calendar of slots hours with a capacity of 1000 and 10,000
// random leases of 1 to 1000 hours taking 1 to 8 each: about half the
// capacity is taken, with dips and peaks throughout.
func busy(rng *rand.Rand, slots int, capacity int64) *calendar.Calendar {
	c := calendar.New(origin, slots)
	c.Add(0, slots, capacity)
	for range 10000 {
		from := rng.IntN(slots)
		c.Add(from, from+1+rng.IntN(1000), -1-rng.Int64N(8))
	}
	return c
}

// query is a random range within a five-year calendar.
type query struct {
	from, to int
	need     int64
}

func queries(rng *rand.Rand, slots int) []query {
	q := make([]query, 1024)
	for i := range q {
		from := rng.IntN(slots)
		q[i] = query{from, from + 1 + rng.IntN(slots-from), 450 + rng.Int64N(100)}
	}
	return q
}

const horizon = 43800 // five years of hours

func BenchmarkAdd(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	c, q := busy(rng, horizon, 1000), queries(rng, horizon)
	i := 0
	for b.Loop() {
		x := q[i%len(q)]
		c.Add(x.from, x.to, 1-2*int64(i&1))
		i++
	}
}

func BenchmarkMin(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	c, q := busy(rng, horizon, 1000), queries(rng, horizon)
	i := 0
	for b.Loop() {
		x := q[i%len(q)]
		c.Min(x.from, x.to)
		i++
	}
}

func BenchmarkFirstBelow(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	c, q := busy(rng, horizon, 1000), queries(rng, horizon)
	i := 0
	for b.Loop() {
		x := q[i%len(q)]
		c.FirstBelow(x.from, x.to, x.need)
		i++
	}
}

// BenchmarkEarliestFit looks for a week with 450 to 550 free from a random
// start. About 460 are free in a typical slot, so a fit lies hundreds to
// thousands of slots on, past many dips; the last 1000 slots, which fewer
// leases reach, hold a fit for almost every query.
func BenchmarkEarliestFit(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	c, q := busy(rng, horizon, 1000), queries(rng, horizon)
	i, found := 0, 0
	for b.Loop() {
		x := q[i%len(q)]
		if _, ok := c.EarliestFit(x.from, horizon, 168, x.need); ok {
			found++
		}
		i++
	}
	b.ReportMetric(float64(found)/float64(i), "found/op")
}

func BenchmarkClone(b *testing.B) {
	c := busy(rand.New(rand.NewPCG(1, 2)), horizon, 1000)
	for b.Loop() {
		c.Clone()
	}
}
