package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/neocloud/neocloud/internal/clock"
	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/meter/dcgm"
)

// Defaults for the Config fields left zero.
const (
	DefaultInterval    = 10 * time.Second
	DefaultBufferMax   = 256 << 20
	DefaultPushTimeout = 30 * time.Second
	maxScrapeTimeout   = 5 * time.Second
)

// Config is what an Agent needs. Server, Name, BufferDir and a source
// (Scrape or Sources) are required; the other fields have defaults.
type Config struct {
	// Server is the Neocloud server's base URL; batches go to
	// {Server}/v1/telemetry.
	Server string
	// Token is the API key sent as "Authorization: Bearer {Token}".
	Token string
	// Name is the agent's name: 1-64 letters, digits, . _ -. It starts
	// every batch ID and is sent with each batch.
	Name string
	// Scrape are the DCGM exporters' /metrics URLs, read concurrently.
	Scrape []string
	// Sources are other sources of readings (NVML), read with the
	// exporters.
	Sources []Source
	// Interval is the time between two reads of the sources
	// (DefaultInterval when 0).
	Interval time.Duration
	// ScrapeTimeout bounds one read of one source (default: Interval,
	// at most 5s).
	ScrapeTimeout time.Duration
	// PushTimeout bounds one push (DefaultPushTimeout when 0).
	PushTimeout time.Duration
	// BufferDir is the spool: one file per batch not yet delivered, and
	// rejected/ for batches the server refused.
	BufferDir string
	// BufferMax bounds the spool's bytes (DefaultBufferMax when 0); past
	// it the oldest batches are dropped.
	BufferMax int64
	// RejectedMax bounds rejected/'s bytes (BufferMax/8 when 0); past it
	// the oldest rejected batches are deleted.
	RejectedMax int64
	// Mapping names the nodes of GPUs whose exporters' Hostname labels
	// are not node names; nil maps by Hostname.
	Mapping *dcgm.Mapping
	// HTTPClient scrapes and pushes (a new client when nil); requests
	// carry their own timeouts.
	HTTPClient *http.Client
	// Logger gets the agent's logs (discarded when nil).
	Logger *slog.Logger
	// Clock stamps the readings (the wall clock when nil).
	Clock clock.Clock
	// MetricsAddr, when set, is where Run serves /metrics (Prometheus)
	// and /healthz.
	MetricsAddr string
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Agent reads GPU telemetry and delivers it to the server; see the
// package comment. Make one with New and start it with Run.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	clock   clock.Clock
	client  *http.Client
	pushURL string
	pushFor string // pushURL without its password, for logs
	sources []Source
	bootID  string
	seq     uint64 // the last batch's sequence number; the read loop's own
	metrics *metrics
	stats   counters
	running atomic.Bool
	spool   atomic.Pointer[spool] // set by Run
}

// counters are the agent's running totals (see Stats).
type counters struct {
	scrapes, scrapeErrors, readings                             atomic.Int64
	spooled, pushed, rejected, dropped, pushErrors, spoolErrors atomic.Int64
	accepted, duplicates, tooLate, bytesPushed                  atomic.Int64
}

// Stats are an agent's totals since New, and the spool's size now.
type Stats struct {
	Scrapes      int64 // reads of a source
	ScrapeErrors int64 // reads that failed
	Readings     int64 // readings read and spooled

	BatchesSpooled  int64 // batches written to the spool
	BatchesPushed   int64 // batches the server took (2xx)
	BatchesRejected int64 // batches the server refused, moved to rejected/
	BatchesDropped  int64 // oldest batches dropped to keep the spool within BufferMax
	PushErrors      int64 // pushes to be retried: 401, 403, 408, 429, 5xx, network errors
	SpoolErrors     int64 // batches lost because the spool could not be written

	// ReadingsAccepted, ReadingsDuplicate and ReadingsTooLate add up the
	// server's answers.
	ReadingsAccepted, ReadingsDuplicate, ReadingsTooLate int64

	SpoolBytes   int64 // bytes in the spool now
	SpoolBatches int   // batches in the spool now
}

