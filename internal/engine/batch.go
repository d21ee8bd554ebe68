package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/neocloud/neocloud/internal/event"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/tenant"
)

// Capacity commands (request, cancel, node state, holdback) go through one
// writer goroutine that applies them one at a time to the in-memory
// capacity and persists the effects of every command it has applied in one
// store transaction (group commit) before answering any of them. The
// answers are those of one-by-one application: commands are applied in
// arrival order, each seeing its predecessors' effects. While one batch
// commits (on the committer goroutine), the commands that arrive are
// applied and form the next. A batch's commands are written as they are
// applied, chunk by chunk (applyChunk), while the writer applies more into
// it, and committed once: the batch stays open until it is full or the
// queue is empty and its commands are written. When a write or the
// commit fails, the in-memory state is rebuilt from the store and every
// command of the batch, and of the next (applied on top of it), gets the
// error. A command may carry its caller's answer to remember for
// idempotent replays (Remember): it is committed with the command's
// effects.

// maxBatch bounds the commands committed together.
const maxBatch = 512

// applyChunk bounds the commands applied at a time, between which the
// writer may hand its batch to an idle committer: a burst that found
// hundreds of commands queued (a pipelining client's first) starts
// committing after the first few are applied rather than after all of
// them.
const applyChunk = 64

// commitTimeout bounds one group commit; it runs on its own context so
// that one caller hanging up cannot abort the others' commands.
const commitTimeout = 30 * time.Second

// op is one capacity command. apply runs under the capacity write lock,
// at now, with the writer's lease IDs, and returns what to persist (nil:
// nothing) and the answer. remember, when set, renders the caller's answer
// to be committed with the effects.
type op struct {
	ctx      context.Context
	apply    func(c *capState, now time.Time, ids *leaseIDs) (*effect, any, error)
	remember *Remember
	done     chan opResult
	at       time.Time // when it was submitted
}

type opResult struct {
	val any
	err error
}

// effect is what one command writes, in this order.
type effect struct {
	insertLease *lease.Lease
	changes     changes
	nodeState   *fleet.Node
	holdback    *holdbackChange
	events      []event.Event // appended to the outbox, in order
	updateLease *lease.Lease
	// more holds further changes (ends at other instants: reclaims),
	// written before changes; leases are lease updates written after the
	// fields above. The periodic tick and
	// reclaims change many leases and nodes at once.
	more     []changes
	leases   []lease.Lease
	wipes    int // nodes that started a wipe (kept in memory only)
	remember *IdempotentResponse
	audit    *tenant.AuditEntry
}

type holdbackChange struct {
	pool  string
	steps []HoldbackStep
}

// Pending is a submitted capacity command; Wait returns its answer.
type Pending struct{ done chan opResult }

// Wait blocks until the command is applied and committed (or failed).
func (p Pending) Wait() (any, error) {
	r := <-p.done
	return r.val, r.err
}

// submit queues a command for the writer and returns at once.
func (e *Engine) submit(ctx context.Context, apply func(c *capState, now time.Time, ids *leaseIDs) (*effect, any, error)) Pending {
	e.writerOnce.Do(func() { go e.writer() })
	o := &op{ctx: ctx, apply: apply, remember: rememberOf(ctx), done: make(chan opResult, 1), at: e.clock.Now()}
	select {
	case <-e.closed: // closed first: a command submitted after Close fails, whatever select below would pick
		o.done <- opResult{err: ErrClosed}
		return Pending{done: o.done}
	default:
	}
	select {
	case e.ops <- o:
	case <-ctx.Done():
		o.done <- opResult{err: ctx.Err()}
	case <-e.closed:
		o.done <- opResult{err: ErrClosed}
	}
	return Pending{done: o.done}
}

// Sync waits until the commands submitted before it are applied to the
// in-memory capacity, which reads (SpotMarkets) then reflect; they may not
// be committed yet: each one's answer still comes from its Pending. A
// caller that pipelines commands (the simulator) reads between them this
// way without waiting for the store, whose commits then gather more
// commands each. It returns an error, and may return before they are
// applied, when ctx ends, the engine is closed or the capacity cannot be
// loaded.
func (e *Engine) Sync(ctx context.Context) error {
	applied := make(chan struct{})
	p := e.submit(ctx, func(*capState, time.Time, *leaseIDs) (*effect, any, error) {
		close(applied)
		return nil, nil, nil
	})
	select {
	case <-applied:
		return nil
	case r := <-p.done: // answered without being applied, or after it
		return r.err
	}
}

