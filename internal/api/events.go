package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/event"
	"github.com/neocloud/neocloud/internal/sse"
	"github.com/neocloud/neocloud/internal/tenant"
)

const eventsPath = "/v1/events"

// DefaultHeartbeat is how often an idle event stream sends a comment, so
// that proxies and clients can tell a quiet stream from a dead one.
const DefaultHeartbeat = 15 * time.Second

// streamWriteTimeout bounds each write to an event stream: a client that
// stops reading is dropped.
const streamWriteTimeout = 30 * time.Second

// registerEventRoutes adds the event stream and the webhook endpoints;
// called from registerRoutes.
func (s *Server) registerEventRoutes() {
	list := s.api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[[]Event](), true, "Events")
	register(s, huma.Operation{OperationID: "list-events", Method: http.MethodGet, Path: eventsPath, Tags: []string{"events"},
		Summary: "What happened: lease, node, shortfall and spot events, as a server-sent event stream or a JSON page",
		Description: "Events in commit order, after `after` (or the `Last-Event-ID` header, which wins: an EventSource resumes with it). " +
			"A tenant key sees its tenant's events only; operators see every event, operator-only ones (no `tenant`) included.\n\n" +
			"By default (`follow=true`) the answer is `text/event-stream`: the backlog, then each event as it commits, as " +
			"`id: <seq>`, `event: <type>`, `data: <the event as JSON>`; a `: heartbeat` comment every 15 s while idle. " +
			"The stream ends when the client or the server goes. `follow=false` answers one JSON page of up to `limit` events.",
		Responses: map[string]*huma.Response{"200": {Description: "The events", Content: map[string]*huma.MediaType{
			"text/event-stream": {Schema: &huma.Schema{Type: "string",
				Description: "Server-sent events: `id: <seq>`, `event: <type>`, `data: <Event as JSON>`, a blank line; `: heartbeat` comments."}},
			"application/json": {Schema: list},
		}}},
	}, tenant.PermEventsRead, s.listEvents)

	register(s, huma.Operation{OperationID: "create-webhook", Method: http.MethodPost, Path: "/v1/webhooks", Tags: []string{"events"},
		Summary: "Register a webhook endpoint; its signing secret is in this response only",
		Description: "Events committed from now on are POSTed to the URL, per endpoint in order, signed " +
			"(`Neocloud-Signature: t=<unix>,v1=<hex HMAC-SHA256 of \"<t>.<body>\" keyed with the secret>`), with " +
			"`Neocloud-Event-Id` (the same on every retry: dedupe on it) and `Neocloud-Event-Type`. A failed call is retried " +
			"with exponential backoff (13 tries over 2 to 3½ hours), holding back the events after it; then it is given up. " +
			"A tenant's endpoint gets its tenant's events; an operator endpoint (no tenant) gets every event.",
		DefaultStatus: http.StatusCreated}, tenant.PermWebhooksWrite, s.createWebhook)
	register(s, huma.Operation{OperationID: "list-webhooks", Method: http.MethodGet, Path: "/v1/webhooks", Tags: []string{"events"},
		Summary: "Webhook endpoints with their delivery state (secrets are never shown again)"}, tenant.PermWebhooksRead, s.listWebhooks)
	register(s, huma.Operation{OperationID: "delete-webhook", Method: http.MethodDelete, Path: "/v1/webhooks/{webhook}", Tags: []string{"events"},
		Summary: "Delete a webhook endpoint: nothing more is sent to it"}, tenant.PermWebhooksWrite, s.deleteWebhook)
}

// Event is one event on the wire: an item of GET /v1/events, the data of a
// server-sent event, and the body of a webhook call (the same JSON).
type Event struct {
	ID     string          `json:"id" doc:"ev_ and 16 hex digits: the same on every delivery; deduplicate on it."`
	Seq    int64           `json:"seq" doc:"Increasing in commit order: resume after it (after, Last-Event-ID)."`
	At     time.Time       `json:"at"`
	Type   string          `json:"type" doc:"lease.created, lease.cancelled, lease.shortfall, allocation.replaced, node.state, node.sanitized, spot.reclaim, spot.released, spot.rebalance, ..."`
	Tenant string          `json:"tenant,omitempty" doc:"The tenant it concerns; absent on operator-only events."`
	Lease  string          `json:"lease,omitempty"`
	Data   json.RawMessage `json:"data" doc:"The details, a JSON object whose fields depend on the type."`
}

