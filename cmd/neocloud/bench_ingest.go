package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/neocloud/neocloud/internal/api"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/store"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/unit"
)

// IngestBench is the report of bench ingest.
type IngestBench struct {
	Mode             string  `json:"mode"`
	Nodes            int     `json:"nodes"`
	GPUsPerNode      int     `json:"gpus_per_node"`
	Readings         int64   `json:"readings"`
	Seconds          float64 `json:"seconds"`
	GPUSamplesPerSec float64 `json:"gpu_samples_per_sec"`
	Cores            int     `json:"cores"`
	PerCore          float64 `json:"gpu_samples_per_sec_per_core"`
	CPUSeconds       float64 `json:"cpu_seconds"`
	// HTTP mode: the server on this machine, pushed to by Clients agents.
	DB            string  `json:"db,omitempty"`
	Clients       int     `json:"clients,omitempty"`
	BatchReadings int     `json:"batch_readings,omitempty"`
	Batches       int64   `json:"batches,omitempty"`
	P50Ms         float64 `json:"push_p50_ms,omitempty"`
	P99Ms         float64 `json:"push_p99_ms,omitempty"`
	Accepted      int64   `json:"accepted,omitempty"`
	Refused       int64   `json:"refused,omitempty"`
	// Required is what the fleet produces (nodes × GPUs every 10 s);
	// Headroom is the sustained rate over it.
	RequiredPerSec float64 `json:"required_per_sec"`
	Headroom       float64 `json:"headroom"`
	TargetPerCore  float64 `json:"target_per_sec_per_core,omitempty"`
	WithinTarget   bool    `json:"within_target"`
}

// benchBatch returns one scrape of nodes as a batch: gpus readings per
// node at t, with utilization and energy that move from round to round.
func benchBatch(id string, nodes []string, gpus int, t time.Time, seq int64) meter.Batch {
	b := meter.Batch{ID: id, Agent: "bench", Readings: make([]meter.Reading, 0, len(nodes)*gpus)}
	for _, n := range nodes {
		for g := range gpus {
			b.Readings = append(b.Readings, meter.Reading{Node: n, GPU: g, Time: t, UtilPct: 40 + int(seq+int64(g))%60,
				PowerMW: 550_000, EnergyMJ: 1_000_000 + seq*5_500_000, TempC: 60})
		}
	}
	return b
}

// noSamples is meter.Samples for the in-process bench: readings come in
// time order, so the ledger's cache answers and nothing is read back.
type noSamples struct{}

func (noSamples) Last(meter.GPU) (meter.Point, bool, error) { return meter.Point{}, false, nil }
func (noSamples) Around(meter.GPU, int64) (meter.Point, bool, meter.Point, bool, bool, error) {
	return meter.Point{}, false, meter.Point{}, false, false, errors.New("bench: readings out of order")
}
func (noSamples) Put(meter.GPU, meter.Point) error { return nil }

type benchHolders map[int64][]meter.Span

func (h benchHolders) Spans(node int64, from, to int64, dst []meter.Span) []meter.Span {
	for _, s := range h[node] {
		if s.From < to && from < s.To {
			dst = append(dst, s)
		}
	}
	return dst
}

