package fleet

import (
	"cmp"
	"slices"
)

// Pools sums the nodes of f that are in service (Retired zero) per pool, one
// GPU model at one site, sorted by pool ID. A pool's FacilityPower is its IT
// power scaled by its site's PUE, rounded once per pool; a node whose site
// is not among f.Sites counts with a PUE of 1. ByState is never nil. Pools
// returns nil for a fleet without nodes in service.
func Pools(f *Fleet) []Pool {
	pue := make(map[string]int64, len(f.Sites))
	for _, s := range f.Sites {
		pue[s.Name] = s.PUEMilli
	}
	type key struct{ site, model string }
	index := make(map[key]int)
	var pools []Pool
	last, j := key{}, -1
	for i := range f.Nodes {
		n := &f.Nodes[i]
		if !n.Retired.IsZero() {
			continue
		}
		// The nodes of a pool mostly come in runs: look up only on a change.
		if k := (key{n.Site, n.Model}); j < 0 || k != last {
			var ok bool
			if j, ok = index[k]; !ok {
				j = len(pools)
				index[k] = j
				pools = append(pools, Pool{ID: PoolID(n.Site, n.Model), Site: n.Site, Model: n.Model, ByState: make(map[State]int64)})
			}
			last = k
		}
		p := &pools[j]
		p.Nodes++
		p.GPUs += n.GPUs
		p.ITPower += n.ITPower
		p.ByState[n.State]++
	}
	for i := range pools {
		p := &pools[i]
		milli, ok := pue[p.Site]
		if !ok {
			milli = 1000
		}
		p.FacilityPower = p.ITPower.Scale(milli, 1000)
	}
	slices.SortFunc(pools, func(a, b Pool) int { return cmp.Compare(a.ID, b.ID) })
	return pools
}
