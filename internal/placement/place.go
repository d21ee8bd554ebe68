package placement

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"time"

	"github.com/neocloud/neocloud/internal/calendar"
	"github.com/neocloud/neocloud/internal/lease"
)

// Request asks for whole nodes of one pool over [Start, End).
type Request struct {
	Pool       string
	Nodes      int
	Start, End time.Time
	// Packing: any and node take nodes anywhere in the pool, in as few
	// leaf groups and then pods as possible; nvlink-domain takes complete
	// NVLink domains of the pool's largest domain size only; leaf puts
	// every node in one leaf group; pod puts every node in one pod. ""
	// means any.
	Packing lease.Packing
	// Isolation dedicated-leaf takes only leaf groups where no other
	// tenant holds a node during the window. "" means shared-leaf.
	Isolation lease.Isolation
	TenantID  string
	// Prefer lists ordinals to take first when they are free, for
	// continuity across a contract's ramp steps.
	Prefer []int64
	// Near is 0 or an ordinal: take nodes in its leaf group if they fit
	// there, else in its pod, else anywhere (replacing a failed node).
	Near int64
	// Within is "" or a leaf group or pod key: take only nodes under it.
	Within string
	// NoReason asks only whether r fits, for callers that try several
	// windows: a refusal then skips the search for the rule that fails.
	// Its Reason is ReasonUnknown, unless the rule was plain without that
	// search: the request itself (pool, topology), or too few free nodes
	// (capacity, with a bound on them rather than their count in Detail).
	// Plans are the same with or without it.
	NoReason bool
}

// Plan is the nodes Place chose.
type Plan struct {
	// Nodes are ordinals, sorted.
	Nodes []int64
	// LeafGroups and Pods count the leaf groups and pods the nodes are in.
	LeafGroups, Pods int
}

// Reason says why Place found no plan.
type Reason string

// Reasons, checked in this order: the pool is unknown; the request's shape
// fits no window (topology: a node count that is not whole NVLink domains,
// leaf or pod packing of more nodes than the pool's largest leaf group or
// pod has); the power domains' budgets leave room for fewer nodes than
// asked whichever nodes are free (power: read from the budgets' calendars
// alone); the pool has too few free schedulable nodes over the window;
// they cannot be packed as asked even ignoring isolation and power; other
// tenants' leaf groups are off limits; the power domains' budgets leave
// too little room for the nodes that are free.
const (
	ReasonPool      Reason = "pool"
	ReasonCapacity  Reason = "capacity"
	ReasonTopology  Reason = "topology"
	ReasonIsolation Reason = "isolation"
	ReasonPower     Reason = "power"
	// ReasonUnknown is given only when Request.NoReason is set: no plan
	// was found and the rule that fails was not sought.
	ReasonUnknown Reason = "unknown"
)

// Error is Place's answer when a request cannot be placed: the Reason, and
// the Detail in words with numbers.
type Error struct {
	Reason Reason
	Detail string
}

// Error returns the reason and the detail.
func (e *Error) Error() string { return "placement: " + string(e.Reason) + ": " + e.Detail }

