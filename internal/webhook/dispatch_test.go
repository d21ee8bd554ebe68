package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/clock"
	"github.com/neocloud/neocloud/internal/egress"
	"github.com/neocloud/neocloud/internal/event"
)

// fakeSource is an in-memory outbox and endpoint table. Every saved
// delivery state is kept, in order, and signalled on saved.
type fakeSource struct {
	mu      sync.Mutex
	eps     []event.Webhook
	events  []event.Event
	saves   map[string][]event.Delivery
	changed chan struct{}
	saved   chan struct{}
}

func newFakeSource(eps ...event.Webhook) *fakeSource {
	return &fakeSource{eps: eps, saves: map[string][]event.Delivery{}, changed: make(chan struct{}), saved: make(chan struct{}, 1)}
}

func (f *fakeSource) WebhookEndpoints(context.Context) ([]event.Webhook, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.eps), nil
}

func (f *fakeSource) WebhookEvents(_ context.Context, tenantID string, after int64, limit int) ([]event.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []event.Event{}
	for _, ev := range f.events {
		if ev.Seq > after && (tenantID == "" || ev.TenantID == tenantID) && len(out) < limit {
			out = append(out, ev)
		}
	}
	return out, nil
}

func (f *fakeSource) SaveWebhookDelivery(_ context.Context, id string, d event.Delivery) error {
	f.mu.Lock()
	for i := range f.eps {
		if f.eps[i].ID == id {
			f.eps[i].Delivery = d
		}
	}
	f.saves[id] = append(f.saves[id], d)
	f.mu.Unlock()
	select {
	case f.saved <- struct{}{}:
	default:
	}
	return nil
}

func (f *fakeSource) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// add appends events (numbered on) and wakes the dispatcher.
func (f *fakeSource) add(evs ...event.Event) {
	f.mu.Lock()
	for _, ev := range evs {
		ev.Seq = int64(len(f.events) + 1)
		f.events = append(f.events, ev)
	}
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func (f *fakeSource) lastSaved(id string) event.Delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.saves[id]
	if len(s) == 0 {
		return event.Delivery{}
	}
	return s[len(s)-1]
}

// waitSaved waits (in real time, as a bound on a broken test only) until
// endpoint id's saved cursor reaches seq.
func (f *fakeSource) waitSaved(t *testing.T, id string, seq int64) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for f.lastSaved(id).LastSeq < seq {
		select {
		case <-f.saved:
		case <-deadline:
			t.Fatalf("endpoint %s: delivered up to %d, want %d", id, f.lastSaved(id).LastSeq, seq)
		}
	}
}

// call is one request a receiver got.
type call struct {
	ID, Type, Sig string
	Body          []byte
}

// receiver is an endpoint that answers each call with answer(n, id) (n
// counts calls from 1) and records them.
type receiver struct {
	mu    sync.Mutex
	calls []call
	srv   *httptest.Server
}

func newReceiver(t *testing.T, answer func(n int, id string) int) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.calls = append(r.calls, call{ID: req.Header.Get(HeaderEventID), Type: req.Header.Get(HeaderEventType),
			Sig: req.Header.Get(HeaderSignature), Body: body})
		n := len(r.calls)
		r.mu.Unlock()
		w.WriteHeader(answer(n, req.Header.Get(HeaderEventID)))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// ids returns the event IDs of the calls.
func ids(calls []call) []string {
	out := []string{}
	for _, c := range calls {
		out = append(out, c.ID)
	}
	return out
}

// loopbackOK lets the dispatcher reach the test receivers on 127.0.0.1
// over plain http, which the default policy refuses.
var loopbackOK = egress.Policy{AllowHTTP: true, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}

// start runs a dispatcher over src on a fake clock whose waits return at
// once, moving the clock by what was asked: retries never sleep. The
// dispatcher stops when the test ends.
func start(t *testing.T, src *fakeSource, b Backoff) *clock.Fake {
	t.Helper()
	return startWith(t, src, b, loopbackOK)
}

