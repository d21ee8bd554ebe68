package browser_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/web/browser"
	"github.com/neocloud/neocloud/internal/web/browser/browsertest"
)

// site is a tiny dashboard-like site under a strict CSP: a sign-in form,
// a clean page with a chart, and pages that break in each way the browser
// tests must notice.
func site() http.Handler {
	mux := http.NewServeMux()
	page := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", "default-src 'self'")
			fmt.Fprintf(w, `<!doctype html><html><head></head><body>%s</body></html>`, body)
		}
	}
	mux.HandleFunc("GET /login", page(`<h1>Sign in</h1><form method="post" action="/login"><input type="password" name="key"><button>Go</button></form>`))
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if r.PostFormValue("key") != "good key" {
			w.Header().Set("Content-Security-Policy", "default-src 'self'")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `<!doctype html><html><head></head><body><p id="error">That key is not valid.</p></body></html>`)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "s", Value: "1", Path: "/"})
		http.Redirect(w, r, "/clean", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /clean", page(`<h1>Clean</h1><div class="chart" id="c"></div><script src="/draw.js"></script>`))
	mux.HandleFunc("GET /draw.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, `setTimeout(function(){document.getElementById("c").setAttribute("data-drawn","true")}, 50);`)
	})
	mux.HandleFunc("GET /inline", page(`<h1>Inline</h1><script>document.title="x"</script>`))
	mux.HandleFunc("GET /style", page(`<h1 style="color:red">Style</h1>`))
	mux.HandleFunc("GET /console", page(`<h1>Console</h1><script src="/console.js"></script>`))
	mux.HandleFunc("GET /console.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, `console.error("boom", 42);`)
	})
	mux.HandleFunc("GET /throw", page(`<h1>Throw</h1><script src="/throw.js"></script>`))
	mux.HandleFunc("GET /throw.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, `null.x;`)
	})
	mux.HandleFunc("GET /missing", page(`<h1>Missing</h1><img src="/nope.png" alt="">`))
	mux.HandleFunc("GET /undrawn", page(`<h1>Undrawn</h1><div class="chart" id="never"></div>`))
	mux.HandleFunc("GET /forbidden", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Forbidden", http.StatusForbidden)
	})
	return mux
}

func TestBrowser(t *testing.T) {
	b := browsertest.Start(t)
	srv := httptest.NewServer(site())
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tab, err := b.NewTab()
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()

	if _, err := tab.SignIn(ctx, srv.URL, "bad key"); !errors.Is(err, browser.ErrSignIn) || !strings.Contains(err.Error(), "not valid") {
		t.Errorf("sign in with a bad key: %v, want ErrSignIn with the page's message", err)
	}
	tab.Problems() // the 401 document is logged as a failed load
	p, err := tab.SignIn(ctx, srv.URL, "good key")
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != 200 || !strings.HasSuffix(p.URL, "/clean") {
		t.Errorf("after sign in: %+v, want 200 at /clean", p)
	}
	if err := tab.WaitCharts(ctx, 5*time.Second); err != nil {
		t.Error(err)
	}
	if ps := tab.Problems(); len(ps) > 0 {
		t.Errorf("clean page: problems %q", ps)
	}
	if cookie, _ := browser.Eval[string](ctx, tab, `document.cookie`); cookie != "s=1" {
		t.Errorf("cookie %q, want the session", cookie)
	}

	// A second tab has cookies of its own.
	other, err := b.NewTab()
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Open(ctx, srv.URL+"/clean"); err != nil {
		t.Fatal(err)
	}
	if cookie, _ := browser.Eval[string](ctx, other, `document.cookie`); cookie != "" {
		t.Errorf("another tab sees cookie %q", cookie)
	}

	for _, tt := range []struct{ path, want string }{
		{"/inline", "Content Security Policy"},
		{"/style", "Content Security Policy"},
		{"/console", `console.error: "boom" 42`},
		{"/throw", "uncaught exception"},
		{"/missing", "404"},
	} {
		p, err := tab.Open(ctx, srv.URL+tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != 200 {
			t.Errorf("%s: status %d", tt.path, p.Status)
		}
		// A round trip, so that late reports (script errors) have arrived.
		if _, err := browser.Eval[bool](ctx, tab, `true`); err != nil {
			t.Fatal(err)
		}
		ps := tab.Problems()
		if len(ps) == 0 || !strings.Contains(strings.Join(ps, "\n"), tt.want) {
			t.Errorf("%s: problems %q, want one with %q", tt.path, ps, tt.want)
		}
	}
	if p, err := tab.Open(ctx, srv.URL+"/forbidden"); err != nil || p.Status != 403 {
		t.Errorf("/forbidden: %+v, %v, want status 403", p, err)
	}
	tab.Problems()
	if _, err := tab.Open(ctx, srv.URL+"/undrawn"); err != nil {
		t.Fatal(err)
	}
	if err := tab.WaitCharts(ctx, 200*time.Millisecond); err == nil || !strings.Contains(err.Error(), "never") {
		t.Errorf("undrawn chart: %v, want a timeout naming #never", err)
	}
	if shot, err := tab.Screenshot(ctx, true); err != nil || !strings.HasPrefix(string(shot), "\x89PNG") {
		t.Errorf("screenshot: %d bytes, %v; want a PNG", len(shot), err)
	}
}
