package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/clock"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/tenant"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Engine is what the dashboard reads; *engine.Engine implements it.
type Engine interface {
	Authenticate(ctx context.Context, secret string) (tenant.Principal, error)
	Pools(ctx context.Context, site string) ([]fleet.Pool, error)
	Sites(ctx context.Context) ([]fleet.Site, error)
	Leases(ctx context.Context, p tenant.Principal, f engine.LeaseFilter) ([]lease.Lease, error)
	Invoices(ctx context.Context, p tenant.Principal, f engine.InvoiceFilter) ([]billing.Invoice, error)
	Invoice(ctx context.Context, p tenant.Principal, id string) (billing.Invoice, error)
	Capacity(ctx context.Context, p tenant.Principal, pool string, from, to time.Time, step time.Duration) ([]engine.CapacityPoint, error)
	Clock() clock.Clock
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

	mu       sync.Mutex
	sessions map[string]*session
}

// session is a signed-in browser: the key it signed in with (kept in
// server memory only, so that a revoked key ends the session at its next
// request), its CSRF token and when it expires.
type session struct {
	secret  string
	csrf    string
	expires time.Time
}

const (
	sessionCookie = "nc_session"
	loginCookie   = "nc_login" // the CSRF token of the sign-in form (double submit)
)

// New returns the dashboard.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	s := &Server{eng: cfg.Engine, log: cfg.Logger, ttl: cfg.SessionTTL, secure: cfg.Secure, pages: map[string]*template.Template{},
		mux: http.NewServeMux(), sessions: map[string]*session{}}
	for _, p := range []string{"login", "fleet", "leases", "invoices", "invoice", "capacity"} {
		t, err := template.ParseFS(assets, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", p, err)
		}
		s.pages[p] = t
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /login", s.loginForm)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /logout", s.logout)
	s.mux.HandleFunc("GET /{$}", s.home)
	s.mux.HandleFunc("GET /fleet", s.signedIn(s.fleet))
	s.mux.HandleFunc("GET /leases", s.signedIn(s.leases))
	s.mux.HandleFunc("GET /invoices", s.signedIn(s.invoices))
	s.mux.HandleFunc("GET /invoices/{id}", s.signedIn(s.invoice))
	s.mux.HandleFunc("GET /capacity", s.signedIn(s.capacity))
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
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

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	s.showLogin(w, http.StatusOK, "")
}

