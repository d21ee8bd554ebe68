package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/clock"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/store/dbtest"
	"github.com/neocloud/neocloud/internal/store/sqlite"
)

// idemStore is a store whose idempotency lookups are counted; it does not
// list its records (the interface it embeds has no IdempotentKeys), and
// listingStore, around it, lists them through the store's own method.
type idemStore struct {
	engine.Store
	lookups atomic.Int64
}

func (s *idemStore) Idempotent(ctx context.Context, scope, key string, notBefore time.Time) (engine.IdempotentResponse, error) {
	s.lookups.Add(1)
	return s.Store.Idempotent(ctx, scope, key, notBefore)
}

type listingStore struct{ *idemStore }

func (s listingStore) IdempotentKeys(ctx context.Context, notBefore time.Time, fn func(scope, key string, created time.Time) error) error {
	return s.Store.(engine.IdempotentKeyLister).IdempotentKeys(ctx, notBefore, fn)
}

// TestIdempotencyIndex: lookups answer what the store holds, across a
// restart (the index is rebuilt from the store) and past the TTL, with
// or without a store that lists its records; with one, a key never used
// is answered without reading the store.
func TestIdempotencyIndex(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		for _, tc := range []struct {
			name string
			list bool
		}{{"listing store", true}, {"store without listing", false}} {
			t.Run(tc.name, func(t *testing.T) {
				is := &idemStore{Store: st}
				var s engine.Store = is
				if tc.list {
					s = listingStore{is}
				}
				ctx := context.Background()
				clk := clock.NewFake(t0)
				start := func() *engine.Engine {
					e, err := engine.New(engine.Config{Store: s, Clock: clk})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(e.Close)
					return e
				}
				scope := "key_" + tc.name[:4] // each subtest its own scope: they share the store
				rec := func(key, body string) engine.IdempotentResponse {
					return engine.IdempotentResponse{Scope: scope, Key: key, RequestSHA256: "sha-" + body,
						Status: 201, ContentType: "application/json", Body: []byte(body)}
				}
				// lookup checks what (scope, key) answers, and whether
				// the store was read (only when it lists its records:
				// otherwise it always is).
				lookup := func(e *engine.Engine, step, key string, want *engine.IdempotentResponse, wantRead bool) {
					t.Helper()
					before := is.lookups.Load()
					got, err := e.IdempotentResponse(ctx, scope, key)
					read := is.lookups.Load() > before
					switch {
					case want == nil && !errors.Is(err, engine.ErrNotFound):
						t.Errorf("%s: %s = %+v, %v; want ErrNotFound", step, key, got, err)
					case want != nil && err != nil:
						t.Errorf("%s: %s: %v", step, key, err)
					case want != nil:
						got.Created = time.Time{}
						if diff := cmp.Diff(*want, got); diff != "" {
							t.Errorf("%s: %s (-want +got):\n%s", step, key, diff)
						}
					}
					if tc.list && read != wantRead {
						t.Errorf("%s: %s read the store: %v, want %v", step, key, read, wantRead)
					}
				}

				e1 := start()
				lookup(e1, "first start", "never-used", nil, false)
				first := rec("k1", `{"id":1}`)
				lookup(e1, "first start", "k1", nil, false)
				if err := e1.RememberResponse(ctx, first); err != nil {
					t.Fatal(err)
				}
				lookup(e1, "remembered", "k1", &first, true)
				lookup(e1, "remembered", "never-used", nil, true) // looked up before: may be remembered
				lookup(e1, "remembered", "other", nil, false)

				e1.Close()
				clk.Advance(time.Hour)
				e2 := start()
				lookup(e2, "restarted", "k1", &first, true)
				lookup(e2, "restarted", "another", nil, false)

				clk.Advance(engine.IdempotencyTTL)
				lookup(e2, "expired", "k1", nil, true)
				second := rec("k2", `{"id":2}`)
				if err := e2.RememberResponse(ctx, second); err != nil {
					t.Fatal(err)
				}
				e2.Close()
				e3 := start()
				lookup(e3, "restarted after expiry", "k1", nil, false) // not loaded: expired
				lookup(e3, "restarted after expiry", "k2", &second, true)
			})
		}
	})
}

// TestIdempotencyIndexConcurrent: lookups and remembers of many keys at
// once, some of the same key: every remembered key is found after.
func TestIdempotencyIndexConcurrent(t *testing.T) {
	st := &idemStore{Store: sqlite.OpenTest(t)}
	e, _ := newEngine(t, listingStore{st})
	defer e.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			key := fmt.Sprintf("k%d", i%16)
			if _, err := e.IdempotentResponse(ctx, "scope", key); err != nil && !errors.Is(err, engine.ErrNotFound) {
				t.Error(err)
			}
			r := engine.IdempotentResponse{Scope: "scope", Key: key, RequestSHA256: "sha", Status: 200,
				ContentType: "application/json", Body: []byte(`{}`)}
			if err := e.RememberResponse(ctx, r); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range 16 {
		if _, err := e.IdempotentResponse(ctx, "scope", fmt.Sprintf("k%d", i)); err != nil {
			t.Errorf("k%d: %v", i, err)
		}
	}
}
