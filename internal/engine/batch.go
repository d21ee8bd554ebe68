package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/tenant"
)

// Capacity commands (request, cancel, node state, holdback) go through one
// writer goroutine that applies them one at a time to the in-memory
// capacity and persists the effects of every command it has applied in one
// store transaction (group commit) before answering any of them. The
// answers are those of one-by-one application: commands are applied in
// arrival order, each seeing its predecessors' effects. When the commit
// fails, the in-memory state is rebuilt from the store and every command of
// the batch gets the error.

// maxBatch bounds the commands committed together.
const maxBatch = 512

// commitTimeout bounds one group commit; it runs on its own context so
// that one caller hanging up cannot abort the others' commands.
const commitTimeout = 30 * time.Second

// op is one capacity command. apply runs under the capacity write lock
// and returns what to persist (nil: nothing) and the answer.
type op struct {
	ctx   context.Context
	apply func(c *capState, now time.Time) (*effect, any, error)
	done  chan opResult
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
	updateLease *lease.Lease
	remember    *IdempotentResponse
	audit       *tenant.AuditEntry
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
func (e *Engine) submit(ctx context.Context, apply func(c *capState, now time.Time) (*effect, any, error)) Pending {
	e.writerOnce.Do(func() { go e.writer() })
	o := &op{ctx: ctx, apply: apply, done: make(chan opResult, 1)}
	select {
	case e.ops <- o:
	case <-ctx.Done():
		o.done <- opResult{err: ctx.Err()}
	case <-e.closed:
		o.done <- opResult{err: ErrClosed}
	}
	return Pending{done: o.done}
}

// ErrClosed answers commands submitted after Close.
var ErrClosed = errors.New("engine: closed")

// Close stops the writer after the commands already queued; commands
// submitted later fail with ErrClosed. It is safe to call more than once.
func (e *Engine) Close() {
	e.closeOnce.Do(func() { close(e.closed) })
}

func (e *Engine) writer() {
	jobs := make(chan *job) // to the committer: at most one batch commits while the next is applied
	go e.committer(jobs)
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
		var last *job
		for first != nil {
			batch := append(make([]*op, 0, maxBatch), first)
		drain:
			for len(batch) < maxBatch {
				select {
				case o := <-e.ops:
					batch = append(batch, o)
				default:
					break drain
				}
			}
			last = e.apply(batch)
			jobs <- last
			first = nil
			select {
			case first = <-e.ops:
			default:
				<-last.committed
				select {
				case first = <-e.ops:
				default:
				}
			}
		}
		e.mu.Unlock()
	}
}

// job is one applied batch on its way to the store.
type job struct {
	batch     []*op
	results   []opResult
	effects   []*effect
	gen       uint64 // e.gen when applied: stale after a failed commit
	committed chan struct{}
}

// apply runs a batch's commands against the in-memory capacity, in order.
func (e *Engine) apply(batch []*op) *job {
	j := &job{batch: batch, results: make([]opResult, len(batch)), effects: make([]*effect, len(batch)), committed: make(chan struct{})}
	e.capMu.Lock()
	defer e.capMu.Unlock()
	j.gen = e.gen
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	c, err := e.loadedLocked(ctx)
	if err != nil {
		for i := range j.results {
			j.results[i].err = err
		}
		return j
	}
	for i, o := range batch {
		if err := o.ctx.Err(); err != nil {
			j.results[i].err = err
			continue
		}
		eff, val, err := o.apply(c, e.clock.Now())
		j.results[i] = opResult{val: val, err: err}
		j.effects[i] = eff
	}
	return j
}

// committer persists applied batches in order and answers their commands.
// After a failed commit the in-memory state is dropped (rebuilt from the
// store on next use) and batches applied on top of it fail unwritten.
func (e *Engine) committer(jobs <-chan *job) {
	for j := range jobs {
		e.commit(j)
		for i, o := range j.batch {
			o.done <- j.results[i]
		}
		close(j.committed)
	}
}

func (e *Engine) commit(j *job) {
	if !slices.ContainsFunc(j.effects, func(eff *effect) bool { return eff != nil }) {
		return
	}
	e.capMu.RLock()
	stale := j.gen != e.gen
	e.capMu.RUnlock()
	err := errStaleBatch
	if !stale {
		ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
		err = e.store.Update(ctx, func(tx Tx) error { return e.persist(ctx, tx, j.batch, j.effects) })
		cancel()
		if err == nil {
			return
		}
		err = fmt.Errorf("commit: %w", err)
		e.capMu.Lock()
		e.cap = nil // rebuilt from the store on next use
		e.gen++
		e.capMu.Unlock()
	}
	for i := range j.results {
		if j.effects[i] != nil {
			j.results[i] = opResult{err: err}
		}
	}
}

var errStaleBatch = errors.New("commit: an earlier batch failed to commit; nothing of this one was written")

// persist writes the batch's effects in order. Consecutive admissions are
// written with one insert per kind of row.
func (e *Engine) persist(ctx context.Context, tx Tx, batch []*op, effects []*effect) error {
	var leases []lease.Lease
	var allocs []lease.Allocation
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
	var audit []tenant.AuditEntry
	for i, eff := range effects {
		if eff == nil {
			continue
		}
		if eff.audit != nil {
			e.stamp(batch[i].ctx, principalOf(batch[i].ctx), eff.audit)
			audit = append(audit, *eff.audit)
		}
		ch := eff.changes
		if eff.insertLease != nil {
			leases = append(leases, *eff.insertLease)
		}
		if eff.remember != nil {
			r := *eff.remember
			if err := tx.RememberResponse(ctx, r, r.Created.Add(-IdempotencyTTL)); err != nil {
				return fmt.Errorf("remember response: %w", err)
			}
		}
		if len(ch.ends) == 0 && eff.nodeState == nil && eff.holdback == nil && eff.updateLease == nil {
			allocs = append(allocs, ch.allocs...)
			continue
		}
		if err := flush(); err != nil {
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
	}
	if err := flush(); err != nil {
		return err
	}
	if len(audit) > 0 {
		if err := tx.AppendAudits(ctx, audit); err != nil {
			return fmt.Errorf("audit: %w", err)
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
	c, err := loadCapacity(ctx, e.store, now, e.horizon)
	if err != nil {
		return nil, fmt.Errorf("load capacity: %w", err)
	}
	e.cap = c
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
