package placement

import "time"

// PowerFits reports whether the nodes with the given ordinals, held over
// [start, end) on top of the index's holds, keep every power domain within
// its budget in each hourly slot the window touches (rule 2). Unknown
// ordinals draw nothing. The engine asks it after moving holds aside and
// back (a reclaim), where no Place call has checked the result.
func (ix *Index) PowerFits(ordinals []int64, start, end time.Time) bool {
	s, e, err := interval(start, end)
	if err != nil {
		return false
	}
	from, to := ix.floor(s), ix.ceil(e)
	add := map[int32]int64{}
	for _, o := range ordinals {
		if pos, ok := ix.lookup(o); ok {
			n := &ix.nodes[pos]
			add[n.dom] += n.PowerW
		}
	}
	for d, w := range add {
		dom := &ix.domains[d]
		if max(dom.cal.Max(from, to), 0)+w > dom.budgetW {
			return false
		}
	}
	return true
}
