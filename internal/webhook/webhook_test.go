package webhook

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func TestSignVerify(t *testing.T) {
	body := []byte(`{"lease_id":"l_1","release_at":"2026-11-27T12:02:00Z"}`)
	secret := []byte("whsec_current")
	h := Sign(t0, body, secret)
	tests := []struct {
		name   string
		header string
		body   []byte
		secret []byte
		now    time.Time
		want   error
	}{
		{"valid", h, body, secret, t0, nil},
		{"valid within tolerance", h, body, secret, t0.Add(4 * time.Minute), nil},
		{"clock behind", h, body, secret, t0.Add(-4 * time.Minute), nil},
		{"stale", h, body, secret, t0.Add(6 * time.Minute), ErrStale},
		{"future", h, body, secret, t0.Add(-6 * time.Minute), ErrStale},
		{"body changed", h, []byte(`{"lease_id":"l_2"}`), secret, t0, ErrBadSignature},
		{"wrong secret", h, body, []byte("whsec_other"), t0, ErrBadSignature},
		{"timestamp changed", strings.Replace(h, "t=", "t=1", 1), body, secret, time.Unix(0, 0), ErrStale},
		{"empty", "", body, secret, t0, ErrNoSignature},
		{"no v1", "t=1767225600", body, secret, t0, ErrNoSignature},
		{"garbage v1", "t=1767225600,v1=zz", body, secret, t0, ErrNoSignature},
		{"rotation: old secret", Sign(t0, body, []byte("whsec_next"), secret), body, secret, t0, nil},
		{"rotation: new secret", Sign(t0, body, []byte("whsec_next"), secret), body, []byte("whsec_next"), t0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Verify(tt.header, tt.body, tt.secret, tt.now, 0); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestSignatureProperty: a signature verifies for its body and secret, and
// for no other body.
func TestSignatureProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		secret := rapid.SliceOfN(rapid.Byte(), 1, 64).Draw(t, "secret")
		body := rapid.SliceOf(rapid.Byte()).Draw(t, "body")
		other := rapid.SliceOf(rapid.Byte()).Draw(t, "other")
		at := time.Unix(rapid.Int64Range(0, 4e9).Draw(t, "t"), 0)
		h := Sign(at, body, secret)
		if err := Verify(h, body, secret, at, 0); err != nil {
			t.Fatalf("own signature: %v", err)
		}
		if string(other) != string(body) {
			if err := Verify(h, other, secret, at, 0); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("another body verified: %v", err)
			}
		}
	})
}

func TestAttempt(t *testing.T) {
	secret := []byte("whsec_1")
	var got *http.Request
	var gotBody []byte
	status := http.StatusNoContent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		gotBody, _ = io.ReadAll(r.Body)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	ev := Event{ID: "evt_1", Type: "spot.reclaim_notice", Body: []byte(`{"x":1}`)}
	ep := Endpoint{URL: srv.URL, Secrets: [][]byte{secret}}
	r := Attempt(t.Context(), srv.Client(), ep, ev, t0)
	if !r.OK() || r.Retryable() {
		t.Fatalf("Attempt = %+v, want OK", r)
	}
	if got.Header.Get(HeaderEventID) != "evt_1" || got.Header.Get(HeaderEventType) != "spot.reclaim_notice" || got.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers = %v", got.Header)
	}
	if err := Verify(got.Header.Get(HeaderSignature), gotBody, secret, t0, 0); err != nil {
		t.Errorf("the receiver cannot verify the call: %v", err)
	}
	for _, tt := range []struct {
		status    int
		retryable bool
	}{{500, true}, {503, true}, {429, true}, {408, true}, {400, false}, {410, false}, {301, false}} {
		status = tt.status
		r := Attempt(t.Context(), srv.Client(), ep, ev, t0)
		if r.OK() || r.Status != tt.status || r.Retryable() != tt.retryable {
			t.Errorf("status %d: Result %+v, retryable %v; want %v", tt.status, r, r.Retryable(), tt.retryable)
		}
	}
	srv.Close()
	if r := Attempt(t.Context(), srv.Client(), ep, ev, t0); r.OK() || r.Status != 0 || !r.Retryable() {
		t.Errorf("closed server: Result %+v, want a retryable transport error", r)
	}
}

func TestBackoff(t *testing.T) {
	b := DefaultBackoff
	var total time.Duration
	prevMax := time.Duration(0)
	for n := 1; ; n++ {
		d, ok := b.Delay("evt_1", n)
		if !ok {
			if n != b.Attempts {
				t.Fatalf("gave up after attempt %d, want %d", n, b.Attempts)
			}
			break
		}
		full := min(b.Initial<<(n-1), b.Max)
		if d < full/2 || d >= full || d < prevMax/2 {
			t.Errorf("Delay(%d) = %v, want in [%v, %v)", n, d, full/2, full)
		}
		if d2, _ := b.Delay("evt_1", n); d2 != d {
			t.Errorf("Delay(%d) not deterministic: %v then %v", n, d, d2)
		}
		prevMax = full
		total += d
	}
	if total < time.Hour || total > 4*time.Hour {
		t.Errorf("total backoff %v, want about 2-3 hours", total)
	}
	a, _ := b.Delay("evt_1", 3)
	c, _ := b.Delay("evt_2", 3)
	if a == c {
		t.Errorf("two events share the jitter: %v", a)
	}
}