func (s *Server) showLogin(w http.ResponseWriter, status int, msg string) {
	csrf := token()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: csrf, Path: "/login", HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	s.render(w, status, "login", view{Title: "Sign in", CSRF: csrf, Error: msg})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(loginCookie)
	if err != nil || !equal(c.Value, r.PostFormValue("csrf")) {
		s.showLogin(w, http.StatusForbidden, "The form expired; sign in again.")
		return
	}
	secret := r.PostFormValue("key")
	p, err := s.eng.Authenticate(r.Context(), secret)
	if err != nil {
		s.showLogin(w, http.StatusUnauthorized, "That key is not valid (revoked, mistyped, or not a Neocloud key).")
		return
	}
	id := token()
	now := time.Now()
	s.mu.Lock()
	for k, old := range s.sessions { // expired sessions go when someone signs in
		if now.After(old.expires) {
			delete(s.sessions, k)
		}
	}
	s.sessions[id] = &session{secret: secret, csrf: token(), expires: now.Add(s.ttl)}
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: "/login", MaxAge: -1})
	s.log.Info("web: signed in", "key_id", p.KeyID, "role", string(p.Role))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func equal(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// current returns the request's session and principal; false when there
// is none (or it expired, or its key was revoked).
func (s *Server) current(r *http.Request) (string, *session, tenant.Principal, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", nil, tenant.Principal{}, false
	}
	s.mu.Lock()
	sess := s.sessions[c.Value]
	if sess != nil && time.Now().After(sess.expires) {
		delete(s.sessions, c.Value)
		sess = nil
	}
	if sess != nil {
		sess.expires = time.Now().Add(s.ttl)
	}
	s.mu.Unlock()
	if sess == nil {
		return "", nil, tenant.Principal{}, false
	}
	p, err := s.eng.Authenticate(r.Context(), sess.secret)
	if err != nil {
		s.mu.Lock()
		delete(s.sessions, c.Value)
		s.mu.Unlock()
		return "", nil, tenant.Principal{}, false
	}
	return c.Value, sess, p, true
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	id, sess, _, ok := s.current(r)
	if ok && equal(sess.csrf, r.PostFormValue("csrf")) {
		s.mu.Lock()
		delete(s.sessions, id)
		s.mu.Unlock()
	} else if ok {
		http.Error(w, "CSRF token missing or wrong", http.StatusForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

type pageFunc func(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view)

// signedIn runs h for a signed-in visitor, else sends them to sign in.
func (s *Server) signedIn(h pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, sess, p, ok := s.current(r)
		if !ok {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		who := string(p.Role)
		if p.TenantID != "" {
			who = p.TenantID + " · " + who
		}
		h(w, r, p, view{Who: who, CSRF: sess.csrf, Operator: p.Role.IsOperator()})
	}
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	_, _, p, ok := s.current(r)
	switch {
	case !ok:
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	case p.Role.IsOperator():
		http.Redirect(w, r, "/fleet", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/leases", http.StatusSeeOther)
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

type poolRow struct {
	ID          string
	GPUs, Nodes int64
	ByState     []int64
	ITMW        string
}

func mw(p int64) string { return strconv.FormatFloat(float64(p)/1e6, 'f', 1, 64) }

func (s *Server) fleet(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Fleet", "fleet"
	if !p.Can(tenant.PermNodesRead) {
		s.fail(w, v, tenant.ErrForbidden)
		return
	}
	pools, err := s.eng.Pools(r.Context(), "")
	if err != nil {
		s.fail(w, v, err)
		return
	}
	sites, err := s.eng.Sites(r.Context())
	if err != nil {
		s.fail(w, v, err)
		return
	}
	type domain struct{ Site, Name, BudgetMW string }
	data := struct {
		GPUs, Nodes, Failed int64
		ITMW                string
		States              []fleet.State
		Pools               []poolRow
		Domains             []domain
	}{States: fleet.States}
	var it int64
	for _, pl := range pools {
		row := poolRow{ID: pl.ID, GPUs: int64(pl.GPUs), Nodes: pl.Nodes, ITMW: mw(int64(pl.ITPower))}
		for _, st := range fleet.States {
			row.ByState = append(row.ByState, pl.ByState[st])
		}
		data.Pools = append(data.Pools, row)
		data.GPUs += int64(pl.GPUs)
		data.Nodes += pl.Nodes
		data.Failed += pl.ByState[fleet.Failed]
		it += int64(pl.ITPower)
	}
	data.ITMW = mw(it)
	for _, st := range sites {
		for _, d := range st.PowerDomains {
			data.Domains = append(data.Domains, domain{st.Name, d.Name, mw(int64(d.Budget))})
		}
	}
	v.Data = data
	s.render(w, http.StatusOK, "fleet", v)
}

type leaseRow struct {
	ID, TenantID, Kind, Pool, Start, End, State string
	GPUs                                        int64
}

func (s *Server) leases(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Leases", "leases"
	ls, err := s.eng.Leases(r.Context(), p, engine.LeaseFilter{Limit: 500})
	if err != nil {
		s.fail(w, v, err)
		return
	}
	now := time.Now()
	rows := make([]leaseRow, 0, len(ls))
	for _, l := range ls {
		rows = append(rows, leaseRow{ID: l.ID, TenantID: l.TenantID, Kind: string(l.Kind), Pool: l.Pool,
			Start: l.Start.Format("2006-01-02 15:04"), End: l.End.Format("2006-01-02 15:04"), GPUs: int64(l.MaxGPUs()), State: string(l.StateAt(now))})
	}
	v.Data = rows
	s.render(w, http.StatusOK, "leases", v)
}

type invoiceRow struct {
	ID, TenantID, Month, State, Total, Currency, Hash string
	Lines                                             []lineRow
}

type lineRow struct{ Kind, LeaseID, Description, Quantity, Unit, Amount string }

func invoiceView(inv billing.Invoice) invoiceRow {
	out := invoiceRow{ID: inv.ID, TenantID: inv.TenantID, Month: inv.Month.Format("2006-01"), State: string(inv.State),
		Total: money.Format(inv.Total.Micros), Currency: inv.Currency, Hash: inv.Hash}
	for _, l := range inv.Lines {
		out.Lines = append(out.Lines, lineRow{string(l.Kind), l.LeaseID, l.Description, l.Quantity, string(l.Unit), money.Format(l.Amount.Micros)})
	}
	return out
}

func (s *Server) invoices(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Invoices", "invoices"
	invs, err := s.eng.Invoices(r.Context(), p, engine.InvoiceFilter{})
	if err != nil {
		s.fail(w, v, err)
		return
	}
	slices.Reverse(invs) // newest month first
	rows := make([]invoiceRow, len(invs))
	for i, inv := range invs {
		rows[i] = invoiceView(inv)
	}
	v.Data = rows
	s.render(w, http.StatusOK, "invoices", v)
}

func (s *Server) invoice(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Invoice", "invoices"
	inv, err := s.eng.Invoice(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.fail(w, v, err)
		return
	}
	v.Data = invoiceView(inv)
	s.render(w, http.StatusOK, "invoice", v)
}

// spans are the capacity page's zoom levels and their steps.
var spans = []struct {
	name       string
	span, step time.Duration
}{
	{"24h", 24 * time.Hour, time.Hour},
	{"7d", 7 * 24 * time.Hour, time.Hour},
	{"30d", 30 * 24 * time.Hour, 6 * time.Hour},
	{"1y", 365 * 24 * time.Hour, 24 * time.Hour},
	{"5y", 5 * 365 * 24 * time.Hour, 7 * 24 * time.Hour},
}

// capacity draws a pool's capacity from now over the chosen span
// (operators: it shows what every tenant and the owner hold).
func (s *Server) capacity(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Capacity", "capacity"
	if !p.Can(tenant.PermCapacityRead) {
		s.fail(w, v, tenant.ErrForbidden)
		return
	}
	pools, err := s.eng.Pools(r.Context(), "")
	if err != nil {
		s.fail(w, v, err)
		return
	}
	var ids []string
	for _, pl := range pools {
		ids = append(ids, pl.ID)
	}
	pool := r.URL.Query().Get("pool")
	if pool == "" && len(ids) > 0 {
		pool = ids[0]
	}
	if !slices.Contains(ids, pool) {
		s.fail(w, v, tenant.ErrNotFound)
		return
	}
	sp := spans[2]
	for _, x := range spans {
		if x.name == r.URL.Query().Get("span") {
			sp = x
		}
	}
	from := s.eng.Clock().Now().UTC().Truncate(time.Hour)
	pts, err := s.eng.Capacity(r.Context(), p, pool, from, from.Add(sp.span), sp.step)
	if err != nil {
		s.fail(w, v, err)
		return
	}
	series := map[string][]int64{}
	for _, pt := range pts {
		series["t"] = append(series["t"], pt.At.Unix())
		series["healthy"] = append(series["healthy"], int64(pt.Healthy))
		series["holdback"] = append(series["holdback"], int64(pt.Holdback))
		series["contract"] = append(series["contract"], int64(pt.Contract))
		series["reservation"] = append(series["reservation"], int64(pt.Reservation))
		series["spot"] = append(series["spot"], int64(pt.Spot))
		series["free"] = append(series["free"], int64(pt.Free))
	}
	data, err := json.Marshal(series)
	if err != nil {
		s.fail(w, v, err)
		return
	}
	var names []string
	for _, x := range spans {
		names = append(names, x.name)
	}
	v.Data = struct {
		Pool, Span, Step string
		Pools, Spans     []string
		Points           int
		JSON             template.JS
	}{pool, sp.name, sp.step.String(), ids, names, len(pts), template.JS(data)}
	s.render(w, http.StatusOK, "capacity", v)
}
