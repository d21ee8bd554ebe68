package placement

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/neocloud/neocloud/internal/calendar"
	"github.com/neocloud/neocloud/internal/lease"
)

// Errors of the Index, wrapped with the hold, node or field they concern;
// check them with errors.Is.
var (
	// ErrInvalid is returned for a malformed hold, request or topology.
	ErrInvalid = errors.New("invalid")
	// ErrNotFound is returned for an unknown hold ID or node ordinal.
	ErrNotFound = errors.New("not found")
	// ErrOverlap is returned by Add for a hold that overlaps an existing
	// hold on a common node.
	ErrOverlap = errors.New("overlaps an existing hold")
	// ErrDuplicate is returned by Add for a hold ID already in the index.
	ErrDuplicate = errors.New("duplicate hold ID")
)

// Node is a node as placement sees it.
type Node struct {
	// Ordinal is the node's stable identity: >= 1 and unique.
	Ordinal int64
	// Name is for messages.
	Name string
	// Pool is "site/MODEL".
	Pool string
	GPUs int64
	// PowerW is the node's IT power at full load, in watts.
	PowerW int64
	// PowerDomain is a key unique across the fleet ("site/hall-1").
	PowerDomain string
	// Pod, Leaf and NVLink are fabric keys unique across the fleet, with
	// NVLink ⊂ Leaf ⊂ Pod. An empty NVLink makes the node a domain of its
	// own.
	Pod, Leaf, NVLink string
	// Schedulable is false for nodes that are failed, in maintenance,
	// draining...: Place never picks them.
	Schedulable bool
}

// Topology is the fleet an Index is built from.
type Topology struct {
	Nodes []Node
	// DomainBudgetW is each power domain's budget of IT power, in watts.
	DomainBudgetW map[string]int64
}

// Hold is a lease holding the nodes with ordinals [NodeFrom, NodeTo) over
// the half-open interval [Start, End).
type Hold struct {
	ID, LeaseID, TenantID string
	// Dedicated is true when the lease's isolation is dedicated-leaf: no
	// other tenant may hold a node of the same leaf group at the same time.
	Dedicated        bool
	NodeFrom, NodeTo int64
	Start, End       time.Time
}

// Index is the in-memory state placement reads: every node and every hold,
// and per power domain a calendar of the IT power its holds may draw per
// hourly slot. The zero Index is not usable; build one with NewIndex.
//
// Holds are kept per leaf group, as pieces: the hold's interval and a
// bitmask of the leaf's nodes it holds, sorted by start. The free nodes of a
// leaf over a window are then one pass over the pieces that overlap it.
type Index struct {
	origin time.Time
	slots  int

	nodes []node // by ordinal
	// base and dense map an ordinal o to nodes[dense[o-base]-1] when the
	// ordinals are dense enough; sparse maps them otherwise.
	base   int64
	dense  []int32
	sparse map[int64]int32

	leaves  []leaf
	pods    []string
	domains []domain
	pools   map[string]*pool
	poolIDs []string

	holds   map[string]*holdRec
	tenants map[string]int32

	// leafHeld[l*buckets+b] counts the nodes of leaf l held throughout
	// bucket b, a span of bucketNs from origin: a hold counts only in the
	// buckets it covers whole, so its nodes are busy at every instant of
	// them. podHeld counts the same per pod, with maxima over ranges of
	// buckets, so that the pod's size minus the greatest count over the
	// buckets a window overlaps bounds its free nodes over the window,
	// and flags with each count the pod's leaf groups whose count is
	// their size.
	// laneHeld keeps the leaf groups' greatest counts over ranges of
	// buckets, by pod, so that a window's bound on the free nodes of each
	// leaf group of a pod is a few reads; podLanes gives each pod's leaf
	// groups by lane.
	// Place reads them to skip pods and leaf groups without reading their
	// holds. held is false, and they are empty, when a leaf has more than
	// 255 nodes or a pod more than 65,535.
	held      bool
	leafHeld  []uint8
	podHeld   podRows
	laneHeld  laneRows
	podLanes  [][]int32
	bucketNs  int64
	buckets   int
	podNodes  []int32
	podLeaves []int32 // leaf groups per pod

	scratch sync.Pool // *search, reused across Place calls
	adding  addScratch
}

// addScratch is Add's working memory, kept between calls: Add changes the
// index, so its callers never run it concurrently.
type addScratch struct {
	leaves []int32    // the hold's leaf groups, in the order first met
	off    []int32    // each one's first word in masks
	masks  []uint64   // their masks of the hold's nodes
	power  []domWatts // the hold's IT watts per power domain
	lanes  []uint64   // nodes held per lane of one pod, a byte each
}

// mask returns the mask of the k-th leaf group.
func (a *addScratch) mask(k int) []uint64 {
	end := len(a.masks)
	if k+1 < len(a.off) {
		end = int(a.off[k+1])
	}
	return a.masks[a.off[k]:end]
}

type node struct {
	Node
	leaf  int32 // index into Index.leaves
	bit   int32 // position in the leaf
	dom   int32 // index into Index.domains
	pool  *pool
	pleaf int32 // index into pool.leaves
	pdom  int32 // index into pool.doms
}

type domain struct {
	key     string
	budgetW int64
	cal     *calendar.Calendar // IT watts held per hourly slot
}

