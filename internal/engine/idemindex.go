package engine

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// IdempotentKeyLister is implemented by a Store that can list the
// idempotency records it holds. The engine then keeps them in an index
// (idemIndex), so that the lookup every mutating request with an
// Idempotency-Key makes (IdempotentResponse) is answered without a store
// read when the key was never used, which is nearly always. A Store
// without it is read on every lookup.
type IdempotentKeyLister interface {
	// IdempotentKeys calls fn with the scope, key and creation time of
	// every response remembered at or after notBefore, in any order; an
	// error of fn ends the listing and is returned.
	IdempotentKeys(ctx context.Context, notBefore time.Time, fn func(scope, key string, created time.Time) error) error
}

// Sizes of the idempotency index: past maxIndexed entries it stops
// answering and lets the store answer until what it could not hold has
// expired; indexMargin is kept beyond IdempotencyTTL before an entry is
// pruned, for the time between a request's lookup (when its entry is
// made) and the commit of its record (stamped when its command applies).
const (
	maxIndexed  = 1 << 21 // ~80 MB at most
	indexMargin = time.Hour
	loadRetry   = time.Minute // after a failed load
)

// idemIndex is the set of (scope, key) pairs that may have a remembered
// response within IdempotencyTTL: a pair it does not hold has none, and
// the lookup answers ErrNotFound without reading the store; a pair it
// holds is read from the store, which says what was remembered. A false
// positive (a hash collision, a request that remembered nothing, a
// commit that failed) costs only that read.
//
// The index is authoritative only because one engine writes a database
// (there is no leader election; see docs/architecture.md): every record is
// committed by this process, after the lookup of its request or its
// RememberResponse entered its pair here, or by an earlier process, whose
// records are loaded from the store (IdempotentKeyLister) before the index
// answers its first "not found". A second engine writing the same
// database would make it lie.
//
// Its zero value is ready to use.
type idemIndex struct {
	mu     sync.Mutex
	seed   maphash.Seed
	seeded bool
	// at is each pair's hash with the latest time it was entered at,
	// in Unix nanoseconds; order holds the same entries in the order
	// they were made, to be pruned from the front.
	at    map[uint64]int64
	order []indexEntry
	head  int // order[:head] is pruned
	// state says whether the store's records are loaded.
	state indexState
	// overflowUntil: until then the index lost entries (it was full)
	// and does not answer.
	overflowUntil time.Time
	limit         int       // of entries; 0 means maxIndexed
	retryAt       time.Time // after a failed load, when to try again
}

type indexEntry struct {
	h  uint64
	at int64
}

type indexState int

const (
	indexCold        indexState = iota // not loaded yet (or the load failed)
	indexLoading                       // a lookup is loading it
	indexLoaded                        // authoritative
	indexUnsupported                   // the store cannot list its records
)

// hash returns the hash of (scope, key); the caller holds mu.
func (x *idemIndex) hash(scope, key string) uint64 {
	if !x.seeded {
		x.seed, x.seeded = maphash.MakeSeed(), true
	}
	var h maphash.Hash
	h.SetSeed(x.seed)
	h.WriteString(scope)
	h.WriteByte(0)
	h.WriteString(key)
	return h.Sum64()
}

// add enters (scope, key) at t.
func (x *idemIndex) add(scope, key string, t, now time.Time) {
	x.mu.Lock()
	x.addLocked(x.hash(scope, key), t.UnixNano(), now)
	x.mu.Unlock()
}

func (x *idemIndex) addLocked(h uint64, at int64, now time.Time) {
	if x.at == nil {
		x.at = make(map[uint64]int64)
	}
	if prev, ok := x.at[h]; ok && prev >= at {
		return
	}
	limit := x.limit
	if limit == 0 {
		limit = maxIndexed
	}
	if len(x.at) >= limit {
		x.pruneLocked(now)
	}
	if _, ok := x.at[h]; !ok && len(x.at) >= limit {
		// Full: what is not entered may be remembered, so the index
		// answers nothing until that has expired.
		x.overflowUntil = later(x.overflowUntil, time.Unix(0, at).Add(IdempotencyTTL+indexMargin))
		return
	}
	x.at[h] = at
	x.order = append(x.order, indexEntry{h, at})
	x.pruneLocked(now)
}

// pruneLocked forgets the entries made before now - IdempotencyTTL -
// indexMargin, from the front of order: entries made out of time order
// (a clock set back, records loaded) wait behind newer ones, which only
// keeps them longer. It compacts order when most of it is pruned or
// superseded, so that its cost is constant per entry made.
func (x *idemIndex) pruneLocked(now time.Time) {
	cut := now.Add(-IdempotencyTTL - indexMargin).UnixNano()
	for x.head < len(x.order) && x.order[x.head].at < cut {
		e := x.order[x.head]
		if x.at[e.h] == e.at {
			delete(x.at, e.h)
		}
		x.head++
	}
	if x.head > len(x.order)/2 || len(x.order)-x.head > 2*len(x.at)+1024 {
		// Drop the pruned front and the entries made again later (an
		// entry whose time was raised is found further on).
		kept := x.order[:0]
		for _, e := range x.order[x.head:] {
			if x.at[e.h] == e.at {
				kept = append(kept, e)
			}
		}
		clear(x.order[len(kept):])
		x.order, x.head = kept, 0
	}
}

// absent reports whether (scope, key) surely has no remembered response
// at now, and then enters it at now: the caller is about to run a request
// that may remember one. False when it may have one or the index cannot
// tell (not loaded, or overflowed).
func (x *idemIndex) absent(scope, key string, now time.Time) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.state != indexLoaded || now.Before(x.overflowUntil) {
		return false
	}
	h := x.hash(scope, key)
	if _, ok := x.at[h]; ok {
		return false
	}
	x.addLocked(h, now.UnixNano(), now)
	return true
}

// ensureLoaded loads the records of store into the index when it is not
// loaded and no other lookup is loading it; the load does not hold mu,
// and what is entered meanwhile stays entered. A failed load is tried
// again by a lookup loadRetry later; until then the store answers.
func (x *idemIndex) ensureLoaded(ctx context.Context, store Store, now time.Time) error {
	x.mu.Lock()
	if x.state != indexCold || now.Before(x.retryAt) {
		x.mu.Unlock()
		return nil
	}
	lister, ok := store.(IdempotentKeyLister)
	if !ok {
		x.state = indexUnsupported
		x.mu.Unlock()
		return nil
	}
	x.state = indexLoading
	x.mu.Unlock()

	type rec struct {
		scope, key string
		at         int64
	}
	var recs []rec
	err := lister.IdempotentKeys(ctx, now.Add(-IdempotencyTTL), func(scope, key string, created time.Time) error {
		recs = append(recs, rec{scope, key, created.UnixNano()})
		return nil
	})
	x.mu.Lock()
	defer x.mu.Unlock()
	if err != nil {
		x.state, x.retryAt = indexCold, now.Add(loadRetry)
		return err
	}
	for _, r := range recs {
		x.addLocked(x.hash(r.scope, r.key), r.at, now)
	}
	x.state = indexLoaded
	return nil
}