// New checks cfg, fills its defaults and returns an agent; it touches
// neither the disk nor the network.
func New(cfg Config) (*Agent, error) {
	var errs []error
	u, err := url.Parse(cfg.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("server %q: want an absolute http(s) URL", cfg.Server))
	}
	if !namePattern.MatchString(cfg.Name) {
		errs = append(errs, fmt.Errorf("name %q: want 1-64 letters, digits, . _ -", cfg.Name))
	}
	if cfg.BufferDir == "" {
		errs = append(errs, errors.New("buffer dir: required"))
	}
	if len(cfg.Scrape) == 0 && len(cfg.Sources) == 0 {
		errs = append(errs, errors.New("scrape: at least one exporter URL (or another source) is required"))
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Interval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("interval %s: want at least 100ms", cfg.Interval))
	}
	if cfg.ScrapeTimeout == 0 {
		cfg.ScrapeTimeout = min(cfg.Interval, maxScrapeTimeout)
	}
	if cfg.PushTimeout == 0 {
		cfg.PushTimeout = DefaultPushTimeout
	}
	if cfg.ScrapeTimeout < 0 || cfg.PushTimeout < 0 {
		errs = append(errs, errors.New("timeouts: must not be negative"))
	}
	if cfg.BufferMax == 0 {
		cfg.BufferMax = DefaultBufferMax
	}
	if cfg.BufferMax < 0 {
		errs = append(errs, fmt.Errorf("buffer max %d: must not be negative", cfg.BufferMax))
	}
	if cfg.RejectedMax == 0 {
		cfg.RejectedMax = cfg.BufferMax / 8
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, clock: cfg.Clock, client: cfg.HTTPClient}
	for i, raw := range cfg.Scrape {
		if slices.Contains(cfg.Scrape[:i], raw) {
			errs = append(errs, fmt.Errorf("scrape URL %d: the same as an earlier one", i+1))
			continue
		}
		x, err := newExporter(raw, cfg.HTTPClient, cfg.Mapping)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a.sources = append(a.sources, x)
	}
	a.sources = append(a.sources, cfg.Sources...)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	push := u.JoinPath("v1", "telemetry")
	a.pushURL, a.pushFor = push.String(), push.Redacted()
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	a.bootID = hex.EncodeToString(b[:])
	a.metrics = newMetrics(a)
	return a, nil
}

// BootID returns the random ID of this agent process, the middle part of
// its batch IDs.
func (a *Agent) BootID() string { return a.bootID }

// Stats returns the agent's counters.
func (a *Agent) Stats() Stats {
	c := &a.stats
	s := Stats{
		Scrapes: c.scrapes.Load(), ScrapeErrors: c.scrapeErrors.Load(), Readings: c.readings.Load(),
		BatchesSpooled: c.spooled.Load(), BatchesPushed: c.pushed.Load(), BatchesRejected: c.rejected.Load(),
		BatchesDropped: c.dropped.Load(), PushErrors: c.pushErrors.Load(), SpoolErrors: c.spoolErrors.Load(),
		ReadingsAccepted: c.accepted.Load(), ReadingsDuplicate: c.duplicates.Load(), ReadingsTooLate: c.tooLate.Load(),
	}
	if sp := a.spool.Load(); sp != nil {
		s.SpoolBytes, s.SpoolBatches = sp.size()
	}
	return s
}