// leaf is one leaf group: its nodes in ordinal order (bit i is nodes[i]),
// which of them are schedulable, and the pieces of the holds on them.
type leaf struct {
	// pieces are sorted by (start, hold ID). A piece's mask has words
	// words: the first in the piece, the others in more, words-1 a piece.
	pieces []piece
	starts []int64 // pieces[i].start, apart for binary search
	more   []uint64
	holds  []*holdRec // per piece
	words  int32
	pod    int32 // index into Index.pods
	lane   int32 // rank among the pod's leaf groups
	// ord0 is the first node's ordinal; when dense, node i's is ord0+i.
	ord0  int64
	dense bool
	// uniform is set when the nodes share a power domain and a power.
	uniform bool
	nodes   []int32 // positions in Index.nodes
	sched   []uint64
	key     string
}

// piece is a hold's part in one leaf group. pmax is the greatest end of
// this and every earlier piece, so a backward scan stops where nothing
// earlier reaches the window.
type piece struct {
	start, end, pmax int64
	mask0            uint64
	tenant           int32
	dedicated        bool
}

// mask returns word w of piece i's mask.
func (l *leaf) mask(i, w int) uint64 {
	if w == 0 {
		return l.pieces[i].mask0
	}
	return l.more[i*int(l.words-1)+w-1]
}

type holdRec struct {
	Hold
	start, end int64 // UnixNano
	tenant     int32
	leaves     []int32
	power      []domWatts
}

type domWatts struct {
	dom int32
	w   int64
}

// Times are kept as Unix nanoseconds; these bound what fits.
var (
	minTime = time.Unix(0, math.MinInt64+1)
	maxTime = time.Unix(0, math.MaxInt64)
)

func nanos(t time.Time) (int64, bool) {
	if t.Before(minTime) || t.After(maxTime) {
		return 0, false
	}
	return t.UnixNano(), true
}