func eventJSON(e event.Event) Event {
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	return Event{ID: e.ID(), Seq: e.Seq, At: e.At.UTC(), Type: string(e.Type), Tenant: e.TenantID, Lease: e.LeaseID, Data: data}
}

type eventsIn struct {
	After       int64  `query:"after" minimum:"0" doc:"Only events with a higher seq; default 0 (from the first)."`
	LastEventID string `header:"Last-Event-ID" pattern:"^[0-9]{1,18}$" doc:"The seq of the last event received: resume after it (wins over after)."`
	Follow      bool   `query:"follow" default:"true" doc:"true: a server-sent event stream that stays open; false: one JSON page."`
	Limit       int    `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"With follow=false: the most events in the page."`
}

// streaming reports whether r asks for the event stream, which is exempt
// from the per-request timeout (instrument).
func streaming(r *http.Request) bool {
	if r.Method != http.MethodGet || r.URL.Path != eventsPath {
		return false
	}
	follow, err := strconv.ParseBool(r.URL.Query().Get("follow"))
	return err != nil || follow
}

func (s *Server) listEvents(ctx context.Context, p tenant.Principal, in *eventsIn) (*huma.StreamResponse, error) {
	after := in.After
	if in.LastEventID != "" {
		after, _ = strconv.ParseInt(in.LastEventID, 10, 64) // the pattern makes it a number
	}
	limit := in.Limit
	if in.Follow {
		limit = engine.MaxEventsPage
	}
	// Waited on after the first page: an event committed while it is
	// read closes it.
	changed := s.eng.EventsChanged()
	evs, err := s.eng.Events(ctx, p, after, limit)
	if err != nil {
		return nil, err
	}
	if !in.Follow {
		return &huma.StreamResponse{Body: func(hctx huma.Context) {
			out := make([]Event, len(evs))
			for i, e := range evs {
				out[i] = eventJSON(e)
			}
			hctx.SetHeader("Content-Type", "application/json")
			hctx.SetStatus(http.StatusOK)
			_ = json.NewEncoder(hctx.BodyWriter()).Encode(out)
		}}, nil
	}
	return &huma.StreamResponse{Body: func(hctx huma.Context) {
		r, w := humago.Unwrap(hctx)
		s.stream(r.Context(), w, p, after, evs, changed)
	}}, nil
}

// stream writes the event stream to w until ctx ends (the client went) or
// the server closes its streams: evs (read after after, up to a full
// page), the pages after it, then each event as it commits; changed was
// taken before evs were read.
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, p tenant.Principal, after int64, evs []event.Event, changed <-chan struct{}) {
	send := sse.Open(w, streamWriteTimeout).Send
	if !send([]byte(": neocloud events\n\n")) {
		return
	}
	heartbeat := time.NewTicker(s.heartbeat)
	defer heartbeat.Stop()
	for {
		var b []byte
		for _, e := range evs {
			data, err := json.Marshal(eventJSON(e))
			if err != nil {
				s.log.ErrorContext(ctx, "event stream: encode", "err", err, "seq", e.Seq)
				continue
			}
			b = fmt.Appendf(b, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, data)
			after = e.Seq
		}
		if len(b) > 0 {
			if !send(b) {
				return
			}
			heartbeat.Reset(s.heartbeat)
		}
		if len(evs) < engine.MaxEventsPage { // caught up: wait for more
			if !s.waitEvents(ctx, changed, heartbeat.C, send) {
				return
			}
		}
		changed = s.eng.EventsChanged()
		var err error
		evs, err = s.eng.Events(ctx, p, after, engine.MaxEventsPage)
		if err != nil {
			if ctx.Err() == nil {
				s.log.ErrorContext(ctx, "event stream: read", "err", err, "request_id", engine.RequestID(ctx))
			}
			return
		}
	}
}

