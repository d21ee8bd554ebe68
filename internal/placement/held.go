package placement

// heldFanout is the number of elements of a level under one element of
// the level above.
const heldFanout = 8

// levels is the shape shared by heldRows and fullFlags: a row holds one
// element per time bucket (level 0), then levels that each summarise
// heldFanout elements of the level below, up to one of at most heldFanout
// elements. A range of buckets is then covered by a few runs of elements
// per level (segments), and a change to a range touches its buckets, an
// eighth as many elements above them and so on, plus the two paths above
// its ends.
type levels struct {
	// off[k] and n[k] are level k's first element in a row and its length.
	off, n []int
	stride int // elements per row
}

func newLevels(buckets int) levels {
	var lv levels
	for n := buckets; ; n = (n + heldFanout - 1) / heldFanout {
		lv.off = append(lv.off, lv.stride)
		lv.n = append(lv.n, n)
		lv.stride += n
		if n <= heldFanout {
			break
		}
	}
	return lv
}

// heldSeg is a run [lo, hi) of a row's elements, level offset included.
type heldSeg struct{ lo, hi int32 }

// segments appends to segs the runs of elements that cover buckets
// [b0, b1), coarsest level first: a bound that settles early reads less.
func (lv *levels) segments(segs []heldSeg, b0, b1 int) []heldSeg {
	start := len(segs)
	lo, hi := b0, b1
	for k := range lv.off {
		if k == len(lv.off)-1 || hi-lo <= 2*heldFanout {
			segs = append(segs, heldSeg{int32(lv.off[k] + lo), int32(lv.off[k] + hi)})
			break
		}
		nlo, nhi := (lo+heldFanout-1)/heldFanout*heldFanout, hi/heldFanout*heldFanout
		if lo < nlo {
			segs = append(segs, heldSeg{int32(lv.off[k] + lo), int32(lv.off[k] + nlo)})
		}
		if nhi < hi {
			segs = append(segs, heldSeg{int32(lv.off[k] + nhi), int32(lv.off[k] + hi)})
		}
		lo, hi = nlo/heldFanout, nhi/heldFanout
	}
	for i, j := start, len(segs)-1; i < j; i, j = i+1, j-1 {
		segs[i], segs[j] = segs[j], segs[i]
	}
	return segs
}

// heldRows keeps, per row (a pod) and time bucket, a count of the nodes
// held throughout the bucket, and above the buckets levels of maxima.
// Every element is exact. Counts wrap around: a removal adds the two's
// complement, and every stored count is a true one between operations.
type heldRows struct {
	levels
	v []uint16
}

func newHeldRows(rows, buckets int) heldRows {
	h := heldRows{levels: newLevels(buckets)}
	h.v = make([]uint16, rows*h.stride)
	return h
}

// add adds d to row r's count in buckets [b0, b1).
func (h *heldRows) add(r, b0, b1 int, d uint16) {
	if b1 <= b0 {
		return
	}
	row := h.v[r*h.stride : (r+1)*h.stride]
	// Elements wholly inside the range gain d at every level.
	lo, hi := b0, b1
	for k := range h.off {
		if lo < hi {
			lv := row[h.off[k]+lo : h.off[k]+hi]
			for i := range lv {
				lv[i] += d
			}
		}
		lo, hi = (lo+heldFanout-1)/heldFanout, hi/heldFanout
	}
	// Elements partly inside lie above b0 or b1-1: recompute them from
	// their children, bottom up.
	lo, hi = b0, b1
	e0, e1 := b0, b1-1
	for k := 1; k < len(h.off); k++ {
		lo, hi = (lo+heldFanout-1)/heldFanout, hi/heldFanout
		e0, e1 = e0/heldFanout, e1/heldFanout
		for i, e := range [2]int{e0, e1} {
			if i == 1 && e == e0 || e >= lo && e < hi {
				continue
			}
			c0 := h.off[k-1] + e*heldFanout
			c1 := h.off[k-1] + min((e+1)*heldFanout, h.n[k-1])
			m := row[c0]
			for _, x := range row[c0+1 : c1] {
				m = max(m, x)
			}
			row[h.off[k]+e] = m
		}
	}
}

// max returns the greatest count of row r over the buckets of segs, or
// some count of at least stop when there is one.
func (h *heldRows) max(r int, segs []heldSeg, stop uint16) uint16 {
	row := h.v[r*h.stride : (r+1)*h.stride]
	var m uint16
	for _, sg := range segs {
		for _, x := range row[sg.lo:sg.hi] {
			m = max(m, x)
		}
		if m >= stop {
			return m
		}
	}
	return m
}

