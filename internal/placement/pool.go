package placement

import (
	"slices"

	"github.com/neocloud/neocloud/internal/lease"
)

// pool is one pool's view of the fabric: its leaf groups, pod by pod, each
// with a mask of the pool's nodes in it.
type pool struct {
	id     string
	nodes  []int32    // positions in Index.nodes, ordinal order
	leaves []poolLeaf // pod-major: a pod's leaves are contiguous
	pods   []poolPod
	doms   []poolDom
	// nvlink is the node count of the pool's largest NVLink domain.
	nvlink int
	// maxNodes and maxNV are the most nodes, and complete NVLink domains
	// of nvlink nodes, of any leaf.
	maxNodes, maxNV int
	// maxPod is the most nodes of the pool in one pod.
	maxPod int
	words  int // words of all leaves' masks together
	// bnd holds, per pool leaf, what its bound on free nodes needs,
	// packed so that a pod's are a few cache lines.
	bnd       []leafBnd
	flagWords int // words of all pods' full flags together
	openWords int // words of all pods' open masks together
	laneWords int // words of all pods' lane maxima together
	mixed     bool
	leafByKey map[string]int32
	podByKey  map[string]int32
}

type poolLeaf struct {
	leaf  int32 // index into Index.leaves
	pod   int32 // index into pool.pods
	off   int32 // first word of the leaf in a search's masks
	words int32
	// lw and lbit are the word and bit of the leaf's lane (its rank in its
	// pod, Index.leaves[leaf].lane) in the pod's full flags.
	lw   int32
	lbit uint64
	// base0 is the first word of sched & mask, kept by SetSchedulable.
	base0 uint64
	size  int32    // nodes of the leaf group, of every pool
	n     int32    // nodes of the pool in the leaf group
	mask  []uint64 // the pool's nodes in the leaf
	// dom is the pool power domain of all the pool's nodes in the leaf,
	// or -1 when they span several; bitDom then gives it per node.
	dom    int32
	bitDom []int32
	// nv lists the complete NVLink domains of pool.nvlink nodes, as node
	// masks of words each, when pool.nvlink > 1; nvDom gives their power
	// domains.
	nv    []uint64
	nvDom []int32
}

type poolPod struct {
	key    string
	pod    int32 // index into Index.pods
	lo, hi int32 // its leaves: pool.leaves[lo:hi]
	// flagOff and flagEnd are the pod's words in a search's full flags;
	// openOff and openEnd in its open masks, which have a bit per leaf,
	// bit i for pool leaf lo+i.
	flagOff, flagEnd int32
	openOff, openEnd int32
	// laneOff and laneEnd are the pod's words in a search's lane maxima
	// (Index.laneHeld), a byte per lane.
	laneOff, laneEnd int32
	// dense is set when the pod's leaf groups are all the pool's and
	// pool leaf lo+i has lane i: the full flags are then by pool leaf.
	dense bool
	// widest is the size of the pod's largest leaf group.
	widest int32
	// lanes flags the lanes of the pool's leaves in the full flags;
	// laneSize gives their sizes (poolLeaf.size) by lane, and size their
	// sum.
	lanes    []uint64
	laneSize []int32
	size     int32
	// n is the pool's nodes in the pod; dom the pool power domain of all
	// of them, or -1 when they span several.
	n   int32
	dom int32
}

// leafBnd is a pool leaf's lane in its pod (Index.leaves[leaf].lane), its
// nodes of the pool and its nodes in all (poolLeaf.n, size).
type leafBnd struct{ lane, n, size int32 }

type poolDom struct {
	dom int32 // index into Index.domains
	// unitW is the power of the pool's largest node in the domain: the
	// budget is divided by it to count the nodes that fit.
	unitW int64
	// nodes counts the pool's nodes in the domain.
	nodes int64
}

// oversize reports whether packing puts every node in one leaf group (one
// pod) and nodes is more than any leaf group (pod) of the pool has: no
// window can hold such a request, whatever the holds.
func (p *pool) oversize(packing lease.Packing, nodes int) bool {
	switch packing {
	case lease.PackLeaf:
		return nodes > p.maxNodes
	case lease.PackPod:
		return nodes > p.maxPod
	}
	return false
}

