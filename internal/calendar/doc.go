// Package calendar keeps one int64 value per hourly UTC slot — free GPUs,
// free placeable cells or free watts of one pool — and answers range
// questions over it in O(log n): the least or greatest value over an
// interval, the first slot below or above a limit, and the earliest window
// of a given length where a request fits.
//
// Slots are numbered from the calendar's origin, which is always on a UTC
// hour; slot i covers [Origin+i h, Origin+(i+1) h). Slot ranges are half-open
// [from, to), and every range operation clamps its range to [0, Slots), so a
// caller may ask about intervals that run past either end of the horizon.
//
// A Calendar is a segment tree with lazy range-add that never pushes its
// pending adds down, so queries do not write: any number of goroutines may
// query a Calendar at once, but Add needs exclusive access. Add, Min and
// Max walk the tree bottom up from the range's two ends, without
// recursion; the searches walk it top down. A Span keeps such a walk's
// nodes, for a search of the same range that depends on its greatest
// value. A node's summaries and pending add sit side by side, so that
// a walk reads one cache line per node it visits. The engine, the
// single writer, owns each calendar and hands out Clones for what-if quotes.
//
// Values are not checked for overflow. A calendar is exact as long as, for
// every slot, the sum of the absolute deltas ever added to it fits in an
// int64; capacity counts are many orders of magnitude below that.
package calendar
