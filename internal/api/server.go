package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"reflect"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/tenant"
)

// Version is the API version in the OpenAPI document.
const Version = "1.0.0"

// Body size limits: small JSON bodies by default, a larger one for fleet
// files with explicit node lists (~100 bytes of JSON a node: room for
// ~150,000 nodes listed one by one).
const (
	defaultMaxBody = 1 << 20
	fleetMaxBody   = 16 << 20
)

// Config holds the server's dependencies.
type Config struct {
	Engine *engine.Engine
	Logger *slog.Logger
	// Registry receives the server's metrics; nil makes a fresh one.
	Registry *prometheus.Registry
	// Heartbeat is how often an idle event stream sends a comment;
	// 0 means DefaultHeartbeat.
	Heartbeat time.Duration
	// Web, when set, serves every path the API does not (the dashboard).
	// When it also implements Streamer, its streams are exempt from the
	// request timeout and end at shutdown.
	Web http.Handler
}

// Server is the HTTP API. It implements http.Handler.
// Streamer is a handler some of whose responses last as long as their
// client (server-sent events): Streaming says which requests, CloseStreams
// ends them all (at shutdown).
type Streamer interface {
	Streaming(r *http.Request) bool
	CloseStreams()
}

type Server struct {
	web     Streamer // the dashboard's streams; nil when it has none
	eng     *engine.Engine
	log     *slog.Logger
	reg     *prometheus.Registry
	metrics *metrics
	// meterMetrics count telemetry ingestion.
	meterMetrics *meterMetrics
	mux          *http.ServeMux
	api          huma.API
	handler      http.Handler
	routes       []Route

	anonDenials denialBudget

	// Event streams (events.go) end when closing is closed.
	heartbeat time.Duration
	closing   chan struct{}
	closeOnce sync.Once
}

// Route is one registered route and the permission it declares.
type Route struct {
	Method string
	Path   string
	Perm   tenant.Permission
}

// New returns the API server with every route registered.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	s := &Server{eng: cfg.Engine, log: cfg.Logger, reg: cfg.Registry, mux: http.NewServeMux(),
		heartbeat: cfg.Heartbeat, closing: make(chan struct{})}
	s.metrics = newMetrics(s.reg, s.eng)
	s.meterMetrics = newMeterMetrics(s.reg)

	hc := huma.DefaultConfig("Neocloud API", Version)
	hc.Info.Description = "Control plane for leasing a GPU fleet's spare capacity. " +
		"Authenticate with `Authorization: Bearer <API key>`; errors are RFC 9457 problem documents."
	hc.DocsPath = ""    // the built-in docs page loads scripts from a CDN
	hc.SchemasPath = "" // schemas are in the OpenAPI document
	hc.CreateHooks = nil
	hc.FieldsOptionalByDefault = true // required fields say so with required:"true"
	hc.Components.Schemas = huma.NewMapRegistry("#/components/schemas/", schemaName)
	format := strictJSON()
	hc.Formats = map[string]huma.Format{"application/json": format, "json": format}
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "An API key: nc_ followed by 43 base62 characters."},
	}
	s.api = humago.New(s.mux, hc)
	s.api.UseMiddleware(s.authenticate)
	s.registerRoutes()
	if cfg.Web != nil {
		s.mux.Handle("/", cfg.Web)
		s.web, _ = cfg.Web.(Streamer)
	}
	idem := &idempotency{s: s, seed: maphash.MakeSeed()}
	s.handler = s.recoverer(s.instrument(idem.wrap(s.mux)))
	return s
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Routes returns every registered route with its permission.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// OpenAPI returns the OpenAPI document.
func (s *Server) OpenAPI() *huma.OpenAPI { return s.api.OpenAPI() }

// schemaName names OpenAPI schemas after their Go types, prefixing the
// fleet file's types with "Fleet" (fleet.Spec → FleetSpec).
func schemaName(t reflect.Type, hint string) string {
	name := huma.DefaultSchemaNamer(t, hint)
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if strings.HasSuffix(t.PkgPath(), "/internal/fleet") && !strings.HasPrefix(name, "Fleet") {
		name = "Fleet" + name
	}
	return name
}

type principalKey struct{}

// principal returns the caller authenticated by the middleware.
func principal(ctx context.Context) tenant.Principal {
	p, ok := ctx.Value(principalKey{}).(tenant.Principal)
	if !ok {
		return tenant.Anonymous()
	}
	return p
}