// ErrClosed answers commands submitted after Close.
var ErrClosed = errors.New("engine: closed")

// Close stops the writer after the commands already queued; commands
// submitted later fail with ErrClosed. It is safe to call more than once.
func (e *Engine) Close() {
	e.closeOnce.Do(func() { close(e.closed) })
}

func (e *Engine) writer() {
	jobs := make(chan *job) // to the committer: one batch commits while the next gathers
	go e.committer(jobs)
	ids := &leaseIDs{rand: e.rand}
	defer close(jobs)
	for {
		var first *op
		select {
		case first = <-e.ops:
		case <-e.closed:
			for {
				select {
				case o := <-e.ops:
					o.done <- opResult{err: ErrClosed}
				default:
					return
				}
			}
		}
		// A burst: hold the writer lock until the queue is empty and the
		// last batch is committed, so that no other write (a fleet apply)
		// runs between a batch's apply and its commit.
		e.mu.Lock()
		e.burst(first, jobs, ids)
		e.mu.Unlock()
	}
}

// burst applies commands from first on, handing batches to the committer,
// until the queue is empty and every batch is committed. Commands are
// applied as they arrive, up to applyChunk at a time. A batch handed to
// the committer stays open while commands keep arriving: the writer
// applies them into it (up to maxBatch) and the committer writes each
// chunk as it is published, in the same transaction, so that what is
// left to write when the writer is done is the last chunk and the
// COMMIT. The writer seals the open batch when it is full, or when the
// queue is empty and the committer has written all of it; the commands
// that arrive while a sealed batch commits are applied into the next
// one, which the committer takes when that commit ends. So each command
// waits for at most the commit in progress before its own.
func (e *Engine) burst(first *op, jobs chan<- *job, ids *leaseIDs) {
	var (
		open *job // handed to the committer, still taking commands
		next *job // applied, waiting for the committer (only while open is nil)
		last *job // handed to the committer and sealed, perhaps not committed yet
		o    = first
	)
	for {
		if o != nil {
			into := next
			if open != nil {
				into = open
			}
			ops := e.gather(o, into)
			for {
				j, ok := e.apply(into, ops, ids)
				if ok {
					j.publish(false)
					if open != nil {
						open = j
					} else {
						next = j
					}
					break
				}
				// Stale: a commit failed after j's commands were applied;
				// the committer fails j at once (or is failing it).
				j.publish(true)
				if open == nil {
					jobs <- j
				}
				last, open, next, into = j, nil, nil, nil
			}
			o = nil
		}
		switch {
		case open != nil && len(open.batch) >= maxBatch:
			open.publish(true)
			last, open = open, nil
		case open != nil:
			select {
			case o = <-e.ops:
			default:
				if open.sealIfWritten() {
					last, open = open, nil
					break
				}
				select {
				case o = <-e.ops:
				case <-open.progress:
				}
			}
		case next != nil && len(next.batch) >= maxBatch:
			jobs <- next
			open, next = next, nil
		case next != nil:
			// To an idle committer first, rather than applying more.
			select {
			case jobs <- next:
				open, next = next, nil
			default:
				select {
				case jobs <- next:
					open, next = next, nil
				case o = <-e.ops:
				}
			}
		case last != nil:
			select {
			case o = <-e.ops:
			case <-last.committed:
				last = nil
			}
		default:
			select {
			case o = <-e.ops:
			default:
				return // the queue is empty and every batch committed
			}
		}
	}
}

// gather returns first and the commands queued behind it, as many as the
// batch next (nil: none yet) has room for, up to applyChunk.
func (e *Engine) gather(first *op, next *job) []*op {
	room := maxBatch
	if next != nil {
		room -= len(next.batch)
	}
	room = min(room, applyChunk)
	ops := []*op{first}
	for len(ops) < room {
		select {
		case o := <-e.ops:
			ops = append(ops, o)
		default:
			return ops
		}
	}
	return ops
}

