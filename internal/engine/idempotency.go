package engine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// IdempotencyTTL is how long a remembered response answers replays.
const IdempotencyTTL = 24 * time.Hour

// IdempotentResponse returns the response remembered for (scope, key) in
// the last IdempotencyTTL, or ErrNotFound. A pair the engine's index
// (idemIndex) has never seen is answered ErrNotFound without reading the
// store. A lookup that finds nothing enters the pair in the index before
// its request can remember an answer: the caller must look a pair up
// before remembering its answer (Remember), as the idempotency
// middlewares do.
func (e *Engine) IdempotentResponse(ctx context.Context, scope, key string) (IdempotentResponse, error) {
	now := e.clock.Now()
	if err := e.idem.ensureLoaded(ctx, e.store, now); err != nil {
		e.log.WarnContext(ctx, "idempotency index: load", "err", err)
	}
	if e.idem.absent(scope, key, now) {
		return IdempotentResponse{}, errNoIdempotentResponse
	}
	r, err := e.store.Idempotent(ctx, scope, key, now.Add(-IdempotencyTTL))
	switch {
	case err == nil:
		e.idem.add(scope, key, r.Created, now)
	case errors.Is(err, ErrNotFound):
		e.idem.add(scope, key, now, now)
	}
	return r, err
}

// errNoIdempotentResponse answers the lookups of pairs never used: made
// once.
var errNoIdempotentResponse = fmt.Errorf("idempotent response: %w", ErrNotFound)

// RememberResponse stores the first response to an idempotent request and
// forgets those older than IdempotencyTTL. It goes through the writer's
// group commit, so that many clients' records share transactions. A
// capacity command can instead remember its answer in the transaction
// that persists it (Remember).
func (e *Engine) RememberResponse(ctx context.Context, r IdempotentResponse) error {
	_, err := e.submit(ctx, func(_ *capState, now time.Time, _ *leaseIDs) (*effect, any, error) {
		r.Created = now
		e.idem.add(r.Scope, r.Key, now, now) // before the record commits
		return &effect{remember: &r}, nil, nil
	}).Wait()
	return err
}

// Remember asks a capacity command (a lease request or cancel, a node
// state or holdback change) to remember its caller's answer for
// idempotent replays in the transaction that persists the command's
// effects, rather than in a transaction of its own afterwards: a replay
// finds the answer if and only if the effects are stored, and the request
// waits for one commit instead of two. Pass it with WithRemember on the
// context of the command, after looking (Scope, Key) up with
// IdempotentResponse: the lookup is what enters the pair in the engine's
// index of remembered keys, which answers "not found" for pairs it
// never saw.
type Remember struct {
	Scope         string // the caller's key ID
	Key           string // the Idempotency-Key header
	RequestSHA256 string // of method, path, query and body
	// Answer renders what the caller is told of the command's result:
	// ok false remembers nothing. It runs on the engine's writer goroutine
	// after the command is applied and before it is committed, so it must
	// be quick; it may read the capacity (NodeNames) but not submit
	// commands.
	Answer func(val any, err error) (status int, contentType string, body []byte, ok bool)

	// saved is set, before the command is answered, when the answer was
	// committed with it.
	saved *IdempotentResponse
}

// Saved returns the answer remembered with the command; false when none
// was (the command was not submitted, Answer declined, or the commit
// failed). Call it after the command has answered.
func (r *Remember) Saved() (IdempotentResponse, bool) {
	if r == nil || r.saved == nil {
		return IdempotentResponse{}, false
	}
	return *r.saved, true
}

type rememberKey struct{}

// WithRemember returns ctx carrying r: the capacity command submitted
// with ctx remembers its answer as r says.
func WithRemember(ctx context.Context, r *Remember) context.Context {
	return context.WithValue(ctx, rememberKey{}, r)
}

// rememberOf returns the Remember carried by ctx, or nil.
func rememberOf(ctx context.Context) *Remember {
	r, _ := ctx.Value(rememberKey{}).(*Remember)
	return r
}

// answer renders r's answer to a command applied at now with result
// (val, err); nil when there is none to remember.
func (r *Remember) answer(val any, err error, now time.Time) *IdempotentResponse {
	if r == nil || r.Answer == nil {
		return nil
	}
	status, ct, body, ok := r.Answer(val, err)
	if !ok {
		return nil
	}
	return &IdempotentResponse{Scope: r.Scope, Key: r.Key, RequestSHA256: r.RequestSHA256,
		Status: status, ContentType: ct, Body: body, Created: now}
}
