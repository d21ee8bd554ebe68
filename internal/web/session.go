package web

import (
	"crypto/subtle"
	"net/http"
	"time"

	"github.com/neocloud/neocloud/internal/tenant"
)

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

func (s *Server) sessionRoutes() {
	s.mux.HandleFunc("GET /login", s.loginForm)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /logout", s.logout)
	s.mux.HandleFunc("GET /{$}", s.home)
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
		h(w, r, p, s.viewFor(p, sess))
	}
}

// form runs h for a signed-in visitor's POST whose csrf field matches the
// session's token; anything else is refused with 403 and changes nothing.
// Every state-changing form of the dashboard goes through it.
func (s *Server) form(h pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, sess, p, ok := s.current(r)
		if !ok {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if !equal(sess.csrf, r.PostFormValue("csrf")) {
			http.Error(w, "CSRF token missing or wrong: reload the page and try again", http.StatusForbidden)
			return
		}
		h(w, r, p, s.viewFor(p, sess))
	}
}

func (s *Server) viewFor(p tenant.Principal, sess *session) view {
	who := string(p.Role)
	if p.TenantID != "" {
		who = p.TenantID + " · " + who
	}
	return view{Who: who, CSRF: sess.csrf, Operator: p.Role.IsOperator()}
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