// job is one applied batch on its way to the store. The writer appends
// to batch, results, effects and applied; it publishes the commands
// applied so far (pub, under mu) for the committer, which may write them
// while the writer applies more, and reads the rest of the job only once
// it is sealed.
type job struct {
	batch     []*op
	results   []opResult
	effects   []*effect
	applied   []time.Time // when each command was applied; zero: it was not
	gen       uint64      // e.gen when applied: stale after a failed commit
	committed chan struct{}

	mu  sync.Mutex
	pub struct { // the commands applied so far; their elements no longer change
		batch   []*op
		effects []*effect
		applied []time.Time
	}
	sealed  bool // no more commands: the writer is done with the job
	written int  // the committer is done with pub.batch[:written]
	// published and progress wake the committer (a chunk published, or
	// the job sealed) and the writer (the committer wrote a chunk); one
	// token each suffices, as both recheck under mu.
	published chan struct{}
	progress  chan struct{}
}

func newJob(n int) *job {
	return &job{batch: make([]*op, 0, n), results: make([]opResult, 0, n), effects: make([]*effect, 0, n),
		applied: make([]time.Time, 0, n), committed: make(chan struct{}),
		published: make(chan struct{}, 1), progress: make(chan struct{}, 1)}
}

// publish hands the commands applied so far to the committer, and seals
// the job when seal is set.
func (j *job) publish(seal bool) {
	j.mu.Lock()
	j.pub.batch, j.pub.effects, j.pub.applied = j.batch, j.effects, j.applied
	j.sealed = j.sealed || seal
	j.mu.Unlock()
	wake(j.published)
}

// sealIfWritten seals the job when the committer has written every
// command published; false (the job stays open) otherwise.
func (j *job) sealIfWritten() bool {
	j.mu.Lock()
	ok := j.written == len(j.pub.batch)
	j.sealed = j.sealed || ok
	j.mu.Unlock()
	if ok {
		wake(j.published)
	}
	return ok
}

// take waits until commands from index from on are published and
// returns them; done when the job is sealed and every command has been
// taken.
func (j *job) take(from int) (batch []*op, effects []*effect, applied []time.Time, done bool) {
	for {
		j.mu.Lock()
		n, sealed := len(j.pub.batch), j.sealed
		if from < n {
			batch, effects, applied = j.pub.batch[from:n], j.pub.effects[from:n], j.pub.applied[from:n]
		}
		j.mu.Unlock()
		switch {
		case from < n:
			return batch, effects, applied, false
		case sealed:
			return nil, nil, nil, true
		}
		<-j.published
	}
}

// wrote records that the committer has written the commands before
// index n.
func (j *job) wrote(n int) {
	j.mu.Lock()
	j.written = n
	j.mu.Unlock()
	wake(j.progress)
}

// wake leaves a token in c unless one is there.
func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// apply runs ops against the in-memory capacity, in order, appending them
// to the batch j (nil: a new one, returned), then renders the answers
// their callers asked to remember (Remember) without the lock. It returns
// false, and applies nothing, when j is stale: a commit failed after j's
// commands were applied, to a capacity state since dropped.
func (e *Engine) apply(j *job, ops []*op, ids *leaseIDs) (*job, bool) {
	if j == nil {
		// Room for the commands queued behind ops too: the batch takes
		// them in chunks (gather) while it waits for the committer.
		n := min(maxBatch, len(ops)+len(e.ops))
		j = newJob(n)
	}
	from := len(j.batch)
	j.batch = append(j.batch, ops...)
	j.results = append(j.results, make([]opResult, len(ops))...)
	j.effects = append(j.effects, make([]*effect, len(ops))...)
	j.applied = append(j.applied, make([]time.Time, len(ops))...)
	if !e.applyLocked(j, from, ids) {
		j.batch, j.results, j.effects, j.applied = j.batch[:from], j.results[:from], j.effects[:from], j.applied[:from]
		return j, false
	}
	for i := from; i < len(j.batch); i++ {
		o := j.batch[i]
		if o.remember == nil || j.applied[i].IsZero() {
			continue
		}
		if r := e.answer(o, j.results[i], j.applied[i]); r != nil {
			if j.effects[i] == nil {
				j.effects[i] = &effect{}
			}
			j.effects[i].remember = r
		}
	}
	return j, true
}