// fill computes every level above the buckets from the buckets.
func (h *heldRows) fill() {
	for r := 0; r*h.stride < len(h.v); r++ {
		row := h.v[r*h.stride : (r+1)*h.stride]
		for k := 1; k < len(h.off); k++ {
			for e := range h.n[k] {
				c0 := h.off[k-1] + e*heldFanout
				c1 := h.off[k-1] + min((e+1)*heldFanout, h.n[k-1])
				m := row[c0]
				for _, x := range row[c0+1 : c1] {
					m = max(m, x)
				}
				row[h.off[k]+e] = m
			}
		}
	}
}

// fullFlags keeps, per pod and time bucket, a bitmask of the pod's leaf
// groups (by lane, their rank in the pod) whose every node is held
// throughout the bucket, and above the buckets levels of ORs: the leaf
// groups full throughout some bucket of a range are one OR over its
// segments, read without touching the leaf groups.
type fullFlags struct {
	levels
	base  []int // each pod's first word
	words []int // words per element, per pod
	v     []uint64
}

func newFullFlags(buckets int, podLeaves []int32) fullFlags {
	f := fullFlags{levels: newLevels(buckets)}
	n := 0
	for _, l := range podLeaves {
		w := (int(l) + 63) / 64
		f.base = append(f.base, n)
		f.words = append(f.words, w)
		n += w * f.stride
	}
	f.v = make([]uint64, n)
	return f
}

// toggle flips lane's bit of pod g in bucket b; fix must follow.
func (f *fullFlags) toggle(g, lane, b int) {
	row, W, w, bit := f.row(g, lane)
	row[b*W+w] ^= bit
}

// row returns pod g's row, its words per element, and the word and bit of
// lane in an element.
func (f *fullFlags) row(g, lane int) (row []uint64, W, w int, bit uint64) {
	W = f.words[g]
	return f.v[f.base[g] : f.base[g]+W*f.stride], W, lane / 64, 1 << (lane % 64)
}

// fix brings the levels above buckets [c0, c1) of word w of pod g's row
// up to date after some of its bits there changed. When every bucket of
// the range changed one bit, set when set is true and cleared otherwise,
// the levels change by ranges; else each element above the range is
// recomputed from its children.
func (f *fullFlags) fix(g, w int, bit uint64, c0, c1 int, whole, set bool) {
	W := f.words[g]
	row := f.v[f.base[g] : f.base[g]+W*f.stride]
	lo, hi := c0, c1 // elements wholly inside the range
	for k := 1; k < len(f.off); k++ {
		c0, c1 = c0/heldFanout, (c1-1)/heldFanout+1
		lo, hi = (lo+heldFanout-1)/heldFanout, hi/heldFanout
		below := row[f.off[k-1]*W : (f.off[k-1]+f.n[k-1])*W]
		level := row[f.off[k]*W : (f.off[k]+f.n[k])*W]
		for e := c0; e < c1; e++ {
			switch {
			case whole && set:
				// A child holds the bit now.
				level[e*W+w] |= bit
			case whole && e >= lo && e < hi:
				// No child holds the bit now.
				level[e*W+w] &^= bit
			default:
				var x uint64
				for c := e*heldFanout*W + w; c < min((e+1)*heldFanout, f.n[k-1])*W; c += W {
					x |= below[c]
				}
				level[e*W+w] = x
			}
		}
	}
}

// or ORs into out the flags of pod g over the buckets of segs.
func (f *fullFlags) or(g int, segs []heldSeg, out []uint64) {
	W := f.words[g]
	row := f.v[f.base[g] : f.base[g]+W*f.stride]
	if W == 1 {
		var x uint64
		for _, sg := range segs {
			for _, y := range row[sg.lo:sg.hi] {
				x |= y
			}
		}
		out[0] |= x
		return
	}
	for _, sg := range segs {
		for e := int(sg.lo); e < int(sg.hi); e++ {
			for w := range W {
				out[w] |= row[e*W+w]
			}
		}
	}
}

// fill computes every level above the buckets from the buckets.
func (f *fullFlags) fill() {
	for g, W := range f.words {
		row := f.v[f.base[g] : f.base[g]+W*f.stride]
		for k := 1; k < len(f.off); k++ {
			for e := range f.n[k] {
				for w := range W {
					var x uint64
					for c := f.off[k-1] + e*heldFanout; c < f.off[k-1]+min((e+1)*heldFanout, f.n[k-1]); c++ {
						x |= row[c*W+w]
					}
					row[(f.off[k]+e)*W+w] = x
				}
			}
		}
	}
}
