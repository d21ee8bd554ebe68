package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/neocloud/neocloud/internal/web/browser"
)

const (
	defaultShotPages       = "fleet,capacity,sellable,leases,lease,events,revenue,invoices"
	defaultTenantShotPages = "leases,lease,usage,quotes,spot,events,invoices"
)

// shotItems are the page names that stand for a list's first item: the
// page the first link of the list leads to.
var shotItems = map[string]string{"lease": "/leases", "invoice": "/invoices", "tenant": "/tenants"}

func newScreenshotsCmd(e *env) *cobra.Command {
	var (
		out, pages, tenantPages, tenantTokenFile string
		width, height                            int
		full                                     bool
		timeout                                  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "screenshots --out DIR",
		Short: "Save PNG screenshots of the dashboard's pages (headless Chromium)",
		Long: `screenshots signs in to the dashboard at --server with the operator key
(--token or --token-file) through the sign-in form of a headless Chromium,
loads each page of --pages, waits until its charts are drawn and saves a PNG
of it in --out (full page unless --full=false), printing each file written.
With --tenant-token-file it also signs in with that tenant key and saves
--tenant-pages as tenant-NAME.png.

A page is a name: fleet, sellable, leases, events, revenue, invoices,
tenants, usage, quotes, spot (the page /NAME); capacity (the first pool over
30 days); lease, invoice, tenant (the first item of /leases, /invoices,
/tenants); or a path starting with /, e.g. "/capacity?span=1y".

It needs Chromium (Debian/Ubuntu: apt-get install chromium; NEOCLOUD_CHROMIUM
names another executable). A page that does not answer 200 is an error;
console errors the browser reports are printed as warnings.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out: give the directory to write the PNGs to")
			}
			if e.token == "" {
				return errors.New("no API key: give the operator's with --token or --token-file (e.g. DATA/admin.key)")
			}
			if width < 320 || height < 200 {
				return fmt.Errorf("--width %d --height %d: want at least 320×200", width, height)
			}
			for _, name := range append(split(pages), split(tenantPages)...) {
				if !strings.HasPrefix(name, "/") && unsafeName.MatchString(name) {
					return fmt.Errorf("--pages: %q: want a page name or a path starting with /", name)
				}
			}
			var tenantKey string
			if tenantTokenFile != "" {
				b, err := os.ReadFile(tenantTokenFile)
				if err != nil {
					return fmt.Errorf("--tenant-token-file: %w", err)
				}
				tenantKey = strings.TrimSpace(string(b))
			}
			base, err := url.Parse(e.server)
			if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
				return fmt.Errorf("--server %q: want an http(s) URL", e.server)
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			exe, err := browser.Find(e.getenv("NEOCLOUD_CHROMIUM"))
			if err != nil {
				return err
			}
			b, err := browser.Start(cmd.Context(), browser.Options{ExecPath: exe, Width: width, Height: height})
			if err != nil {
				return err
			}
			defer b.Close()
			s := &shooter{e: e, b: b, base: strings.TrimSuffix(base.String(), "/"), out: out, full: full, timeout: timeout}
			if err := s.shoot(cmd.Context(), e.token, "", split(pages)); err != nil {
				return err
			}
			if tenantKey != "" {
				return s.shoot(cmd.Context(), tenantKey, "tenant-", split(tenantPages))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&out, "out", "", "directory to write the PNGs to (created if missing)")
	fl.StringVar(&pages, "pages", defaultShotPages, "operator pages to shoot, comma-separated (see above)")
	fl.StringVar(&tenantPages, "tenant-pages", defaultTenantShotPages, "tenant pages to shoot with --tenant-token-file")
	fl.StringVar(&tenantTokenFile, "tenant-token-file", "", "file holding a tenant's API key: also shoot its pages")
	fl.IntVar(&width, "width", 1280, "viewport width, CSS pixels")
	fl.IntVar(&height, "height", 800, "viewport height, CSS pixels")
	fl.BoolVar(&full, "full", true, "the whole page (false: the viewport only)")
	fl.DurationVar(&timeout, "timeout", 30*time.Second, "the most one page may take to load and draw")
	return cmd
}

func split(list string) []string {
	var out []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

type shooter struct {
	e       *env
	b       *browser.Browser
	base    string
	out     string
	full    bool
	timeout time.Duration
}

// shoot signs in with key in a fresh tab and saves each page as
// prefix+NAME.png.
func (s *shooter) shoot(ctx context.Context, key, prefix string, pages []string) error {
	tab, err := s.b.NewTab()
	if err != nil {
		return err
	}
	defer tab.Close()
	sctx, cancel := context.WithTimeout(ctx, s.timeout)
	_, err = tab.SignIn(sctx, s.base, key)
	cancel()
	if errors.Is(err, browser.ErrSignIn) {
		return fmt.Errorf("%w: check the key (--token, --token-file, --tenant-token-file) and --server", err)
	}
	if err != nil {
		return err
	}
	tab.Problems()
	for _, name := range pages {
		if err := s.page(ctx, tab, prefix, name); err != nil {
			return err
		}
	}
	return nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func (s *shooter) page(ctx context.Context, tab *browser.Tab, prefix, name string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	path, file := "/"+name, name
	switch list, item := shotItems[name]; {
	case strings.HasPrefix(name, "/"):
		path, file = name, strings.Trim(unsafeName.ReplaceAllString(name, "-"), "-")
	case name == "capacity":
		path = "/capacity?span=30d"
	case item:
		if err := s.open(ctx, tab, list); err != nil {
			return err
		}
		href, err := browser.Eval[string](ctx, tab, fmt.Sprintf(`(document.querySelector('main a[href^="%s/"]') || {getAttribute: () => ""}).getAttribute("href")`, list))
		if err != nil {
			return err
		}
		if href == "" {
			return fmt.Errorf("page %s: %s links to no %s page to show", name, list, name)
		}
		path = href
	}
	if err := s.open(ctx, tab, path); err != nil {
		return err
	}
	if err := tab.WaitCharts(ctx, s.timeout); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, p := range tab.Problems() {
		fmt.Fprintf(s.e.stderr, "warning: %s: %s\n", path, p)
	}
	png, err := tab.Screenshot(ctx, s.full)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	dst := filepath.Join(s.out, prefix+file+".png")
	if err := os.WriteFile(dst, png, 0o644); err != nil {
		return err
	}
	fmt.Fprintln(s.e.stdout, dst)
	return nil
}

// open loads path and checks that it answered 200.
func (s *shooter) open(ctx context.Context, tab *browser.Tab, path string) error {
	p, err := tab.Open(ctx, s.base+path)
	if err != nil {
		return err
	}
	if p.Status != 200 {
		return fmt.Errorf("GET %s%s: HTTP %d, want 200", s.base, path, p.Status)
	}
	return nil
}
