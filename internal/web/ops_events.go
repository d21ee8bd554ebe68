package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/event"
	"github.com/neocloud/neocloud/internal/sse"
	"github.com/neocloud/neocloud/internal/tenant"
)

// The live events page: the most recent events the visitor may see
// (operators every one, a tenant its own), newest first, and new ones
// appended as they commit, over a server-sent event stream that the
// session cookie authenticates.

const (
	// recentEvents is how many events the page lists when it loads.
	recentEvents = 100
	// keepShown is how many events the page keeps as new ones arrive
	// (static/events.js).
	keepShown = 500
)

// eventView is one event as the page and the stream show it.
type eventView struct {
	Seq    int64  `json:"seq"`
	At     string `json:"at"`   // RFC 3339, for <time datetime>
	When   string `json:"when"` // as shown
	Type   string `json:"type"`
	Tenant string `json:"tenant"`
	Lease  string `json:"lease"`
	Node   string `json:"node"`
	Detail string `json:"detail"`
}

// detailKeys are the fields of an event's data shown in its detail, in
// this order; reason only to operators (a tenant's reclaim reason may
// speak of the owner's use).
var detailKeys = []string{"kind", "pool", "gpus", "start", "end", "state", "from", "to", "allocations", "allocations_ended",
	"replaced", "shortfalls", "count", "notice", "release_at", "reason"}

const maxDetail = 200

// maxListed is how many names of a list an event's detail shows.
const maxListed = 3

func viewEvent(e event.Event, operator bool) eventView {
	v := eventView{Seq: e.Seq, At: e.At.UTC().Format(time.RFC3339), When: e.At.UTC().Format("2006-01-02 15:04:05"),
		Type: string(e.Type), Tenant: e.TenantID, Lease: e.LeaseID}
	var data map[string]json.RawMessage
	if json.Unmarshal(e.Data, &data) != nil {
		return v
	}
	text := func(raw json.RawMessage) string {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if at, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return at.UTC().Format("2006-01-02 15:04") // UTC, as the event's time
			}
			return s
		}
		// A list of names (allocations, nodes): the first few and a
		// count, with room to wrap, rather than one long JSON token.
		var list []string
		if json.Unmarshal(raw, &list) == nil {
			if len(list) > maxListed {
				return strings.Join(list[:maxListed], ", ") + fmt.Sprintf(" +%d", len(list)-maxListed)
			}
			return strings.Join(list, ", ")
		}
		return string(raw)
	}
	if raw, ok := data["node"]; ok {
		v.Node = text(raw)
	} else if raw, ok := data["nodes"]; ok {
		var names []string
		if json.Unmarshal(raw, &names) == nil && len(names) > 0 {
			v.Node = names[0]
			if len(names) > 1 {
				v.Node += fmt.Sprintf(" +%d", len(names)-1)
			}
		}
	}
	var parts []string
	for _, k := range detailKeys {
		raw, ok := data[k]
		if !ok || (k == "reason" && !operator) {
			continue
		}
		parts = append(parts, k+": "+text(raw))
	}
	v.Detail = strings.Join(parts, " · ")
	if len(v.Detail) > maxDetail {
		v.Detail = strings.ToValidUTF8(v.Detail[:maxDetail], "") + "…"
	}
	return v
}

// events lists the visitor's recent events; static/events.js then
// follows /events/stream from the last event committed before the page
// was read.
func (s *Server) events(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Events", "events"
	if !p.Can(tenant.PermEventsRead) {
		s.fail(w, v, tenant.ErrForbidden)
		return
	}
	last, err := s.eng.LastEventSeq(r.Context())
	if err != nil {
		s.fail(w, v, err)
		return
	}
	evs, err := s.recent(r.Context(), p, last, recentEvents)
	if err != nil {
		s.fail(w, v, err)
		return
	}
	data := struct {
		After  int64
		Keep   int
		Events []eventView
	}{After: last, Keep: keepShown}
	for _, e := range evs {
		data.Events = append(data.Events, viewEvent(e, p.Role.IsOperator()))
	}
	v.Data = data
	s.render(w, http.StatusOK, "events", v)
}

// recent returns up to n of the events p may see with Seq at most last,
// newest first: one read of the store's newest, a tenant's from its own
// index, however many other tenants' events came since.
func (s *Server) recent(ctx context.Context, p tenant.Principal, last int64, n int) ([]event.Event, error) {
	if last <= 0 {
		return nil, nil
	}
	return s.eng.RecentEvents(ctx, p, last+1, n)
}

// Defaults of the event stream's timing.
const (
	// streamHeartbeat is how often an idle stream sends a comment, so
	// that proxies and browsers can tell a quiet stream from a dead one.
	streamHeartbeat = 15 * time.Second
	// streamCheck is how often a stream re-checks its session and key: a
	// revoked key or a signed-out session ends it within this time.
	streamCheck = 5 * time.Second
	// streamWriteTimeout bounds each write: a client that stops reading
	// is dropped.
	streamWriteTimeout = 30 * time.Second
	// streamRetry is what the stream tells EventSource to wait before
	// reconnecting, in milliseconds.
	streamRetry = 3000
	// streamMinRead is the least time between two reads of one stream:
	// every commit wakes every open stream, so a busy fleet's commits are
	// read in batches of this long rather than one store read per stream
	// per commit.
	streamMinRead = 250 * time.Millisecond
)

