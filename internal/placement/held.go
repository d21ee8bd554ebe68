package placement

// heldFanout is the number of elements of a level under one element of
// the level above.
const heldFanout = 8

// levels is the shape of podRows: a row holds one
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

// podRows keeps, per pod and time bucket, an element of 16-bit words:
// first the count of the pod's nodes held throughout the bucket, then a
// bitmask of its leaf groups (by lane, their rank in the pod, 16 a word)
// whose every node is (full). Above the buckets, levels of elements hold
// the maximum count and the OR of the masks of the elements below. Every
// element is exact. A window's bound on the pod's free nodes and its full
// leaf groups then read the same few runs of a row, the same cache lines.
//
// Counts wrap around: a removal adds the two's complement, and every
// stored count is a true one between operations.
type podRows struct {
	levels
	base  []int // each pod's first word
	width []int // words per element, per pod: 1 + ⌈leaf groups / 16⌉
	v     []uint16
}

func newPodRows(buckets int, podLeaves []int32) podRows {
	h := podRows{levels: newLevels(buckets)}
	n := 0
	for _, l := range podLeaves {
		w := 1 + (int(l)+15)/16
		h.base = append(h.base, n)
		h.width = append(h.width, w)
		n += w * h.stride
	}
	h.v = make([]uint16, n)
	return h
}

// row returns pod g's row and its words per element.
func (h *podRows) row(g int) ([]uint16, int) {
	W := h.width[g]
	return h.v[h.base[g] : h.base[g]+W*h.stride], W
}

// add adds d to pod g's count in buckets [b0, b1).
func (h *podRows) add(g, b0, b1 int, d uint16) {
	if b1 <= b0 {
		return
	}
	row, W := h.row(g)
	// Elements wholly inside the range gain d at every level.
	lo, hi := b0, b1
	for k := range h.off {
		if lo < hi {
			els := row[(h.off[k]+lo)*W : (h.off[k]+hi)*W]
			for i := 0; i < len(els); i += W {
				els[i] += d
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
			m := row[c0*W]
			for c := c0 + 1; c < c1; c++ {
				m = max(m, row[c*W])
			}
			row[(h.off[k]+e)*W] = m
		}
	}
}

// flag returns pod g's row, its words per element, and the word and bit
// of lane in an element.
func (h *podRows) flag(g, lane int) (row []uint16, W, w int, bit uint16) {
	row, W = h.row(g)
	return row, W, 1 + lane/16, 1 << (lane % 16)
}

// toggle flips lane's bit of pod g in bucket b; fix must follow.
func (h *podRows) toggle(g, lane, b int) {
	row, W, w, bit := h.flag(g, lane)
	row[b*W+w] ^= bit
}

// fix brings the levels above buckets [c0, c1) up to date for lane's bit
// of pod g after it changed in some of them. When every bucket of the
// range changed, set when set is true and cleared otherwise, the levels
// change by ranges; else each element above the range is recomputed from
// its children.
func (h *podRows) fix(g, lane, c0, c1 int, whole, set bool) {
	row, W, w, bit := h.flag(g, lane)
	lo, hi := c0, c1 // elements wholly inside the range
	for k := 1; k < len(h.off); k++ {
		c0, c1 = c0/heldFanout, (c1-1)/heldFanout+1
		lo, hi = (lo+heldFanout-1)/heldFanout, hi/heldFanout
		below, level := h.off[k-1], h.off[k]
		for e := c0; e < c1; e++ {
			x := &row[(level+e)*W+w]
			switch {
			case whole && set:
				// A child holds the bit now.
				*x |= bit
			case whole && e >= lo && e < hi:
				// No child holds the bit now.
				*x &^= bit
			default:
				var y uint16
				for c := below + e*heldFanout; c < below+min((e+1)*heldFanout, h.n[k-1]); c++ {
					y |= row[c*W+w]
				}
				*x = y
			}
		}
	}
}

// max returns the greatest count of pod g over the buckets of segs, or
// some count of at least stop when there is one.
func (h *podRows) max(g int, segs []heldSeg, stop uint16) uint16 {
	row, W := h.row(g)
	var m uint16
	for _, sg := range segs {
		els := row[W*int(sg.lo) : W*int(sg.hi)]
		if W == 2 {
			for i := 0; i < len(els); i += 2 {
				m = max(m, els[i])
			}
		} else {
			for i := 0; i < len(els); i += W {
				m = max(m, els[i])
			}
		}
		if m >= stop {
			return m
		}
	}
	return m
}

// or ORs into full, 64 lanes a word, the masks of pod g's leaf groups
// full throughout a bucket of segs.
func (h *podRows) or(g int, segs []heldSeg, full []uint64) {
	row, W := h.row(g)
	if W == 2 {
		// Up to 16 leaf groups: a count and a mask word per element.
		var f uint16
		for _, sg := range segs {
			els := row[2*int(sg.lo) : 2*int(sg.hi)]
			for i := 1; i < len(els); i += 2 {
				f |= els[i]
			}
		}
		full[0] |= uint64(f)
		return
	}
	for _, sg := range segs {
		for e := int(sg.lo); e < int(sg.hi); e++ {
			for i, x := range row[e*W+1 : (e+1)*W] {
				full[i/4] |= uint64(x) << (16 * (i % 4))
			}
		}
	}
}

// fill computes every level above the buckets from the buckets.
func (h *podRows) fill() {
	for g := range h.base {
		row, W := h.row(g)
		for k := 1; k < len(h.off); k++ {
			for e := range h.n[k] {
				c0 := h.off[k-1] + e*heldFanout
				c1 := h.off[k-1] + min((e+1)*heldFanout, h.n[k-1])
				el := row[(h.off[k]+e)*W : (h.off[k]+e+1)*W]
				copy(el, row[c0*W:(c0+1)*W])
				for c := c0 + 1; c < c1; c++ {
					el[0] = max(el[0], row[c*W])
					for i := 1; i < W; i++ {
						el[i] |= row[c*W+i]
					}
				}
			}
		}
	}
}
