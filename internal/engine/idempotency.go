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
// forgets those older than IdempotencyTTL. It goes through the writer's
// group commit, so that many clients' records share transactions.
func (e *Engine) RememberResponse(ctx context.Context, r IdempotentResponse) error {
	_, err := e.submit(ctx, func(_ *capState, now time.Time) (*effect, any, error) {
		r.Created = now
		return &effect{remember: &r}, nil, nil
	}).Wait()
	return err
}
