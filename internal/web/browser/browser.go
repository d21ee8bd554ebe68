// Package browser drives a headless Chromium for the dashboard's browser
// tests and for `neocloud screenshots`: it finds and starts the browser,
// opens tabs that each keep their own cookies (one per signed-in role),
// signs in through the real form, loads pages while recording their
// document status and every console error, uncaught exception and
// browser-log error (CSP violations and failed loads are reported there),
// waits for the charts to be drawn, and takes screenshots.
package browser

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// ErrNoChromium is returned by Find and Start when no Chromium is installed.
var ErrNoChromium = errors.New("no Chromium found: install it (Debian/Ubuntu: apt-get install chromium) or set NEOCLOUD_CHROMIUM to its path")

// ErrSignIn is returned by Tab.SignIn when the server refuses the key.
var ErrSignIn = errors.New("sign-in refused")

// names are the executables Find looks for on PATH, in order.
var names = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless_shell"}

// Find returns the path of a Chromium executable: override when it is not
// empty (a path or a name on PATH), else the first of chromium,
// chromium-browser, google-chrome... found on PATH. It returns
// ErrNoChromium (wrapped) when there is none.
func Find(override string) (string, error) {
	if override != "" {
		p, err := exec.LookPath(override)
		if err != nil {
			return "", fmt.Errorf("%w (NEOCLOUD_CHROMIUM=%s: %v)", ErrNoChromium, override, err)
		}
		return p, nil
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", ErrNoChromium
}

// Options configure Start.
type Options struct {
	// ExecPath is the browser to run (see Find).
	ExecPath string
	// Width and Height are each tab's viewport in CSS pixels (default
	// 1280×800).
	Width, Height int
}

// Browser is a running headless Chromium with a fresh profile.
type Browser struct {
	ctx         context.Context // the browser's first tab; tabs are its children
	cancel      context.CancelFunc
	allocCancel context.CancelFunc
	stop        func() bool
	dir         string
	w, h        int
	once        sync.Once
}

// Start launches a headless Chromium with a fresh temporary profile; it
// runs until Close or until ctx ends. The flags keep it quiet on a closed
// network: no sandbox (we may run as root), no GPU, no QUIC, no background
// networking, component updates or sync.
func Start(ctx context.Context, o Options) (*Browser, error) {
	if o.ExecPath == "" {
		return nil, ErrNoChromium
	}
	if o.Width <= 0 {
		o.Width = 1280
	}
	if o.Height <= 0 {
		o.Height = 800
	}
	dir, err := os.MkdirTemp("", "neocloud-chromium-")
	if err != nil {
		return nil, fmt.Errorf("browser: profile directory: %w", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(o.ExecPath),
		chromedp.UserDataDir(dir),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(o.Width, o.Height),
	)
	actx, acancel := chromedp.NewExecAllocator(context.WithoutCancel(ctx), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	b := &Browser{ctx: bctx, cancel: bcancel, allocCancel: acancel, dir: dir, w: o.Width, h: o.Height}
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		b.Close()
		return nil, fmt.Errorf("browser: start %s: %w", o.ExecPath, err)
	}
	b.stop = context.AfterFunc(ctx, b.Close)
	return b, nil
}

// Close stops the browser and removes its profile. It is safe to call
// more than once.
func (b *Browser) Close() {
	b.once.Do(func() {
		if b.stop != nil {
			b.stop()
		}
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		_ = chromedp.Cancel(ctx) // closes the browser and waits for it to exit
		cancel()
		b.cancel()
		b.allocCancel()
		os.RemoveAll(b.dir)
	})
}

// Tab is one browser tab in a browser context of its own, so that its
// cookies (its session) are its own. It records the problems its pages
// report: console errors, uncaught exceptions and browser-log errors.
type Tab struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	problems []string
}

// NewTab opens a tab with its own cookies and the browser's viewport.
func (b *Browser) NewTab() (*Tab, error) {
	t := &Tab{}
	t.ctx, t.cancel = chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(t.listen))
	if err := chromedp.Do(t.ctx, chromedp.EmulateViewport(int64(b.w), int64(b.h))); err != nil {
		t.cancel()
		return nil, fmt.Errorf("browser: open a tab: %w", err)
	}
	return t, nil
}

// Close closes the tab and drops its cookies.
func (t *Tab) Close() { t.cancel() }

// Context is the tab's chromedp context, for actions this package does not
// wrap. A context derived from it with a timeout limits one action.
func (t *Tab) Context() context.Context { return t.ctx }

// listen runs in the tab's event loop, in the order events arrive, so
// that every problem reported before a command's answer is recorded when
// the command returns.
func (t *Tab) listen(ev any) {
	var p string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range ev.Args {
				if a.Value != nil {
					args = append(args, string(a.Value))
				} else {
					args = append(args, a.Description)
				}
			}
			p = "console." + string(ev.Type) + ": " + strings.Join(args, " ")
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		p = "uncaught exception: " + d.Text
		if d.Exception != nil {
			p += " " + d.Exception.Description
		}
		if d.URL != "" {
			p += fmt.Sprintf(" (%s:%d)", d.URL, d.LineNumber+1)
		}
	case *log.EventEntryAdded:
		if e := ev.Entry; e.Level == log.EntryLevelError {
			if e.Source == log.EntrySourceNetwork && strings.HasSuffix(e.URL, "/favicon.ico") {
				return // a page without <link rel=icon> (an error page) asks for it
			}
			p = "log " + string(e.Source) + ": " + e.Text
			if e.URL != "" {
				p += " (" + e.URL + ")"
			}
		}
	}
	if p != "" {
		t.mu.Lock()
		t.problems = append(t.problems, p)
		t.mu.Unlock()
	}
}

