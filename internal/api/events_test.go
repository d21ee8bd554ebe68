package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/api"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/store/dbtest"
	"github.com/neocloud/neocloud/internal/webhook"
)

// webhookID creates a webhook endpoint for tenantID (as the operator) and
// returns its ID.
func (f *fixture) webhookID(tenantID string) string {
	f.t.Helper()
	code, body := f.do(f.keys["operator-admin"], "POST", "/v1/webhooks", map[string]string{"tenant": tenantID, "url": "https://hooks.example/" + tenantID})
	if code != http.StatusCreated {
		f.t.Fatalf("create webhook for %s: %d %s", tenantID, code, body)
	}
	var w api.WebhookCreated
	if err := json.Unmarshal(body, &w); err != nil {
		f.t.Fatal(err)
	}
	return w.ID
}

// sseMessage is one server-sent event, or a comment.
type sseMessage struct {
	ID, Event, Data, Comment string
}

// sseStream reads a text/event-stream in the background.
type sseStream struct {
	resp *http.Response
	msgs chan sseMessage
	done chan struct{} // closed when the stream ends
}

// openStream GETs path from base with key and extra headers and reads
// its messages.
func openStream(t *testing.T, base, key, path string, header map[string]string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s = %d %q %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	s := &sseStream{resp: resp, msgs: make(chan sseMessage, 100), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(resp.Body)
		var m sseMessage
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if m != (sseMessage{}) {
					s.msgs <- m
				}
				m = sseMessage{}
			case strings.HasPrefix(line, ":"):
				m.Comment = strings.TrimSpace(line[1:])
			default:
				k, v, _ := strings.Cut(line, ": ")
				switch k {
				case "id":
					m.ID = v
				case "event":
					m.Event = v
				case "data":
					m.Data = v
				}
			}
		}
	}()
	return s
}

// next returns the next event, skipping comments. The wait is bounded in
// real time only so that a broken test fails rather than hangs.
func (s *sseStream) next(t *testing.T) sseMessage {
	t.Helper()
	for {
		select {
		case m := <-s.msgs:
			if m.Comment != "" && m.ID == "" {
				continue
			}
			return m
		case <-s.done:
			t.Fatal("the event stream ended")
		case <-time.After(10 * time.Second):
			t.Fatal("no event within 10 s")
		}
	}
}

// eventOf decodes a message's data.
func eventOf(t *testing.T, m sseMessage) api.Event {
	t.Helper()
	var e api.Event
	if err := json.Unmarshal([]byte(m.Data), &e); err != nil {
		t.Fatalf("data %q: %v", m.Data, err)
	}
	if m.ID != strconv.FormatInt(e.Seq, 10) || m.Event != e.Type {
		t.Errorf("message id %q event %q, data seq %d type %s: want them equal", m.ID, m.Event, e.Seq, e.Type)
	}
	return e
}

func (f *fixture) setNodeState(node, state string) {
	f.t.Helper()
	if code, body := f.do(f.keys["operator-admin"], "POST", "/v1/nodes/"+node+"/state", map[string]string{"state": state}); code != http.StatusOK {
		f.t.Fatalf("node %s %s: %d %s", node, state, code, body)
	}
}

