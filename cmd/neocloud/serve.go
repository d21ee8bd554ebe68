package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/neocloud/neocloud/internal/api"
	"github.com/neocloud/neocloud/internal/clock"
	"github.com/neocloud/neocloud/internal/egress"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/store"
	"github.com/neocloud/neocloud/internal/web"
	"github.com/neocloud/neocloud/internal/webhook"
)

type serveOptions struct {
	db           string
	listen       string
	data         string
	adminKeyFile string
	logFormat    string
	logLevel     string
	clock        clock.Clock // nil: the wall clock (the demo sets an accelerated one)
	policy       string      // --policy file: spot policies and the wipe time
	secure       bool        // --secure-cookies: the dashboard's cookies are Secure (served over HTTPS)
	// Webhook egress: ranges a webhook may reach although blocked, and
	// whether plain http URLs are allowed.
	webhookAllowCIDR []string
	webhookAllowHTTP bool
}

func (o *serveOptions) flags(cmd *cobra.Command, defaultData string) {
	f := cmd.Flags()
	f.StringVar(&o.db, "db", "", "store: sqlite:PATH or postgres://user@host/db (default sqlite:DATA/neocloud.db)")
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to serve the API on")
	f.StringVar(&o.data, "data", defaultData, "data directory: the SQLite file and the bootstrap admin key")
	f.StringVar(&o.adminKeyFile, "admin-key-file", "", "where the first operator-admin key is written on an empty store (default DATA/admin.key)")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.BoolVar(&o.secure, "secure-cookies", false, "mark the dashboard's session cookies Secure: set it when clients reach the server over HTTPS (a TLS proxy in front)")
	f.StringSliceVar(&o.webhookAllowCIDR, "webhook-allow-cidr", nil, "let webhooks reach this range (CIDR or address; repeat or comma-separate) although it is blocked: loopback, private, link-local, unique-local, CGNAT, metadata; see docs/guide.md")
	f.BoolVar(&o.webhookAllowHTTP, "webhook-allow-http", false, "accept plain http webhook URLs (https only by default)")
	f.StringVar(&o.policy, "policy", "", "YAML file of spot policies by GPU model or pool (base price, curve, notice tiers, buffer) and the wipe time (sanitize); see docs/spot-reclaim.md")
}

