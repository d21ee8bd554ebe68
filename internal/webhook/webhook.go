// Package webhook signs, sends and verifies Neocloud's webhook calls.
//
// Each call is a POST of a JSON event (Payload) with three headers:
//
//	Neocloud-Event-Id:   ev_000000000000002a   (the same on every retry: receivers dedupe on it)
//	Neocloud-Event-Type: spot.reclaim
//	Neocloud-Signature:  t=1767225600,v1=5257a869...
//
// v1 is the hex HMAC-SHA256, under the endpoint's secret, of the decimal
// timestamp t, a dot, and the raw body. A receiver recomputes it (Verify)
// and refuses a call whose t is too far from its clock, so a captured call
// cannot be replayed later. While a secret is being rotated the header
// carries one v1 per secret.
//
// Sending is one attempt at a time (Attempt): the caller keeps the queue
// durable (the engine's outbox), and asks Backoff when to try again;
// Retryable says whether an outcome is worth another try. The Dispatcher
// does that for every endpoint, reading the outbox through a Source (the
// engine) so that this package knows nothing of the store.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names.
const (
	HeaderSignature = "Neocloud-Signature"
	HeaderEventID   = "Neocloud-Event-Id"
	HeaderEventType = "Neocloud-Event-Type"
)

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock.
const DefaultTolerance = 5 * time.Minute

// Verification errors.
var (
	ErrNoSignature  = errors.New("webhook: no usable signature header")
	ErrBadSignature = errors.New("webhook: signature does not match")
	ErrStale        = errors.New("webhook: signature timestamp outside the tolerance")
)

// Sign returns the signature header value for body sent at t under each
// secret (one v1 per secret, in order).
func Sign(t time.Time, body []byte, secrets ...[]byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=" + ts)
	for _, s := range secrets {
		b.WriteString(",v1=" + hex.EncodeToString(mac(s, ts, body)))
	}
	return b.String()
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks header (a Neocloud-Signature value) against body and
// secret at now: nil when one v1 matches and t is within tolerance of now
// (DefaultTolerance when tolerance is 0). It returns ErrNoSignature,
// ErrStale or ErrBadSignature.
func Verify(header string, body, secret []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if s, err := hex.DecodeString(v); err == nil && len(s) == sha256.Size {
				sigs = append(sigs, s)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrNoSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed at %s, now %s", ErrStale, time.Unix(sec, 0).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrBadSignature
}

// Event is one call's content.
type Event struct {
	ID   string // stable across retries
	Type string
	Body []byte // JSON
}

// Endpoint is where a tenant receives its events.
type Endpoint struct {
	URL     string
	Secrets [][]byte // the current secret first; more while rotating
}

// Doer sends an HTTP request; *http.Client is one.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Result is the outcome of one attempt.
type Result struct {
	Status int   // 0 when no response came back
	Err    error // transport error, or the status as an error when not 2xx
}

// OK reports whether the receiver accepted the event (2xx).
func (r Result) OK() bool { return r.Err == nil && r.Status >= 200 && r.Status < 300 }

// Retryable reports whether another attempt may succeed: no response
// (network error, timeout), 408, 425, 429 and 5xx. Other 4xx say the
// receiver will not take this call, now or later; so does a connection
// the egress policy refused (Blocked).
func (r Result) Retryable() bool {
	if r.OK() || Blocked(r.Err) {
		return false
	}
	switch {
	case r.Status == 0:
		return true
	case r.Status == http.StatusRequestTimeout, r.Status == http.StatusTooEarly, r.Status == http.StatusTooManyRequests:
		return true
	}
	return r.Status >= 500
}

// Attempt makes one delivery attempt of ev to ep, signed at now, and
// drains and closes the response. A non-2xx status becomes Result.Err.
func Attempt(ctx context.Context, c Doer, ep Endpoint, ev Event, now time.Time) Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(ev.Body))
	if err != nil {
		return Result{Err: fmt.Errorf("webhook %s: %w", ev.ID, err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "neocloud-webhook/1")
	req.Header.Set(HeaderEventID, ev.ID)
	req.Header.Set(HeaderEventType, ev.Type)
	req.Header.Set(HeaderSignature, Sign(now, ev.Body, ep.Secrets...))
	resp, err := c.Do(req)
	if err != nil {
		return Result{Err: fmt.Errorf("webhook %s: %w", ev.ID, err)}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return Result{Status: resp.StatusCode, Err: fmt.Errorf("webhook %s: %s answered %s", ev.ID, ep.URL, resp.Status)}
	}
	return Result{Status: resp.StatusCode}
}

// Backoff spaces retries: exponential from Initial by Factor up to Max,
// with "equal jitter" (half fixed, half spread) drawn from a hash of the
// event ID and attempt, so that a restarted server keeps the same
// schedule and receivers are not hit in lockstep. After Attempts tries the
// event is given up (and kept for inspection by the caller).
type Backoff struct {
	Initial  time.Duration
	Max      time.Duration
	Factor   float64
	Attempts int
}

// DefaultBackoff tries 13 times over about 2½ hours (1.7 to 3.4 with the
// jitter): waits of 5 s, 10 s, 20 s, … doubling up to 1 h.
var DefaultBackoff = Backoff{Initial: 5 * time.Second, Max: time.Hour, Factor: 2, Attempts: 13}

// Delay returns how long to wait after failed attempt n (1 for the first)
// of event id, and false when no attempt is left.
func (b Backoff) Delay(id string, n int) (time.Duration, bool) {
	if n >= b.Attempts {
		return 0, false
	}
	d := float64(b.Initial)
	for range n - 1 {
		d *= b.Factor
		if d >= float64(b.Max) {
			d = float64(b.Max)
			break
		}
	}
	d = min(d, float64(b.Max))
	h := sha256.Sum256([]byte(id + "/" + strconv.Itoa(n)))
	frac := float64(binary.BigEndian.Uint64(h[:8])>>11) / (1 << 53) // [0, 1)
	return time.Duration(d/2 + frac*d/2), true
}
