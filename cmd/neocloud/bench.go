package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/store"
	"github.com/neocloud/neocloud/internal/tenant"
)

func newBenchCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Benchmarks that report figures for the issues' targets"}
	cmd.AddCommand(newBenchFleetCmd(e), newBenchAdmitCmd(e), newBenchIngestCmd(e))
	return cmd
}

// FleetBench is the report of bench fleet.
type FleetBench struct {
	DB             string  `json:"db"`
	Preset         string  `json:"preset"`
	Nodes          int     `json:"nodes"`
	GPUs           int64   `json:"gpus"`
	GenerateSec    float64 `json:"generate_seconds"`
	ApplySec       float64 `json:"apply_seconds" doc:"First apply into an empty store: parse, expand, diff, insert."`
	ReapplySec     float64 `json:"reapply_seconds" doc:"Same file again: everything unchanged."`
	PeakRSSMB      float64 `json:"peak_rss_mb" doc:"Peak resident set of the process (VmHWM)."`
	PeakHeapMB     float64 `json:"heap_sys_mb" doc:"Go heap obtained from the OS."`
	Cores          int     `json:"cores"`
	TargetSec      float64 `json:"target_seconds"`
	TargetMB       float64 `json:"target_mb"`
	WithinTarget   bool    `json:"within_target"`
	FleetFileBytes int     `json:"fleet_file_bytes"`
}

func newBenchFleetCmd(e *env) *cobra.Command {
	var db, preset string
	var seed int64
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Time generate + apply of a preset fleet into a store; report time and peak memory",
		Long: `bench fleet generates a preset (default reference-300mw), writes it as YAML,
parses it back and applies it through the engine into an empty store — a
temporary SQLite file unless --db names one (use an empty PostgreSQL
database: the fleet there is replaced). Targets: <= 5 s and <= 500 MB.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if db == "" {
				dir, err := os.MkdirTemp("", "neocloud-bench-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				db = "sqlite:" + filepath.Join(dir, "bench.db")
			}
			r := FleetBench{DB: strings.SplitN(store.Redact(db), ":", 2)[0], Preset: preset, Cores: runtime.GOMAXPROCS(0), TargetSec: 5, TargetMB: 500}
			t0 := time.Now()
			spec, err := fleet.Generate(preset, seed)
			if err != nil {
				return fmt.Errorf("--preset: %w", err)
			}
			y, err := spec.YAML()
			if err != nil {
				return err
			}
			r.FleetFileBytes = len(y)
			r.GenerateSec = time.Since(t0).Seconds()

			st, err := store.Open(ctx, db)
			if err != nil {
				return err
			}
			defer st.Close()
			eng, err := engine.New(engine.Config{Store: st})
			if err != nil {
				return err
			}
			// The engine trusts its caller's principal; the bench acts as an
			// operator admin without issuing a key.
			admin := tenant.Principal{KeyID: "bench", Role: tenant.OperatorAdmin}
			apply := func() (engine.ApplyResult, float64, error) {
				t := time.Now()
				parsed, err := fleet.Parse(y)
				if err != nil {
					return engine.ApplyResult{}, 0, err
				}
				res, err := eng.ApplyFleet(ctx, admin, parsed, false)
				return res, time.Since(t).Seconds(), err
			}
			res, sec, err := apply()
			if err != nil {
				return err
			}
			r.Nodes, r.GPUs, r.ApplySec = res.Nodes, res.GPUs, sec
			if _, r.ReapplySec, err = apply(); err != nil {
				return err
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			r.PeakHeapMB = float64(ms.HeapSys) / (1 << 20)
			r.PeakRSSMB = peakRSSMB()
			r.WithinTarget = r.ApplySec <= r.TargetSec && r.PeakRSSMB <= r.TargetMB
			return e.print(r, func() [][]string {
				return [][]string{
					{"DB", "PRESET", "NODES", "GPUS", "APPLY_S", "REAPPLY_S", "PEAK_RSS_MB", "WITHIN_TARGET"},
					{r.DB, r.Preset, strconv.Itoa(r.Nodes), i64(r.GPUs), f3(r.ApplySec), f3(r.ReapplySec), f1(r.PeakRSSMB), strconv.FormatBool(r.WithinTarget)},
				}
			})
		},
	}
	cmd.Flags().StringVar(&db, "db", "", "store to apply into (default: a temporary SQLite file)")
	cmd.Flags().StringVar(&preset, "preset", "reference-300mw", "fleet preset")
	cmd.Flags().Int64Var(&seed, "seed", 1, "fleet seed")
	return cmd
}

// peakRSSMB reads the process's peak resident set size from
// /proc/self/status (Linux); 0 where it is not available.
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