// TestEventStreamTenantScope: a tenant's stream carries its own events
// only, from the backlog and as they commit: never another tenant's, never
// the operators'. An operator's stream carries every event.
func TestEventStreamTenantScope(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		ts := httptest.NewServer(f.srv)
		t.Cleanup(ts.Close)
		lb := f.leaseID("tenant-b")
		la := f.leaseID("tenant-a")
		f.setNodeState("lab-1-h200-l1-n01", "maintenance") // holds no lease

		a := openStream(t, ts.URL, f.keys["tenant-viewer@tenant-a"], "/v1/events", nil)
		ops := openStream(t, ts.URL, f.keys["operator-viewer"], "/v1/events", nil)
		if e := eventOf(t, a.next(t)); e.Type != "lease.created" || e.Lease != la || e.Tenant != "tenant-a" {
			t.Fatalf("tenant-a's first event = %+v, want its lease %s created", e, la)
		}
		// Live: another tenant's lease and an operator event commit
		// before tenant-a's next one; tenant-a's stream skips them.
		lb2 := f.leaseID("tenant-b")
		f.setNodeState("lab-1-h200-l1-n01", "available")
		la2 := f.leaseID("tenant-a")
		if e := eventOf(t, a.next(t)); e.Type != "lease.created" || e.Lease != la2 || e.Tenant != "tenant-a" {
			t.Fatalf("tenant-a's next event = %+v, want its lease %s created", e, la2)
		}

		var got []string
		for range 6 {
			e := eventOf(t, ops.next(t))
			got = append(got, e.Type+" "+e.Tenant+" "+e.Lease)
		}
		want := []string{"lease.created tenant-b " + lb, "lease.created tenant-a " + la, "node.state  ",
			"lease.created tenant-b " + lb2, "node.state  ", "lease.created tenant-a " + la2}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("the operator's stream (-want +got):\n%s", diff)
		}

		// The JSON page says the same, for each caller.
		for key, want := range map[string]int{"tenant-viewer@tenant-a": 2, "tenant-admin@tenant-b": 2, "operator-admin": 6} {
			code, body := f.do(f.keys[key], "GET", "/v1/events?follow=false", nil)
			var evs []api.Event
			if code != http.StatusOK || json.Unmarshal(body, &evs) != nil || len(evs) != want {
				t.Errorf("%s: GET /v1/events?follow=false = %d %s; want %d events", key, code, body, want)
			}
			if _, own, isTenant := strings.Cut(key, "@"); isTenant {
				for _, e := range evs {
					if e.Tenant != own {
						t.Errorf("%s got %+v", key, e)
					}
				}
			}
		}
	})
}

// TestEventStreamResume: Last-Event-ID (and after) resume after that seq;
// the JSON page pages with after and limit; each event's data is the body
// its webhook call carries.
func TestEventStreamResume(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		ts := httptest.NewServer(f.srv)
		t.Cleanup(ts.Close)
		var leases []string
		for range 4 {
			leases = append(leases, f.leaseID("tenant-a"))
		}
		stored, err := st.Events(t.Context(), engine.EventFilter{})
		if err != nil || len(stored) != 4 {
			t.Fatalf("stored events = %d, %v", len(stored), err)
		}
		key := f.keys["tenant-admin@tenant-a"]

		s := openStream(t, ts.URL, key, "/v1/events?after=0", map[string]string{"Last-Event-ID": strconv.FormatInt(stored[1].Seq, 10)})
		m := s.next(t)
		if e := eventOf(t, m); e.Seq != stored[2].Seq || e.Lease != leases[2] {
			t.Errorf("resumed after %d at %+v, want seq %d", stored[1].Seq, e, stored[2].Seq)
		}
		if m.Data != string(webhook.Payload(stored[2])) {
			t.Errorf("stream data %s, webhook body %s: want the same", m.Data, webhook.Payload(stored[2]))
		}
		s = openStream(t, ts.URL, key, "/v1/events?after="+strconv.FormatInt(stored[2].Seq, 10), nil)
		if e := eventOf(t, s.next(t)); e.Seq != stored[3].Seq {
			t.Errorf("after %d: first event %d, want %d", stored[2].Seq, e.Seq, stored[3].Seq)
		}

		code, body := f.do(key, "GET", "/v1/events?follow=false&limit=2&after="+strconv.FormatInt(stored[0].Seq, 10), nil)
		var page []api.Event
		if code != http.StatusOK || json.Unmarshal(body, &page) != nil || len(page) != 2 || page[0].Seq != stored[1].Seq || page[1].Lease != leases[2] {
			t.Errorf("page = %d %s; want events 2 and 3", code, body)
		}
		code, body, _ = f.doFull(key, "GET", "/v1/events?follow=false", nil, map[string]string{"Last-Event-ID": strconv.FormatInt(stored[2].Seq, 10)})
		if code != http.StatusOK || json.Unmarshal(body, &page) != nil || len(page) != 1 || page[0].Seq != stored[3].Seq {
			t.Errorf("page after Last-Event-ID = %d %s; want event 4", code, body)
		}
		if code, body, _ := f.doFull(key, "GET", "/v1/events?follow=false", nil, map[string]string{"Last-Event-ID": "ev_1"}); code != http.StatusUnprocessableEntity ||
			!strings.Contains(string(body), "header.Last-Event-ID") {
			t.Errorf("bad Last-Event-ID = %d %s, want 422 naming it", code, body)
		}
	})
}

