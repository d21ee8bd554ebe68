package webhook

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/neocloud/neocloud/internal/egress"
	"github.com/neocloud/neocloud/internal/event"
)

// loopbackReceiver is a receiver on 127.0.0.1 that counts its calls.
func loopbackReceiver(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestWebhookClientEgress: the webhook client refuses, at connect time, every
// address in a blocked range: a literal loopback IP, a name that resolves
// to loopback (localhost), IPv4-mapped IPv6; the operator's allowlist
// lets a receiver through. A refusal is not retryable.
func TestWebhookClientEgress(t *testing.T) {
	srv, calls := loopbackReceiver(t)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	ev := Event{ID: "ev_1", Type: "lease.created", Body: []byte(`{}`)}
	allow := egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	for _, tt := range []struct {
		name, url string
		policy    egress.Policy
		ok        bool
	}{
		{"loopback IP", "http://127.0.0.1:" + port + "/hook", egress.Policy{}, false},
		{"localhost", "http://localhost:" + port + "/hook", egress.Policy{}, false},
		{"IPv4-mapped IPv6", "http://[::ffff:127.0.0.1]:" + port + "/hook", egress.Policy{}, false},
		{"allowed", "http://127.0.0.1:" + port + "/hook", allow, true},
		{"allowed, mapped", "http://[::ffff:127.0.0.1]:" + port + "/hook", allow, true},
		{"the server's own API", "http://127.0.0.1:" + port + "/hook",
			egress.Policy{Allow: allow.Allow, Self: []netip.AddrPort{netip.MustParseAddrPort(srv.Listener.Addr().String())}}, false},
	} {
		before := calls.Load()
		r := Attempt(t.Context(), NewClient(tt.policy), Endpoint{URL: tt.url, Secrets: [][]byte{[]byte("s")}}, ev, t0)
		if tt.ok {
			if !r.OK() || calls.Load() != before+1 {
				t.Errorf("%s: %+v, want delivered", tt.name, r)
			}
			continue
		}
		if r.OK() || !Blocked(r.Err) || r.Retryable() || calls.Load() != before || !strings.Contains(r.Err.Error(), "is blocked") {
			t.Errorf("%s: %+v (blocked %v, retryable %v), want a blocked, final failure and no call", tt.name, r, Blocked(r.Err), r.Retryable())
		}
	}
}

// TestWebhookClientNoRedirectNoProxy: a 3xx is not followed (the Location could
// point inside), and no proxy from the environment is used.
func TestWebhookClientNoRedirectNoProxy(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	var hits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer target.Close()
	srv := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer srv.Close()
	allow := egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	r := Attempt(t.Context(), NewClient(allow), Endpoint{URL: srv.URL}, Event{ID: "ev_1", Body: []byte(`{}`)}, t0)
	if r.Status != http.StatusTemporaryRedirect || r.Retryable() || hits.Load() != 0 {
		t.Errorf("redirect: %+v, target hit %d times; want the 307 as a final failure", r, hits.Load())
	}
}

// TestWebhookDispatchBlocked: with the default policy, an endpoint on loopback
// gets no call; each event is one failed attempt, recorded with the
// reason, and given up at once (no retries); so is a plain http URL when
// http is not allowed.
func TestWebhookDispatchBlocked(t *testing.T) {
	srv, calls := loopbackReceiver(t)
	for name, policy := range map[string]egress.Policy{"loopback": {AllowHTTP: true}, "http": {Allow: loopbackOK.Allow}} {
		t.Run(name, func(t *testing.T) {
			src := newFakeSource(event.Webhook{ID: "wh_a", URL: srv.URL + "/hook", Secret: "s"})
			src.add(ev(event.NodeState, "", 1), ev(event.NodeState, "", 2))
			startWith(t, src, DefaultBackoff, policy)
			src.waitSaved(t, "wh_a", 2)
			if calls.Load() != 0 {
				t.Fatalf("%+v: the receiver got %d calls", policy, calls.Load())
			}
			src.mu.Lock()
			saves := slices.Clone(src.saves["wh_a"])
			src.mu.Unlock()
			want := "address 127.0.0.1 is blocked: loopback (127.0.0.0/8)"
			if !policy.AllowHTTP {
				want = "plain http webhooks are not allowed"
			}
			for _, s := range saves {
				if s.LastStatus != 0 || !strings.Contains(s.LastError, want) || !s.NextAttempt.IsZero() {
					t.Errorf("%+v: saved %+v; want the refusal %q, no retry", policy, s, want)
				}
			}
			if len(saves) != 2 || saves[0].LastSeq != 1 || saves[1].LastSeq != 2 {
				t.Errorf("%+v: saves %+v; want each event given up after one attempt", policy, saves)
			}
		})
	}
}
