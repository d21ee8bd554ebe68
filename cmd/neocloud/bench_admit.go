package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/neocloud/neocloud/internal/clock"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/store"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/workload"
)

// AdmitBench is the report of bench admit.
type AdmitBench struct {
	DB       string `json:"db"`
	Pool     string `json:"pool"`
	Nodes    int    `json:"nodes"`
	Requests int    `json:"requests"`
	Admitted int    `json:"admitted"`
	Refused  int    `json:"refused"`
	Errors   int    `json:"errors"`
	// RefusedBy counts refusals by reason (capacity, topology, power,
	// isolation).
	RefusedBy map[string]int `json:"refused_by"`
	// AllocationRows is how many allocation rows (runs of consecutive
	// nodes) the admitted leases were stored as.
	AllocationRows int     `json:"allocation_rows"`
	Pipeline       int     `json:"pipeline"`
	Seconds        float64 `json:"seconds"`
	RequestsPerSec float64 `json:"requests_per_sec"`
	P50Ms          float64 `json:"p50_ms"`
	P99Ms          float64 `json:"p99_ms"`
	MaxMs          float64 `json:"max_ms"`
	RebuildSec     float64 `json:"rebuild_seconds" doc:"A second engine on the same store rebuilding the calendars and placement index."`
	PeakRSSMB      float64 `json:"peak_rss_mb"`
	Cores          int     `json:"cores"`
	FirstError     string  `json:"first_error,omitempty"`
}