// applyLocked applies the commands of j from index from on; false when j
// is stale (then it applies none).
func (e *Engine) applyLocked(j *job, from int, ids *leaseIDs) bool {
	e.capMu.Lock()
	defer e.capMu.Unlock()
	if from > 0 && j.gen != e.gen {
		return false
	}
	c := e.cap
	if c == nil || c.stale(e.clock.Now()) {
		ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
		var err error
		c, err = e.loadedLocked(ctx)
		cancel()
		if err != nil {
			for i := from; i < len(j.results); i++ {
				j.results[i].err = err
			}
			return true
		}
		if from > 0 {
			// j's earlier commands were applied to the state just
			// replaced (loadedLocked made j stale).
			return false
		}
	}
	if from == 0 {
		j.gen = e.gen
	}
	for i := from; i < len(j.batch); i++ {
		o := j.batch[i]
		if err := o.ctx.Err(); err != nil {
			j.results[i].err = err
			continue
		}
		// A command applies at the time it was submitted (a pipelining
		// caller on a fake clock, the simulator, sets it per command), never
		// before its predecessor.
		now := o.at
		if now.Before(e.applied) {
			now = e.applied
		}
		e.applied = now
		eff, val, err := o.apply(c, now, ids)
		j.results[i] = opResult{val: val, err: err}
		j.effects[i] = eff
		j.applied[i] = now
	}
	return true
}

// answer renders the answer o's caller asked to remember; nil when there
// is none. A panic of the renderer remembers nothing (and is logged), as
// a request that failed would not be remembered either.
func (e *Engine) answer(o *op, res opResult, now time.Time) (r *IdempotentResponse) {
	defer func() {
		if v := recover(); v != nil {
			e.log.Error("remember answer: panic", "panic", fmt.Sprint(v), "request_id", RequestID(o.ctx))
			r = nil
		}
	}()
	return o.remember.answer(res.val, res.err, now)
}

// committer persists applied batches in order and answers their commands.
// After a failed commit the in-memory state is dropped (rebuilt from the
// store on next use) and batches applied on top of it fail unwritten.
func (e *Engine) committer(jobs <-chan *job) {
	for j := range jobs {
		ok := e.commit(j)
		for i, o := range j.batch {
			if ok && o.remember != nil && j.effects[i] != nil && j.effects[i].remember != nil {
				o.remember.saved = j.effects[i].remember
			}
			o.done <- j.results[i]
		}
		close(j.committed)
	}
}

// commit persists j's effects, chunk by chunk as the writer publishes
// them, in one transaction that commits once j is sealed; it returns once
// j is sealed, false when the commit failed (then every command with
// effects has the error as its result).
func (e *Engine) commit(j *job) bool {
	// Commands without effects (refusals) need no transaction: skip them
	// until one has effects, or the job is sealed without any.
	var (
		taken   int
		batch   []*op
		effects []*effect
		applied []time.Time
	)
	for {
		b, effs, app, done := j.take(taken)
		if done {
			return true
		}
		k := slices.IndexFunc(effs, func(eff *effect) bool { return eff != nil })
		if k < 0 {
			taken += len(b)
			j.wrote(taken)
			continue
		}
		taken += k
		batch, effects, applied = b[k:], effs[k:], app[k:]
		break
	}
	err := errStaleBatch
	if !e.stale(j) {
		ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
		err = e.store.Update(ctx, func(tx Tx) error {
			var cutoff time.Time
			for {
				if err := e.persist(ctx, tx, batch, effects, applied, &cutoff); err != nil {
					return err
				}
				taken += len(batch)
				j.wrote(taken)
				var done bool
				if batch, effects, applied, done = j.take(taken); done {
					// The state may have been loaded again from the
					// store while the batch was open: its commands are
					// not in it, so they must not commit.
					if e.stale(j) {
						return errStaleBatch
					}
					return nil
				}
			}
		})
		cancel()
		if err == nil {
			e.eventsCommitted(j.effects)
			return true
		}
		if !errors.Is(err, errStaleBatch) {
			// Else the state was loaded again while the batch was
			// open, and holds what the store does: it stays.
			err = fmt.Errorf("commit: %w", err)
			e.capMu.Lock()
			e.cap = nil // rebuilt from the store on next use
			e.gen++
			e.capMu.Unlock()
		}
	}
	// The writer may still be applying commands into j (until it finds
	// the state it applies to dropped): wait for the seal.
	for {
		b, _, _, done := j.take(taken)
		if done {
			break
		}
		taken += len(b)
		j.wrote(taken)
	}
	for i := range j.results {
		if j.effects[i] != nil {
			j.results[i] = opResult{err: err}
		}
	}
	return false
}