// startWith is start with an egress policy.
func startWith(t *testing.T, src *fakeSource, b Backoff, policy egress.Policy) *clock.Fake {
	t.Helper()
	clk := clock.NewFake(t0)
	d := NewDispatcher(Config{Source: src, Changed: src.Changed, Clock: clk, Backoff: b, Egress: policy,
		After: func(d time.Duration) <-chan time.Time {
			clk.Advance(d)
			ch := make(chan time.Time, 1)
			ch <- clk.Now()
			return ch
		}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return clk
}

func ev(typ event.Type, tenantID string, i int) event.Event {
	return event.New(t0.Add(time.Duration(i)*time.Second), typ, tenantID, fmt.Sprintf("ls_%d", i), map[string]int{"i": i})
}

// TestDispatchRetriesInOrder: a receiver that fails twice and then takes
// every call gets each event in order, the first three times under the
// same ID, every call signed with the endpoint's secret; the cursor
// records the failures, then the deliveries.
func TestDispatchRetriesInOrder(t *testing.T) {
	rcv := newReceiver(t, func(n int, _ string) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	secret := "5ecret"
	src := newFakeSource(event.Webhook{ID: "wh_a", TenantID: "acme", URL: rcv.srv.URL + "/hook?token=t0ps3cret", Secret: secret})
	src.add(ev(event.LeaseCreated, "acme", 1), ev(event.LeaseCreated, "acme", 2), ev(event.LeaseCancelled, "acme", 3))
	clk := start(t, src, Backoff{Initial: time.Second, Max: 10 * time.Second, Factor: 2, Attempts: 5})
	src.waitSaved(t, "wh_a", 3)

	calls := rcv.got()
	if diff := cmp.Diff([]string{"ev_0000000000000001", "ev_0000000000000001", "ev_0000000000000001", "ev_0000000000000002", "ev_0000000000000003"},
		ids(calls)); diff != "" {
		t.Fatalf("calls (-want +got):\n%s", diff)
	}
	for i, c := range calls {
		if err := Verify(c.Sig, c.Body, []byte(secret), clk.Now(), time.Hour); err != nil {
			t.Errorf("call %d: signature: %v", i, err)
		}
		var p struct {
			ID   string
			Seq  int64
			Type string
			Data struct{ I int }
		}
		if err := json.Unmarshal(c.Body, &p); err != nil || p.ID != c.ID || p.Type != c.Type || p.Data.I != int(p.Seq) {
			t.Errorf("call %d: body %s (%v) does not match its headers %s %s", i, c.Body, err, c.ID, c.Type)
		}
	}
	if calls[0].Sig == calls[1].Sig && calls[0].Sig == calls[2].Sig {
		// Each attempt is signed when made: the backoff moved the clock.
		t.Errorf("the retries carry the first attempt's signature: %s", calls[0].Sig)
	}

	saves := src.saves["wh_a"]
	if len(saves) < 3 {
		t.Fatalf("saved delivery states %+v, want the two failures and the deliveries", saves)
	}
	for i, s := range saves[:2] {
		if s.LastSeq != 0 || s.Attempts != i+1 || s.LastStatus != 503 || s.NextAttempt.IsZero() || s.LastError == "" {
			t.Errorf("state after failure %d = %+v; want attempt %d recorded with a retry time", i+1, s, i+1)
		}
		if strings.Contains(s.LastError, "t0ps3cret") {
			t.Errorf("the recorded error holds the URL's query: %s", s.LastError)
		}
	}
	if got := saves[len(saves)-1]; !cmp.Equal(got, event.Delivery{LastSeq: 3, LastStatus: 204}) {
		t.Errorf("final state = %+v", got)
	}
}

// TestDispatchGivesUp: an event refused through every attempt, or with an
// answer that says it will never be taken, is given up and recorded, and
// the next one goes.
func TestDispatchGivesUp(t *testing.T) {
	rcv := newReceiver(t, func(_ int, id string) int {
		switch id {
		case "ev_0000000000000001":
			return http.StatusInternalServerError
		case "ev_0000000000000002":
			return http.StatusBadRequest
		}
		return http.StatusOK
	})
	src := newFakeSource(event.Webhook{ID: "wh_a", URL: rcv.srv.URL, Secret: "s"})
	src.add(ev(event.NodeState, "", 1), ev(event.NodeState, "", 2), ev(event.NodeState, "", 3))
	start(t, src, Backoff{Initial: time.Second, Max: time.Minute, Factor: 2, Attempts: 3})
	src.waitSaved(t, "wh_a", 3)
	if diff := cmp.Diff([]string{"ev_0000000000000001", "ev_0000000000000001", "ev_0000000000000001", "ev_0000000000000002", "ev_0000000000000003"},
		ids(rcv.got())); diff != "" {
		t.Fatalf("calls (-want +got):\n%s", diff)
	}
	var gaveUp []event.Delivery
	for _, s := range src.saves["wh_a"] {
		if s.Attempts == 0 && s.LastError != "" {
			gaveUp = append(gaveUp, s)
		}
	}
	if len(gaveUp) != 2 || gaveUp[0].LastSeq != 1 || gaveUp[0].LastStatus != 500 || gaveUp[1].LastSeq != 2 || gaveUp[1].LastStatus != 400 {
		t.Errorf("given-up states = %+v; want event 1 after 3 tries (500), event 2 at once (400)", gaveUp)
	}
}

// TestDispatchTenantScope: a tenant's endpoint gets that tenant's events
// only; an operator endpoint gets every event; events committed later are
// sent when the source says so.
func TestDispatchTenantScope(t *testing.T) {
	answer := func(int, string) int { return http.StatusOK }
	acme, beta, ops := newReceiver(t, answer), newReceiver(t, answer), newReceiver(t, answer)
	src := newFakeSource(
		event.Webhook{ID: "wh_acme", TenantID: "acme", URL: acme.srv.URL, Secret: "a"},
		event.Webhook{ID: "wh_beta", TenantID: "beta", URL: beta.srv.URL, Secret: "b"},
		event.Webhook{ID: "wh_ops", URL: ops.srv.URL, Secret: "o"},
	)
	src.add(ev(event.LeaseCreated, "acme", 1), ev(event.LeaseCreated, "beta", 2), ev(event.NodeState, "", 3))
	start(t, src, DefaultBackoff)
	src.waitSaved(t, "wh_ops", 3)
	src.add(ev(event.Shortfall, "acme", 4))
	src.waitSaved(t, "wh_acme", 4)
	src.waitSaved(t, "wh_ops", 4)
	src.waitSaved(t, "wh_beta", 2)

	if diff := cmp.Diff([]string{"ev_0000000000000001", "ev_0000000000000004"}, ids(acme.got())); diff != "" {
		t.Errorf("acme's calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ev_0000000000000002"}, ids(beta.got())); diff != "" {
		t.Errorf("beta's calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ev_0000000000000001", "ev_0000000000000002", "ev_0000000000000003", "ev_0000000000000004"}, ids(ops.got())); diff != "" {
		t.Errorf("the operator endpoint's calls (-want +got):\n%s", diff)
	}
	for _, c := range append(acme.got(), beta.got()...) {
		if strings.Contains(string(c.Body), `"tenant":"`) && !strings.Contains(string(c.Body), `"tenant":"acme"`) && !strings.Contains(string(c.Body), `"tenant":"beta"`) {
			t.Errorf("a tenant endpoint got %s", c.Body)
		}
	}
}

func TestPayload(t *testing.T) {
	e := event.New(t0, event.SpotReclaim, "acme", "ls_1", map[string]string{"release_at": "2026-11-27T12:02:00Z"})
	e.Seq = 42
	want := `{"id":"ev_000000000000002a","seq":42,"at":"2026-11-27T12:00:00Z","type":"spot.reclaim","tenant":"acme","lease":"ls_1","data":{"release_at":"2026-11-27T12:02:00Z"}}`
	if got := string(Payload(e)); got != want {
		t.Errorf("Payload =\n%s\nwant\n%s", got, want)
	}
	op := event.Event{Seq: 1, At: t0, Type: event.NodeState}
	if got := string(Payload(op)); got != `{"id":"ev_0000000000000001","seq":1,"at":"2026-11-27T12:00:00Z","type":"node.state","data":null}` {
		t.Errorf("Payload of an operator event without data = %s", got)
	}
}
