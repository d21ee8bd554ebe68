package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
)

// Idempotent returns the response remembered for (scope, key) created at
// or after notBefore, or an error wrapping engine.ErrNotFound.
func (r reader) Idempotent(ctx context.Context, scope, key string, notBefore time.Time) (engine.IdempotentResponse, error) {
	resp := engine.IdempotentResponse{Scope: scope, Key: key}
	var created int64
	err := r.c.queryRow(ctx, `SELECT request_sha256, status, content_type, response, created_us
		FROM idempotency WHERE scope = ? AND key = ? AND created_us >= ?`, scope, key, micros(notBefore)).
		Scan(&resp.RequestSHA256, &resp.Status, &resp.ContentType, &resp.Body, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return engine.IdempotentResponse{}, fmt.Errorf("store: idempotent response: %w", engine.ErrNotFound)
	}
	if err != nil {
		return engine.IdempotentResponse{}, fmt.Errorf("store: idempotent response: %w", err)
	}
	resp.Created = fromMicros(created)
	return resp, nil
}

// RememberResponse stores resp (replacing an expired record of the same
// scope and key) and deletes the records created before expireBefore.
func (t tx) RememberResponse(ctx context.Context, resp engine.IdempotentResponse, expireBefore time.Time) error {
	if _, err := t.c.exec(ctx, `DELETE FROM idempotency WHERE created_us < ? OR (scope = ? AND key = ?)`,
		micros(expireBefore), resp.Scope, resp.Key); err != nil {
		return fmt.Errorf("store: expire idempotent responses: %w", err)
	}
	body := resp.Body
	if body == nil {
		body = []byte{}
	}
	if _, err := t.c.exec(ctx, `INSERT INTO idempotency (scope, key, request_sha256, status, content_type, response, created_us)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, resp.Scope, resp.Key, resp.RequestSHA256, resp.Status, resp.ContentType, body, micros(resp.Created)); err != nil {
		return fmt.Errorf("store: remember response: %w", t.c.d.classify(err))
	}
	return nil
}
