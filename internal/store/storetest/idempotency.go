package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
)

// testIdempotency: remembered responses are found by scope and key while
// not older than asked; a later record of the same scope and key (in
// the same call or a later one) replaces the earlier; records created
// before the cutoff go.
func testIdempotency(t *testing.T, s engine.Store) {
	ctx := context.Background()
	rec := func(scope, key, body string, created time.Time) engine.IdempotentResponse {
		return engine.IdempotentResponse{Scope: scope, Key: key, RequestSHA256: "sha-" + body, Status: 201,
			ContentType: "application/json", Body: []byte(body), Created: created}
	}
	remember := func(cutoff time.Time, rs ...engine.IdempotentResponse) {
		t.Helper()
		update(t, s, func(tx engine.Tx) error { return tx.RememberResponses(ctx, rs, cutoff) })
	}
	find := func(scope, key string, notBefore time.Time) string {
		t.Helper()
		r, err := s.Idempotent(ctx, scope, key, notBefore)
		if errors.Is(err, engine.ErrNotFound) {
			return "-"
		}
		if err != nil {
			t.Fatalf("idempotent %s/%s: %v", scope, key, err)
		}
		if r.Scope != scope || r.Key != key || r.RequestSHA256 != "sha-"+string(r.Body) || r.Status != 201 ||
			r.ContentType != "application/json" || r.Created.IsZero() {
			t.Fatalf("idempotent %s/%s = %+v", scope, key, r)
		}
		return string(r.Body)
	}

	if got := find("k1", "a", time.Time{}); got != "-" {
		t.Errorf("empty store answers %q", got)
	}
	remember(T0.Add(-time.Hour), rec("k1", "a", "1", T0), rec("k1", "b", "2", T0), rec("k1", "a", "3", T0.Add(time.Second)))
	for _, c := range []struct {
		scope, key string
		notBefore  time.Time
		want       string
	}{
		{"k1", "a", T0, "3"},
		{"k1", "b", T0, "2"},
		{"k2", "a", time.Time{}, "-"},
		{"k1", "b", T0.Add(time.Second), "-"},
	} {
		if got := find(c.scope, c.key, c.notBefore); got != c.want {
			t.Errorf("%s/%s not before %s = %q, want %q", c.scope, c.key, c.notBefore.Format(time.RFC3339), got, c.want)
		}
	}

	// Many records, in several statements; the earlier ones expire.
	var many []engine.IdempotentResponse
	for i := range 700 {
		many = append(many, rec("k2", fmt.Sprintf("key-%d", i), fmt.Sprint(i), T0.Add(25*time.Hour)))
	}
	remember(T0.Add(time.Hour), many...)
	if got := find("k1", "a", time.Time{}); got != "-" {
		t.Errorf("record older than the cutoff: still %q", got)
	}
	for _, i := range []int{0, 499, 500, 699} {
		if got, want := find("k2", fmt.Sprintf("key-%d", i), T0), fmt.Sprint(i); got != want {
			t.Errorf("k2/key-%d = %q, want %q", i, got, want)
		}
	}
	remember(T0, rec("k2", "key-7", "again", T0.Add(26*time.Hour)))
	if got := find("k2", "key-7", T0); got != "again" {
		t.Errorf("replaced record = %q", got)
	}

	// A store that lists its records lists each once, at or after the
	// time asked, with its creation time.
	lister, ok := s.(engine.IdempotentKeyLister)
	if !ok {
		t.Fatal("the store does not list its idempotency records (engine.IdempotentKeyLister)")
	}
	list := func(notBefore time.Time) map[string]time.Time {
		t.Helper()
		got := map[string]time.Time{}
		err := lister.IdempotentKeys(ctx, notBefore, func(scope, key string, created time.Time) error {
			if _, dup := got[scope+"/"+key]; dup {
				t.Errorf("%s/%s listed twice", scope, key)
			}
			got[scope+"/"+key] = created
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	all := list(T0)
	if len(all) != 700 || !all["k2/key-7"].Equal(T0.Add(26*time.Hour)) || !all["k2/key-0"].Equal(T0.Add(25*time.Hour)) {
		t.Errorf("listed %d records (key-0 at %s, key-7 at %s); want 700, at 25 h and 26 h", len(all), all["k2/key-0"], all["k2/key-7"])
	}
	if later := list(T0.Add(25*time.Hour + time.Second)); len(later) != 1 {
		t.Errorf("listed %d records created after 25 h; want 1 (key-7)", len(later))
	}
	stop := errors.New("stop")
	if err := lister.IdempotentKeys(ctx, T0, func(string, string, time.Time) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("listing ended by fn: %v, want its error", err)
	}
}