func newBenchAdmitCmd(e *env) *cobra.Command {
	var fleetFile, workloadFile, db, pool, cpuProfile, memProfile string
	var pipeline int
	cmd := &cobra.Command{
		Use:   "admit",
		Short: "Submit a reservation workload (CSV) through the engine with persistence on; report throughput and latency",
		Long: `bench admit applies a fleet file, then submits every request of a workload
(the CSV format of shared/workloads: id,nodes,start,duration_min) as a
reservation of whole nodes, in file order, through the engine with
persistence on: a temporary SQLite file unless --db names a store (use an
empty database). Up to --pipeline requests are in flight at once, so that the
engine can commit many in one transaction; the outcome is that of one-by-one
submission (requests are applied in file order). The engine's clock is set to
the hour of the workload's earliest start.

  neocloud fleet generate --preset uniform --nodes 32000 -f /tmp/uni.yaml
  neocloud bench admit --fleet /tmp/uni.yaml --workload shared/workloads/sample-4000n-1000r.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if pipeline < 1 || pipeline > 1_000_000 {
				return fmt.Errorf("--pipeline %d: must be between 1 and 1000000", pipeline)
			}
			spec, err := e.readFleetFile(fleetFile)
			if err != nil {
				return err
			}
			f, err := os.Open(workloadFile)
			if err != nil {
				return fmt.Errorf("--workload: %w", err)
			}
			reqs, err := workload.Parse(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("--workload %s: %w", workloadFile, err)
			}
			if len(reqs) == 0 {
				return fmt.Errorf("--workload %s: no requests", workloadFile)
			}
			if db == "" {
				dir, err := os.MkdirTemp("", "neocloud-bench-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				db = "sqlite:" + filepath.Join(dir, "bench.db")
			}
			st, err := store.Open(ctx, db)
			if err != nil {
				return err
			}
			defer st.Close()
			start := reqs[0].Start
			for _, r := range reqs {
				if r.Start.Before(start) {
					start = r.Start
				}
			}
			clk := clock.NewFake(start.Truncate(time.Hour))
			eng, err := engine.New(engine.Config{Store: st, Clock: clk})
			if err != nil {
				return err
			}
			defer eng.Close()
			admin := tenant.Principal{KeyID: "bench", Role: tenant.OperatorAdmin}
			res, err := eng.ApplyFleet(ctx, admin, spec, false)
			if err != nil {
				return err
			}
			pools, err := eng.Pools(ctx, "")
			if err != nil {
				return err
			}
			var gpusPerNode unit.GPUs
			for _, p := range pools {
				if pool == "" && len(pools) == 1 || p.ID == pool {
					pool, gpusPerNode = p.ID, p.GPUs/unit.GPUs(max(p.Nodes, 1))
				}
			}
			if gpusPerNode == 0 {
				ids := make([]string, len(pools))
				for i, p := range pools {
					ids[i] = p.ID
				}
				return fmt.Errorf("--pool %q: name one of the fleet's pools %v", pool, ids)
			}
			if _, err := eng.CreateTenant(ctx, admin, tenant.Tenant{ID: "bench", DisplayName: "bench admit"}); err != nil && !errors.Is(err, tenant.ErrExists) {
				return err
			}
			if err := eng.LoadCapacity(ctx); err != nil {
				return err
			}
			if held, err := eng.Leases(ctx, admin, engine.LeaseFilter{Pool: pool, Limit: 1}); err == nil && len(held) > 0 {
				fmt.Fprintf(e.stderr, "note: the database already holds leases in %s (an earlier run?): admissions will differ from a fresh database\n", pool)
			}
			// Start timing from a collected heap: applying the fleet and
			// loading capacity leave garbage that a running server has long
			// collected; otherwise its collection lands in the timed window
			// of a short workload.
			runtime.GC()

			if cpuProfile != "" {
				pf, err := os.Create(cpuProfile)
				if err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer pf.Close()
				if err := pprof.StartCPUProfile(pf); err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			if memProfile != "" {
				// Every allocation of the submission phase is sampled; the
				// profile is written when it ends.
				defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
				runtime.MemProfileRate = 1
			}
			r := AdmitBench{DB: strings.SplitN(store.Redact(db), ":", 2)[0], Pool: pool, Nodes: res.Nodes, Requests: len(reqs),
				Pipeline: pipeline, Cores: runtime.GOMAXPROCS(0), RefusedBy: map[string]int{}}
			lat := make([]time.Duration, len(reqs))
			type inflight struct {
				p  engine.Pending
				at time.Time
			}
			queue := make(chan inflight, pipeline)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := range reqs {
					in := <-queue
					v, err := in.p.Wait()
					lat[i] = time.Since(in.at)
					var ref *engine.Refusal
					switch {
					case err == nil:
						r.Admitted++
						r.AllocationRows += len(v.(engine.LeaseResult).Allocations)
					case errors.As(err, &ref):
						r.Refused++
						r.RefusedBy[ref.Reason]++
					default:
						r.Errors++
						if r.FirstError == "" {
							r.FirstError = fmt.Sprintf("%s: %v", reqs[i].ID, err)
						}
					}
				}
			}()
			t0 := time.Now()
			for _, w := range reqs {
				at := time.Now()
				p, err := eng.SubmitLease(ctx, admin, "bench", lease.Request{Kind: lease.Reservation, Pool: pool,
					Start: w.Start, End: w.End(), GPUs: unit.GPUs(w.Nodes) * gpusPerNode})
				if err != nil {
					return fmt.Errorf("request %s: %w", w.ID, err)
				}
				queue <- inflight{p: p, at: at}
			}
			<-done
			r.Seconds = time.Since(t0).Seconds()
			if cpuProfile != "" {
				pprof.StopCPUProfile() // the submission phase only, not the rebuild
			}
			if memProfile != "" {
				if err := writeHeapProfile(memProfile); err != nil {
					return err
				}
			}
			r.RequestsPerSec = float64(len(reqs)) / r.Seconds
			slices.Sort(lat)
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			r.P50Ms, r.P99Ms, r.MaxMs = ms(lat[len(lat)/2]), ms(lat[min(len(lat)-1, len(lat)*99/100)]), ms(lat[len(lat)-1])

			// Restart: a fresh engine rebuilds everything from the store.
			eng2, err := engine.New(engine.Config{Store: st, Clock: clk})
			if err != nil {
				return err
			}
			defer eng2.Close()
			t1 := time.Now()
			if err := eng2.LoadCapacity(context.WithoutCancel(ctx)); err != nil {
				return fmt.Errorf("rebuild: %w", err)
			}
			r.RebuildSec = time.Since(t1).Seconds()
			r.PeakRSSMB = peakRSSMB()
			return e.print(r, func() [][]string {
				return [][]string{
					{"DB", "NODES", "REQUESTS", "ADMITTED", "REFUSED", "ERRORS", "SECONDS", "REQ/S", "P50_MS", "P99_MS", "REBUILD_S", "PEAK_RSS_MB"},
					{r.DB, strconv.Itoa(r.Nodes), strconv.Itoa(r.Requests), strconv.Itoa(r.Admitted), strconv.Itoa(r.Refused), strconv.Itoa(r.Errors),
						f3(r.Seconds), strconv.FormatFloat(r.RequestsPerSec, 'f', 0, 64), f3(r.P50Ms), f3(r.P99Ms), f3(r.RebuildSec), f1(r.PeakRSSMB)},
				}
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&fleetFile, "fleet", "", "fleet file (YAML), e.g. from fleet generate --preset uniform --nodes 32000")
	fl.StringVar(&workloadFile, "workload", "", "workload CSV (id,nodes,start,duration_min)")
	fl.StringVar(&db, "db", "", "store (default: a temporary SQLite file)")
	fl.StringVar(&pool, "pool", "", "pool the requests go to (default: the fleet's only pool)")
	fl.IntVar(&pipeline, "pipeline", 1024, "requests in flight at once (1 = strictly one by one)")
	fl.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the submission phase here (go tool pprof)")
	fl.StringVar(&memProfile, "memprofile", "", "write an allocation profile here, with every allocation of the submission phase sampled (earlier ones at the default rate; go tool pprof -sample_index=alloc_space); it slows the run")
	_ = cmd.MarkFlagRequired("fleet")
	_ = cmd.MarkFlagRequired("workload")
	return cmd
}

// writeHeapProfile writes the allocation profile to path.
func writeHeapProfile(path string) error {
	runtime.GC() // the profile shows allocations as of the last collection
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("--memprofile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	return nil
}