// authenticate is the huma middleware that enforces each operation's
// declared permission before its handler runs.
func (s *Server) authenticate(ctx huma.Context, next func(huma.Context)) {
	op := ctx.Operation()
	perm, _ := op.Metadata[permKey].(tenant.Permission)
	action := op.Method + " " + op.Path
	p, err := s.authorize(ctx.Context(), ctx.Header("Authorization"), perm, action)
	if err != nil {
		if errors.Is(err, tenant.ErrUnauthenticated) {
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="neocloud"`)
		}
		pe := s.problem(ctx.Context(), err)
		_ = huma.WriteErr(s.api, ctx, pe.GetStatus(), pe.Error())
		return
	}
	next(huma.WithValue(ctx, principalKey{}, p))
}

// authorize authenticates the bearer key in header and checks that its role
// holds perm; a refusal is written to the audit log. perm "" (a route that
// forgot to declare one) is refused for everyone.
func (s *Server) authorize(ctx context.Context, header string, perm tenant.Permission, action string) (tenant.Principal, error) {
	if perm == tenant.PermPublic {
		return tenant.Anonymous(), nil
	}
	secret, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		s.denyAnonymous(ctx, action, "no bearer key")
		return tenant.Anonymous(), tenant.ErrUnauthenticated
	}
	p, ok := authenticatedAs(ctx, header)
	var err error
	if !ok {
		p, err = s.eng.Authenticate(ctx, strings.TrimSpace(secret))
	}
	if err != nil {
		s.denyAnonymous(ctx, action, "invalid or revoked key")
		return tenant.Anonymous(), tenant.ErrUnauthenticated
	}
	if perm == "" || !p.Can(perm) {
		why := fmt.Sprintf("role %s lacks permission %s", p.Role, perm)
		s.eng.RecordDenial(ctx, p, action, "", why)
		return p, fmt.Errorf("%w: %s", tenant.ErrForbidden, why)
	}
	return p, nil
}

// denyAnonymous audits a refusal of a request without a valid key, within
// the anonymous audit rate (denials.go).
func (s *Server) denyAnonymous(ctx context.Context, action, why string) {
	ok, note := s.anonDenials.take(s.eng.Clock().Now())
	if !ok {
		s.metrics.unaudited.Inc()
		return
	}
	s.eng.RecordDenial(ctx, tenant.Anonymous(), action, "", why+note)
}

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// instrument gives each request an ID (the caller's X-Request-ID when it is
// well-formed), a deadline, a log line and metrics.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-ID")
		if !requestIDRE.MatchString(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header()["X-Request-Id"] = []string{id} // canonical: Set would canonicalise it each time
		ctx, cancel := context.WithTimeout(engine.WithRequestID(r.Context(), id), requestTimeout)
		if streaming(r) || (s.web != nil && s.web.Streaming(r)) { // an event stream lasts as long as its client
			cancel()
			ctx, cancel = context.WithCancel(engine.WithRequestID(r.Context(), id))
		}
		defer cancel()
		rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		r = r.WithContext(ctx)
		next.ServeHTTP(rw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		elapsed := time.Since(start)
		s.metrics.observe(route, rw.status, elapsed)
		s.log.LogAttrs(ctx, slog.LevelInfo, "http",
			slog.String("method", r.Method), slog.String("route", route), slog.Int("status", rw.status),
			slog.Duration("elapsed", elapsed), slog.String("request_id", id))
	})
}

// requestTimeout bounds one request's work; the http.Server's write
// timeout is set a little above it.
const requestTimeout = 60 * time.Second

// recoverer turns a panic into a 500 problem and a log line with the stack.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte(`{"title":"Internal Server Error","status":500,"detail":"internal error"}`))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// HTTPServer returns an *http.Server for h on addr with timeouts set;
// when h is a *Server, its Shutdown ends the open event streams
// (CloseStreams).
func HTTPServer(addr string, h http.Handler) *http.Server {
	hs := &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      requestTimeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	if s, ok := h.(*Server); ok {
		hs.RegisterOnShutdown(s.CloseStreams)
		if s.web != nil {
			hs.RegisterOnShutdown(s.web.CloseStreams)
		}
	}
	return hs
}