// Run opens the spool, then reads the sources at once and every Interval
// and pushes what it spools, until ctx ends; batches a previous run left
// in the spool are pushed first. It returns nil once ctx has ended and
// every goroutine it started has stopped (a push in flight is abandoned:
// its batch stays spooled for the next run), or an error when the spool
// or MetricsAddr cannot be opened. Run may be called once.
func (a *Agent) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("agent: Run called twice")
	}
	sp, err := openSpool(a.cfg.BufferDir, a.cfg.BufferMax, a.cfg.RejectedMax)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	a.spool.Store(sp)
	bytes, batches := sp.size()
	a.log.Info("agent started", "agent", a.cfg.Name, "boot_id", a.bootID, "server", a.pushFor, "sources", len(a.sources),
		"interval", a.cfg.Interval.String(), "spooled_batches", batches, "spooled_bytes", bytes)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if a.cfg.MetricsAddr != "" {
		ln, err := net.Listen("tcp", a.cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("agent: metrics: %w", err)
		}
		srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
		a.log.Info("serving metrics", "addr", ln.Addr().String())
		wg.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("metrics server stopped", "error", err)
			}
		})
		wg.Go(func() {
			<-ctx.Done()
			sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer scancel()
			_ = srv.Shutdown(sctx)
		})
	}
	wg.Go(func() { a.push(ctx, sp) })

	tick := time.NewTicker(a.cfg.Interval)
	defer tick.Stop()
	for {
		a.collect(ctx, sp)
		select {
		case <-ctx.Done():
			cancel()
			wg.Wait()
			a.log.Info("agent stopped", "agent", a.cfg.Name)
			return nil
		case <-tick.C:
		}
	}
}

// collect reads every source concurrently and spools what they read as
// one batch (more when it exceeds meter.MaxBatchReadings).
func (a *Agent) collect(ctx context.Context, sp *spool) {
	at := a.clock.Now().UTC().Truncate(time.Millisecond)
	results := make([][]meter.Reading, len(a.sources))
	var wg sync.WaitGroup
	for i, src := range a.sources {
		wg.Go(func() {
			rctx, cancel := context.WithTimeout(ctx, a.cfg.ScrapeTimeout)
			defer cancel()
			rs, err := src.Read(rctx, at)
			if err == nil {
				// A source's readings are checked here, where the fault is
				// clear, rather than as a batch the server refuses.
				err = meter.Batch{ID: "check", Readings: rs}.Validate()
			}
			a.metrics.scrapes.WithLabelValues(src.Name()).Inc()
			a.stats.scrapes.Add(1)
			if err != nil {
				if ctx.Err() != nil {
					return // stopping
				}
				a.metrics.scrapeErrors.WithLabelValues(src.Name()).Inc()
				a.stats.scrapeErrors.Add(1)
				a.log.Warn("read failed", "source", src.Name(), "error", err)
				return
			}
			if len(rs) == 0 {
				a.log.Warn("source has no GPU readings", "source", src.Name())
			}
			results[i] = rs
		})
	}
	wg.Wait()
	var all []meter.Reading
	for _, rs := range results {
		all = append(all, rs...)
	}
	for len(all) > 0 {
		n := min(len(all), meter.MaxBatchReadings)
		a.spoolBatch(sp, all[:n])
		all = all[n:]
	}
}

// spoolBatch writes readings to the spool as a new batch.
func (a *Agent) spoolBatch(sp *spool, rs []meter.Reading) {
	a.seq++
	b := meter.Batch{ID: a.cfg.Name + ":" + a.bootID + ":" + strconv.FormatUint(a.seq, 10), Agent: a.cfg.Name, Readings: rs}
	var buf bytes.Buffer
	if err := meter.EncodeCSV(&buf, b); err != nil { // a bytes.Buffer does not fail
		a.log.Error("encode batch", "batch_id", b.ID, "error", err)
		return
	}
	dropped, err := sp.add(buf.Bytes())
	if err != nil {
		a.stats.spoolErrors.Add(1)
		a.log.Error("batch lost: cannot write the spool", "batch_id", b.ID, "readings", len(rs), "error", err)
		return
	}
	a.stats.spooled.Add(1)
	a.stats.readings.Add(int64(len(rs)))
	a.log.Debug("batch spooled", "batch_id", b.ID, "readings", len(rs), "bytes", buf.Len())
	if dropped > 0 {
		total := a.stats.dropped.Add(int64(dropped))
		bytes, batches := sp.size()
		a.log.Warn("spool overflow: dropped the oldest batches", "dropped", dropped, "dropped_total", total,
			"spool_bytes", bytes, "spool_batches", batches, "buffer_max", a.cfg.BufferMax)
	}
}