// TestEventStreamHeartbeatAndShutdown: an idle stream sends heartbeat
// comments; shutting the server down ends open streams instead of waiting
// for them.
func TestEventStreamHeartbeatAndShutdown(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		srv := api.New(api.Config{Engine: f.eng, Heartbeat: time.Millisecond})
		hs := api.HTTPServer("127.0.0.1:0", srv)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- hs.Serve(ln) }()
		s := openStream(t, "http://"+ln.Addr().String(), f.keys["tenant-viewer@tenant-a"], "/v1/events", nil)
		for heartbeat := false; !heartbeat; {
			select {
			case m := <-s.msgs:
				heartbeat = m.Comment == "heartbeat"
			case <-time.After(10 * time.Second):
				t.Fatal("no heartbeat")
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hs.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown with an open stream: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve = %v", err)
		}
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			t.Fatal("the stream is still open after Shutdown")
		}
	})
}

// TestWebhookRoutes: create (the secret once), list (never the secret),
// delete; a bad URL is a 422 naming url; a replayed creation withholds
// the secret.
func TestWebhookRoutes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st engine.Store) {
		f := newFixture(t, st)
		key := f.keys["tenant-admin@tenant-a"]
		for url, rule := range map[string]string{"ftp://hooks.example/x": "", "hooks.example/x": "", "https://u:p@hooks.example/x": "",
			// The egress guard: https only, no literal IP in the server's
			// own networks (by default: serve's flags may allow some).
			"http://hooks.example/x":                   "must use https",
			"https://127.0.0.1:8080/v1/keys":           "loopback (127.0.0.0/8)",
			"https://169.254.169.254/latest/meta-data": "cloud metadata service",
			"https://192.168.1.10/hook":                "private (RFC 1918)",
			"https://[fe80::1]/hook":                   "link-local",
			"https://[::ffff:10.0.0.1]/hook":           "private (RFC 1918)",
		} {
			code, body := f.do(key, "POST", "/v1/webhooks", map[string]string{"url": url})
			if code != http.StatusUnprocessableEntity || !strings.Contains(string(body), `"location":"body.url"`) || !strings.Contains(string(body), rule) {
				t.Errorf("url %q: %d %s; want 422 naming body.url and %q", url, code, body, rule)
			}
		}
		if code, body := f.do(key, "POST", "/v1/webhooks", map[string]string{}); code != http.StatusUnprocessableEntity || !strings.Contains(string(body), "property url") {
			t.Errorf("no url: %d %s; want 422 naming url", code, body)
		}

		hdr := map[string]string{api.IdempotencyHeader: "hook-1"}
		code, body := f.doHeader(key, "POST", "/v1/webhooks", map[string]string{"url": "https://hooks.example/a"}, hdr)
		var w api.WebhookCreated
		if code != http.StatusCreated || json.Unmarshal(body, &w) != nil || len(w.Secret) != 64 || w.Tenant != "tenant-a" || w.URL != "https://hooks.example/a" {
			t.Fatalf("create = %d %s", code, body)
		}
		_, body = f.doHeader(key, "POST", "/v1/webhooks", map[string]string{"url": "https://hooks.example/a"}, hdr)
		var replay api.WebhookCreated
		if err := json.Unmarshal(body, &replay); err != nil || replay.ID != w.ID || strings.Contains(string(body), w.Secret) {
			t.Errorf("replay = %s; want the same endpoint, its secret withheld", body)
		}

		code, body = f.do(key, "GET", "/v1/webhooks", nil)
		var list []api.Webhook
		if code != http.StatusOK || json.Unmarshal(body, &list) != nil || len(list) != 1 || list[0].ID != w.ID || strings.Contains(string(body), w.Secret) {
			t.Errorf("list = %d %s", code, body)
		}
		if code, body := f.do(f.keys["tenant-admin@tenant-b"], "DELETE", "/v1/webhooks/"+w.ID, nil); code != http.StatusNotFound {
			t.Errorf("tenant-b deleting tenant-a's webhook = %d %s, want 404", code, body)
		}
		code, body = f.do(key, "DELETE", "/v1/webhooks/"+w.ID, nil)
		var del api.Webhook
		if code != http.StatusOK || json.Unmarshal(body, &del) != nil || del.Disabled == nil {
			t.Errorf("delete = %d %s", code, body)
		}
		if code, body := f.do(key, "GET", "/v1/webhooks", nil); code != http.StatusOK || string(body) != "[]\n" {
			t.Errorf("list after delete = %d %q", code, body)
		}
		if strings.Contains(dbtest.Dump(t, st), w.Secret) == false {
			t.Error("the endpoint's secret is not stored: calls could not be signed")
		}
	})
}
