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
// some count of at least stop when there is one, and how many runs of segs
// it read for it.
func (h *podRows) max(g int, segs []heldSeg, stop uint16) (uint16, int) {
	row, W := h.row(g)
	var m uint16
	for k, sg := range segs {
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
			return m, k + 1
		}
	}
	return m, len(segs)
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

// laneRows keeps, per pod, the greatest count of each of its leaf groups
// over ranges of buckets: one byte per leaf group (by lane), eight lanes a
// word (lane i is byte i%8 of word i/8, low byte first). It has the shape
// of podRows' levels above the buckets: its level 0 element e is the
// greatest of Index.leafHeld over buckets [8e, 8e+8), and each level above
// the greatest of the 8 elements below, lane by lane. Every element is
// exact. A window reads only the elements that lie wholly inside the
// buckets it overlaps (podRows' segments above level 0): a greatest count
// over some of those buckets is no greater than over all, so a leaf group
// of size nodes, c of them held throughout some bucket read, has at most
// size-c free over the window. The few buckets at the window's ends are
// left out, which loosens the bounds of short windows only; in exchange a
// change to a hold writes an eighth of the elements podRows does, and the
// lanes take about an eighth of leafHeld's memory.
//
// Counts never exceed a leaf group's size (at most 255) nor fall below 0,
// so the bytes of a word change together, without carries or borrows.
type laneRows struct {
	levels
	base  []int // each pod's first word
	words []int // words per element, per pod: ⌈leaf groups / 8⌉
	// small is set, per pod, when no leaf group has more than 127
	// nodes: counts then keep the high bit of their byte clear.
	small []bool
	v     []uint64
}

// newLaneRows returns rows over buckets for pods of podLeaves leaf groups,
// the largest of podMax nodes. With heldFanout buckets or fewer, podRows
// has no level above the buckets and the rows are empty.
func newLaneRows(buckets int, podLeaves, podMax []int32) laneRows {
	var h laneRows
	if buckets > heldFanout {
		h.levels = newLevels((buckets + heldFanout - 1) / heldFanout)
	}
	n := 0
	for g, l := range podLeaves {
		w := (int(l) + 7) / 8
		h.base = append(h.base, n)
		h.words = append(h.words, w)
		h.small = append(h.small, podMax[g] <= 127)
		n += w * h.stride
	}
	h.v = make([]uint64, n)
	return h
}

// row returns pod g's row and its words per element.
func (h *laneRows) row(g int) ([]uint64, int) {
	W := h.words[g]
	return h.v[h.base[g] : h.base[g]+W*h.stride], W
}

// add adds d, W words of one byte per lane, to pod g's counts in buckets
// [b0, b1) of Index.leafHeld, or subtracts it when neg is set; leafHeld
// has changed already, and held(lane, c0, c1) returns the greatest count
// of a lane there over buckets [c0, c1).
func (h *laneRows) add(g, b0, b1 int, d []uint64, neg bool, held func(lane, c0, c1 int) uint8) {
	if b1 <= b0 || h.stride == 0 {
		return
	}
	row, W := h.row(g)
	// Elements wholly inside the range gain d at every level: each of
	// their lanes is the greatest of counts that all gained it.
	lo, hi := (b0+heldFanout-1)/heldFanout, b1/heldFanout
	for k := range h.off {
		if lo < hi {
			els := row[(h.off[k]+lo)*W : (h.off[k]+hi)*W]
			for w, x := range d {
				if x == 0 {
					continue
				}
				if neg {
					for i := w; i < len(els); i += W {
						els[i] -= x
					}
				} else {
					for i := w; i < len(els); i += W {
						els[i] += x
					}
				}
			}
		}
		lo, hi = (lo+heldFanout-1)/heldFanout, hi/heldFanout
	}
	// Elements partly inside lie above b0 or b1-1. At level 0 the lanes
	// that changed are read again from the buckets; above, elements are
	// recomputed from their children, bottom up.
	lo, hi = (b0+heldFanout-1)/heldFanout, b1/heldFanout
	e0, e1 := b0/heldFanout, (b1-1)/heldFanout
	for k := range h.off {
		if k > 0 {
			lo, hi = (lo+heldFanout-1)/heldFanout, hi/heldFanout
			e0, e1 = e0/heldFanout, e1/heldFanout
		}
		for i, e := range [2]int{e0, e1} {
			if i == 1 && e == e0 || e >= lo && e < hi {
				continue
			}
			if k > 0 {
				h.recompute(g, k, e, d)
				continue
			}
			for w, x := range d {
				for b := range 8 {
					if x>>(8*b)&0xff == 0 {
						continue
					}
					m := uint64(held(8*w+b, heldFanout*e, heldFanout*(e+1)))
					el := &row[e*W+w]
					*el = *el&^(0xff<<(8*b)) | m<<(8*b)
				}
			}
		}
	}
}