func newBenchIngestCmd(e *env) *cobra.Command {
	var nodes, gpus, clients, perBatch int
	var duration time.Duration
	var useHTTP bool
	var db string
	cmd := &cobra.Command{
		Use:   "ingest",
		Short: "Telemetry ingestion: parse + attribute in-process, or pushes over HTTP into a server on SQLite",
		Long: `bench ingest measures telemetry ingestion on a uniform fleet (default 30,000
nodes of 8 GPUs, 70% of them leased).

Without --http: the CSV wire format is decoded and every reading attributed
(holder lookup, exact pair contributions to the hourly rollup) on one
goroutine, with no store: the per-core rate of the ingestion path.
Target: >= 1,000,000 GPU readings per second per core.

With --http: a server (the real API, engine and store: a temporary SQLite
file unless --db names one) listens on 127.0.0.1, and --clients agents push
batches of --batch-nodes nodes each over HTTP, as fast as it answers, for
--duration. The fleet produces nodes × GPUs / 10 s readings per second; the
report gives the sustained rate and the headroom over that.

  neocloud bench ingest -o json
  neocloud bench ingest --http --duration 60s -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodes < 1 || nodes > 200_000 || gpus < 1 || gpus > 8 || perBatch < 1 || clients < 1 || clients > 1024 {
				return fmt.Errorf("--nodes 1..200000, --gpus 1..8, --batch-nodes >= 1, --clients 1..1024")
			}
			names := make([]string, nodes)
			for i := range names {
				names[i] = fmt.Sprintf("uniform-n%06d", i+1)
			}
			var r IngestBench
			var err error
			if useHTTP {
				r, err = benchIngestHTTP(cmd.Context(), e, names, gpus, perBatch, clients, duration, db)
			} else {
				r, err = benchIngestLocal(names, gpus, perBatch, duration)
			}
			if err != nil {
				return err
			}
			r.Nodes, r.GPUsPerNode, r.Cores = nodes, gpus, runtime.GOMAXPROCS(0)
			r.RequiredPerSec = float64(nodes*gpus) / 10
			r.Headroom = r.GPUSamplesPerSec / r.RequiredPerSec
			if r.Mode == "in-process" {
				r.TargetPerCore = 1_000_000
				r.WithinTarget = r.PerCore >= r.TargetPerCore
			} else {
				r.WithinTarget = r.Headroom >= 1 && r.Refused == 0
			}
			return e.print(r, func() [][]string {
				return [][]string{{"MODE", "READINGS", "SECONDS", "READINGS/S", "PER_CORE", "REQUIRED/S", "HEADROOM", "P99_MS", "OK"},
					{r.Mode, i64(r.Readings), f3(r.Seconds), fmt.Sprintf("%.0f", r.GPUSamplesPerSec), fmt.Sprintf("%.0f", r.PerCore),
						fmt.Sprintf("%.0f", r.RequiredPerSec), fmt.Sprintf("%.2fx", r.Headroom), f3(r.P99Ms), fmt.Sprint(r.WithinTarget)}}
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&nodes, "nodes", 30_000, "nodes in the uniform fleet")
	f.IntVar(&gpus, "gpus", 8, "GPUs per node")
	f.IntVar(&perBatch, "batch-nodes", 32, "nodes per pushed batch (one agent per leaf group of 32)")
	f.IntVar(&clients, "clients", 16, "concurrent pushing agents (--http)")
	f.DurationVar(&duration, "duration", 20*time.Second, "how long to push (--http), or at least how long to parse")
	f.BoolVar(&useHTTP, "http", false, "push over HTTP into a server on SQLite instead of parsing in-process")
	f.StringVar(&db, "db", "", "store for --http (default: a temporary SQLite file)")
	return cmd
}

// benchIngestLocal decodes and attributes pre-encoded batches, scrape
// after scrape, on one goroutine for at least d.
func benchIngestLocal(names []string, gpus, perBatch int, d time.Duration) (IngestBench, error) {
	refs := make(map[string]meter.NodeRef, len(names))
	h := benchHolders{}
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i, n := range names {
		refs[n] = meter.NodeRef{Ordinal: int64(i + 1), Pool: "bench/H100-SXM"}
		if i%10 < 7 { // 70% leased, a lease per leaf group
			h[int64(i+1)] = []meter.Span{{ID: fmt.Sprintf("a%d", i/32), From: start.UnixMilli(), To: start.Add(720 * time.Hour).UnixMilli(),
				LeaseID: fmt.Sprintf("ls_%d", i/32), TenantID: "bench"}}
		}
	}
	l, err := meter.NewLedger(meter.Config{})
	if err != nil {
		return IngestBench{}, err
	}
	// One scrape of the fleet, encoded as the agents would push it; the
	// timestamp is rewritten per round so that every round is new data.
	var bodies [][]byte
	for i := 0; i < len(names); i += perBatch {
		var buf bytes.Buffer
		if err := meter.EncodeCSV(&buf, benchBatch(fmt.Sprintf("b%d", i), names[i:min(i+perBatch, len(names))], gpus, start, 0)); err != nil {
			return IngestBench{}, err
		}
		bodies = append(bodies, buf.Bytes())
	}
	stamp := []byte(fmt.Sprint(start.UnixMilli()))
	interned := map[string]string{}
	acc := &meter.Acc{}
	var n int64
	var elapsed, cpu time.Duration
	for round := int64(1); elapsed < d || round < 3; round++ {
		t := start.Add(time.Duration(round) * 10 * time.Second)
		next := []byte(fmt.Sprint(t.UnixMilli()))
		now := t.UnixMilli() + 1000
		for i, body := range bodies {
			// Same length: the timestamp has 13 digits for centuries.
			bodies[i] = bytes.ReplaceAll(body, stamp, next)
		}
		stamp = next
		t0, c0 := time.Now(), cpuTime()
		for _, body := range bodies {
			b, err := meter.DecodeCSV(body, interned)
			if err != nil {
				return IngestBench{}, err
			}
			for _, rd := range b.Readings {
				ref := refs[rd.Node]
				if _, err := l.Apply(noSamples{}, h, ref, meter.GPU{Node: ref.Ordinal, Index: rd.GPU}, meter.PointOf(rd), now, acc); err != nil {
					return IngestBench{}, err
				}
			}
			n += int64(len(b.Readings))
		}
		elapsed += time.Since(t0) // the timestamp rewrite is not ingestion
		cpu += cpuTime() - c0
		acc.Reset()
	}
	r := IngestBench{Mode: "in-process", Readings: n, Seconds: elapsed.Seconds(), CPUSeconds: cpu.Seconds()}
	r.GPUSamplesPerSec = float64(n) / elapsed.Seconds()
	// Per core: per second of CPU the process used (the work is one
	// goroutine; the garbage collector's share on the other core counts
	// too), so that a busy machine does not understate it.
	r.PerCore = float64(n) / cpu.Seconds()
	return r, nil
}

// benchIngestHTTP runs a server on a store and pushes to it.
func benchIngestHTTP(ctx context.Context, e *env, names []string, gpus, perBatch, clients int, d time.Duration, db string) (IngestBench, error) {
	if db == "" {
		dir, err := os.MkdirTemp("", "neocloud-bench-ingest-")
		if err != nil {
			return IngestBench{}, err
		}
		defer os.RemoveAll(dir)
		db = "sqlite:" + filepath.Join(dir, "bench.db")
	}
	st, err := store.Open(ctx, db)
	if err != nil {
		return IngestBench{}, err
	}
	defer st.Close()
	eng, err := engine.New(engine.Config{Store: st})
	if err != nil {
		return IngestBench{}, err
	}
	defer eng.Close()
	admin := tenant.Principal{KeyID: "bench", Role: tenant.OperatorAdmin}
	spec, err := fleet.Uniform(len(names))
	if err != nil {
		return IngestBench{}, err
	}
	if _, err := eng.ApplyFleet(ctx, admin, spec, false); err != nil {
		return IngestBench{}, err
	}
	all, err := eng.Nodes(ctx, engine.NodeFilter{Limit: len(names) + 1})
	if err != nil {
		return IngestBench{}, err
	}
	names = names[:0]
	pool := ""
	for _, n := range all {
		names = append(names, n.Name)
		pool = n.PoolID()
	}
	slices.Sort(names)
	// 70% of the fleet leased from now for a day: readings from then on
	// are attributed to it.
	if _, err := eng.CreateTenant(ctx, admin, tenant.Tenant{ID: "bench"}); err != nil && !errors.Is(err, tenant.ErrExists) {
		return IngestBench{}, err
	}
	now := time.Now().UTC()
	if _, err := eng.RequestLease(ctx, admin, "bench", lease.Request{Kind: lease.Reservation, Pool: pool,
		Start: now.Truncate(time.Hour).Add(time.Hour), End: now.Truncate(time.Hour).Add(25 * time.Hour),
		GPUs: unit.GPUs(len(names) * gpus * 7 / 10 / gpus * gpus)}); err != nil {
		return IngestBench{}, fmt.Errorf("bench lease: %w", err)
	}
	_, secret, err := eng.CreateKey(ctx, admin, engine.KeyRequest{Role: tenant.OperatorAgent, Name: "bench-agent"})
	if err != nil {
		return IngestBench{}, err
	}
	srv := &http.Server{Handler: api.New(api.Config{Engine: eng, Logger: slog.New(slog.DiscardHandler)}), ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return IngestBench{}, err
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/v1/telemetry"
	fmt.Fprintf(e.stderr, "bench ingest: %d nodes applied; pushing for %s with %d clients to %s\n", len(names), d, clients, url)

	// Work: scrape rounds 10 s apart starting half an hour ago, each cut
	// into batches of perBatch nodes; clients take batches in order.
	type job struct {
		round int64
		first int
	}
	jobs := make(chan job, clients)
	stop := make(chan struct{})
	go func() {
		defer close(jobs)
		for round := int64(0); ; round++ {
			for i := 0; i < len(names); i += perBatch {
				select {
				case jobs <- job{round, i}:
				case <-stop:
					return
				}
			}
		}
	}()
	var readings, batches, accepted, refused atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	began := now.Add(-30 * time.Minute)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	var firstErr atomic.Value
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var buf bytes.Buffer
			for j := range jobs {
				if time.Now().After(deadline) {
					break
				}
				nodes := names[j.first:min(j.first+perBatch, len(names))]
				b := benchBatch(fmt.Sprintf("c%d-r%d-n%d", c, j.round, j.first), nodes, gpus, began.Add(time.Duration(j.round)*10*time.Second), j.round)
				buf.Reset()
				_ = meter.EncodeCSV(&buf, b)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(buf.Bytes()))
				req.Header.Set("Content-Type", meter.CSVContentType)
				req.Header.Set("Authorization", "Bearer "+secret)
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					refused.Add(1)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mine = append(mine, time.Since(t0))
				if resp.StatusCode != http.StatusOK {
					firstErr.CompareAndSwap(nil, fmt.Errorf("push: %d %s", resp.StatusCode, strings.TrimSpace(string(body))))
					refused.Add(1)
					continue
				}
				batches.Add(1)
				readings.Add(int64(len(b.Readings)))
				if bytes.Contains(body, []byte(`"accepted":`+fmt.Sprint(len(b.Readings)))) {
					accepted.Add(int64(len(b.Readings)))
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	t0, c0 := time.Now(), cpuTime()
	wg.Wait()
	secs := time.Since(t0).Seconds()
	cpu := cpuTime() - c0
	close(stop)
	for range jobs {
	}
	if err, ok := firstErr.Load().(error); ok && err != nil {
		fmt.Fprintf(e.stderr, "bench ingest: first error: %v\n", err)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	r := IngestBench{Mode: "http", DB: strings.SplitN(store.Redact(db), ":", 2)[0], Clients: clients, BatchReadings: perBatch * gpus,
		Readings: readings.Load(), Batches: batches.Load(), Seconds: secs, Accepted: accepted.Load(), Refused: refused.Load(),
		P50Ms: pct(0.50), P99Ms: pct(0.99)}
	r.GPUSamplesPerSec = float64(r.Readings) / secs
	r.CPUSeconds = cpu.Seconds()
	r.PerCore = float64(r.Readings) / cpu.Seconds() // server and agents together
	return r, nil
}

// cpuTime returns the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
