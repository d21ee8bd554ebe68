package engine

import (
	"context"
	"time"
)

// IdempotencyTTL is how long a remembered response answers replays.
const IdempotencyTTL = 24 * time.Hour

// IdempotentResponse returns the response remembered for (scope, key) in
// the last IdempotencyTTL, or ErrNotFound.
func (e *Engine) IdempotentResponse(ctx context.Context, scope, key string) (IdempotentResponse, error) {
	return e.store.Idempotent(ctx, scope, key, e.clock.Now().Add(-IdempotencyTTL))
}

// RememberResponse stores the first response to an idempotent request and
// forgets those older than IdempotencyTTL.
func (e *Engine) RememberResponse(ctx context.Context, r IdempotentResponse) error {
	now := e.clock.Now()
	r.Created = now
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.store.Update(ctx, func(tx Tx) error {
		return tx.RememberResponse(ctx, r, now.Add(-IdempotencyTTL))
	})
}