// recompute sets the words of element e of level k > 0 of pod g's row
// that changed (those where changed is not 0, all when it is nil) from
// its children.
func (h *laneRows) recompute(g, k, e int, changed []uint64) {
	row, W := h.row(g)
	c0 := h.off[k-1] + e*heldFanout
	c1 := h.off[k-1] + min((e+1)*heldFanout, h.n[k-1])
	for w := range W {
		if changed != nil && changed[w] == 0 {
			continue
		}
		m := uint64(0)
		if h.small[g] {
			for c := c0; c < c1; c++ {
				m = maxBytes7(m, row[c*W+w])
			}
		} else {
			for c := c0; c < c1; c++ {
				m = maxBytes(m, row[c*W+w])
			}
		}
		row[(h.off[k]+e)*W+w] = m
	}
}

// max raises out[:W], eight lanes a word, to pod g's greatest count per
// lane over the elements of sg.
func (h *laneRows) max(g int, sg heldSeg, out []uint64) {
	row, W := h.row(g)
	els := row[W*int(sg.lo) : W*int(sg.hi)]
	switch {
	case W == 2 && h.small[g]:
		// Up to 16 leaf groups of up to 127 nodes, as NVIDIA's scalable
		// unit has.
		m0, m1 := out[0], out[1]
		for i := 0; i+1 < len(els); i += 2 {
			m0 = maxBytes7(m0, els[i])
			m1 = maxBytes7(m1, els[i+1])
		}
		out[0], out[1] = m0, m1
	case h.small[g]:
		for i, x := range els {
			out[i%W] = maxBytes7(out[i%W], x)
		}
	default:
		for i, x := range els {
			out[i%W] = maxBytes(out[i%W], x)
		}
	}
}

// fill computes every element, held(g, lane, c0, c1) giving the greatest
// count of pod g's lane over buckets [c0, c1).
func (h *laneRows) fill(held func(g, lane, c0, c1 int) uint8) {
	if h.stride == 0 {
		return
	}
	for g := range h.base {
		row, W := h.row(g)
		for e := range h.n[0] {
			for lane := range 8 * W {
				row[e*W+lane/8] |= uint64(held(g, lane, heldFanout*e, heldFanout*(e+1))) << (8 * (lane % 8))
			}
		}
		for k := 1; k < len(h.off); k++ {
			for e := range h.n[k] {
				h.recompute(g, k, e, nil)
			}
		}
	}
}

// laneSegs appends to out the runs of segs (podRows' segments for a
// window, coarsest first) above level 0, as runs of laneRows' elements.
func (h *laneRows) laneSegs(out, segs []heldSeg, buckets int) []heldSeg {
	for _, sg := range segs {
		if int(sg.lo) < buckets {
			// Level 0 of podRows, and every run after it: the
			// buckets at the window's ends.
			break
		}
		out = append(out, heldSeg{sg.lo - int32(buckets), sg.hi - int32(buckets)})
	}
	return out
}

// Bytes of a word: their high bits, and the bits below.
const (
	byteHigh = 0x8080808080808080
	byteLow  = 0x7f7f7f7f7f7f7f7f
)

// geBytes returns the high bit of each byte where a's is at least b's,
// unsigned. A byte of a is at least b's when its high bit is above b's,
// or equal to it with the seven bits below at least b's; (a7|0x80)-b7
// sets the high bit exactly then for the seven bits, and never borrows
// from the next byte.
func geBytes(a, b uint64) uint64 {
	a7, b7 := a&byteLow, b&byteLow
	ge7 := (a7 | byteHigh) - b7
	ah, bh := a&byteHigh, b&byteHigh
	return (ah&^bh | ^(ah^bh)&ge7) & byteHigh
}

// maxBytes returns the bytewise maximum of a and b, unsigned.
func maxBytes(a, b uint64) uint64 {
	m := (geBytes(a, b) >> 7) * 0xff
	return b ^ (a^b)&m
}

// maxBytes7 is maxBytes for bytes below 128: (a|0x80)-b then has the
// high bit of a byte set exactly where a's is at least b's.
func maxBytes7(a, b uint64) uint64 {
	m := ((a | byteHigh) - b) & byteHigh >> 7 * 0xff
	return b ^ (a^b)&m
}