// Problems returns the problems recorded since the last call and forgets
// them. Run it after a command (Open, WaitCharts) so that everything the
// browser reported before it has arrived.
func (t *Tab) Problems() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.problems
	t.problems = nil
	return p
}

// Page is a loaded document.
type Page struct {
	// Status is the HTTP status of the document (after redirects).
	Status int
	// URL is where the tab ended up.
	URL string
}

// Open loads u and returns its document's status once it has loaded.
func (t *Tab) Open(ctx context.Context, u string) (Page, error) {
	ctx, cancel := t.scope(ctx)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(u))
	if err != nil {
		return Page{}, fmt.Errorf("browser: open %s: %w", u, err)
	}
	return t.page(ctx, resp.Status)
}

// Do runs chromedp actions in the tab's page (filling a form's fields,
// say) that do not leave the page.
func (t *Tab) Do(ctx context.Context, actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := t.scope(ctx)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		return fmt.Errorf("browser: %w", err)
	}
	return nil
}

// Follow runs chromedp actions that load another page (clicking a link
// or a form's button) and returns that page's document status (after
// redirects) once it has loaded.
func (t *Tab) Follow(ctx context.Context, actions ...chromedp.Action[chromedp.Void]) (Page, error) {
	ctx, cancel := t.scope(ctx)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		return Page{}, fmt.Errorf("browser: follow: %w", err)
	}
	return t.page(ctx, resp.Status)
}

func (t *Tab) page(ctx context.Context, status int64) (Page, error) {
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return Page{}, fmt.Errorf("browser: location: %w", err)
	}
	return Page{Status: int(status), URL: loc}, nil
}

// scope derives a context for one action from the tab's context that also
// ends with ctx (deadlines and cancellation), without closing the tab.
func (t *Tab) scope(ctx context.Context) (context.Context, context.CancelFunc) {
	c, cancel := context.WithCancel(t.ctx)
	if dl, ok := ctx.Deadline(); ok {
		c, cancel = context.WithDeadline(t.ctx, dl)
	}
	stop := context.AfterFunc(ctx, cancel)
	return c, func() { stop(); cancel() }
}

// SignIn signs in at base (the dashboard's root URL) through the sign-in
// form as a person would: it loads /login, types key and submits. It
// returns the page the server sent the tab to (the role's home), or an
// error wrapping ErrSignIn when the server refused the key.
func (t *Tab) SignIn(ctx context.Context, base, key string) (Page, error) {
	ctx, cancel := t.scope(ctx)
	defer cancel()
	login := strings.TrimSuffix(base, "/") + "/login"
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(login))
	if err != nil {
		return Page{}, fmt.Errorf("browser: open %s: %w", login, err)
	}
	if resp.Status != 200 {
		return Page{}, fmt.Errorf("browser: %s answered %d %s, want the sign-in form", login, resp.Status, resp.StatusText)
	}
	const field = `form[action="/login"] input[name="key"]`
	resp, err = chromedp.RunResponse(ctx,
		chromedp.SendKeys(chromedp.CSS(field), key),
		chromedp.Submit(chromedp.CSS(field)),
	)
	if err != nil {
		return Page{}, fmt.Errorf("browser: sign in at %s: %w", login, err)
	}
	p, err := t.page(ctx, resp.Status)
	if err != nil {
		return Page{}, err
	}
	if u, err := url.Parse(p.URL); err != nil || u.Path == "/login" || p.Status != 200 {
		msg, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("error")||document.body).innerText`))
		return p, fmt.Errorf("%w at %s (HTTP %d): %s", ErrSignIn, login, p.Status, strings.TrimSpace(msg))
	}
	return p, nil
}

// WaitCharts waits until every chart of the page (an element of class
// "chart") says it has been drawn (data-drawn="true"), or timeout.
func (t *Tab) WaitCharts(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := t.scope(ctx)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](
		`Array.from(document.querySelectorAll(".chart")).every(e => e.dataset.drawn === "true")`,
		chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(25*time.Millisecond)))
	if err != nil {
		left, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](
			`Array.from(document.querySelectorAll(".chart")).filter(e => e.dataset.drawn !== "true").map(e => e.id || e.className)`))
		return fmt.Errorf("browser: charts not drawn within %s %v: %w", timeout, left, err)
	}
	return nil
}

// Eval evaluates a JavaScript expression in the page and decodes its value
// into T.
func Eval[T any](ctx context.Context, t *Tab, expr string) (T, error) {
	ctx, cancel := t.scope(ctx)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		return v, fmt.Errorf("browser: evaluate %q: %w", expr, err)
	}
	return v, nil
}

// WaitFor polls a JavaScript expression until it is truthy, or timeout.
func (t *Tab) WaitFor(ctx context.Context, expr string, timeout time.Duration) error {
	ctx, cancel := t.scope(ctx)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(25*time.Millisecond))); err != nil {
		return fmt.Errorf("browser: waiting for %s: %w", expr, err)
	}
	return nil
}

// Screenshot returns a PNG of the page: the whole page when full, else
// the viewport.
func (t *Tab) Screenshot(ctx context.Context, full bool) ([]byte, error) {
	ctx, cancel := t.scope(ctx)
	defer cancel()
	var shot chromedp.Action[[]byte] = chromedp.CaptureScreenshot()
	if full {
		shot = chromedp.FullScreenshot(100) // 100: PNG
	}
	b, err := chromedp.Run(ctx, shot)
	if err != nil {
		return nil, fmt.Errorf("browser: screenshot: %w", err)
	}
	return b, nil
}
