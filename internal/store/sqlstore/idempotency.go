package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
)

// Queries of idempotency records, prepared (stmtCache): every mutating
// request with an Idempotency-Key looks its key up, and every answer to
// one is remembered.
const (
	idempotentQuery = `SELECT request_sha256, status, content_type, response, created_us
		FROM idempotency WHERE scope = ? AND key = ? AND created_us >= ?`
	expireQuery  = `DELETE FROM idempotency WHERE created_us < ?`
	rememberCols = 7
)

// rememberQuery returns the statement that stores n records, each
// replacing a record of the same scope and key (an expired one, which a
// replay no longer finds).
func rememberQuery(n int) string {
	return `INSERT INTO idempotency (scope, key, request_sha256, status, content_type, response, created_us) VALUES ` +
		values(n, rememberCols) + ` ON CONFLICT (scope, key) DO UPDATE SET request_sha256 = excluded.request_sha256,
		status = excluded.status, content_type = excluded.content_type, response = excluded.response, created_us = excluded.created_us`
}

// errNoResponse answers most lookups: made once.
var errNoResponse = fmt.Errorf("store: idempotent response: %w", engine.ErrNotFound)

// Idempotent returns the response remembered for (scope, key) created at
// or after notBefore, or an error wrapping engine.ErrNotFound.
func (r reader) Idempotent(ctx context.Context, scope, key string, notBefore time.Time) (engine.IdempotentResponse, error) {
	resp := engine.IdempotentResponse{Scope: scope, Key: key}
	var created int64
	err := r.c.queryRowPrepared(ctx, idempotentQuery, scope, key, micros(notBefore)).
		Scan(&resp.RequestSHA256, &resp.Status, &resp.ContentType, &resp.Body, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return engine.IdempotentResponse{}, errNoResponse
	}
	if err != nil {
		return engine.IdempotentResponse{}, fmt.Errorf("store: idempotent response: %w", err)
	}
	resp.Created = fromMicros(created)
	return resp, nil
}

// IdempotentKeys calls fn with the scope, key and creation time of every
// response remembered at or after notBefore, in no particular order
// (engine.IdempotentKeyLister): the engine loads them into its index of
// keys once, at its first lookup. An error of fn ends the listing and is
// returned.
func (s *Store) IdempotentKeys(ctx context.Context, notBefore time.Time, fn func(scope, key string, created time.Time) error) error {
	rows, err := s.c.query(ctx, `SELECT scope, key, created_us FROM idempotency WHERE created_us >= ?`, micros(notBefore))
	if err != nil {
		return fmt.Errorf("store: idempotent keys: %w", err)
	}
	for rows.Next() {
		var scope, key string
		var created int64
		if err := rows.Scan(&scope, &key, &created); err != nil {
			rows.Close()
			return fmt.Errorf("store: idempotent keys: %w", err)
		}
		if err := fn(scope, key, fromMicros(created)); err != nil {
			rows.Close()
			return err
		}
	}
	if err := closeRows(rows); err != nil {
		return fmt.Errorf("store: idempotent keys: %w", err)
	}
	return nil
}

// RememberResponses stores rs, each replacing a record of the same scope
// and key (of two in rs, the later), with multi-row statements, and
// deletes the records created before expireBefore. A transaction deletes
// once per cutoff: a group commit remembers many responses with one.
func (t *tx) RememberResponses(ctx context.Context, rs []engine.IdempotentResponse, expireBefore time.Time) error {
	if len(rs) == 0 {
		return nil
	}
	if cut := micros(expireBefore); !t.expired || cut > t.expiredUS {
		if _, err := t.c.execPrepared(ctx, expireQuery, cut); err != nil {
			return fmt.Errorf("store: expire idempotent responses: %w", err)
		}
		t.expired, t.expiredUS = true, cut
	}
	for _, batch := range pow2Chunks(lastPerKey(rs), t.c.d.batchRows(rememberCols)) {
		args := make([]any, 0, len(batch)*rememberCols)
		for _, r := range batch {
			body := r.Body
			if body == nil {
				body = []byte{}
			}
			args = append(args, r.Scope, r.Key, r.RequestSHA256, r.Status, r.ContentType, body, micros(r.Created))
		}
		if _, err := t.c.execPrepared(ctx, rememberQuery(len(batch)), args...); err != nil {
			return fmt.Errorf("store: remember responses: %w", err)
		}
	}
	return nil
}

// lastPerKey returns rs without the records that a later one of the same
// scope and key replaces: one statement may not change a row twice.
func lastPerKey(rs []engine.IdempotentResponse) []engine.IdempotentResponse {
	if len(rs) < 2 {
		return rs
	}
	type key struct{ scope, key string }
	last := make(map[key]int, len(rs))
	for i, r := range rs {
		last[key{r.Scope, r.Key}] = i
	}
	if len(last) == len(rs) {
		return rs
	}
	out := make([]engine.IdempotentResponse, 0, len(last))
	for i, r := range rs {
		if last[key{r.Scope, r.Key}] == i {
			out = append(out, r)
		}
	}
	return out
}

// idempotencyQueries are the statements of RememberResponses, which the
// write pool prepares.
func idempotencyQueries(d *Dialect) []string {
	qs := []string{expireQuery}
	for n := 1; n <= pow2Floor(d.batchRows(rememberCols)); n *= 2 {
		qs = append(qs, rememberQuery(n))
	}
	return qs
}
