package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/sim"
	"github.com/neocloud/neocloud/internal/simrun"
)

func newSimulateCmd(e *env) *cobra.Command {
	var fleetFile, preset, scenarioFile, jsonPath, reportDir, cpuProfile string
	var months int
	var seed uint64
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Run the real engine on virtual time over months of a fleet; a JSON summary and a report with plots",
		Long: `simulate runs the engine (on a scratch SQLite file) hour by hour over --months:
the owner's demand (a year of history, then a falling trend with daily and
weekly cycles and bursts), the holdback set from its forecast, the anchor
contract (MW ramp), reservation and spot arrivals, node failures (3.8 per
1,000 node-days) and maintenance. It compares the result with a static
partition (a fixed share leased, never reclaimed). The same seed gives a
byte-identical JSON summary. See docs/simulator.md.`,
		Example: `  neocloud simulate --preset reference-300mw --months 12 --seed 1 --json sim.json --report sim-report
  neocloud simulate --fleet site.yaml --months 6 --scenario scenario.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var spec *fleet.Spec
			name := preset
			if fleetFile != "" {
				data, err := os.ReadFile(fleetFile)
				if err != nil {
					return fmt.Errorf("--fleet: %w", err)
				}
				if spec, err = fleet.Parse(data); err != nil {
					return fmt.Errorf("--fleet %s: %w", fleetFile, err)
				}
				name = simrun.Name(fleetFile)
			} else {
				var err error
				if spec, err = fleet.Generate(preset, 1); err != nil {
					return fmt.Errorf("--preset: %w", err)
				}
			}
			sc := simrun.DefaultScenario()
			if scenarioFile != "" {
				data, err := os.ReadFile(scenarioFile)
				if err != nil {
					return fmt.Errorf("--scenario: %w", err)
				}
				if sc, err = simrun.ParseScenario(data); err != nil {
					return fmt.Errorf("--scenario %s: %w", scenarioFile, err)
				}
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			from := sc.Start
			prog := sim.NewProgress(e.stderr, isTerminal(e.stderr), time.Now, from, from.AddDate(0, months, 0))
			began := time.Now()
			res, err := simrun.Run(cmd.Context(), simrun.Config{Fleet: spec, FleetName: name, Months: months, Seed: seed,
				Scenario: sc, Progress: prog.Update})
			if err != nil {
				return err
			}
			if err := prog.Done(); err != nil {
				return err
			}
			out, err := res.Summary.JSON()
			if err != nil {
				return err
			}
			if jsonPath != "" {
				if err := os.WriteFile(jsonPath, out, 0o644); err != nil {
					return err
				}
			}
			if reportDir != "" {
				if err := sim.WriteReport(reportDir, res.Summary, res.Points, res.Baseline); err != nil {
					return err
				}
			}
			if jsonPath == "" {
				_, err = e.stdout.Write(out)
				if err != nil {
					return err
				}
			}
			t := res.Summary.Totals
			fmt.Fprintf(e.stderr, "simulated %d months of %s in %.1f s: %.2f%% of idle GPU-hours monetized (baseline %.2f%%), %d GPU-hours of internal demand waiting beyond notice, %d preemptions\n",
				months, name, time.Since(began).Seconds(), t.MonetizedPct, res.Summary.Baseline.MonetizedPct, t.InternalShortfallGPUHours, t.Preemptions)
			if reportDir != "" {
				fmt.Fprintf(e.stderr, "report: %s/%s\n", reportDir, sim.ReportFile)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&fleetFile, "fleet", "", "fleet file (YAML); default: --preset")
	f.StringVar(&preset, "preset", fleet.PresetReference300MW, "fleet preset when no --fleet: "+fmt.Sprint(fleet.Presets()))
	f.IntVar(&months, "months", 12, "months to simulate (1-36)")
	f.Uint64Var(&seed, "seed", 1, "seed: the same seed gives the same summary")
	f.StringVar(&scenarioFile, "scenario", "", "scenario file (YAML or JSON) over the default story; see docs/simulator.md")
	f.StringVar(&jsonPath, "json", "", "write the JSON summary here (default: stdout)")
	f.StringVar(&reportDir, "report", "", "write report.md and SVG plots into this directory")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile (go tool pprof) here")
	return cmd
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