// interval checks [start, end) and returns it in Unix nanoseconds.
func interval(start, end time.Time) (int64, int64, error) {
	s, ok1 := nanos(start)
	e, ok2 := nanos(end)
	switch {
	case start.IsZero() || end.IsZero():
		return 0, 0, fmt.Errorf("%w: start and end are required", ErrInvalid)
	case !ok1 || !ok2:
		return 0, 0, fmt.Errorf("%w: interval [%s, %s) is out of range", ErrInvalid, start.Format(time.RFC3339), end.Format(time.RFC3339))
	case e <= s:
		return 0, 0, fmt.Errorf("%w: interval [%s, %s) is empty", ErrInvalid, start.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	return s, e, nil
}

// NewIndex builds an index of the nodes of t, with no holds. Nodes may come
// in any order. origin and slots set the range of the hourly power
// calendars: power is checked only within [origin, origin+slots hours), so
// they should cover every hold and request the engine will place.
//
// It returns an error wrapping ErrInvalid for slots < 1, an ordinal < 1 or
// duplicate, an empty pool, pod or leaf key, a node in a power domain
// missing from DomainBudgetW, a negative budget, power or GPU count, a leaf
// group in two pods, an NVLink domain in two leaf groups, pools or power
// domains.
func NewIndex(t Topology, origin time.Time, slots int) (*Index, error) {
	if slots < 1 {
		return nil, fmt.Errorf("%w: %d calendar slots, want at least 1", ErrInvalid, slots)
	}
	ix := &Index{origin: origin.UTC().Truncate(time.Hour), slots: slots, pools: map[string]*pool{},
		holds: map[string]*holdRec{}, tenants: map[string]int32{}}
	ns := slices.Clone(t.Nodes)
	slices.SortFunc(ns, func(a, b Node) int { return cmp.Compare(a.Ordinal, b.Ordinal) })
	var errs []error
	for i, n := range ns {
		switch {
		case n.Ordinal < 1:
			errs = append(errs, fmt.Errorf("%w: node %q: ordinal %d, want >= 1", ErrInvalid, n.Name, n.Ordinal))
		case i > 0 && ns[i-1].Ordinal == n.Ordinal:
			errs = append(errs, fmt.Errorf("%w: nodes %q and %q share ordinal %d", ErrInvalid, ns[i-1].Name, n.Name, n.Ordinal))
		}
		if n.Pool == "" || n.Pod == "" || n.Leaf == "" {
			errs = append(errs, fmt.Errorf("%w: node %q: pool, pod and leaf are required", ErrInvalid, n.Name))
		}
		if n.PowerW < 0 || n.GPUs < 0 {
			errs = append(errs, fmt.Errorf("%w: node %q: negative power or GPUs", ErrInvalid, n.Name))
		}
		if _, ok := t.DomainBudgetW[n.PowerDomain]; !ok {
			errs = append(errs, fmt.Errorf("%w: node %q: power domain %q has no budget", ErrInvalid, n.Name, n.PowerDomain))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	// Power domains, in key order so that their indices are deterministic.
	keys := make([]string, 0, len(t.DomainBudgetW))
	for k, b := range t.DomainBudgetW {
		if b < 0 {
			errs = append(errs, fmt.Errorf("%w: power domain %q: budget %d W", ErrInvalid, k, b))
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	domIdx := make(map[string]int32, len(keys))
	for i, k := range keys {
		domIdx[k] = int32(i)
		ix.domains = append(ix.domains, domain{key: k, budgetW: t.DomainBudgetW[k], cal: calendar.New(ix.origin, slots)})
	}

	// Ordinal lookup.
	ix.nodes = make([]node, len(ns))
	if len(ns) > 0 {
		lo, hi := ns[0].Ordinal, ns[len(ns)-1].Ordinal
		if span := hi - lo + 1; span <= 2*int64(len(ns))+1024 {
			ix.base, ix.dense = lo, make([]int32, span)
		} else {
			ix.sparse = make(map[int64]int32, len(ns))
		}
	}

	// Leaves and pods, in order of their first ordinal.
	leafIdx := map[string]int32{}
	podIdx := map[string]int32{}
	type nvInfo struct {
		leaf      int32
		pool, dom string
	}
	nvlinks := map[string]*nvInfo{}
	for i, n := range ns {
		ix.nodes[i] = node{Node: n, dom: domIdx[n.PowerDomain]}
		if ix.dense != nil {
			ix.dense[n.Ordinal-ix.base] = int32(i) + 1
		} else {
			ix.sparse[n.Ordinal] = int32(i)
		}
		p, ok := podIdx[n.Pod]
		if !ok {
			p = int32(len(ix.pods))
			podIdx[n.Pod] = p
			ix.pods = append(ix.pods, n.Pod)
		}
		l, ok := leafIdx[n.Leaf]
		if !ok {
			l = int32(len(ix.leaves))
			leafIdx[n.Leaf] = l
			if int(p) == len(ix.podLeaves) {
				ix.podLeaves = append(ix.podLeaves, 0)
			}
			ix.leaves = append(ix.leaves, leaf{key: n.Leaf, pod: p, lane: ix.podLeaves[p]})
			ix.podLeaves[p]++
		}
		lf := &ix.leaves[l]
		if lf.pod != p {
			errs = append(errs, fmt.Errorf("%w: leaf group %q is in pods %q and %q", ErrInvalid, n.Leaf, ix.pods[lf.pod], n.Pod))
		}
		ix.nodes[i].leaf, ix.nodes[i].bit = l, int32(len(lf.nodes))
		lf.nodes = append(lf.nodes, int32(i))
		if n.NVLink != "" {
			nv := nvlinks[n.NVLink]
			switch {
			case nv == nil:
				nvlinks[n.NVLink] = &nvInfo{leaf: l, pool: n.Pool, dom: n.PowerDomain}
			case nv.leaf != l:
				errs = append(errs, fmt.Errorf("%w: NVLink domain %q is in leaf groups %q and %q", ErrInvalid, n.NVLink, ix.leaves[nv.leaf].key, n.Leaf))
			case nv.pool != n.Pool:
				errs = append(errs, fmt.Errorf("%w: NVLink domain %q holds nodes of pools %q and %q", ErrInvalid, n.NVLink, nv.pool, n.Pool))
			case nv.dom != n.PowerDomain:
				errs = append(errs, fmt.Errorf("%w: NVLink domain %q is in power domains %q and %q", ErrInvalid, n.NVLink, nv.dom, n.PowerDomain))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for i := range ix.leaves {
		lf := &ix.leaves[i]
		lf.words = int32((len(lf.nodes) + 63) / 64)
		first := &ix.nodes[lf.nodes[0]]
		lf.ord0, lf.dense, lf.uniform = first.Ordinal, true, true
		for b, pos := range lf.nodes {
			n := &ix.nodes[pos]
			lf.dense = lf.dense && n.Ordinal == lf.ord0+int64(b)
			lf.uniform = lf.uniform && n.dom == first.dom && n.PowerW == first.PowerW
		}
		lf.sched = make([]uint64, lf.words)
		for b, pos := range lf.nodes {
			if ix.nodes[pos].Schedulable {
				lf.sched[b/64] |= 1 << (b % 64)
			}
		}
	}

	unitOf := make([]int32, len(ns)) // position → position of the first node of its NVLink domain
	{
		first := map[string]int32{}
		for i, n := range ns {
			if n.NVLink == "" {
				unitOf[i] = int32(i)
				continue
			}
			f, ok := first[n.NVLink]
			if !ok {
				f = int32(i)
				first[n.NVLink] = f
			}
			unitOf[i] = f
		}
	}
	for i, n := range ns {
		p := ix.pools[n.Pool]
		if p == nil {
			p = &pool{id: n.Pool, leafByKey: map[string]int32{}, podByKey: map[string]int32{}}
			ix.pools[n.Pool] = p
			ix.poolIDs = append(ix.poolIDs, n.Pool)
		}
		p.nodes = append(p.nodes, int32(i))
	}
	slices.Sort(ix.poolIDs)
	for _, id := range ix.poolIDs {
		ix.pools[id].build(ix, unitOf)
	}
	ix.initHeld()
	ix.scratch.New = func() any { return new(search) }
	return ix, nil
}

// heldCells bounds the buckets of Index.leafHeld: buckets are made long
// enough (whole hours) that buckets × leaves stays within it.
const heldCells = 1 << 24

func (ix *Index) initHeld() {
	for i := range ix.leaves {
		if len(ix.leaves[i].nodes) > math.MaxUint8 {
			return
		}
	}
	ix.podNodes = make([]int32, len(ix.pods))
	for i := range ix.leaves {
		ix.podNodes[ix.leaves[i].pod] += int32(len(ix.leaves[i].nodes))
	}
	for _, n := range ix.podNodes {
		if n > math.MaxUint16 {
			ix.podNodes = nil
			return
		}
	}
	L := max(len(ix.leaves), 1)
	hours := max(1, (ix.slots*L+heldCells-1)/heldCells)
	ix.bucketNs = int64(hours) * int64(time.Hour)
	ix.buckets = (ix.slots + hours - 1) / hours
	ix.held = true
	ix.leafHeld = make([]uint8, len(ix.leaves)*ix.buckets)
	ix.podHeld = newPodRows(ix.buckets, ix.podLeaves)
	ix.laneHeld = newLaneRows(ix.buckets, ix.podLeaves, ix.podMaxLeaf())
	ix.podLanes = make([][]int32, len(ix.pods))
	for l := range ix.leaves {
		g := ix.leaves[l].pod
		ix.podLanes[g] = append(ix.podLanes[g], int32(l))
	}
}

// addLanes adds d, a byte per lane, to the lanes of pod g over buckets
// [b0, b1) (laneRows.add), after leafHeld has changed.
func (ix *Index) addLanes(g, b0, b1 int, d []uint64, neg bool) {
	ix.laneHeld.add(g, b0, b1, d, neg, func(lane, c0, c1 int) uint8 {
		return ix.mostHeld(ix.podLanes[g][lane], c0, c1)
	})
}

// mostHeld returns the greatest count of leaf l over buckets [c0, c1),
// clamped to the index's buckets.
func (ix *Index) mostHeld(l int32, c0, c1 int) uint8 {
	row := ix.leafHeld[int(l)*ix.buckets : (int(l)+1)*ix.buckets]
	var m uint8
	for _, c := range row[c0:min(c1, len(row))] {
		m = max(m, c)
	}
	return m
}

// podMaxLeaf returns the most nodes of a leaf group of each pod.
func (ix *Index) podMaxLeaf() []int32 {
	out := make([]int32, len(ix.pods))
	for i := range ix.leaves {
		l := &ix.leaves[i]
		out[l.pod] = max(out[l.pod], int32(len(l.nodes)))
	}
	return out
}

// fullBuckets returns the buckets [b0, b1) that [s, e) covers whole,
// clamped to the index's buckets.
func (ix *Index) fullBuckets(s, e int64) (int, int) {
	o := ix.origin.UnixNano()
	b0 := ceilDiv(s-o, ix.bucketNs)
	b1 := floorDiv(e-o, ix.bucketNs)
	b0 = max(b0, 0)
	b1 = min(b1, int64(ix.buckets))
	if b1 <= b0 {
		return 0, 0
	}
	return int(b0), int(b1)
}

// touchedBuckets returns the buckets [b0, b1) that [s, e) overlaps,
// clamped to the index's buckets. A node held throughout one of them is
// held at some instant of [s, e).
func (ix *Index) touchedBuckets(s, e int64) (int, int) {
	o := ix.origin.UnixNano()
	b0 := max(floorDiv(s-o, ix.bucketNs), 0)
	b1 := min(ceilDiv(e-o, ix.bucketNs), int64(ix.buckets))
	if b1 <= b0 {
		return 0, 0
	}
	return int(b0), int(b1)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b > 0 {
		q++
	}
	return q
}

// countHeld adds sign × the nodes of mask to leaf l's count in the
// buckets [s, e) covers whole.
func (ix *Index) countHeld(l int32, mask []uint64, s, e int64, sign int) {
	if !ix.held {
		return
	}
	b0, b1 := ix.fullBuckets(s, e)
	ix.addHeld(l, mask, b0, b1, sign)
}

// uncountHeld removes the nodes of mask from leaf l's count in the buckets
// that [s, old) covers whole and [s, e) does not.
func (ix *Index) uncountHeld(l int32, mask []uint64, s, e, old int64) {
	if !ix.held {
		return
	}
	b0, b1 := ix.fullBuckets(s, old)
	if c0, c1 := ix.fullBuckets(s, e); c1 > c0 {
		b0 = c1
	}
	ix.addHeld(l, mask, b0, b1, -1)
}

// addHeld adds sign × the nodes of mask to leaf l's counts in buckets
// [b0, b1) and to its pod's, and flips the leaf's full flag in the buckets
// it fills or stops filling.
func (ix *Index) addHeld(l int32, mask []uint64, b0, b1, sign int) {
	if b1 <= b0 {
		return
	}
	n := ix.addLeafHeld(l, mask, b0, b1, sign)
	pd := uint16(n)
	if sign < 0 {
		pd = -pd
	}
	g := int(ix.leaves[l].pod)
	ix.podHeld.add(g, b0, b1, pd)
	a := &ix.adding
	a.lanes = laneDelta(a.lanes, ix.laneHeld.words[g], ix.leaves[l].lane, n)
	ix.addLanes(g, b0, b1, a.lanes, sign < 0)
}

// laneDelta returns d, resized to W words and cleared, with n added to
// lane's byte.
func laneDelta(d []uint64, W int, lane int32, n int) []uint64 {
	d = grow(d, W)
	clear(d)
	d[lane/8] = uint64(n) << (8 * (lane % 8))
	return d
}

// addLeafHeld is addHeld without the pod's count, which the caller
// changes; it returns the nodes of mask. b0 < b1.
func (ix *Index) addLeafHeld(l int32, mask []uint64, b0, b1, sign int) int {
	n := 0
	for _, w := range mask {
		n += bits.OnesCount64(w)
	}
	d := uint8(n)
	if sign < 0 {
		d = -d
	}
	lf := &ix.leaves[l]
	g, size := int(lf.pod), uint8(len(lf.nodes))
	counts := ix.leafHeld[int(l)*ix.buckets : (int(l)+1)*ix.buckets][b0:b1]
	flags, W, w, bit := ix.podHeld.flag(g, int(lf.lane))
	flags = flags[b0*W : b1*W]
	// A hold never takes a node twice, so an addition can only fill the
	// leaf group and a removal only stop it being full; and no count goes
	// past the leaf's size or below 0, so eight counts can change as the
	// bytes of one word, without carries, where none of them fills or
	// stops being full: the new counts (added) or the old (removed) hold
	// no byte equal to size.
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	sz, dd := uint64(size)*ones, uint64(n)*ones
	c0, c1, changed := -1, -1, 0
	for i := 0; i < len(counts); {
		if i+8 <= len(counts) {
			x := binary.LittleEndian.Uint64(counts[i:])
			y, full := x+dd, x+dd
			if sign < 0 {
				y, full = x-dd, x
			}
			if v := full ^ sz; (v-ones)&^v&highs == 0 {
				binary.LittleEndian.PutUint64(counts[i:], y)
				i += 8
				continue
			} else if v == 0 {
				// All eight fill, or stop being full.
				binary.LittleEndian.PutUint64(counts[i:], y)
				for k := i; k < i+8; k++ {
					flags[k*W+w] ^= bit
				}
				if c0 < 0 {
					c0 = i
				}
				i += 8
				c1 = i
				changed += 8
				continue
			}
		}
		for end := min(i+8, len(counts)); i < end; i++ {
			old := counts[i]
			counts[i] = old + d
			if (old == size) != (old+d == size) {
				flags[i*W+w] ^= bit
				if c0 < 0 {
					c0 = i
				}
				c1 = i + 1
				changed++
			}
		}
	}
	if changed > 0 {
		ix.podHeld.fix(g, int(lf.lane), b0+c0, b0+c1, changed == c1-c0, sign > 0)
	}
	return n
}

// pieceMask returns piece i's mask of leaf l.
func (l *leaf) pieceMask(i int) []uint64 {
	m := make([]uint64, l.words)
	for w := range m {
		m[w] = l.mask(i, w)
	}
	return m
}

// lookup returns the position of the node with ordinal o.
func (ix *Index) lookup(o int64) (int32, bool) {
	if ix.dense != nil {
		if o < ix.base || o-ix.base >= int64(len(ix.dense)) {
			return 0, false
		}
		p := ix.dense[o-ix.base]
		return p - 1, p > 0
	}
	p, ok := ix.sparse[o]
	return p, ok
}

// floor and ceil give the calendar slot of t rounded down and up.
func (ix *Index) floor(t int64) int {
	d := t - ix.origin.UnixNano()
	q := d / int64(time.Hour)
	if d%int64(time.Hour) < 0 {
		q--
	}
	return clampSlot(q)
}

func (ix *Index) ceil(t int64) int {
	d := t - ix.origin.UnixNano()
	q := d / int64(time.Hour)
	if d%int64(time.Hour) > 0 {
		q++
	}
	return clampSlot(q)
}

// clampSlot keeps a slot index within int range; the calendars clamp it
// further to their slots.
func clampSlot(q int64) int {
	return int(max(min(q, math.MaxInt32), math.MinInt32))
}

// Add records h. It refuses, with the index unchanged, a hold with an empty
// ID (ErrInvalid), an ID already present (ErrDuplicate), an empty or
// out-of-range interval or node range (ErrInvalid), an ordinal in
// [NodeFrom, NodeTo) that is not a node (ErrNotFound), and one that
// overlaps an existing hold on a common node (ErrOverlap).
func (ix *Index) Add(h Hold) error {
	if h.ID == "" {
		return fmt.Errorf("hold: %w: ID is required", ErrInvalid)
	}
	if _, dup := ix.holds[h.ID]; dup {
		return fmt.Errorf("hold %s: %w", h.ID, ErrDuplicate)
	}
	s, e, err := interval(h.Start, h.End)
	if err != nil {
		return fmt.Errorf("hold %s: %w", h.ID, err)
	}
	if h.NodeFrom >= h.NodeTo {
		return fmt.Errorf("hold %s: %w: node range [%d, %d) is empty", h.ID, ErrInvalid, h.NodeFrom, h.NodeTo)
	}
	a := &ix.adding
	a.leaves, a.off, a.masks, a.power = a.leaves[:0], a.off[:0], a.masks[:0], a.power[:0]
	for o := h.NodeFrom; o < h.NodeTo; {
		pos, ok := ix.lookup(o)
		if !ok {
			return fmt.Errorf("hold %s: node ordinal %d: %w", h.ID, o, ErrNotFound)
		}
		n := &ix.nodes[pos]
		lf := &ix.leaves[n.leaf]
		k := len(a.leaves) - 1
		if k < 0 || a.leaves[k] != n.leaf {
			k = slices.Index(a.leaves, n.leaf)
			if k < 0 {
				k = len(a.leaves)
				a.leaves = append(a.leaves, n.leaf)
				a.off = append(a.off, int32(len(a.masks)))
				for range lf.words {
					a.masks = append(a.masks, 0)
				}
			}
		}
		// The ordinals [o, next) are nodes of lf with bits from n.bit on,
		// of power w in domain dom.
		next, dom, w := o+1, n.dom, n.PowerW
		if lf.dense && lf.uniform {
			next = min(h.NodeTo, lf.ord0+int64(len(lf.nodes)))
			w *= next - o
		}
		setBits(a.mask(k), int(n.bit), int(n.bit)+int(next-o))
		if j := slices.IndexFunc(a.power, func(d domWatts) bool { return d.dom == dom }); j >= 0 {
			a.power[j].w += w
		} else {
			a.power = append(a.power, domWatts{dom: dom, w: w})
		}
		o = next
	}
	for k, l := range a.leaves {
		if other := ix.leaves[l].conflict(s, e, a.mask(k)); other != nil {
			return fmt.Errorf("hold %s: %w %s on leaf group %s", h.ID, ErrOverlap, other.ID, ix.leaves[l].key)
		}
	}
	t, ok := ix.tenants[h.TenantID]
	if !ok {
		t = int32(len(ix.tenants))
		ix.tenants[h.TenantID] = t
	}
	rec := &holdRec{Hold: h, start: s, end: e, tenant: t, power: slices.Clone(a.power), leaves: slices.Clone(a.leaves)}
	var b0, b1 int
	if ix.held {
		b0, b1 = ix.fullBuckets(s, e)
	}
	// Pod counts change once per pod: the leaf groups of a pod are met
	// one after another.
	pod, podN := int32(-1), 0
	for k, l := range a.leaves {
		mask := a.mask(k)
		lf := &ix.leaves[l]
		lf.insert(piece{start: s, end: e, tenant: t, dedicated: h.Dedicated}, rec, mask)
		if b1 <= b0 {
			continue
		}
		n := ix.addLeafHeld(l, mask, b0, b1, +1)
		if lf.pod != pod {
			if podN > 0 {
				ix.podHeld.add(int(pod), b0, b1, uint16(podN))
				ix.addLanes(int(pod), b0, b1, a.lanes, false)
			}
			pod, podN = lf.pod, 0
			a.lanes = grow(a.lanes, ix.laneHeld.words[pod])
			clear(a.lanes)
		}
		podN += n
		a.lanes[lf.lane/8] += uint64(n) << (8 * (lf.lane % 8))
	}
	if podN > 0 {
		ix.podHeld.add(int(pod), b0, b1, uint16(podN))
		ix.addLanes(int(pod), b0, b1, a.lanes, false)
	}
	from, to := ix.floor(s), ix.ceil(e)
	for _, d := range a.power {
		ix.domains[d.dom].cal.Add(from, to, d.w)
	}
	ix.holds[h.ID] = rec
	return nil
}

// setBits sets bits [b0, b1) of mask.
func setBits(mask []uint64, b0, b1 int) {
	for b0 < b1 {
		w, lo := b0/64, b0%64
		hi := min(64, lo+b1-b0)
		m := ^uint64(0) << lo
		if hi < 64 {
			m &= 1<<hi - 1
		}
		mask[w] |= m
		b0 += hi - lo
	}
}

// Remove deletes the hold with the given ID; it returns an error wrapping
// ErrNotFound when there is none.
func (ix *Index) Remove(id string) error {
	rec := ix.holds[id]
	if rec == nil {
		return fmt.Errorf("hold %s: %w", id, ErrNotFound)
	}
	for _, l := range rec.leaves {
		lf := &ix.leaves[l]
		if i := lf.find(rec); i >= 0 {
			ix.countHeld(l, lf.pieceMask(i), rec.start, rec.end, -1)
		}
		lf.remove(rec)
	}
	from, to := ix.floor(rec.start), ix.ceil(rec.end)
	for _, d := range rec.power {
		ix.domains[d.dom].cal.Add(from, to, -d.w)
	}
	delete(ix.holds, id)
	return nil
}

// End truncates the hold with the given ID to end at at: it removes the
// hold when at is at or before its Start and does nothing when at is at or
// after its End. It returns an error wrapping ErrNotFound when there is no
// such hold, or ErrInvalid when at is out of range.
func (ix *Index) End(id string, at time.Time) error {
	rec := ix.holds[id]
	if rec == nil {
		return fmt.Errorf("hold %s: %w", id, ErrNotFound)
	}
	a, ok := nanos(at)
	if !ok {
		return fmt.Errorf("hold %s: %w: end %s is out of range", id, ErrInvalid, at.Format(time.RFC3339))
	}
	switch {
	case a >= rec.end:
		return nil
	case a <= rec.start:
		return ix.Remove(id)
	}
	for _, l := range rec.leaves {
		lf := &ix.leaves[l]
		if i := lf.find(rec); i >= 0 {
			// The buckets the hold covered whole up to its old end but
			// not up to a.
			ix.uncountHeld(l, lf.pieceMask(i), rec.start, a, rec.end)
		}
		lf.truncate(rec, a)
	}
	// The hold counted in slots [floor(start), ceil(end)); it now counts
	// in [floor(start), ceil(a)).
	from, to := ix.ceil(a), ix.ceil(rec.end)
	for _, d := range rec.power {
		ix.domains[d.dom].cal.Add(from, to, -d.w)
	}
	rec.end, rec.End = a, at
	return nil
}

// SetSchedulable marks the node with the given ordinal as schedulable or
// not; it returns an error wrapping ErrNotFound for an unknown ordinal.
// Holds on the node are kept: ending them is the caller's decision.
func (ix *Index) SetSchedulable(ordinal int64, ok bool) error {
	pos, found := ix.lookup(ordinal)
	if !found {
		return fmt.Errorf("node ordinal %d: %w", ordinal, ErrNotFound)
	}
	n := &ix.nodes[pos]
	n.Schedulable = ok
	lf := &ix.leaves[n.leaf]
	if ok {
		lf.sched[n.bit/64] |= 1 << (n.bit % 64)
	} else {
		lf.sched[n.bit/64] &^= 1 << (n.bit % 64)
	}
	pl := &n.pool.leaves[n.pleaf]
	pl.base0 = lf.sched[0] & pl.mask[0]
	return nil
}

// Node returns the node with the given ordinal, and false when there is
// none.
func (ix *Index) Node(ordinal int64) (Node, bool) {
	pos, ok := ix.lookup(ordinal)
	if !ok {
		return Node{}, false
	}
	return ix.nodes[pos].Node, true
}

// HoldsOn returns the holds on the node with the given ordinal that end
// after after, by Start (then ID); nil for an unknown ordinal or none.
func (ix *Index) HoldsOn(ordinal int64, after time.Time) []Hold {
	pos, ok := ix.lookup(ordinal)
	if !ok {
		return nil
	}
	n := &ix.nodes[pos]
	lf := &ix.leaves[n.leaf]
	w, bit := int(n.bit/64), uint64(1)<<(n.bit%64)
	var out []Hold
	for i, h := range lf.holds {
		if lf.mask(i, w)&bit != 0 && h.End.After(after) {
			out = append(out, h.Hold)
		}
	}
	return out
}

// Hold returns the hold with the given ID, with its End as truncated, and
// false when there is none.
func (ix *Index) Hold(id string) (Hold, bool) {
	rec := ix.holds[id]
	if rec == nil {
		return Hold{}, false
	}
	return rec.Hold, true
}

// Holds returns the number of holds in the index.
func (ix *Index) Holds() int { return len(ix.holds) }

// Pools returns the pools' IDs, sorted.
func (ix *Index) Pools() []string { return slices.Clone(ix.poolIDs) }

// PoolNodes returns the nodes of a pool in ordinal order; nil for an
// unknown pool.
func (ix *Index) PoolNodes(id string) []Node {
	p := ix.pools[id]
	if p == nil {
		return nil
	}
	out := make([]Node, len(p.nodes))
	for i, pos := range p.nodes {
		out[i] = ix.nodes[pos].Node
	}
	return out
}

// Never reports whether no window could ever hold nodes nodes of pool
// packed as packing: leaf or pod packing of more nodes than the pool's
// largest leaf group or pod has. An unknown pool gives false.
func (ix *Index) Never(pool string, packing lease.Packing, nodes int) bool {
	p := ix.pools[pool]
	return p != nil && p.oversize(packing, nodes)
}

// Origin returns the start of the power calendars' first slot.
func (ix *Index) Origin() time.Time { return ix.origin }

// Slots returns the number of hourly slots of the power calendars.
func (ix *Index) Slots() int { return ix.slots }

// conflict returns a hold whose piece in l overlaps [s, e) on a node of
// mask, or nil.
func (l *leaf) conflict(s, e int64, mask []uint64) *holdRec {
	k := sort.Search(len(l.pieces), func(i int) bool { return l.pieces[i].start >= e })
	for i := k - 1; i >= 0 && l.pieces[i].pmax > s; i-- {
		if l.pieces[i].end <= s {
			continue
		}
		for w := range mask {
			if l.mask(i, w)&mask[w] != 0 {
				return l.holds[i]
			}
		}
	}
	return nil
}

// insert adds a piece of rec, keeping pieces sorted by (start, hold ID).
func (l *leaf) insert(pc piece, rec *holdRec, mask []uint64) {
	i := sort.Search(len(l.pieces), func(i int) bool {
		return l.pieces[i].start > pc.start || l.pieces[i].start == pc.start && l.holds[i].ID > rec.ID
	})
	pc.mask0 = mask[0]
	l.pieces = slices.Insert(l.pieces, i, pc)
	l.starts = slices.Insert(l.starts, i, pc.start)
	l.holds = slices.Insert(l.holds, i, rec)
	if l.words > 1 {
		l.more = slices.Insert(l.more, i*int(l.words-1), mask[1:]...)
	}
	l.fixMax(i)
}

// find returns the index of rec's piece in l, or -1.
func (l *leaf) find(rec *holdRec) int {
	i := sort.Search(len(l.pieces), func(i int) bool { return l.pieces[i].start >= rec.start })
	for ; i < len(l.pieces) && l.pieces[i].start == rec.start; i++ {
		if l.holds[i] == rec {
			return i
		}
	}
	return -1
}

func (l *leaf) remove(rec *holdRec) {
	i := l.find(rec)
	if i < 0 {
		return
	}
	l.pieces = slices.Delete(l.pieces, i, i+1)
	l.starts = slices.Delete(l.starts, i, i+1)
	l.holds = slices.Delete(l.holds, i, i+1)
	if l.words > 1 {
		l.more = slices.Delete(l.more, i*int(l.words-1), (i+1)*int(l.words-1))
	}
	l.fixMax(i)
}

func (l *leaf) truncate(rec *holdRec, end int64) {
	if i := l.find(rec); i >= 0 {
		l.pieces[i].end = end
		l.fixMax(i)
	}
}

// fixMax recomputes pmax from piece i on.
func (l *leaf) fixMax(i int) {
	m := int64(math.MinInt64)
	if i > 0 {
		m = l.pieces[i-1].pmax
	}
	for ; i < len(l.pieces); i++ {
		m = max(m, l.pieces[i].end)
		l.pieces[i].pmax = m
	}
}

// Check verifies the index's invariants, for tests: pieces sorted and
// consistent with their holds, no node in two holds that overlap in time,
// schedulable bits matching the nodes, and each power calendar, held
// count and full flag (every level) equal to a recomputation from the
// holds. It returns every violation found.
func (ix *Index) Check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	seen := map[*holdRec]int{}
	for li := range ix.leaves {
		l := &ix.leaves[li]
		n := len(l.pieces)
		W := int(l.words)
		if len(l.holds) != n || len(l.starts) != n || len(l.more) != n*(W-1) {
			bad("leaf %s: piece arrays of different lengths", l.key)
			continue
		}
		m := int64(math.MinInt64)
		for i := range n {
			pc, h := &l.pieces[i], l.holds[i]
			if i > 0 && (l.pieces[i-1].start > pc.start || l.pieces[i-1].start == pc.start && l.holds[i-1].ID >= h.ID) {
				bad("leaf %s: pieces %d and %d out of order", l.key, i-1, i)
			}
			m = max(m, pc.end)
			if pc.pmax != m {
				bad("leaf %s: piece %d: prefix max end %d, want %d", l.key, i, pc.pmax, m)
			}
			if ix.holds[h.ID] != h {
				bad("leaf %s: piece %d belongs to hold %s, which is not in the index", l.key, i, h.ID)
			}
			if pc.start != h.start || l.starts[i] != h.start || pc.end != h.end || pc.tenant != h.tenant || pc.dedicated != h.Dedicated {
				bad("leaf %s: piece %d differs from its hold %s", l.key, i, h.ID)
			}
			seen[h]++
			cnt := 0
			for w := range W {
				x := l.mask(i, w)
				cnt += bits.OnesCount64(x)
				for x != 0 {
					b := w*64 + bits.TrailingZeros64(x)
					x &= x - 1
					if b >= len(l.nodes) {
						bad("leaf %s: piece %d holds bit %d past the leaf", l.key, i, b)
						continue
					}
					o := ix.nodes[l.nodes[b]].Ordinal
					if o < h.NodeFrom || o >= h.NodeTo {
						bad("leaf %s: piece of hold %s holds node %d outside [%d, %d)", l.key, h.ID, o, h.NodeFrom, h.NodeTo)
					}
				}
			}
			if cnt == 0 {
				bad("leaf %s: piece of hold %s holds no node", l.key, h.ID)
			}
			for j := range i {
				if l.pieces[j].end <= pc.start || pc.end <= l.pieces[j].start {
					continue
				}
				for w := range W {
					if l.mask(i, w)&l.mask(j, w) != 0 {
						bad("leaf %s: holds %s and %s overlap on a node", l.key, l.holds[j].ID, h.ID)
						break
					}
				}
			}
		}
		for b, pos := range l.nodes {
			if (l.sched[b/64]>>(b%64)&1 == 1) != ix.nodes[pos].Schedulable {
				bad("leaf %s: schedulable bit of node %d is stale", l.key, ix.nodes[pos].Ordinal)
			}
		}
	}
	ids := make([]string, 0, len(ix.holds))
	for id, rec := range ix.holds {
		ids = append(ids, id)
		if rec.ID != id {
			bad("hold %s is filed under %s", rec.ID, id)
		}
		if seen[rec] != len(rec.leaves) {
			bad("hold %s has %d pieces, want %d", id, seen[rec], len(rec.leaves))
		}
		for o := rec.NodeFrom; o < rec.NodeTo; o++ {
			pos, ok := ix.lookup(o)
			if !ok {
				bad("hold %s: node %d is not in the index", id, o)
				continue
			}
			n := &ix.nodes[pos]
			l := &ix.leaves[n.leaf]
			i := l.find(rec)
			if i < 0 || l.mask(i, int(n.bit/64))>>(n.bit%64)&1 == 0 {
				bad("hold %s: node %d is missing from its leaf's piece", id, o)
			}
		}
	}
	slices.Sort(ids)
	if ix.held {
		B := ix.buckets
		leafHeld := make([]uint8, len(ix.leafHeld))
		podHeld := newPodRows(B, ix.podLeaves)
		for li := range ix.leaves {
			l := &ix.leaves[li]
			for i, pc := range l.pieces {
				b0, b1 := ix.fullBuckets(pc.start, pc.end)
				n := 0
				for w := range int(l.words) {
					n += bits.OnesCount64(l.mask(i, w))
				}
				for b := b0; b < b1; b++ {
					leafHeld[li*B+b] += uint8(n)
					row, W := podHeld.row(int(l.pod))
					row[b*W] += uint16(n)
				}
			}
			for b := range B {
				if int(leafHeld[li*B+b]) == len(l.nodes) {
					podHeld.toggle(int(l.pod), int(l.lane), b)
				}
			}
		}
		podHeld.fill()
		laneHeld := newLaneRows(B, ix.podLeaves, ix.podMaxLeaf())
		laneHeld.fill(func(g, lane, c0, c1 int) uint8 {
			var m uint8
			if lane < len(ix.podLanes[g]) {
				l := int(ix.podLanes[g][lane])
				for _, c := range leafHeld[l*B+c0 : l*B+min(c1, B)] {
					m = max(m, c)
				}
			}
			return m
		})
		for g := range ix.pods {
			got, W := ix.laneHeld.row(g)
			want, _ := laneHeld.row(g)
			for i := range want {
				if got[i] != want[i] {
					bad("pod %s: lanes %d-%d of element %d are %#x, want %#x", ix.pods[g], 8*(i%W), 8*(i%W)+7, i/W, got[i], want[i])
					break
				}
			}
		}
		for i := range leafHeld {
			if leafHeld[i] != ix.leafHeld[i] {
				bad("leaf %s: bucket %d counts %d held nodes, want %d", ix.leaves[i/B].key, i%B, ix.leafHeld[i], leafHeld[i])
				break
			}
		}
		for g := range ix.pods {
			got, W := ix.podHeld.row(g)
			want, _ := podHeld.row(g)
			for i := range want {
				if got[i] != want[i] {
					what := "held count"
					if i%W > 0 {
						what = "full leaf groups"
					}
					bad("pod %s: %s of element %d word %d is %#x, want %#x", ix.pods[g], what, i/W, i%W, got[i], want[i])
					break
				}
			}
		}
	}
	want := make([]*calendar.Calendar, len(ix.domains))
	for i := range want {
		want[i] = calendar.New(ix.origin, ix.slots)
	}
	for _, id := range ids {
		rec := ix.holds[id]
		from, to := ix.floor(rec.start), ix.ceil(rec.end)
		for o := rec.NodeFrom; o < rec.NodeTo; o++ {
			if pos, ok := ix.lookup(o); ok {
				want[ix.nodes[pos].dom].Add(from, to, ix.nodes[pos].PowerW)
			}
		}
	}
	for d := range ix.domains {
		for s := range ix.slots {
			if got, w := ix.domains[d].cal.At(s), want[d].At(s); got != w {
				bad("power domain %s: slot %d holds %d W, want %d W", ix.domains[d].key, s, got, w)
				break
			}
		}
	}
	return errors.Join(errs...)
}