// eventStreams serves GET /events/stream and owns the streams it opened:
// CloseStreams ends them all.
type eventStreams struct {
	s                *Server
	heartbeat, check atomic.Int64 // durations, in nanoseconds
	minRead          atomic.Int64 // a duration, in nanoseconds
	open             atomic.Int64
	closing          chan struct{}
	closeOnce        sync.Once
}

func newEventStreams(s *Server) *eventStreams {
	h := &eventStreams{s: s, closing: make(chan struct{})}
	h.heartbeat.Store(int64(streamHeartbeat))
	h.check.Store(int64(streamCheck))
	h.minRead.Store(int64(streamMinRead))
	return h
}

// streamPath is where the event stream is served.
const streamPath = "/events/stream"

// streams returns the handler of the event stream, which owns the open
// streams.
func (s *Server) streams() *eventStreams {
	h, _ := s.mux.Handler(&http.Request{Method: http.MethodGet, URL: &url.URL{Path: streamPath}})
	es, _ := h.(*eventStreams)
	return es
}

// Streaming reports whether r asks for the live-event stream, which lasts
// as long as its client (the API's server exempts it from its request
// timeout).
func (s *Server) Streaming(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Path == streamPath
}

// CloseStreams ends every open live-event stream of the dashboard and
// makes later ones end after their backlog: an open stream never goes
// idle, so http.Server.Shutdown would wait for it until its deadline.
// Register it with the http.Server's RegisterOnShutdown.
func (s *Server) CloseStreams() {
	if h := s.streams(); h != nil {
		h.closeOnce.Do(func() { close(h.closing) })
	}
}

// ServeHTTP streams the events the session's key may see with Seq above
// Last-Event-ID (what EventSource sends when it reconnects) or the after
// query parameter, then each one as it commits, until the client goes,
// the server shuts down, or the session or its key is no longer valid
// (then a final "end" event tells the page not to reconnect).
func (h *eventStreams) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.s
	id, _, p, ok := s.current(r)
	if !ok {
		http.Error(w, "not signed in: sign in again", http.StatusUnauthorized)
		return
	}
	if !p.Can(tenant.PermEventsRead) {
		http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
		return
	}
	cursor := r.Header.Get("Last-Event-ID")
	if cursor == "" {
		cursor = r.URL.Query().Get("after")
	}
	var after int64
	if cursor != "" {
		n, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "after (or Last-Event-ID): must be an event's sequence number, 0 or more", http.StatusBadRequest)
			return
		}
		after = n
	}
	ctx := r.Context()
	changed := s.eng.EventsChanged()
	evs, err := s.eng.Events(ctx, p, after, engine.MaxEventsPage)
	if err != nil {
		s.fail(w, view{Page: "events"}, err)
		return
	}
	h.open.Add(1)
	defer h.open.Add(-1)

	send := sse.Open(w, streamWriteTimeout).Send
	if !send(fmt.Appendf(nil, "retry: %d\n: neocloud events\n\n", streamRetry)) {
		return
	}
	heartbeat := time.NewTicker(time.Duration(h.heartbeat.Load()))
	defer heartbeat.Stop()
	check := time.NewTicker(time.Duration(h.check.Load()))
	defer check.Stop()
	operator := p.Role.IsOperator()
	lastRead := time.Now()
	for {
		var b []byte
		for _, e := range evs {
			data, err := json.Marshal(viewEvent(e, operator))
			if err != nil {
				continue
			}
			b = fmt.Appendf(b, "id: %d\ndata: %s\n\n", e.Seq, data)
			after = e.Seq
		}
		if len(b) > 0 && !send(b) {
			return
		}
		if len(evs) < engine.MaxEventsPage { // caught up: wait for more
			for waiting := true; waiting; {
				select {
				case <-ctx.Done():
					return
				case <-h.closing:
					return
				case <-changed:
					waiting = false
				case <-heartbeat.C:
					if !send([]byte(": heartbeat\n\n")) {
						return
					}
				case <-check.C:
					if !h.valid(ctx, id) {
						send([]byte("event: end\ndata: signed out\n\n"))
						return
					}
				}
			}
			// Commits that come within minRead of the last read wait
			// for it and are read together (a backlog reads at once).
			if wait := time.Duration(h.minRead.Load()) - time.Since(lastRead); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-h.closing:
					t.Stop()
					return
				case <-t.C:
				}
			}
		}
		// Every read is made with a key checked just before it.
		if !h.valid(ctx, id) {
			send([]byte("event: end\ndata: signed out\n\n"))
			return
		}
		changed = s.eng.EventsChanged()
		lastRead = time.Now()
		if evs, err = s.eng.Events(ctx, p, after, engine.MaxEventsPage); err != nil {
			if ctx.Err() == nil {
				s.log.Error("web: event stream: read", "err", err, "key_id", p.KeyID)
			}
			return
		}
	}
}

// valid reports whether session id is still signed in, unexpired, with a
// key that still authenticates. Unlike a page request, it does not extend
// the session: an open events page alone does not keep a session alive.
func (h *eventStreams) valid(ctx context.Context, id string) bool {
	s := h.s
	s.mu.Lock()
	sess := s.sessions[id]
	ok := sess != nil && !time.Now().After(sess.expires)
	s.mu.Unlock()
	if !ok {
		return false
	}
	_, err := s.eng.Authenticate(ctx, sess.secret)
	return err == nil
}