// build fills p from its nodes; unitOf maps a node's position to that of
// the first node of its NVLink domain.
func (p *pool) build(ix *Index, unitOf []int32) {
	// Pods and leaves in order of their first ordinal in the pool.
	podOrder := map[int32]int{}
	var podList []int32
	leafOrder := map[int32]int{}
	var leafList []int32
	domOf := map[int32]int32{}
	sizes := map[int32]int{}
	for _, pos := range p.nodes {
		n := &ix.nodes[pos]
		lf := &ix.leaves[n.leaf]
		if _, ok := podOrder[lf.pod]; !ok {
			podOrder[lf.pod] = len(podList)
			podList = append(podList, lf.pod)
		}
		if _, ok := leafOrder[n.leaf]; !ok {
			leafOrder[n.leaf] = len(leafList)
			leafList = append(leafList, n.leaf)
		}
		d, ok := domOf[n.dom]
		if !ok {
			d = int32(len(p.doms))
			domOf[n.dom] = d
			p.doms = append(p.doms, poolDom{dom: n.dom})
		}
		p.doms[d].unitW = max(p.doms[d].unitW, n.PowerW)
		p.doms[d].nodes++
		n.pool, n.pdom = p, d
		sizes[unitOf[pos]]++
	}
	p.nvlink = 1
	for _, s := range sizes {
		p.nvlink = max(p.nvlink, s)
	}
	slices.SortStableFunc(leafList, func(a, b int32) int {
		return podOrder[ix.leaves[a].pod] - podOrder[ix.leaves[b].pod]
	})
	p.leafByKey = make(map[string]int32, len(leafList))
	p.podByKey = make(map[string]int32, len(podList))
	for j, l := range leafList {
		lf := &ix.leaves[l]
		if k := len(p.pods); k == 0 || p.pods[k-1].pod != lf.pod {
			p.podByKey[ix.pods[lf.pod]] = int32(k)
			w := int(ix.podLeaves[lf.pod]+63) / 64
			p.pods = append(p.pods, poolPod{key: ix.pods[lf.pod], pod: lf.pod, lo: int32(j), flagOff: int32(p.flagWords),
				flagEnd: int32(p.flagWords + w), lanes: make([]uint64, w), laneSize: make([]int32, ix.podLeaves[lf.pod]), dom: -2})
			p.flagWords += w
		}
		pd := &p.pods[len(p.pods)-1]
		pd.hi = int32(j + 1)
		pd.lanes[lf.lane/64] |= 1 << (lf.lane % 64)
		pd.laneSize[lf.lane] = int32(len(lf.nodes))
		pd.size += int32(len(lf.nodes))
		p.leafByKey[lf.key] = int32(j)
		pl := poolLeaf{leaf: l, pod: int32(len(p.pods) - 1), off: int32(p.words), words: lf.words, lw: lf.lane / 64, lbit: 1 << (lf.lane % 64),
			mask: make([]uint64, lf.words), dom: -2}
		p.words += int(lf.words)
		nodes := 0
		for b, pos := range lf.nodes {
			n := &ix.nodes[pos]
			if n.pool != p {
				continue
			}
			nodes++
			n.pleaf = int32(j)
			pl.mask[b/64] |= 1 << (b % 64)
			switch pl.dom {
			case -2:
				pl.dom = n.pdom
			case n.pdom, -1:
			default:
				pl.dom = -1
			}
		}
		pl.base0 = lf.sched[0] & pl.mask[0]
		pl.size = int32(len(lf.nodes))
		pl.n = int32(nodes)
		p.maxNodes = max(p.maxNodes, nodes)
		pd.n += int32(nodes)
		p.maxPod = max(p.maxPod, int(pd.n))
		switch pd.dom {
		case -2:
			pd.dom = pl.dom
		case pl.dom, -1:
		default:
			pd.dom = -1
		}
		if pl.dom == -1 {
			p.mixed = true
			pl.bitDom = make([]int32, len(lf.nodes))
			for b, pos := range lf.nodes {
				pl.bitDom[b] = -1
				if n := &ix.nodes[pos]; n.pool == p {
					pl.bitDom[b] = n.pdom
				}
			}
		}
		if p.nvlink > 1 {
			// Complete domains in order of their first node.
			for b, pos := range lf.nodes {
				n := &ix.nodes[pos]
				if n.pool != p || unitOf[pos] != pos || sizes[pos] != p.nvlink {
					continue
				}
				m := make([]uint64, lf.words)
				for c := b; c < len(lf.nodes); c++ {
					if unitOf[lf.nodes[c]] == pos {
						m[c/64] |= 1 << (c % 64)
					}
				}
				pl.nv = append(pl.nv, m...)
				pl.nvDom = append(pl.nvDom, n.pdom)
			}
			p.maxNV = max(p.maxNV, len(pl.nvDom))
		}
		p.leaves = append(p.leaves, pl)
	}
	if p.nvlink == 1 {
		p.maxNV = p.maxNodes
	}
	for q := range p.pods {
		pd := &p.pods[q]
		pd.openOff = int32(p.openWords)
		p.openWords += int(pd.hi-pd.lo+63) / 64
		pd.openEnd = int32(p.openWords)
		pd.laneOff = int32(p.laneWords)
		p.laneWords += int(ix.podLeaves[pd.pod]+7) / 8
		pd.laneEnd = int32(p.laneWords)
		pd.dense = ix.podLeaves[pd.pod] == pd.hi-pd.lo
		for j := pd.lo; j < pd.hi; j++ {
			pd.dense = pd.dense && ix.leaves[p.leaves[j].leaf].lane == j-pd.lo
			pd.widest = max(pd.widest, p.leaves[j].size)
		}
	}
	p.bnd = make([]leafBnd, len(p.leaves))
	for j := range p.leaves {
		pl := &p.leaves[j]
		p.bnd[j] = leafBnd{lane: ix.leaves[pl.leaf].lane, n: pl.n, size: pl.size}
	}
}