func newServeCmd(e *env) *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Neocloud server (API) on SQLite or PostgreSQL",
		Long: `serve runs the API. On first start with an empty store it writes an
operator-admin key to DATA/admin.key (mode 0600) and prints the path, never
the key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			srv, err := start(cmd.Context(), e, o)
			if err != nil {
				return err
			}
			return srv.wait(cmd.Context())
		},
	}
	o.flags(cmd, "neocloud-data")
	return cmd
}

// running is a started server.
type running struct {
	eng      *engine.Engine
	st       engine.Store
	http     *http.Server
	url      string
	adminKey string // path of the bootstrap key file, or "" when keys existed
	errc     chan error
	log      *slog.Logger
	// stopDispatch stops the webhook dispatcher and waits for it.
	stopDispatch func()
	// egress is where webhooks may connect: the operator's policy, and
	// never this server's own API.
	egress egress.Policy
}

// selfAddrs returns the addresses the API listens on (every interface
// address when it listens on all), so that no webhook is sent to it.
func selfAddrs(a net.Addr) []netip.AddrPort {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return nil
	}
	if !ap.Addr().IsUnspecified() {
		return []netip.AddrPort{ap}
	}
	out := []netip.AddrPort{netip.AddrPortFrom(netip.IPv4Unspecified(), ap.Port()), netip.AddrPortFrom(netip.IPv6Unspecified(), ap.Port()),
		netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap.Port()), netip.AddrPortFrom(netip.IPv6Loopback(), ap.Port())}
	addrs, _ := net.InterfaceAddrs()
	for _, ia := range addrs {
		if p, err := netip.ParsePrefix(ia.String()); err == nil {
			out = append(out, netip.AddrPortFrom(p.Addr(), ap.Port()))
		}
	}
	return out
}

func newLogger(o serveOptions, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", o.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", o.logFormat)
}

// start opens the store, bootstraps the first key and starts serving; it
// returns once the listener is bound.
func start(ctx context.Context, e *env, o serveOptions) (*running, error) {
	logger, err := newLogger(o, e.stderr)
	if err != nil {
		return nil, err
	}
	if o.db == "" {
		o.db = "sqlite:" + filepath.Join(o.data, "neocloud.db")
	}
	if strings.HasPrefix(o.db, "sqlite:") {
		if err := os.MkdirAll(filepath.Dir(strings.TrimPrefix(o.db, "sqlite:")), 0o700); err != nil {
			return nil, fmt.Errorf("--data: %w", err)
		}
	}
	cfg := engine.Config{Logger: logger, Clock: o.clock, Egress: egress.Policy{AllowHTTP: o.webhookAllowHTTP}}
	for _, c := range o.webhookAllowCIDR {
		p, err := egress.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("--webhook-allow-cidr %w", err)
		}
		cfg.Egress.Allow = append(cfg.Egress.Allow, p)
	}
	if o.policy != "" {
		if cfg.Sanitize, cfg.Spot, err = readPolicy(o.policy); err != nil {
			return nil, err
		}
	}
	st, err := store.Open(ctx, o.db)
	if err != nil {
		return nil, err
	}
	cfg.Store = st
	eng, err := engine.New(cfg)
	if err != nil {
		st.Close()
		return nil, err
	}
	r := &running{eng: eng, st: st, log: logger, errc: make(chan error, 1)}
	keyPath := o.adminKeyFile
	if keyPath == "" {
		keyPath = filepath.Join(o.data, "admin.key")
	}
	issued, err := eng.Bootstrap(ctx, func(secret string) error { return writeSecret(keyPath, secret) })
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("admin key %s: %w", keyPath, err)
	}
	if issued {
		r.adminKey = keyPath
		fmt.Fprintf(e.stdout, "operator-admin key written to %s (mode 0600); use it with --token-file %s\n", keyPath, keyPath)
	}
	// Rebuild the calendars and placement index now, not on the first
	// request.
	t := time.Now()
	if err := eng.LoadCapacity(ctx); err != nil {
		st.Close()
		return nil, err
	}
	logger.Info("capacity loaded", "seconds", time.Since(t).Seconds())
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("--listen %s: %w (choose another address, e.g. --listen 127.0.0.1:0)", o.listen, err)
	}
	r.url = "http://" + ln.Addr().String()
	r.egress = cfg.Egress
	r.egress.Self = selfAddrs(ln.Addr())
	dash, err := web.New(web.Config{Engine: eng, Logger: logger, Secure: o.secure})
	if err != nil {
		ln.Close()
		st.Close()
		return nil, err
	}
	h := api.New(api.Config{Engine: eng, Logger: logger, Web: dash})
	r.http = api.HTTPServer(o.listen, h)
	go func() { r.errc <- r.http.Serve(ln) }()
	r.startDispatcher()
	logger.Info("serving", "url", r.url, "db", store.Redact(o.db))
	// The line scripts and tests read to learn the bound address (--listen
	// 127.0.0.1:0 picks a free port).
	fmt.Fprintf(e.stdout, "listening on %s\n", r.url)
	return r, nil
}

// startDispatcher runs the webhook dispatcher on the engine's clock until
// stopDispatch.
func (r *running) startDispatcher() {
	ctx, cancel := context.WithCancel(context.Background())
	d := webhook.NewDispatcher(webhook.Config{Source: r.eng, Changed: r.eng.EventsChanged, Clock: r.eng.Clock(),
		Egress: r.egress, Logger: r.log})
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	// The engine's tick: spot releases, reclaims and wipes follow the
	// clock even when no command comes; so do the meter's health checks.
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		t := time.NewTicker(tickEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, err := r.eng.Tick(ctx); err != nil && ctx.Err() == nil {
					r.log.Error("tick", "err", err)
				}
				// Spot is billed at the price in effect: keep its history.
				if _, err := r.eng.RecordSpotPrices(ctx); err != nil && ctx.Err() == nil {
					r.log.Error("record spot prices", "err", err)
				}
				// Silent nodes, and the hourly prune of old readings.
				if fs, err := r.eng.MeterTick(ctx); err != nil && ctx.Err() == nil {
					r.log.Error("meter tick", "err", err)
				} else {
					for _, f := range fs {
						r.log.Warn("health", "node", f.Node, "rule", f.Rule, "severity", string(f.Severity), "detail", f.Detail)
					}
				}
			}
		}
	}()
	r.stopDispatch = func() {
		cancel()
		<-done
		<-ticked
	}
}

// tickEvery is how often (wall clock) the server ticks the engine.
const tickEvery = 5 * time.Second

// close stops everything at once, for a server that failed to start.
func (r *running) close() {
	r.http.Close()
	r.stopDispatch()
	r.st.Close()
}

// wait serves until ctx ends, then shuts down gracefully.
func (r *running) wait(ctx context.Context) error {
	var err error
	select {
	case err = <-r.errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = r.http.Shutdown(sctx)
		cancel()
	}
	r.stopDispatch()
	if cerr := r.st.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	r.log.Info("stopped")
	return err
}

// writeSecret writes a key file readable by its owner only, atomically.
func writeSecret(path, secret string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".key-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(secret + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// The dashboard's live events are streams: the API's server exempts them
// from its request timeout and ends them at shutdown.
var _ api.Streamer = (*web.Server)(nil)