// waitEvents waits for changed, sending heartbeats; false when the stream
// must end.
func (s *Server) waitEvents(ctx context.Context, changed <-chan struct{}, heartbeat <-chan time.Time, send func([]byte) bool) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-s.closing:
			return false
		case <-changed:
			return true
		case <-heartbeat:
			if !send([]byte(": heartbeat\n\n")) {
				return false
			}
		}
	}
}

// CloseStreams ends every open event stream, and makes later ones end
// after their backlog: an open stream never goes idle, so
// http.Server.Shutdown would wait for it until its deadline. HTTPServer
// registers it with Shutdown.
func (s *Server) CloseStreams() { s.closeOnce.Do(func() { close(s.closing) }) }

// Webhook is a webhook endpoint on the wire, without its secret.
type Webhook struct {
	ID          string     `json:"id"`
	Tenant      string     `json:"tenant,omitempty" doc:"The tenant whose events it receives; absent for an operator endpoint, which receives every event."`
	URL         string     `json:"url"`
	Created     time.Time  `json:"created"`
	Disabled    *time.Time `json:"disabled,omitempty" doc:"When it was deleted."`
	LastSeq     int64      `json:"last_seq" doc:"The last event delivered (or given up after the last retry)."`
	Attempts    int        `json:"attempts" doc:"Failed attempts of the next event so far."`
	NextAttempt *time.Time `json:"next_attempt,omitempty" doc:"When the next event is retried."`
	LastStatus  int        `json:"last_status,omitempty" doc:"The last attempt's HTTP status (absent when no answer came back)."`
	LastError   string     `json:"last_error,omitempty" doc:"Why the last attempt failed; absent after a success."`
}

func webhookJSON(w event.Webhook) Webhook {
	out := Webhook{ID: w.ID, Tenant: w.TenantID, URL: w.URL, Created: w.Created, LastSeq: w.Delivery.LastSeq,
		Attempts: w.Delivery.Attempts, LastStatus: w.Delivery.LastStatus, LastError: w.Delivery.LastError}
	if !w.Disabled.IsZero() {
		t := w.Disabled
		out.Disabled = &t
	}
	if !w.Delivery.NextAttempt.IsZero() {
		t := w.Delivery.NextAttempt
		out.NextAttempt = &t
	}
	return out
}

// WebhookCreated is a new webhook endpoint with its secret, shown this
// once.
type WebhookCreated struct {
	Webhook
	Secret string `json:"secret" doc:"Signs every call: HMAC-SHA256 keyed with this string. Not shown again."`
}

type createWebhookIn struct {
	Body struct {
		URL    string `json:"url" required:"true" maxLength:"2048" doc:"An absolute https URL (http only where the operator allows it), without credentials, outside the server's own network (no loopback, private, link-local or metadata address)."`
		Tenant string `json:"tenant,omitempty" pattern:"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)?$" doc:"The tenant whose events it receives: implied by tenant keys; empty for an operator endpoint (every event)."`
	}
}

func (s *Server) createWebhook(ctx context.Context, p tenant.Principal, in *createWebhookIn) (*body[WebhookCreated], error) {
	w, secret, err := s.eng.CreateWebhook(ctx, p, in.Body.Tenant, in.Body.URL)
	if err != nil {
		return nil, err
	}
	return ok(WebhookCreated{Webhook: webhookJSON(w), Secret: secret})
}

type webhooksIn struct {
	Tenant string `query:"tenant" pattern:"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$" doc:"Only this tenant's endpoints (tenant keys always see only their own)."`
}

func (s *Server) listWebhooks(ctx context.Context, p tenant.Principal, in *webhooksIn) (*body[[]Webhook], error) {
	ws, err := s.eng.Webhooks(ctx, p, in.Tenant)
	if err != nil {
		return nil, err
	}
	out := make([]Webhook, len(ws))
	for i, w := range ws {
		out[i] = webhookJSON(w)
	}
	return ok(out)
}

type webhookPath struct {
	Webhook string `path:"webhook" pattern:"^wh_[0-9a-f]{16}$"`
}

func (s *Server) deleteWebhook(ctx context.Context, p tenant.Principal, in *webhookPath) (*body[Webhook], error) {
	w, err := s.eng.DeleteWebhook(ctx, p, in.Webhook)
	if err != nil {
		return nil, err
	}
	return ok(webhookJSON(w))
}
