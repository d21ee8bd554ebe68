package web

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/neocloud/neocloud/internal/clock"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/tenant"
)

//go:embed templates/*.html static
var assets embed.FS

// Engine is what the dashboard reads; *engine.Engine implements it. Each
// group of pages names what it needs in its own file.
type Engine interface {
	Authenticate(ctx context.Context, secret string) (tenant.Principal, error)
	Clock() clock.Clock
	fleetEngine
	leaseEngine
	billingEngine
	opsEngine
	tenantEngine
}

// Config holds the dashboard's dependencies.
type Config struct {
	Engine Engine
	Logger *slog.Logger
	// SessionTTL is how long a session lasts without use (default 12h).
	SessionTTL time.Duration
	// Secure marks cookies Secure (set it when served over HTTPS).
	Secure bool
}

// Server is the dashboard; it implements http.Handler.
type Server struct {
	eng    Engine
	log    *slog.Logger
	ttl    time.Duration
	secure bool
	pages  map[string]*template.Template
	mux    *http.ServeMux
	// invoiceRows is how many invoices /invoices lists (tests shorten it).
	invoiceRows int

	mu       sync.Mutex
	sessions map[string]*session
}

// New returns the dashboard.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	s := &Server{eng: cfg.Engine, log: cfg.Logger, ttl: cfg.SessionTTL, secure: cfg.Secure, pages: map[string]*template.Template{},
		mux: http.NewServeMux(), sessions: map[string]*session{}, invoiceRows: maxInvoiceRows}
	if err := s.parsePages(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.Handle("GET /favicon.ico", http.RedirectHandler("/static/favicon.svg", http.StatusMovedPermanently))
	s.sessionRoutes()
	s.fleetRoutes()
	s.leaseRoutes()
	s.billingRoutes()
	s.opsRoutes()
	s.tenantRoutes()
	return s, nil
}

// parsePages parses one template set per page: templates/layout.html, the
// shared partials (templates/_*.html) and the page's own file
// (templates/NAME.html, rendered as page NAME).
func (s *Server) parsePages() error {
	files, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return err
	}
	var partials, pages []string
	for _, f := range files {
		switch base := path.Base(f); {
		case base == "layout.html":
		case strings.HasPrefix(base, "_"):
			partials = append(partials, f)
		default:
			pages = append(pages, f)
		}
	}
	for _, f := range pages {
		name := strings.TrimSuffix(path.Base(f), ".html")
		t, err := template.New(name).Funcs(funcs).ParseFS(assets, append(append([]string{"templates/layout.html"}, partials...), f)...)
		if err != nil {
			return fmt.Errorf("web: template %s: %w", name, err)
		}
		s.pages[name] = t
	}
	return nil
}

// funcs are the template functions every page may use.
var funcs = template.FuncMap{}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	if s.secure {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	s.mux.ServeHTTP(w, r)
}

func token() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// view is what every page template gets.
type view struct {
	Title, Page, Who, CSRF, Error string
	Operator                      bool
	Data                          any
}

func (s *Server) render(w http.ResponseWriter, status int, page string, v view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := s.pages[page].ExecuteTemplate(w, "layout", v); err != nil {
		s.log.Error("web: render", "page", page, "err", err)
	}
}

// fail answers a page whose data could not be read: 403/404 for what the
// visitor may not see, else 500 (logged).
func (s *Server) fail(w http.ResponseWriter, v view, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, tenant.ErrForbidden):
		status = http.StatusForbidden
	case errors.Is(err, tenant.ErrNotFound), errors.Is(err, engine.ErrNotFound):
		status = http.StatusNotFound
	default:
		s.log.Error("web: page", "page", v.Page, "err", err)
	}
	http.Error(w, http.StatusText(status), status)
}