// stale reports whether j's commands were applied to a capacity state
// since dropped or loaded again from the store.
func (e *Engine) stale(j *job) bool {
	e.capMu.RLock()
	defer e.capMu.RUnlock()
	return j.gen != e.gen
}

var errStaleBatch = errors.New("commit: an earlier batch failed to commit; nothing of this one was written")

// persist writes the effects of a batch's commands (a chunk of it) in
// order. Consecutive admissions are written with one insert per kind of
// row. A command's audit entry is stamped with the time it applied at
// (applied), not the commit's: a pipelining caller on a fake clock (the
// simulator) has moved it on by then. Remembered answers created before
// *cutoff expire; a zero *cutoff is set from the first answer remembered
// and kept for the batch's later chunks.
func (e *Engine) persist(ctx context.Context, tx Tx, batch []*op, effects []*effect, applied []time.Time, cutoff *time.Time) error {
	// The rows gathered below, counted first: a batch of admissions
	// gathers hundreds of each, which would otherwise be copied as the
	// slices grow.
	var nLeases, nAllocs, nAudit, nRemember, nEvents int
	for _, eff := range effects {
		if eff == nil {
			continue
		}
		if eff.insertLease != nil {
			nLeases++
		}
		if eff.audit != nil {
			nAudit++
		}
		if eff.remember != nil {
			nRemember++
		}
		nAllocs += len(eff.changes.allocs)
		nEvents += len(eff.events)
	}
	leases := make([]lease.Lease, 0, nLeases)
	allocs := make([]lease.Allocation, 0, nAllocs)
	flush := func() error {
		if len(leases) > 0 {
			if err := tx.InsertLeases(ctx, leases); err != nil {
				return err
			}
			leases = leases[:0]
		}
		if len(allocs) > 0 {
			if err := tx.InsertAllocations(ctx, allocs); err != nil {
				return err
			}
			allocs = allocs[:0]
		}
		return nil
	}
	audit := make([]tenant.AuditEntry, 0, nAudit)
	remember := make([]IdempotentResponse, 0, nRemember)
	events := make([]event.Event, 0, nEvents)
	for i, eff := range effects {
		if eff == nil {
			continue
		}
		if eff.audit != nil {
			e.stamp(batch[i].ctx, principalOf(batch[i].ctx), eff.audit)
			if !applied[i].IsZero() {
				eff.audit.At = applied[i]
			}
			audit = append(audit, *eff.audit)
		}
		ch := eff.changes
		if eff.insertLease != nil {
			leases = append(leases, *eff.insertLease)
		}
		if eff.remember != nil {
			remember = append(remember, *eff.remember)
		}
		events = append(events, eff.events...)
		if len(ch.ends) == 0 && eff.nodeState == nil && eff.holdback == nil && eff.updateLease == nil &&
			len(eff.more) == 0 && len(eff.leases) == 0 {
			allocs = append(allocs, ch.allocs...)
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		// Further changes first: a reclaim ends spot allocations where
		// the command's own allocations go.
		if err := e.persistChanges(ctx, tx, eff.more); err != nil {
			return err
		}
		if len(ch.ends) > 0 {
			if err := tx.EndAllocations(ctx, ch.ends, ch.at); err != nil {
				return err
			}
		}
		if len(ch.allocs) > 0 {
			if err := tx.InsertAllocations(ctx, ch.allocs); err != nil {
				return err
			}
		}
		if eff.nodeState != nil {
			if err := tx.SetNodeState(ctx, eff.nodeState.Name, eff.nodeState.State); err != nil {
				return err
			}
		}
		for _, s := range ch.shortfalls {
			if err := tx.InsertShortfall(ctx, s); err != nil {
				return err
			}
		}
		if eff.holdback != nil {
			if err := tx.SetHoldback(ctx, eff.holdback.pool, eff.holdback.steps); err != nil {
				return err
			}
		}
		if eff.updateLease != nil {
			if err := tx.UpdateLease(ctx, *eff.updateLease); err != nil {
				return err
			}
		}
		if err := e.persistMore(ctx, tx, eff); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if len(events) > 0 {
		if err := tx.AppendEvents(ctx, events); err != nil {
			return fmt.Errorf("events: %w", err)
		}
	}
	if len(audit) > 0 {
		if err := tx.AppendAudits(ctx, audit); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	if len(remember) > 0 {
		// One cutoff for the batch: the first record's.
		if cutoff.IsZero() {
			*cutoff = remember[0].Created.Add(-IdempotencyTTL)
		}
		if err := tx.RememberResponses(ctx, remember, *cutoff); err != nil {
			return fmt.Errorf("remember responses: %w", err)
		}
	}
	return nil
}

// persistChanges writes changes in order.
func (e *Engine) persistChanges(ctx context.Context, tx Tx, more []changes) error {
	for _, ch := range more {
		if len(ch.ends) > 0 {
			if err := tx.EndAllocations(ctx, ch.ends, ch.at); err != nil {
				return err
			}
		}
		if len(ch.allocs) > 0 {
			if err := tx.InsertAllocations(ctx, ch.allocs); err != nil {
				return err
			}
		}
		for _, s := range ch.shortfalls {
			if err := tx.InsertShortfall(ctx, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// persistMore writes an effect's lease updates.
func (e *Engine) persistMore(ctx context.Context, tx Tx, eff *effect) error {
	for _, l := range eff.leases {
		if err := tx.UpdateLease(ctx, l); err != nil {
			return err
		}
	}

	return nil
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p tenant.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

func principalOf(ctx context.Context) tenant.Principal {
	p, _ := ctx.Value(principalKey{}).(tenant.Principal)
	return p
}

// loadedLocked returns the capacity state, loading it from the store when
// it is missing or its calendars no longer reach the horizon. The caller
// holds capMu for writing.
func (e *Engine) loadedLocked(ctx context.Context) (*capState, error) {
	now := e.clock.Now()
	if e.cap != nil && !e.cap.stale(now) {
		return e.cap, nil
	}
	c, err := loadCapacity(ctx, e.store, now, e.horizon, capConfig{spot: e.spotPolicies, sanitize: e.sanitize})
	if err != nil {
		return nil, fmt.Errorf("load capacity: %w", err)
	}
	// Commands applied to the state replaced and not yet committed (a
	// fleet change or the calendars' yearly roll while a batch is in
	// flight) are not in the state loaded from the store: their batch
	// must not commit either (commit checks the generation).
	e.cap = c
	e.gen++
	return c, nil
}

// readCap runs fn under the capacity read lock, loading the state first
// when needed.
func (e *Engine) readCap(ctx context.Context, fn func(c *capState) error) error {
	e.capMu.RLock()
	if c := e.cap; c != nil && !c.stale(e.clock.Now()) {
		defer e.capMu.RUnlock()
		return fn(c)
	}
	e.capMu.RUnlock()
	e.capMu.Lock()
	defer e.capMu.Unlock()
	c, err := e.loadedLocked(ctx)
	if err != nil {
		return err
	}
	return fn(c)
}

// invalidateCapacity drops the in-memory capacity (after a fleet change);
// the next command or read rebuilds it. The caller holds e.mu.
func (e *Engine) invalidateCapacity() {
	e.capMu.Lock()
	e.cap = nil
	e.capMu.Unlock()
}