func refuse(r Reason, format string, args ...any) error {
	return &Error{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// Place chooses nodes for r from ix and returns them, or an *Error with the
// reason there is no plan; a malformed request (Nodes < 1, an empty or
// out-of-range window, an unknown packing or isolation, an unknown Near
// ordinal) gets an error wrapping ErrInvalid. It reads ix only, and the
// same index and request always give the same plan.
//
// A plan's nodes are schedulable nodes of r.Pool with no hold overlapping
// [Start, End); per power domain, the most IT power its holds draw in any
// hourly slot the window touches plus the chosen nodes' power stays within
// the budget; no chosen leaf group has a node held during the window by
// another tenant's dedicated-leaf lease or, when r is dedicated-leaf, by
// another tenant at all; and the nodes are packed as r.Packing asks.
//
// Among such plans Place prefers the fewest leaf groups, then the fewest
// pods: for any, node and nvlink-domain packing, the tightest leaf group of
// the first pod (in ordinal order) that has one holding the request; else
// the first pod that holds it in as few leaf groups as any plan could need;
// else the tightest pod that holds it in the fewest leaf groups possible;
// else leaf groups across pods, largest first. The leaf group count is the
// least possible whenever each leaf group lies in one power domain and
// Prefer and Near are empty; the pod count is a heuristic. Prefer nodes are
// taken first when free, then the rest of their leaf groups; Near tries its
// leaf group, then its pod, then anywhere. Within a leaf group the lowest
// ordinals go first.
func Place(ix *Index, r Request) (Plan, error) {
	p, s, e, unit, err := prepare(ix, &r)
	if err != nil {
		return Plan{}, err
	}
	sr := ix.scratch.Get().(*search)
	defer func() {
		sr.release()
		ix.scratch.Put(sr)
	}()
	if err := sr.init(ix, p, &r, s, e, unit); err != nil {
		return Plan{}, err
	}
	if sr.powerRoom() < int64(sr.k) {
		// No plan with power: only the reason is left to find.
		if r.NoReason {
			return Plan{}, refuse(ReasonUnknown, "the power budgets of pool %s's domains leave room for %d of the %d units needed; the rule that fails was not sought",
				p.id, sr.powerRoom(), sr.k)
		}
		return Plan{}, sr.explain()
	}
	if sr.run(true, true) {
		return sr.plan(), nil
	}
	if r.NoReason {
		if sr.refuted {
			return Plan{}, refuse(ReasonCapacity, "pool %s has at most %d free nodes over the window, %d needed", p.id, sr.podFree, r.Nodes)
		}
		return Plan{}, refuse(ReasonUnknown, "pool %s cannot place %d nodes over the window; the rule that fails was not sought", p.id, r.Nodes)
	}
	return Plan{}, sr.explain()
}

// Fits reports whether Place would place r, without choosing the nodes,
// for callers that only ask whether windows fit (the engine's search for
// the earliest start). Prefer, which only orders the choice, is not looked
// at. A malformed request gets the error Place gives it; one Place refuses
// before looking at the nodes (an unknown pool, a node count that is not a
// multiple of the NVLink domain size, leaf or pod packing of more nodes
// than any leaf group or pod of the pool has) gets false and no error.
//
// For any, node and nvlink-domain packing with no Within, in a pool whose
// leaf groups each lie in one power domain, a plan exists exactly when the
// free units of the leaf groups open to the tenant, capped per power
// domain, number r's: Fits reads holds only until it has found them.
func Fits(ix *Index, r Request) (bool, error) {
	ok, err := probe(ix, r, false)
	if pe := (*Error)(nil); errors.As(err, &pe) {
		return false, nil
	}
	return ok, err
}

// Decide answers whether Place would place r without choosing the nodes:
// nil when Place would return a plan, else the error Place returns (the
// same Reason and Detail), so that callers who ask whether and why not,
// and not where, are spared the search for the preferred plan. It stops
// at the first plan it finds, as Fits does; a refusal costs what Place's
// does. NoReason is not looked at: Decide always names the rule that
// fails (Fits answers without it).
func Decide(ix *Index, r Request) error {
	_, err := probe(ix, r, true)
	return err
}

// probe is Fits and, with explain, Decide: whether Place would place r,
// stopping at the first plan found; false with Place's refusal when
// explain is set, else with no error for a request the rules refuse.
func probe(ix *Index, r Request, explain bool) (bool, error) {
	p, s, e, unit, err := prepare(ix, &r)
	if err != nil {
		return false, err
	}
	r.Prefer = nil // it only orders the choice
	if explain {
		r.NoReason = false
	}
	sr := ix.scratch.Get().(*search)
	defer func() {
		sr.release()
		ix.scratch.Put(sr)
	}()
	if err := sr.init(ix, p, &r, s, e, unit); err != nil {
		return false, err
	}
	ok := false
	switch {
	case sr.powerRoom() < int64(sr.k):
	case (r.Packing == lease.PackAny || r.Packing == lease.PackNode || r.Packing == lease.PackNVLinkDomain) && sr.within == 0 && !p.mixed:
		ok = sr.fitsWithPower()
	default:
		sr.probe = true
		ok = sr.run(true, true)
	}
	if ok || !explain {
		return ok, nil
	}
	return false, sr.explain()
}

// prepare checks r as Place does, setting its default packing, and returns
// its pool, window in Unix nanoseconds and nodes per unit.
func prepare(ix *Index, r *Request) (p *pool, s, e int64, unit int, err error) {
	p = ix.pools[r.Pool]
	if p == nil {
		return nil, 0, 0, 0, refuse(ReasonPool, "no pool %q", r.Pool)
	}
	if r.Nodes < 1 {
		return nil, 0, 0, 0, fmt.Errorf("place: %w: %d nodes, want at least 1", ErrInvalid, r.Nodes)
	}
	if s, e, err = interval(r.Start, r.End); err != nil {
		return nil, 0, 0, 0, fmt.Errorf("place: %w", err)
	}
	switch r.Packing {
	case "":
		r.Packing = lease.PackAny
	case lease.PackAny, lease.PackNode, lease.PackNVLinkDomain, lease.PackLeaf, lease.PackPod:
	default:
		return nil, 0, 0, 0, fmt.Errorf("place: %w: packing %q", ErrInvalid, r.Packing)
	}
	switch r.Isolation {
	case "", lease.SharedLeaf, lease.DedicatedLeaf:
	default:
		return nil, 0, 0, 0, fmt.Errorf("place: %w: isolation %q", ErrInvalid, r.Isolation)
	}
	unit = 1
	if r.Packing == lease.PackNVLinkDomain {
		unit = p.nvlink
		if r.Nodes%unit != 0 {
			return nil, 0, 0, 0, refuse(ReasonTopology, "%d nodes is not a multiple of %d, the NVLink domain size of pool %s", r.Nodes, unit, p.id)
		}
	}
	if p.oversize(r.Packing, r.Nodes) {
		// No window changes it: the holds need not be read.
		what, most := "leaf group", p.maxNodes
		if r.Packing == lease.PackPod {
			what, most = "pod", p.maxPod
		}
		return nil, 0, 0, 0, refuse(ReasonTopology, "no %s of pool %s has %d nodes (packing %s); the largest has %d", what, p.id, r.Nodes, r.Packing, most)
	}
	return p, s, e, unit, nil
}

// fitsWithPower is Fits for any, node and nvlink-domain packing with no
// Within, in a pool whose leaf groups each lie in one power domain: the
// free units of the leaf groups open to the tenant, each domain's capped
// by its budget, in pool order until they reach k.
func (s *search) fitsWithPower() bool {
	// The bounds settle most windows that do not fit; the tighter one,
	// which reads every pod's full leaf groups, only where the looser
	// leaves little room. They read every pod's held counts, which a
	// window that fits in the first few leaf groups does not need: they
	// are asked once boundAfter leaf groups have not sufficed.
	refuted := func() bool {
		n := s.r.Nodes
		return s.bounded && (s.freeBound(false) < n || s.freeBound(false) < 4*n && s.freeBound(true) < n)
	}
	scanned := 0
	cnt := grow(s.tmp, len(s.p.doms))
	clear(cnt)
	sum := int64(0)
	for j := int32(0); j < int32(len(s.p.leaves)); {
		q := s.p.leaves[j].pod
		e := s.p.pods[q].hi
		// Power first: it reads no held counts.
		if d := s.p.pods[q].dom; d >= 0 && cnt[d] >= s.capU[d] {
			j = e
			continue
		}
		if s.bounded && s.podBound(int(q)) == 0 {
			j = e
			continue
		}
		base := s.p.pods[q].lo
		j = e
		for w, x := range s.podOpen(int(q)) {
			for ; x != 0; x &= x - 1 {
				j := base + int32(w*64+bits.TrailingZeros64(x))
				d := s.p.leaves[j].dom
				if cnt[d] >= s.capU[d] {
					continue
				}
				if scanned == boundAfter && refuted() {
					return false
				}
				scanned++
				if s.scanLeaf(int(j)); !s.done[j] || s.excl[j] {
					continue
				}
				add := min(int64(s.u[j]), s.capU[d]-cnt[d])
				cnt[d] += add
				if sum += add; sum >= int64(s.k) {
					return true
				}
			}
		}
	}
	return false
}

// boundAfter is how many leaf groups fitsWithPower reads before it asks
// the pods' bounds whether the window can fit at all.
const boundAfter = 4

// search is the state of one Place call. Its buffers are reused from call
// to call through Index.scratch.
type search struct {
	buffers
	state
}

// state is a search's own fields, apart from its buffers so that init
// resets them without copying the buffers.
type state struct {
	ix        *Index
	p         *pool
	r         Request
	s, e      int64
	tenant    int32 // -1 when the tenant holds nothing
	dedicated bool
	unit      int // nodes per unit: 1, or the NVLink domain size
	k         int // units needed

	within     int   // 0 none, 1 a leaf, 2 a pod
	withinIdx  int32 // pool leaf or pod index
	nearLeaf   int32 // Index.leaves index, or -1
	nearPod    int32 // Index.pods index, or -1
	hasPref    bool
	iso, power bool // constraints of the current run
	freeNodes  int  // free nodes of the leaves scanned
	// bounded is set when the window overlaps buckets of Index.podHeld:
	// podUB then holds bounds on the pods' free nodes and podFree one on
	// the pool's, each -1 until needed. refuted is set when run found
	// podFree below the request.
	bounded bool
	podFree int
	refuted bool
	// probe is set by Fits: a plan is only looked for, not chosen, so
	// leaf and pod packing stop at the first that fits.
	probe bool
}

// buffers are a search's slices, indexed by pool leaf (L), pool power
// domain (D) or pool pod.
type buffers struct {
	free, pref, taken []uint64 // node masks per pool leaf, at poolLeaf.off
	u, prefU          []int32  // free and preferred free units (L)
	excl              []bool   // leaf closed to the tenant (L)
	done              []bool   // leaf scanned (L)
	touched           []bool   // leaf has taken nodes (L)
	picked            []bool   // leaf picked by minLeaves (L)
	touchedList       []int32
	segs              []heldSeg // runs of Index.podHeld the window overlaps
	lsegs             []heldSeg // runs of Index.laneHeld wholly inside them
	podUB             []int32   // bounds on the free nodes of each pool pod
	podRead           []int32   // runs of segs read for podUB, per pool pod
	flags             []uint64  // full leaf groups per pool pod, at poolPod.flagOff
	flagsDone         []bool    // flags computed, per pool pod
	open              []uint64  // leaves not full per pool pod, at poolPod.openOff
	openDone          []bool    // open computed, per pool pod
	lmax              []uint64  // lane maxima per pool pod, at poolPod.laneOff
	lubRead           []int32   // runs of lsegs read into lmax per pool pod, -1 none
	lub               []int32   // bounds on the free nodes of each pool leaf
	podLU, podLeafLU  []int32   // per pool pod: their units summed, and the most of one leaf
	keys              []uint64  // pods to visit, packed with their sort keys
	obits             []uint64  // scratch for openIn
	ubs               []int32   // bounds of one pod's leaves
	capU, capRem      []int64   // units that fit in each power budget (D)
	tmp, vtmp         []int64   // (D)
	cands, order, sub []int32
	sub2, cnt         []int32
	podOrder, podRank []int32
	pos               []int32 // position of a leaf in order (L)
	podSum            []int64
	hist              []int32
	groups            [][]int32
	picks             []pick
	spans             []calendar.Span // per pool power domain (PowerShift)
}

type pick struct {
	j int32
	n int
}

const unlimited = math.MaxInt64 / 4

// take modes: which of a leaf's free units count.
const (
	modeAll = iota
	modePref
)

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func (s *search) init(ix *Index, p *pool, r *Request, start, end int64, unit int) error {
	s.state = state{ix: ix, p: p, r: *r, s: start, e: end, unit: unit, k: r.Nodes / unit,
		dedicated: r.Isolation == lease.DedicatedLeaf, nearLeaf: -1, nearPod: -1}
	s.touchedList, s.segs, s.lsegs = s.touchedList[:0], s.segs[:0], s.lsegs[:0]
	t, ok := ix.tenants[r.TenantID]
	if !ok {
		t = -1
	}
	s.tenant = t
	L := len(p.leaves)
	s.free = grow(s.free, p.words)
	// taken, touched and picked are clean: release and minLeaves leave
	// them so.
	s.taken = grow(s.taken, p.words)
	s.u = grow(s.u, L)
	s.excl = grow(s.excl, L)
	s.touched = grow(s.touched, L)
	s.podSum = grow(s.podSum, len(p.pods))
	D := len(p.doms)
	s.capU, s.capRem, s.tmp, s.vtmp = grow(s.capU, D), grow(s.capRem, D), grow(s.tmp, D), grow(s.vtmp, D)
	s.picked = grow(s.picked, L)
	s.done = grow(s.done, L)
	clear(s.done)
	s.open = grow(s.open, p.openWords)
	s.openDone = grow(s.openDone, len(p.pods))
	clear(s.openDone)
	if r.Within != "" {
		if j, ok := p.leafByKey[r.Within]; ok {
			s.within, s.withinIdx = 1, j
		} else if j, ok := p.podByKey[r.Within]; ok {
			s.within, s.withinIdx = 2, j
		} else {
			return refuse(ReasonTopology, "pool %s has no leaf group or pod %q", p.id, r.Within)
		}
	}
	if r.Near != 0 {
		pos, ok := ix.lookup(r.Near)
		if !ok {
			return fmt.Errorf("place: %w: near node ordinal %d is not in the index", ErrInvalid, r.Near)
		}
		s.nearLeaf = ix.nodes[pos].leaf
		s.nearPod = ix.leaves[s.nearLeaf].pod
	}
	s.powerCaps()
	if ix.held {
		if b0, b1 := ix.touchedBuckets(start, end); b1 > b0 {
			s.segs = ix.podHeld.segments(s.segs, b0, b1)
			s.lsegs = ix.laneHeld.laneSegs(s.lsegs[:0], s.segs, ix.buckets)
			s.bounded = true
			s.podUB = grow(s.podUB, len(p.pods))
			s.podRead = grow(s.podRead, len(p.pods))
			for q := range s.podUB {
				s.podUB[q] = -1
			}
			s.podFree = -1
			s.flags = grow(s.flags, p.flagWords)
			s.flagsDone = grow(s.flagsDone, len(p.pods))
			clear(s.flagsDone)
			s.lmax = grow(s.lmax, p.laneWords)
			s.lubRead = grow(s.lubRead, len(p.pods))
			for q := range s.lubRead {
				s.lubRead[q] = -1
			}
			s.lub = grow(s.lub, L)
			s.podLU = grow(s.podLU, len(p.pods))
			s.podLeafLU = grow(s.podLeafLU, len(p.pods))
		}
	}
	if len(r.Prefer) > 0 {
		s.scanRange(0, L)
		s.settle()
		s.scanPref()
	}
	return nil
}

// scanRange computes the free nodes over the window of leaves [lo, hi)
// not yet scanned, and whether the tenant may use them.
func (s *search) scanRange(lo, hi int) {
	for lo < hi {
		q := s.p.leaves[lo].pod
		e := min(hi, int(s.p.pods[q].hi))
		switch {
		case !s.bounded:
			for j := lo; j < e; j++ {
				if !s.done[j] {
					s.scan(j)
				}
			}
		case s.podNodesUB(int(q)) == 0:
			// Every node of the pod is held throughout a bucket the
			// window overlaps. Its leaves are left unscanned: only
			// candidates and quick look at them, and both skip the
			// pod; settle clears them for the rest.
		default:
			full := s.podFlags(int(q))
			for j := lo; j < e; j++ {
				if s.done[j] {
					continue
				}
				if pl := &s.p.leaves[j]; full[pl.lw]&pl.lbit != 0 {
					// Every node is held throughout a bucket the window
					// overlaps.
					s.clearLeaf(j)
					continue
				}
				s.scan(j)
			}
		}
		lo = e
	}
}

// settle marks the leaves of the pods scanRange skipped as scanned with
// no free node, for the code that reads every leaf's state.
func (s *search) settle() {
	if !s.bounded {
		return
	}
	for q := range s.p.pods {
		if pd := &s.p.pods[q]; s.podNodesUB(q) == 0 {
			s.clearLeaves(int(pd.lo), int(pd.hi))
		}
	}
}

// clearLeaves marks leaves [lo, hi) scanned with no free node.
func (s *search) clearLeaves(lo, hi int) {
	clear(s.u[lo:hi])
	clear(s.excl[lo:hi])
	last := &s.p.leaves[hi-1]
	clear(s.free[s.p.leaves[lo].off : last.off+last.words])
	for j := lo; j < hi; j++ {
		s.done[j] = true
	}
}

// clearLeaf marks leaf j scanned with no free node.
func (s *search) clearLeaf(j int) {
	pl := &s.p.leaves[j]
	s.u[j], s.excl[j], s.done[j] = 0, false, true
	for w := range pl.words {
		s.free[pl.off+w] = 0
	}
}

// scan computes the free nodes of leaf j over the window from its holds.
func (s *search) scan(j int) {
	p, ix := s.p, s.ix
	S, E := s.s, s.e
	T, ded := s.tenant, s.dedicated
	s.done[j] = true
	pl := &p.leaves[j]
	lf := &ix.leaves[pl.leaf]
	ps := lf.pieces
	// k: the pieces that start before the window ends; a branch-free
	// binary search, as the outcome of each step is a coin toss.
	st := lf.starts
	k := len(st)
	if k > 0 && st[k-1] >= E {
		lo, n := 0, k
		for n > 1 {
			half := n >> 1
			if st[lo+half-1] < E {
				lo += half
			}
			n -= half
		}
		k = lo
	}
	excl := false
	var n int
	if pl.words == 1 {
		var busy uint64
		for i := k - 1; i >= 0; i-- {
			pc := &ps[i]
			if pc.pmax <= S {
				break
			}
			if pc.end > S {
				busy |= pc.mask0
				if pc.tenant != T && (pc.dedicated || ded) {
					excl = true
				}
				if pl.base0&^busy == 0 {
					// Nothing free: excl no longer matters.
					break
				}
			}
		}
		f := pl.base0 &^ busy
		s.free[pl.off] = f
		n = bits.OnesCount64(f)
	} else {
		W := int(pl.words)
		f := s.free[pl.off : int(pl.off)+W]
		for w := range f {
			f[w] = lf.sched[w] & pl.mask[w]
		}
		// A piece's first word is in the piece, the others in more
		// (leaf.mask), read here without a call per word, and for leaf
		// groups of three words (GB200: 144 trays) in registers: such a
		// scan reads dozens of pieces.
		more, W1 := lf.more, W-1
		if W == 3 {
			f0, f1, f2 := f[0], f[1], f[2]
			for i := k - 1; i >= 0; i-- {
				pc := &ps[i]
				if pc.pmax <= S {
					break
				}
				if pc.end > S {
					m := more[2*i : 2*i+2]
					f0 &^= pc.mask0
					f1 &^= m[0]
					f2 &^= m[1]
					if pc.tenant != T && (pc.dedicated || ded) {
						excl = true
					}
					if f0|f1|f2 == 0 {
						break
					}
				}
			}
			f[0], f[1], f[2] = f0, f1, f2
		} else {
			for i := k - 1; i >= 0; i-- {
				pc := &ps[i]
				if pc.pmax <= S {
					break
				}
				if pc.end > S {
					f[0] &^= pc.mask0
					left := f[0]
					for w, x := range more[i*W1 : i*W1+W1] {
						f[w+1] &^= x
						left |= f[w+1]
					}
					if pc.tenant != T && (pc.dedicated || ded) {
						excl = true
					}
					if left == 0 {
						break
					}
				}
			}
		}
		for _, x := range f {
			n += bits.OnesCount64(x)
		}
	}
	s.freeNodes += n
	switch {
	case s.unit == 1:
		s.u[j] = int32(n)
	case n < s.unit:
		// Too few free nodes for a complete NVLink domain.
		s.u[j] = 0
	default:
		s.u[j] = int32(s.units(j, modeAll))
	}
	s.excl[j] = excl
}

// bounds returns bounds on the free units of the leaves of pool pod q, in
// a scratch slice.
func (s *search) bounds(q int) []int32 {
	out := s.ubs[:0]
	pd := &s.p.pods[q]
	ub := int32(s.podNodesUB(q))
	if ub == 0 {
		for range pd.hi - pd.lo {
			out = append(out, 0)
		}
		s.ubs = out
		return out
	}
	full := s.podFlags(q)
	unit := int32(s.unit)
	for j := pd.lo; j < pd.hi; j++ {
		b := int32(0)
		if pl := &s.p.leaves[j]; full[pl.lw]&pl.lbit == 0 {
			b = min(ub, pl.size) / unit
		}
		out = append(out, b)
	}
	s.ubs = out
	return out
}

// leavesShort reports whether the bounds on the free nodes of pool pod
// q's leaf groups show that it cannot hold need units over the window as
// the packing asks: in one leaf group (leaf), or in all (other packings).
// A need of one is left to the pod's bound and full leaf groups, which
// are cheaper to read and settle it as well. s.bounded must be set.
//
// The bounds come from Index.laneHeld: a leaf group's size less the most
// of its nodes held throughout a bucket the window overlaps (of those in
// elements wholly inside the window, s.lsegs), at most its nodes of the
// pool and the pod's bound. They are read a run of elements at a time,
// coarsest first, for all the pod's leaf groups at once, until they
// settle the question or every run is read; a run costs a few times what
// the pod's count does. Bounds from some of the runs are looser but still
// bounds (a greatest count over fewer buckets is no greater), and a later
// call with a larger need resumes where this one stopped. When it returns
// false, every run has been read and s.lub is final. A window with no
// such run (a few buckets long) gets false at once.
func (s *search) leavesShort(q, need int) bool {
	if need <= 1 || len(s.lsegs) == 0 {
		return false
	}
	pd := &s.p.pods[q]
	m := s.lmax[pd.laneOff:pd.laneEnd]
	all := int32(len(s.lsegs))
	if s.lubRead[q] < 0 {
		s.lubRead[q] = 0
		clear(m)
	}
	for {
		if s.lubRead[q] >= all {
			if s.lubRead[q] == all {
				s.leafBounds(q)
				s.lubRead[q] = all + 1
			}
			return s.leavesMost(q) < need
		}
		if s.partShort(q, need, m) {
			return true
		}
		s.ix.laneHeld.max(int(pd.pod), s.lsegs[s.lubRead[q]], m)
		s.lubRead[q]++
	}
}

// leavesMost returns the most units that the leaf bounds of pool pod q
// leave room for as the packing asks: in one leaf group, or in all.
func (s *search) leavesMost(q int) int {
	if s.r.Packing == lease.PackLeaf {
		return int(s.podLeafLU[q])
	}
	return int(s.podLU[q])
}

// partShort is leavesShort's test on the lane maxima m read so far. For a
// dense pod (every lane a leaf group of the pool) it works on words of
// eight lanes, with bounds a little looser than leafBounds' but no read
// per leaf group: leaf packing needs a lane held at most widest-need,
// widest the largest leaf group's size; other packings need the lanes'
// sizes less their counts, summed, to reach need.
func (s *search) partShort(q, need int, m []uint64) bool {
	pd := &s.p.pods[q]
	if !pd.dense {
		s.leafBounds(q)
		return s.leavesMost(q) < need
	}
	L := int(pd.hi - pd.lo)
	if s.r.Packing == lease.PackLeaf {
		t := int(pd.widest) - need*s.unit + 1 // a lane held at least t is short
		if t <= 0 {
			return true
		}
		tt := uint64(t) * byteOnes
		for w, x := range m {
			var short uint64
			if pd.widest <= 127 {
				// (x|0x80)-t has the high bit of a lane set where x >=
				// t: counts are below 128, so nothing borrows.
				short = ((x | byteHigh) - tt) & byteHigh
			} else {
				short = geBytes(x, tt)
			}
			if open := ^short & byteHigh & lanesBelow(L-8*w); open != 0 {
				return false
			}
		}
		return true
	}
	held := 0
	for _, x := range m {
		held += sumBytes(x)
	}
	free := min(int(pd.size)-held, int(pd.n), s.podKnownUB(q))
	return free/s.unit < need
}

// byteOnes has each byte 1.
const byteOnes = 0x0101010101010101

// lanesBelow returns the high bits of the first n bytes of a word, all
// eight for n >= 8.
func lanesBelow(n int) uint64 {
	if n >= 8 {
		return byteHigh
	}
	return byteHigh & (1<<(8*max(n, 0)) - 1)
}

// sumBytes returns the sum of the bytes of x.
func sumBytes(x uint64) int {
	const pairs = 0x00ff00ff00ff00ff
	y := x&pairs + x>>8&pairs // four sums of two bytes, in 16 bits each
	return int(y * 0x0001000100010001 >> 48)
}

// leafBounds sets s.lub for pool pod q's leaves, and s.podLU and
// s.podLeafLU, from the lane maxima read so far.
func (s *search) leafBounds(q int) {
	pd := &s.p.pods[q]
	m := s.lmax[pd.laneOff:pd.laneEnd]
	ub := int32(s.podKnownUB(q))
	var sum, most int32
	for j := pd.lo; j < pd.hi; j++ {
		lb := &s.p.bnd[j]
		held := int32(uint8(m[lb.lane/8] >> (8 * (lb.lane % 8))))
		b := min(lb.n, lb.size-held, ub)
		s.lub[j] = b
		sum += b
		most = max(most, b)
	}
	if s.unit > 1 {
		sum = 0
		for j := pd.lo; j < pd.hi; j++ {
			sum += s.lub[j] / int32(s.unit)
		}
		ub, most = ub/int32(s.unit), most/int32(s.unit)
	}
	s.podLU[q], s.podLeafLU[q] = min(sum, ub), most
}

// leafShort reports whether the bounds show that pool leaf j has fewer
// than need free units over the window, for leaf packing; need > 1
// reads its pod's leaf bounds.
func (s *search) leafShort(j int32, need int) bool {
	// Inlined where leaf groups are looped over: most windows have no
	// runs of lanes (s.lsegs is empty when s.bounded is not set).
	return need > 1 && len(s.lsegs) > 0 && s.leafShortRead(j, need)
}

func (s *search) leafShortRead(j int32, need int) bool {
	return s.leavesShort(int(s.p.leaves[j].pod), need) || int(s.lub[j])/s.unit < need
}

// podKnownUB returns the bound on pool pod q's free nodes read so far
// (podNodesBelow), and its nodes of the pool when none is: the leaf
// groups' bounds do without reading it.
func (s *search) podKnownUB(q int) int {
	switch n := s.podUB[q]; {
	case n >= 0:
		return int(n)
	case n <= -2:
		return int(-2 - n)
	}
	return int(s.p.pods[q].n)
}

// podBound bounds the free units of pool pod q over the window.
func (s *search) podBound(q int) int {
	return s.podNodesUB(q) / s.unit
}

// podNodesUB bounds the free nodes of pool pod q over the window from
// Index.podHeld: its nodes less the most held throughout a bucket.
func (s *search) podNodesUB(q int) int {
	if n := s.podUB[q]; n >= 0 {
		return int(n)
	}
	// A bound of 0 is final: reading on to it reads every run.
	return s.podNodesBelow(q, 1)
}

// podNodesBelow returns a bound on the free nodes of pool pod q over the
// window, reading Index.podHeld's runs for the window (coarsest first,
// resuming where an earlier call stopped) only until the bound is below n
// or every run is read: then it is podNodesUB's. A bound from some of the
// runs is looser but still a bound.
//
// s.podUB[q] holds -1 before the first read, the final bound when every
// run is read or it is 0, and -2-b for a bound b from some of the runs,
// so that podNodesUB's test for a final one is a sign.
func (s *search) podNodesBelow(q, n int) int {
	ub := s.podUB[q]
	switch {
	case ub >= 0:
		return int(ub)
	case ub <= -2 && int(-2-ub) < n:
		return int(-2 - ub)
	}
	g := s.p.pods[q].pod
	full := uint16(s.ix.podNodes[g])
	held := uint16(0)
	if ub == -1 {
		s.podRead[q] = 0
	} else {
		held = full - uint16(-2-ub)
	}
	// The bound full-held is below n once held reaches stop.
	stop := full
	switch {
	case n > int(full):
		stop = 0
	case n > 0:
		stop = full - uint16(n) + 1
	}
	if held < stop && int(s.podRead[q]) < len(s.segs) {
		m, read := s.ix.podHeld.max(int(g), s.segs[s.podRead[q]:], stop)
		held = max(held, m)
		s.podRead[q] += int32(read)
	}
	b := int32(full - held)
	if s.podRead[q] == int32(len(s.segs)) || b == 0 {
		s.podUB[q] = b
	} else {
		s.podUB[q] = -2 - b
	}
	return int(b)
}

// freeBound bounds the pool's free nodes over the window: the sum of its
// pods' bounds; when that is not below the request and tight is set, per
// pod the least of its bound and the size of its leaf groups not full,
// kept as podFree.
func (s *search) freeBound(tight bool) int {
	if s.podFree >= 0 {
		return s.podFree
	}
	n := 0
	for q := range s.p.pods {
		n += s.podNodesUB(q)
	}
	if n < s.r.Nodes {
		s.podFree = n
		return n
	}
	if !tight {
		return n
	}
	n = 0
	for q := range s.p.pods {
		ub := s.podNodesUB(q)
		if ub == 0 {
			continue
		}
		full := s.podFlags(q)
		pd := &s.p.pods[q]
		open := int(pd.size)
		for w, x := range pd.lanes {
			for x &= full[w]; x != 0; x &= x - 1 {
				open -= int(pd.laneSize[w*64+bits.TrailingZeros64(x)])
			}
		}
		n += min(ub, open)
	}
	s.podFree = n
	return n
}

// scanLeaf scans leaf j if it has not been.
func (s *search) scanLeaf(j int) {
	if s.done[j] {
		return
	}
	// scanRange(j, j+1), without its loop: scanLeaf is called leaf by
	// leaf, hundreds of times a search.
	if !s.bounded {
		s.scan(j)
		return
	}
	pl := &s.p.leaves[j]
	q := int(pl.pod)
	if ub := s.podUB[q]; ub == 0 || ub < 0 && s.podNodesUB(q) == 0 {
		return // as scanRange: the pod's leaves stay unscanned
	}
	if !s.flagsDone[q] {
		s.podFlags(q)
	}
	if s.flags[s.p.pods[q].flagOff+pl.lw]&pl.lbit != 0 {
		s.clearLeaf(j)
		return
	}
	s.scan(j)
}

// podFlags returns, by lane, the leaf groups of pool pod q whose every
// node is held throughout a bucket the window overlaps, from Index.podHeld.
func (s *search) podFlags(q int) []uint64 {
	pd := &s.p.pods[q]
	m := s.flags[pd.flagOff:pd.flagEnd]
	if !s.flagsDone[q] {
		// The flags sit beside the counts: when the pod's bound was
		// read first, as it usually is, their cache lines are in.
		s.flagsDone[q] = true
		clear(m)
		s.ix.podHeld.or(int(pd.pod), s.segs, m)
	}
	return m
}

// podOpen returns the leaf groups of pool pod q that the full flags do
// not rule out, bit i for pool leaf lo+i; all of them when the window
// overlaps no bucket.
func (s *search) podOpen(q int) []uint64 {
	pd := &s.p.pods[q]
	m := s.open[pd.openOff:pd.openEnd]
	if s.openDone[q] {
		return m
	}
	s.openDone[q] = true
	if !s.bounded {
		clear(m)
		setBits(m, 0, int(pd.hi-pd.lo))
		return m
	}
	full := s.podFlags(q)
	if pd.dense {
		for w := range m {
			m[w] = pd.lanes[w] &^ full[w]
		}
		return m
	}
	clear(m)
	for j := pd.lo; j < pd.hi; j++ {
		if pl := &s.p.leaves[j]; full[pl.lw]&pl.lbit == 0 {
			i := j - pd.lo
			m[i/64] |= 1 << (i % 64)
		}
	}
	return m
}

// openIn returns the leaves of podOpen(q) in [lo, hi), bit i for pool
// leaf pods[q].lo+i, possibly in a scratch slice that the next call
// reuses.
func (s *search) openIn(q int, lo, hi int32) []uint64 {
	pd := &s.p.pods[q]
	m := s.podOpen(q)
	if lo <= pd.lo && hi >= pd.hi {
		return m
	}
	out := grow(s.obits, len(m))
	clear(out)
	setBits(out, int(max(lo, pd.lo)-pd.lo), int(min(hi, pd.hi)-pd.lo))
	for w := range out {
		out[w] &= m[w]
	}
	s.obits = out
	return out
}

// scanPref marks the preferred nodes and counts the preferred free units.
func (s *search) scanPref() {
	p, ix := s.p, s.ix
	s.pref = grow(s.pref, p.words)
	clear(s.pref)
	s.prefU = grow(s.prefU, len(p.leaves))
	clear(s.prefU)
	for _, o := range s.r.Prefer {
		pos, ok := ix.lookup(o)
		if !ok || ix.nodes[pos].pool != p {
			continue
		}
		n := &ix.nodes[pos]
		pl := &p.leaves[n.pleaf]
		s.pref[int(pl.off)+int(n.bit/64)] |= 1 << (n.bit % 64)
		s.hasPref = true
	}
	if !s.hasPref {
		return
	}
	for j := range p.leaves {
		pl := &p.leaves[j]
		any := false
		for w := range pl.words {
			if s.pref[pl.off+w]&s.free[pl.off+w] != 0 {
				any = true
				break
			}
		}
		if any {
			s.prefU[j] = int32(s.units(j, modePref))
		}
	}
}

// powerCaps computes, per pool power domain, how many units fit in the
// budget over the window.
//
// In a pool whose leaf groups each lie in one power domain, a domain
// whose budget has room, over the greatest draw of its whole calendar,
// for every unit of the pool's nodes in it and for the request gets that
// room, without reading the window: a cap at or above both never binds
// (no plan takes more units of a domain than it has, the power check
// compares the caps' sum with the request, and the numbers of a refusal
// take the least of a domain's free nodes and its cap), so Place answers
// as with the window's exact room.
func (s *search) powerCaps() {
	from, to := s.ix.floor(s.s), s.ix.ceil(s.e)
	for d, pd := range s.p.doms {
		dom := &s.ix.domains[pd.dom]
		w := pd.unitW * int64(s.unit)
		if w <= 0 {
			s.capU[d] = unlimited
			continue
		}
		if !s.p.mixed {
			if c := max(dom.budgetW-max(dom.cal.Ceiling(), 0), 0) / w; c >= max(pd.nodes/int64(s.unit), int64(s.k)) {
				s.capU[d] = c
				continue
			}
		}
		held := max(dom.cal.Max(from, to), 0)
		s.capU[d] = max(dom.budgetW-held, 0) / w
	}
}

// units counts leaf j's units that are free, untaken and, in modePref,
// preferred.
func (s *search) units(j int, mode int) int {
	pl := &s.p.leaves[j]
	off, W := int(pl.off), int(pl.words)
	n := 0
	if s.unit == 1 {
		for w := range W {
			x := s.free[off+w] &^ s.taken[off+w]
			if mode == modePref {
				x &= s.pref[off+w]
			}
			n += bits.OnesCount64(x)
		}
		return n
	}
	for u := range len(pl.nvDom) {
		if s.unitAvail(pl, u, mode) {
			n++
		}
	}
	return n
}

func (s *search) unitAvail(pl *poolLeaf, u int, mode int) bool {
	off, W := int(pl.off), int(pl.words)
	m := pl.nv[u*W : (u+1)*W]
	pref := mode != modePref
	for w, x := range m {
		if x&^(s.free[off+w]&^s.taken[off+w]) != 0 {
			return false
		}
		if !pref && x&s.pref[off+w] != 0 {
			pref = true
		}
	}
	return pref
}

// avail returns leaf j's available units in mode, ignoring power.
func (s *search) avail(j int32, mode int) int {
	if !s.touched[j] {
		if mode == modePref {
			if !s.hasPref {
				return 0
			}
			return int(s.prefU[j])
		}
		return int(s.u[j])
	}
	return s.units(int(j), mode)
}

// val returns how many of leaf j's available units fit in caps.
func (s *search) val(j int32, mode int, caps []int64) int {
	pl := &s.p.leaves[j]
	if pl.dom >= 0 {
		return int(min(int64(s.avail(j, mode)), caps[pl.dom]))
	}
	tmp := s.vtmp
	copy(tmp, caps)
	return s.take(j, math.MaxInt, mode, tmp, false)
}

// take takes up to n of leaf j's available units in mode, preferred ones
// first and lowest ordinals first, within caps, which it decrements. When
// commit is set it marks them taken and appends their nodes to the plan.
// It returns the units taken.
func (s *search) take(j int32, n int, mode int, caps []int64, commit bool) int {
	got := s.takeUnits(j, n, mode, caps, commit)
	if commit && got > 0 && !s.touched[j] {
		s.touched[j] = true
		s.touchedList = append(s.touchedList, j)
	}
	return got
}

func (s *search) takeUnits(j int32, n int, mode int, caps []int64, commit bool) int {
	pl := &s.p.leaves[j]
	off, W := int(pl.off), int(pl.words)
	if !commit && s.unit == 1 && pl.dom >= 0 {
		// Counting only: every unit is worth one of the same cap.
		cnt := 0
		for w := range W {
			x := s.free[off+w] &^ s.taken[off+w]
			if mode == modePref {
				x &= s.pref[off+w]
			}
			cnt += bits.OnesCount64(x)
		}
		got := int(min(int64(min(n, cnt)), max(caps[pl.dom], 0)))
		caps[pl.dom] -= int64(got)
		return got
	}
	got := 0
	passes := 1
	if s.hasPref && mode == modeAll {
		passes = 2
	}
	for pass := range passes {
		prefOnly := mode == modePref || passes == 2 && pass == 0
		if s.unit == 1 {
			for w := range W {
				x := s.free[off+w] &^ s.taken[off+w]
				if prefOnly {
					x &= s.pref[off+w]
				} else if passes == 2 {
					x &^= s.pref[off+w]
				}
				for x != 0 && got < n {
					b := w*64 + bits.TrailingZeros64(x)
					x &= x - 1
					d := pl.dom
					if d < 0 {
						d = pl.bitDom[b]
					}
					if caps[d] <= 0 {
						if pl.dom >= 0 {
							return got
						}
						continue
					}
					caps[d]--
					got++
					if commit {
						s.taken[off+w] |= 1 << (b % 64)
					}
				}
			}
			continue
		}
		for u := 0; u < len(pl.nvDom) && got < n; u++ {
			if !s.unitAvail(pl, u, modeAll) {
				continue
			}
			isPref := s.hasPref && s.unitAvail(pl, u, modePref)
			if prefOnly && !isPref || passes == 2 && pass == 1 && isPref {
				continue
			}
			d := pl.nvDom[u]
			if caps[d] <= 0 {
				continue
			}
			caps[d]--
			got++
			if commit {
				for w, x := range pl.nv[u*W : (u+1)*W] {
					s.taken[off+w] |= x
				}
			}
		}
	}
	return got
}

// release undoes the takes of the last run, so that the buffers go back
// to the pool clean.
func (s *search) release() {
	if s.p == nil {
		return
	}
	for _, j := range s.touchedList {
		pl := &s.p.leaves[j]
		clear(s.taken[pl.off : pl.off+pl.words])
		s.touched[j] = false
	}
	s.touchedList = s.touchedList[:0]
}

// reset undoes the takes of a run.
func (s *search) reset() {
	for _, j := range s.touchedList {
		pl := &s.p.leaves[j]
		clear(s.taken[pl.off : pl.off+pl.words])
		s.touched[j] = false
	}
	s.touchedList = s.touchedList[:0]
	for d := range s.capRem {
		if s.power {
			s.capRem[d] = s.capU[d]
		} else {
			s.capRem[d] = unlimited
		}
	}
}

// candidates returns the leaves the request may use that have a free
// unit, in pods that may hold need units: pods whose bound is below need,
// or whose power domain has room for fewer (with power applied), are
// passed over without reading their holds.
func (s *search) candidates(need int) []int32 {
	lo, hi := s.scope()
	c := s.cands[:0]
	for j := lo; j < hi; {
		q := s.p.leaves[j].pod
		e := min(hi, s.p.pods[q].hi)
		from := j
		j = e
		if s.podShort(int(q), need) {
			continue
		}
		base := s.p.pods[q].lo
		for w, x := range s.openIn(int(q), from, e) {
			for ; x != 0; x &= x - 1 {
				j := base + int32(w*64+bits.TrailingZeros64(x))
				if s.r.Packing == lease.PackLeaf && s.leafShort(j, need) {
					continue
				}
				if s.scanLeaf(int(j)); s.done[j] && s.u[j] > 0 && !(s.iso && s.excl[j]) {
					c = append(c, j)
				}
			}
		}
	}
	s.cands = c
	return c
}

// podShort reports whether the bounds show that pool pod q cannot hold
// need units over the window: its free nodes, or with power applied its
// power domain's room, are fewer.
func (s *search) podShort(q, need int) bool {
	// Power first: it reads no held counts.
	if d := s.p.pods[q].dom; s.power && d >= 0 && s.capRem[d] < int64(need) {
		return true
	}
	return s.boundShort(q, need)
}

// boundShort reports whether the held counts show that pool pod q cannot
// hold need units over the window as the packing asks (leavesShort): the
// pod's bound, or its leaf groups' where they may say more.
func (s *search) boundShort(q, need int) bool {
	if !s.bounded {
		return false
	}
	// The pod's bound, read only until it settles the question.
	short := func() bool { return s.podNodesBelow(q, need*s.unit) < need*s.unit }
	if need <= 1 || len(s.lsegs) == 0 {
		// Without runs of lanes (a window of a few buckets) the leaf
		// groups' bounds are their sizes.
		return short()
	}
	if s.r.Packing != lease.PackLeaf {
		// The pod's own bound is the cheaper to read, and where it
		// leaves room for several times the request (every run read,
		// as it is not short) the leaf groups' seldom rule the pod out.
		// Leaf packing goes to the leaf groups at once: a pod's bound
		// seldom rules out a leaf group.
		if short() {
			return true
		}
		if s.podBound(q) >= roomy*need {
			return false
		}
	}
	// The leaf groups' bounds, read in full, are never looser than the
	// pod's: the most a pod holds in a bucket is at most the sum of each
	// leaf group's most in any.
	return s.leavesShort(q, need)
}

// roomy is how many times the request a pod's bound must leave room for
// before podShort stops short of reading its leaf groups' bounds.
const roomy = 4

// lanesRead reports whether leavesShort has read pool pod q's leaf bounds
// in full: s.lub, s.podLU and s.podLeafLU are then final.
func (s *search) lanesRead(q int) bool {
	return s.bounded && len(s.lsegs) > 0 && s.lubRead[q] > int32(len(s.lsegs))
}

// packLeafScan is packLeaf over every leaf the request may use, without
// Near or Prefer: the tightest leaf group, the first in pool order on a
// tie. It reads the holds of leaf groups only where the bounds leave room
// for k units, and stops at one that fits exactly.
func (s *search) packLeafScan() bool {
	lo, hi := s.scope()
	best, bv := int32(-1), math.MaxInt
	for j := lo; j < hi && bv > s.k; {
		q := s.p.leaves[j].pod
		e := min(hi, s.p.pods[q].hi)
		from := j
		j = e
		if s.podShort(int(q), s.k) {
			continue
		}
		base := s.p.pods[q].lo
	pod:
		for w, x := range s.openIn(int(q), from, e) {
			for ; x != 0; x &= x - 1 {
				j := base + int32(w*64+bits.TrailingZeros64(x))
				pl := &s.p.leaves[j]
				if int(pl.n) < s.k || s.power && pl.dom >= 0 && s.capRem[pl.dom] < int64(s.k) || s.leafShort(j, s.k) {
					continue
				}
				s.scanLeaf(int(j))
				if int(s.u[j]) < s.k || s.iso && s.excl[j] {
					continue
				}
				if v := s.val(j, modeAll, s.capRem); v >= s.k && v < bv {
					if s.probe {
						return true
					}
					best, bv = j, v
					if v == s.k {
						break pod
					}
				}
			}
		}
	}
	return best >= 0 && s.take(best, s.k, modeAll, s.capRem, true) == s.k
}

// run looks for a plan with isolation and power applied or not; the plan
// is in s.taken when it returns true.
func (s *search) run(iso, power bool) bool {
	s.iso, s.power = iso, power
	s.reset()
	if s.within == 0 && s.nearLeaf < 0 && !s.hasPref && s.r.Packing != lease.PackLeaf && s.r.Packing != lease.PackPod && s.quick() {
		return true
	}
	// Too few free nodes, whatever the rules. Leaf and pod packing pass
	// over the pods that cannot hold the request on their own, or whose
	// power domain has no room for it, without their bounds: they take
	// the sum of the pods' bounds only for a refusal without a reason,
	// which names it.
	onePod := s.r.Packing == lease.PackLeaf || s.r.Packing == lease.PackPod
	if s.bounded && (!onePod || s.r.NoReason) && s.freeBound(!onePod) < s.r.Nodes {
		s.refuted = true
		return false
	}
	switch s.r.Packing {
	case lease.PackLeaf:
		if s.k > s.p.maxNodes {
			return false
		}
		if s.nearLeaf < 0 && !s.hasPref {
			return s.packLeafScan()
		}
		return s.packLeaf(s.candidates(s.k))
	case lease.PackPod:
		if s.k > s.p.maxPod {
			return false
		}
		if s.probe {
			return s.fitsPod()
		}
		if s.nearLeaf < 0 && !s.hasPref {
			return s.packPodScan()
		}
		return s.packPod(s.candidates(s.k))
	}
	cands := s.candidates(1)
	if s.nearLeaf >= 0 {
		sub := s.sub[:0]
		for _, j := range cands {
			if s.p.leaves[j].leaf == s.nearLeaf {
				sub = append(sub, j)
			}
		}
		if s.total(sub, modeAll) >= s.k {
			s.sub = sub
			return s.choose(sub, s.k)
		}
		sub = sub[:0]
		for _, j := range cands {
			if s.ix.leaves[s.p.leaves[j].leaf].pod == s.nearPod {
				sub = append(sub, j)
			}
		}
		s.sub = sub
		if s.total(sub, modeAll) >= s.k {
			return s.choose(sub, s.k)
		}
	}
	return s.choose(cands, s.k)
}

// quick scans pod by pod and stops at the first pod that holds a plan no
// other can beat: a single leaf group (the tightest in that pod) or, when
// no leaf group can hold k units, the fewest leaf groups any plan could
// need. It returns false, having taken nothing, when no pod does; the
// caller then looks at every leaf group.
func (s *search) quick() bool {
	p := s.p
	ub := p.maxNodes
	if s.unit > 1 {
		ub = p.maxNV
	}
	var most int64
	for _, c := range s.capRem {
		most = max(most, c)
	}
	ub = int(min(int64(ub), most))
	if ub <= 0 {
		return false
	}
	klb := (s.k + ub - 1) / ub
	for q := range p.pods {
		lo, hi := int(p.pods[q].lo), int(p.pods[q].hi)
		if d := p.pods[q].dom; s.power && d >= 0 && s.capRem[d] < int64(s.k) {
			// Its power domain has no room for the plan.
			continue
		}
		if s.bounded {
			// Skip the pod when the bounds say it cannot hold the plan,
			// and scan only the leaf groups that may matter.
			if s.podBound(q) < s.k {
				continue
			}
			ubs := s.bounds(q)
			if klb == 1 {
				for i, b := range ubs {
					if int(b) >= s.k {
						s.scanLeaf(lo + i)
					}
				}
			} else {
				top := s.hist[:0]
				for _, b := range ubs {
					top = insertTop(top, b, klb)
				}
				s.hist = top
				var sum int
				for _, v := range top {
					sum += int(v)
				}
				if sum < s.k {
					continue
				}
				for i, b := range ubs {
					if b > 0 {
						s.scanLeaf(lo + i)
					}
				}
			}
		} else {
			s.scanRange(lo, hi)
		}
		group := s.sub[:0]
		for j := lo; j < hi; j++ {
			if s.done[j] && s.u[j] > 0 && !(s.iso && s.excl[j]) {
				group = append(group, int32(j))
			}
		}
		s.sub = group
		if len(group) < klb {
			continue
		}
		if klb == 1 {
			best, bestV := int32(-1), math.MaxInt
			for _, j := range group {
				if v := s.val(j, modeAll, s.capRem); v >= s.k && v < bestV {
					best, bestV = j, v
				}
			}
			if best >= 0 {
				return s.take(best, s.k, modeAll, s.capRem, true) == s.k
			}
			continue
		}
		if s.total(group, modeAll) >= s.k && s.fitsIn(group, s.k, klb) {
			picks, ok := s.minLeaves(group, s.k, modeAll)
			return ok && s.apply(picks, modeAll)
		}
	}
	return false
}

// total returns how many units of leaves fit in the remaining caps.
func (s *search) total(leaves []int32, mode int) int {
	copy(s.tmp, s.capRem)
	var sum int64
	var mixed []int32
	for _, j := range leaves {
		if pl := &s.p.leaves[j]; pl.dom >= 0 {
			s.tmp[pl.dom] -= int64(s.avail(j, mode))
		} else {
			mixed = append(mixed, j)
		}
	}
	// tmp[d] is now cap - count: the units that fit are min(cap, count).
	for d := range s.tmp {
		c := s.capRem[d]
		cnt := c - s.tmp[d]
		sum += min(c, cnt)
		s.tmp[d] = max(c-cnt, 0)
	}
	for _, j := range mixed {
		sum += int64(s.take(j, math.MaxInt, mode, s.tmp, false))
	}
	return int(min(sum, math.MaxInt32))
}

// choose takes k units from leaves: preferred units first, then the
// fewest leaf groups and pods. It returns false when they do not fit.
func (s *search) choose(leaves []int32, k int) bool {
	if s.total(leaves, modeAll) < k {
		return false
	}
	if s.hasPref {
		var pc []int32
		for _, j := range leaves {
			if s.avail(j, modePref) > 0 {
				pc = append(pc, j)
			}
		}
		if len(pc) > 0 {
			if s.total(pc, modePref) >= k {
				picks, ok := s.minLeaves(pc, k, modePref)
				return ok && s.apply(picks, modePref)
			}
			for _, j := range pc {
				k -= s.take(j, math.MaxInt, modePref, s.capRem, true)
			}
			// Fill the leaf groups already used, most room first.
			slices.SortFunc(pc, func(a, b int32) int {
				return cmp.Or(cmp.Compare(s.val(b, modeAll, s.capRem), s.val(a, modeAll, s.capRem)), cmp.Compare(a, b))
			})
			for _, j := range pc {
				if k == 0 {
					return true
				}
				k -= s.take(j, k, modeAll, s.capRem, true)
			}
			if k == 0 {
				return true
			}
			rest := make([]int32, 0, len(leaves))
			for _, j := range leaves {
				if !s.touched[j] {
					rest = append(rest, j)
				}
			}
			leaves = rest
		}
	}
	return s.pack(leaves, k)
}

// pack takes k units from untouched leaves in the fewest leaf groups, then
// pods: the tightest single leaf group that fits; else the tightest pod
// that fits in the fewest leaf groups possible; else across pods.
func (s *search) pack(leaves []int32, k int) bool {
	best, bestV := int32(-1), math.MaxInt
	for _, j := range leaves {
		if v := s.val(j, modeAll, s.capRem); v >= k && v < bestV {
			best, bestV = j, v
			if v == k {
				break
			}
		}
	}
	if best >= 0 {
		return s.take(best, k, modeAll, s.capRem, true) == k
	}
	kstar, ok := s.kstar(leaves, k)
	if !ok {
		return false
	}
	// Leaves are in pool order, so a pod's are contiguous.
	bestLo, bestHi, bestTotal := -1, -1, math.MaxInt
	for lo := 0; lo < len(leaves); {
		pod := s.p.leaves[leaves[lo]].pod
		hi := lo + 1
		for hi < len(leaves) && s.p.leaves[leaves[hi]].pod == pod {
			hi++
		}
		group := leaves[lo:hi]
		if len(group) >= kstar {
			if t := s.total(group, modeAll); t >= k && t < bestTotal && s.fitsIn(group, k, kstar) {
				bestLo, bestHi, bestTotal = lo, hi, t
			}
		}
		lo = hi
	}
	if bestLo >= 0 {
		leaves = leaves[bestLo:bestHi]
	}
	picks, ok := s.minLeaves(leaves, k, modeAll)
	return ok && s.apply(picks, modeAll)
}

// fitsIn reports whether k units fit in kstar leaves of one pod's group.
func (s *search) fitsIn(group []int32, k, kstar int) bool {
	dom := s.p.leaves[group[0]].dom
	for _, j := range group {
		if s.p.leaves[j].dom != dom || dom < 0 {
			picks, ok := s.minLeaves(group, k, modeAll)
			return ok && len(picks) <= kstar
		}
	}
	// One power domain: the kstar largest leaves, capped.
	top := s.hist[:0]
	for _, j := range group {
		top = insertTop(top, int32(s.avail(j, modeAll)), kstar)
	}
	s.hist = top
	var sum int64
	for _, v := range top {
		sum += int64(v)
	}
	return min(sum, s.capRem[dom]) >= int64(k)
}

// insertTop adds v to top, the n largest values so far, in descending
// order.
func insertTop(top []int32, v int32, n int) []int32 {
	if len(top) < n {
		top = append(top, v)
	} else if v > top[n-1] {
		top[n-1] = v
	} else {
		return top
	}
	for i := len(top) - 1; i > 0 && top[i] > top[i-1]; i-- {
		top[i], top[i-1] = top[i-1], top[i]
	}
	return top
}

// kstar returns the fewest leaves of leaves that hold k units within the
// caps. Per power domain the best j leaves are its j largest, capped, so
// taking the largest capped gain across domains step by step is optimal.
func (s *search) kstar(leaves []int32, k int) (int, bool) {
	if s.p.mixed {
		picks, ok := s.minLeaves(leaves, k, modeAll)
		return len(picks), ok
	}
	maxU := s.p.maxNodes
	if s.unit > 1 {
		maxU = s.p.maxNV
	}
	D := len(s.p.doms)
	s.hist = grow(s.hist, D*(maxU+1))
	clear(s.hist)
	for _, j := range leaves {
		s.hist[int(s.p.leaves[j].dom)*(maxU+1)+s.avail(j, modeAll)]++
	}
	copy(s.tmp, s.capRem)
	top := make([]int, D)
	for d := range top {
		top[d] = maxU
	}
	sum, n := 0, 0
	for sum < k {
		bd, bg := -1, int64(0)
		for d := range D {
			for top[d] > 0 && s.hist[d*(maxU+1)+top[d]] == 0 {
				top[d]--
			}
			if g := min(int64(top[d]), s.tmp[d]); g > bg {
				bd, bg = d, g
			}
		}
		if bd < 0 {
			return 0, false
		}
		s.hist[bd*(maxU+1)+top[bd]]--
		g := int(min(bg, int64(k-sum)))
		s.tmp[bd] -= int64(g)
		sum += g
		n++
	}
	return n, true
}

// minLeaves chooses how many units to take from which of leaves to make k
// in the fewest leaves, within the remaining caps: step by step the leaf
// with the largest capped gain (ties: richer pod, lower index), then the
// last leaf swapped for the tightest one that still covers what remains,
// in a pod already used if possible. It does not take anything.
func (s *search) minLeaves(leaves []int32, k int, mode int) ([]pick, bool) {
	p := s.p
	clear(s.podSum)
	for _, j := range leaves {
		s.podSum[p.leaves[j].pod] += int64(s.avail(j, mode))
	}
	order := s.sortLeaves(leaves, mode)
	// One queue per power domain, and one for leaves that span domains.
	G := len(p.doms) + 1
	if cap(s.groups) < G {
		s.groups = make([][]int32, G)
	}
	groups := s.groups[:G]
	for g := range groups {
		groups[g] = groups[g][:0]
	}
	for _, j := range order {
		g := int(p.leaves[j].dom)
		if g < 0 {
			g = G - 1
		}
		groups[g] = append(groups[g], j)
	}
	s.pos = grow(s.pos, len(p.leaves))
	for i, j := range order {
		s.pos[j] = int32(i)
	}
	caps := make([]int64, len(s.capRem))
	copy(caps, s.capRem)
	prev := make([]int64, len(caps))
	heads := make([]int, G)
	picks := s.picks[:0]
	used := s.picked
	unmark := func() {
		for _, pk := range picks {
			used[pk.j] = false
		}
	}
	sum := 0
	for sum < k {
		bg, bv, bpos := -1, 0, int32(math.MaxInt32)
		for g := range G {
			for heads[g] < len(groups[g]) {
				j := groups[g][heads[g]]
				v := s.val(j, mode, caps)
				if v == 0 && g == G-1 {
					heads[g]++
					continue
				}
				if v > bv || v == bv && v > 0 && s.pos[j] < bpos {
					bg, bv, bpos = g, v, s.pos[j]
				}
				break
			}
		}
		if bg < 0 {
			unmark()
			s.picks = picks
			return nil, false
		}
		j := groups[bg][heads[bg]]
		heads[bg]++
		copy(prev, caps)
		n := min(bv, k-sum)
		s.take(j, n, mode, caps, false)
		picks = append(picks, pick{j: j, n: n})
		used[j] = true
		sum += n
	}
	// The last leaf: the tightest that covers the rest, preferring a pod
	// already used.
	last := picks[len(picks)-1]
	need := last.n
	var pods []int32
	for _, pk := range picks[:len(picks)-1] {
		pods = append(pods, p.leaves[pk.j].pod)
	}
	best, bestNew, bestV := last.j, true, math.MaxInt
	for _, j := range order {
		if used[j] && j != last.j {
			continue
		}
		v := s.val(j, mode, prev)
		if v < need {
			continue
		}
		isNew := !slices.Contains(pods, p.leaves[j].pod)
		if !isNew && bestNew || isNew == bestNew && v < bestV {
			best, bestNew, bestV = j, isNew, v
		}
	}
	unmark()
	picks[len(picks)-1].j = best
	s.picks = picks
	return picks, true
}

// sortLeaves returns leaves ordered by available units, most first; ties
// by the pod's units (s.podSum), most first, then pod, then leaf index. Two
// stable counting sorts, by pod rank then by units, make it O(leaves +
// pods log pods + units).
func (s *search) sortLeaves(leaves []int32, mode int) []int32 {
	p := s.p
	P := len(p.pods)
	// Rank the pods of leaves only; rank[q] is -1 for a pod not yet seen.
	rank := grow(s.podRank, P)
	for q := range rank {
		rank[q] = -1
	}
	pods := s.podOrder[:0]
	for _, j := range leaves {
		if q := p.leaves[j].pod; rank[q] < 0 {
			rank[q] = 0
			pods = append(pods, q)
		}
	}
	slices.SortFunc(pods, func(a, b int32) int {
		if s.podSum[a] != s.podSum[b] {
			return cmp.Compare(s.podSum[b], s.podSum[a])
		}
		return cmp.Compare(a, b)
	})
	s.podOrder = pods
	for r, q := range pods {
		rank[q] = int32(r)
	}
	s.podRank = rank
	// By pod rank, keeping the leaf order (ascending index) within a pod.
	byPod := grow(s.sub2, len(leaves))
	cnt := grow(s.cnt, max(P, p.maxNodes+1)+1)
	clear(cnt[:P+1])
	for _, j := range leaves {
		cnt[rank[p.leaves[j].pod]+1]++
	}
	for q := 1; q <= P; q++ {
		cnt[q] += cnt[q-1]
	}
	sorted := slices.IsSorted(leaves)
	for _, j := range leaves {
		r := rank[p.leaves[j].pod]
		byPod[cnt[r]] = j
		cnt[r]++
	}
	if !sorted {
		// Leaf index order within each pod.
		for lo := 0; lo < len(byPod); {
			hi := lo + 1
			for hi < len(byPod) && p.leaves[byPod[hi]].pod == p.leaves[byPod[lo]].pod {
				hi++
			}
			slices.Sort(byPod[lo:hi])
			lo = hi
		}
	}
	// By units, most first, stable.
	U := p.maxNodes + 1
	clear(cnt[:U+1])
	for _, j := range byPod {
		cnt[U-s.avail(j, mode)]++
	}
	for v := 1; v <= U; v++ {
		cnt[v] += cnt[v-1]
	}
	order := grow(s.order, len(leaves))
	for _, j := range byPod {
		k := U - 1 - s.avail(j, mode)
		order[cnt[k]] = j
		cnt[k]++
	}
	s.sub2, s.cnt, s.order = byPod, cnt, order
	return order
}

// apply takes the picks.
func (s *search) apply(picks []pick, mode int) bool {
	for _, pk := range picks {
		if s.take(pk.j, pk.n, mode, s.capRem, true) != pk.n {
			return false
		}
	}
	return true
}

// tier ranks leaf j by its distance from the Near node: 0 its leaf group,
// 1 its pod, 2 elsewhere.
func (s *search) tier(j int32) int {
	if s.nearLeaf < 0 {
		return 2
	}
	l := s.p.leaves[j].leaf
	switch {
	case l == s.nearLeaf:
		return 0
	case s.ix.leaves[l].pod == s.nearPod:
		return 1
	}
	return 2
}

// packLeaf puts every unit in one leaf group: nearest to Near, most
// preferred units, then the tightest fit.
func (s *search) packLeaf(leaves []int32) bool {
	best := int32(-1)
	var bt, bp, bv int
	for _, j := range leaves {
		v := s.val(j, modeAll, s.capRem)
		if v < s.k {
			continue
		}
		t, pu := s.tier(j), s.val(j, modePref, s.capRem)
		if best < 0 || cmp.Or(cmp.Compare(t, bt), cmp.Compare(bp, pu), cmp.Compare(v, bv)) < 0 {
			best, bt, bp, bv = j, t, pu, v
		}
	}
	return best >= 0 && s.take(best, s.k, modeAll, s.capRem, true) == s.k
}

// packPod puts every unit in one pod: nearest to Near, most preferred
// units, fewest leaf groups, then the tightest fit.
func (s *search) packPod(leaves []int32) bool {
	bestLo, bestHi := -1, -1
	var bt, bp, bk, bv int
	for lo := 0; lo < len(leaves); {
		pod := s.p.leaves[leaves[lo]].pod
		hi := lo + 1
		for hi < len(leaves) && s.p.leaves[leaves[hi]].pod == pod {
			hi++
		}
		group := leaves[lo:hi]
		lo = hi
		v := s.total(group, modeAll)
		if v < s.k {
			continue
		}
		t := 1
		if s.nearPod >= 0 && s.p.pods[pod].pod == s.nearPod {
			t = 0
		}
		pu := 0
		if s.hasPref {
			pu = s.total(group, modePref)
		}
		kp := s.fewestLeaves(group, s.k)
		if bestLo < 0 || cmp.Or(cmp.Compare(t, bt), cmp.Compare(bp, pu), cmp.Compare(kp, bk), cmp.Compare(v, bv)) < 0 {
			bestLo, bestHi, bt, bp, bk, bv = lo-len(group), hi, t, pu, kp, v
		}
	}
	if bestLo < 0 {
		return false
	}
	group := slices.Clone(leaves[bestLo:bestHi])
	if s.nearLeaf >= 0 {
		var sub []int32
		for _, j := range group {
			if s.p.leaves[j].leaf == s.nearLeaf {
				sub = append(sub, j)
			}
		}
		if s.total(sub, modeAll) >= s.k {
			return s.choose(sub, s.k)
		}
	}
	return s.choose(group, s.k)
}

// packPodScan is packPod over every leaf group the request may use,
// without Near or Prefer: the pod needing the fewest leaf groups, then the
// tightest (fewest units within the caps), the first in pool order on a
// tie. It reads as few holds as it can for that:
//
//   - Each pod's leaf-group bounds (leavesShort, read in full for a pod
//     that may hold the request unless its own bound leaves ample room)
//     give a lower bound on the leaf groups it needs and an upper one on
//     its units (else klb and the pod's bound); pods are visited by the
//     first, then the second, so that a tight pod is likely found early.
//   - A pod whose lower bound exceeds the best pod's leaf groups is passed
//     over; one whose lower bound equals them can only win by being tighter,
//     so in one power domain its holds are read only until its units,
//     min(room, sum), reach the best's (and pass them, for a pod after the
//     best in pool order): they only grow with more leaf groups.
func (s *search) packPodScan() bool {
	maxU := s.p.maxNodes
	if s.unit > 1 {
		maxU = s.p.maxNV
	}
	if maxU <= 0 {
		return false
	}
	klb := (s.k + maxU - 1) / maxU
	lo, hi := s.scope()
	// keys: pods that may hold the request, by needed leaf groups (lower
	// bound), units (upper bound) and pool order, packed in a word.
	keys := s.keys[:0]
	for j := lo; j < hi; {
		q := s.p.leaves[j].pod
		j = s.p.pods[q].hi
		if s.podShort(int(q), s.k) {
			continue
		}
		kl, u := klb, int(s.p.pods[q].n)
		switch {
		case s.within != 0:
		case s.lanesRead(int(q)):
			kl, u = s.podNeeds(int(q)), int(s.podLU[q])
		case s.bounded:
			u = s.podBound(int(q))
		}
		keys = append(keys, uint64(kl)<<48|uint64(min(u, 1<<24-1))<<24|uint64(q))
	}
	slices.Sort(keys)
	s.keys = keys
	best := s.cands[:0]
	bestK, bestV, bestQ := math.MaxInt, math.MaxInt, int32(-1)
	for _, key := range keys {
		q, kl := int32(key&(1<<24-1)), int(key>>48)
		if kl > bestK {
			break
		}
		pd := &s.p.pods[q]
		from, e := max(lo, pd.lo), min(hi, pd.hi)
		// cut: the pod can only win by being tighter, and its units are
		// min(room, sum) of one power domain's.
		cut := kl == bestK && pd.dom >= 0
		group := s.sub[:0]
		var sum int64
	leaves:
		for w, x := range s.openIn(int(q), from, e) {
			for ; x != 0; x &= x - 1 {
				j := pd.lo + int32(w*64+bits.TrailingZeros64(x))
				if s.scanLeaf(int(j)); !s.done[j] || s.u[j] == 0 || s.iso && s.excl[j] {
					continue
				}
				group = append(group, j)
				if sum += int64(s.u[j]); cut {
					if v := min(sum, s.capRem[pd.dom]); v > int64(bestV) || v == int64(bestV) && q > bestQ {
						group = group[:0]
						break leaves
					}
				}
			}
		}
		s.sub = group
		if len(group) == 0 {
			continue
		}
		v := s.total(group, modeAll)
		if v < s.k {
			continue
		}
		kp := s.fewestLeaves(group, s.k)
		if kp < bestK || kp == bestK && (v < bestV || v == bestV && q < bestQ) {
			best = append(best[:0], group...)
			bestK, bestV, bestQ = kp, v, q
		}
	}
	s.cands = best
	return len(best) > 0 && s.choose(best, s.k)
}

// podNeeds returns a lower bound on the leaf groups pool pod q needs to
// hold the request: the fewest of its leaf groups whose bounds (s.lub,
// final) sum to k units.
func (s *search) podNeeds(q int) int {
	if int(s.podLeafLU[q]) >= s.k {
		return 1
	}
	pd := &s.p.pods[q]
	top := s.hist[:0]
	for j := pd.lo; j < pd.hi; j++ {
		top = insertTop(top, s.lub[j]/int32(s.unit), int(pd.hi-pd.lo))
	}
	s.hist = top
	sum := 0
	for i, v := range top {
		if sum += int(v); sum >= s.k {
			return i + 1
		}
	}
	return len(top) + 1
}

// fitsPod is packPod over the candidates for a probe: whether some pod
// holds k units of its leaf groups within the caps, pod by pod in pool
// order until one does.
func (s *search) fitsPod() bool {
	lo, hi := s.scope()
	for j := lo; j < hi; {
		q := s.p.leaves[j].pod
		e := min(hi, s.p.pods[q].hi)
		from := j
		j = e
		if s.podShort(int(q), s.k) {
			continue
		}
		base := s.p.pods[q].lo
		open := s.openIn(int(q), from, e)
		// rest bounds the units of the open leaf groups not yet
		// scanned (their bounds when read, else their sizes): once
		// those found and rest cannot reach k, the pod is passed over
		// without reading the others' holds.
		bounds := s.lanesRead(int(q))
		rest := 0
		for w, x := range open {
			for ; x != 0; x &= x - 1 {
				rest += s.leafUB(base+int32(w*64+bits.TrailingZeros64(x)), bounds)
			}
		}
		found := 0
		group := s.sub[:0]
	scan:
		for w, x := range open {
			for ; x != 0; x &= x - 1 {
				j := base + int32(w*64+bits.TrailingZeros64(x))
				rest -= s.leafUB(j, bounds)
				if s.scanLeaf(int(j)); s.done[j] && s.u[j] > 0 && !(s.iso && s.excl[j]) {
					group = append(group, j)
					found += int(s.u[j])
				}
				if found+rest < s.k {
					break scan
				}
			}
		}
		s.sub = group
		if found+rest < s.k {
			continue
		}
		if s.total(group, modeAll) >= s.k {
			return true
		}
	}
	return false
}

// leafUB bounds the free units of pool leaf j over the window: its bound
// from the lanes when they are read (bounds), else its nodes.
func (s *search) leafUB(j int32, bounds bool) int {
	if bounds {
		return int(s.lub[j]) / s.unit
	}
	return int(s.p.leaves[j].n) / s.unit
}

// fewestLeaves returns how many of leaves, which hold k units within the
// caps, minLeaves would take for them: in one power domain, the fewest of
// the largest that sum to k (the cap, at least k, never binds first).
func (s *search) fewestLeaves(leaves []int32, k int) int {
	dom := s.p.leaves[leaves[0]].dom
	for _, j := range leaves {
		if d := s.p.leaves[j].dom; d != dom || d < 0 {
			picks, _ := s.minLeaves(leaves, k, modeAll)
			return len(picks)
		}
	}
	top := s.hist[:0]
	for _, j := range leaves {
		top = insertTop(top, int32(s.avail(j, modeAll)), len(leaves))
	}
	s.hist = top
	sum := 0
	for i, v := range top {
		if sum += int(v); sum >= k {
			return i + 1
		}
	}
	picks, _ := s.minLeaves(leaves, k, modeAll)
	return len(picks)
}

// plan returns the chosen nodes.
func (s *search) plan() Plan {
	// Leaves in pool order and nodes in leaf order are usually in ordinal
	// order already.
	slices.Sort(s.touchedList)
	nodes := make([]int64, 0, s.r.Nodes)
	pods := 0
	for i, j := range s.touchedList {
		pl := &s.p.leaves[j]
		if i == 0 || s.p.leaves[s.touchedList[i-1]].pod != pl.pod {
			pods++
		}
		lf := &s.ix.leaves[pl.leaf]
		for w, x := range s.taken[pl.off : pl.off+pl.words] {
			for x != 0 {
				b := w*64 + bits.TrailingZeros64(x)
				x &= x - 1
				if lf.dense {
					nodes = append(nodes, lf.ord0+int64(b))
				} else {
					nodes = append(nodes, s.ix.nodes[lf.nodes[b]].Ordinal)
				}
			}
		}
	}
	if !slices.IsSorted(nodes) {
		slices.Sort(nodes)
	}
	return Plan{Nodes: nodes, LeafGroups: len(s.touchedList), Pods: pods}
}

// explain returns the reason the request does not fit: the first of
// these rules that fails: the power budgets alone (the units the domains'
// budgets leave room for over the window, whichever nodes are free, are
// fewer than asked: read from the domains' calendars, no hold is read),
// capacity, topology (without isolation and power), isolation (without
// power), and power with the nodes that are free. Each rule scans leaf
// groups only as far as it needs: capacity until enough free nodes are
// found, the searches as run does, and power until every domain has as
// many free nodes as its budget has room for; a rule that fails scans
// them all, for its numbers.
func (s *search) explain() error {
	r, p := s.r, s.p
	if room := s.powerRoom(); room < int64(s.k) {
		return refuse(ReasonPower, "the power budgets of pool %s's domains leave room for %d of its nodes over the window, %d needed%s",
			p.id, room*int64(s.unit), r.Nodes, s.packingNote())
	}
	if !s.scanUntil(func() bool { return s.freeNodes >= r.Nodes }) {
		return refuse(ReasonCapacity, "pool %s has %d free nodes over the window, %d needed", p.id, s.freeNodes, r.Nodes)
	}
	if !s.fitsWithoutPower(false) {
		return s.topologyError()
	}
	if !s.fitsWithoutPower(true) {
		s.scanAll()
		n := 0
		for _, c := range s.freeByDom(true) {
			n += int(c)
		}
		rule := "other tenants' dedicated-leaf leases"
		if s.dedicated {
			rule = "other tenants (dedicated-leaf)"
		}
		return refuse(ReasonIsolation, "pool %s has %d free nodes over the window in leaf groups not held by %s, %d needed%s",
			p.id, n, rule, r.Nodes, s.packingNote())
	}
	return s.powerError()
}

// fitsWithoutPower reports whether a plan exists with the power budgets
// ignored, and isolation only when iso is set: then Prefer and Near only
// order the choice, and a plan exists exactly when the free units in scope
// (in leaf groups open to the tenant, with iso) number k in all (any,
// node, nvlink-domain), in one leaf group (leaf) or in one pod (pod). It
// reads the holds of leaf groups until it finds them, passing over those
// the bounds rule out.
func (s *search) fitsWithoutPower(iso bool) bool {
	if s.p.oversize(s.r.Packing, s.r.Nodes) {
		return false
	}
	lo, hi := s.scope()
	k := s.k
	open := func(j int32) bool {
		s.scanLeaf(int(j))
		return s.done[j] && !(iso && s.excl[j])
	}
	sum := 0
	for j := lo; j < hi; {
		q := s.p.leaves[j].pod
		e := min(hi, s.p.pods[q].hi)
		from := j
		j = e
		need := 1
		if s.r.Packing == lease.PackLeaf || s.r.Packing == lease.PackPod {
			need = k
		}
		if s.boundShort(int(q), need) {
			continue
		}
		if s.r.Packing == lease.PackPod {
			sum = 0
		}
		base := s.p.pods[q].lo
		for w, x := range s.openIn(int(q), from, e) {
			for ; x != 0; x &= x - 1 {
				j := base + int32(w*64+bits.TrailingZeros64(x))
				if s.r.Packing == lease.PackLeaf && (int(s.p.leaves[j].n) < k || s.leafShort(j, k)) || !open(j) {
					continue
				}
				if s.r.Packing == lease.PackLeaf {
					if int(s.u[j]) >= k {
						return true
					}
					continue
				}
				if sum += int(s.u[j]); sum >= k {
					return true
				}
			}
		}
	}
	return false
}

func (s *search) powerError() error {
	return refuse(ReasonPower, "the power budgets of pool %s's domains leave room for %d of its free nodes over the window, %d needed%s",
		s.p.id, s.powerFree(), s.r.Nodes, s.packingNote())
}

// scanAll scans every leaf group, and settles the pods the bounds skip.
func (s *search) scanAll() {
	s.scanRange(0, len(s.p.leaves))
	s.settle()
}

// scanUntil scans pod by pod, in pool order, until done returns true. It
// returns false, with every leaf group scanned and settled, when done
// never does.
func (s *search) scanUntil(done func() bool) bool {
	for q := range s.p.pods {
		if done() {
			return true
		}
		s.scanRange(int(s.p.pods[q].lo), int(s.p.pods[q].hi))
	}
	if done() {
		return true
	}
	s.settle()
	return false
}

// powerFree returns how many free nodes in scope, in leaf groups open to
// the tenant, the power budgets leave room for: per pool power domain the
// least of its free nodes and its room. It scans leaf groups of a domain
// only until their free nodes reach the domain's room.
func (s *search) powerFree() int {
	D := len(s.p.doms)
	cnt, room := grow(s.tmp, D), grow(s.vtmp, D)
	for d := range room {
		cnt[d], room[d] = 0, unlimited
		if s.capU[d] < unlimited/int64(s.unit) {
			room[d] = s.capU[d] * int64(s.unit)
		}
	}
	// full counts the domains whose free nodes have reached their room:
	// when they all have, no other leaf group changes the answer.
	full := 0
	for d := range cnt {
		if cnt[d] >= room[d] {
			full++
		}
	}
	lo, hi := s.scope()
	for j := lo; j < hi && full < D; {
		q := s.p.leaves[j].pod
		pd := &s.p.pods[q]
		e := min(hi, pd.hi)
		from := j
		j = e
		if pd.dom >= 0 && cnt[pd.dom] >= room[pd.dom] {
			continue
		}
		for w, x := range s.openIn(int(q), from, e) {
			for ; x != 0; x &= x - 1 {
				j := pd.lo + int32(w*64+bits.TrailingZeros64(x))
				if d := s.p.leaves[j].dom; d >= 0 && cnt[d] >= room[d] {
					continue
				}
				s.scanLeaf(int(j))
				if s.done[j] && !s.excl[j] {
					s.countFree(cnt, j)
					full = 0
					for d := range cnt {
						if cnt[d] >= room[d] {
							full++
						}
					}
				}
			}
		}
	}
	n := 0
	for d := range cnt {
		n += int(min(cnt[d], room[d]))
	}
	return n
}

// mostLeaf returns the most free nodes of any leaf group over the window,
// reading the holds only of leaf groups the bounds do not rule out.
func (s *search) mostLeaf() int {
	most := 0
	for q := range s.p.pods {
		if most >= s.p.maxNodes {
			// No leaf group has more.
			break
		}
		pd := &s.p.pods[q]
		if int(pd.n) <= most || s.boundShort(q, most+1) {
			continue
		}
		for w, x := range s.podOpen(q) {
			for ; x != 0; x &= x - 1 {
				j := pd.lo + int32(w*64+bits.TrailingZeros64(x))
				if int(s.p.leaves[j].n) <= most || s.leafShort(j, most+1) {
					continue
				}
				if s.scanLeaf(int(j)); s.done[j] {
					most = max(most, int(s.u[j]))
				}
			}
		}
	}
	return most
}

// mostPod returns the most free nodes of any pod over the window, reading
// the holds only of pods the bounds do not rule out.
func (s *search) mostPod() int {
	most := 0
	for q := range s.p.pods {
		if most >= s.p.maxPod {
			// No pod has more.
			break
		}
		pd := &s.p.pods[q]
		if int(pd.n) <= most || s.boundShort(q, most+1) {
			continue
		}
		n := 0
		for w, x := range s.podOpen(q) {
			for ; x != 0; x &= x - 1 {
				j := pd.lo + int32(w*64+bits.TrailingZeros64(x))
				if s.scanLeaf(int(j)); s.done[j] {
					n += int(s.u[j])
				}
			}
		}
		most = max(most, n)
	}
	return most
}

func (s *search) packingNote() string {
	if s.r.Packing == lease.PackAny || s.r.Packing == lease.PackNode {
		return ""
	}
	return " (packing " + string(s.r.Packing) + ")"
}

// freeByDom counts the free nodes in scope per pool power domain, in leaf
// groups open to the tenant when iso is set. Every leaf group in scope must
// have been scanned or settled.
func (s *search) freeByDom(iso bool) []int64 {
	out := make([]int64, len(s.p.doms))
	lo, hi := s.scope()
	for j := lo; j < hi; j++ {
		if iso && s.excl[j] {
			continue
		}
		s.countFree(out, j)
	}
	return out
}

// countFree adds the free nodes of leaf j to out, per pool power domain.
func (s *search) countFree(out []int64, j int32) {
	pl := &s.p.leaves[j]
	for w := range pl.words {
		x := s.free[pl.off+w]
		if pl.dom >= 0 {
			out[pl.dom] += int64(bits.OnesCount64(x))
			continue
		}
		for x != 0 {
			b := int(w)*64 + bits.TrailingZeros64(x)
			x &= x - 1
			out[pl.bitDom[b]]++
		}
	}
}

// scope returns the range of pool leaves Within allows.
func (s *search) scope() (int32, int32) {
	switch s.within {
	case 1:
		return s.withinIdx, s.withinIdx + 1
	case 2:
		return s.p.pods[s.withinIdx].lo, s.p.pods[s.withinIdx].hi
	}
	return 0, int32(len(s.p.leaves))
}

func (s *search) topologyError() error {
	r, p := s.r, s.p
	if s.within == 0 {
		switch r.Packing {
		case lease.PackLeaf:
			return refuse(ReasonTopology, "no leaf group of pool %s has %d free nodes over the window; the most is %d", p.id, r.Nodes, s.mostLeaf())
		case lease.PackPod:
			return refuse(ReasonTopology, "no pod of pool %s has %d free nodes over the window; the most is %d", p.id, r.Nodes, s.mostPod())
		}
	}
	s.scanAll()
	lo, hi := s.scope()
	if s.within != 0 {
		n := 0
		for _, c := range s.freeByDom(false) {
			n += int(c)
		}
		if n < r.Nodes {
			return refuse(ReasonTopology, "%s has %d free nodes of pool %s over the window, %d needed", r.Within, n, p.id, r.Nodes)
		}
	}
	switch r.Packing {
	case lease.PackLeaf:
		most := 0
		for j := lo; j < hi; j++ {
			most = max(most, int(s.u[j]))
		}
		return refuse(ReasonTopology, "no leaf group of pool %s has %d free nodes over the window; the most is %d", p.id, r.Nodes, most)
	case lease.PackPod:
		most := 0
		for q := range p.pods {
			n := 0
			for j := max(p.pods[q].lo, lo); j < min(p.pods[q].hi, hi); j++ {
				n += int(s.u[j])
			}
			most = max(most, n)
		}
		return refuse(ReasonTopology, "no pod of pool %s has %d free nodes over the window; the most is %d", p.id, r.Nodes, most)
	case lease.PackNVLinkDomain:
		n := 0
		for j := lo; j < hi; j++ {
			n += int(s.u[j])
		}
		return refuse(ReasonTopology, "pool %s has %d free complete NVLink domains of %d nodes over the window, %d needed", p.id, n, s.unit, s.k)
	}
	return refuse(ReasonTopology, "pool %s cannot fit %d nodes over the window as asked", p.id, r.Nodes)
}
