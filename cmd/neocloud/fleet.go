package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/neocloud/neocloud/internal/api"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/unit"
)

func newFleetCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "fleet", Short: "Fleet files: generate, validate, apply, show"}
	cmd.AddCommand(newFleetGenerateCmd(e), newFleetValidateCmd(e), newFleetApplyCmd(e), newFleetShowCmd(e))
	return cmd
}

// readFleetFile parses and validates a fleet file ("-" is stdin).
func (e *env) readFleetFile(path string) (*fleet.Spec, error) {
	if path == "" {
		return nil, fmt.Errorf("-f: a fleet file is required (neocloud fleet generate writes one)")
	}
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(e.stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	spec, err := fleet.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return spec, nil
}

func newFleetGenerateCmd(e *env) *cobra.Command {
	var preset, file string
	var seed int64
	var nodes int
	presets := fmt.Sprint(append(fleet.Presets(), fleet.PresetUniform))
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Write a fleet file from a preset",
		Long: "generate writes a compact fleet file (YAML) from a preset. Presets: " + presets + `.
The seed picks which node slots are empty (servers out for repair) so that
fleets differ realistically; the same seed gives the same file.
uniform is --nodes N identical 8-GPU H100 nodes at one site, in 32-node leaf
groups, with power to run them all at once; the seed has no effect on it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("nodes") && preset != fleet.PresetUniform {
				return fmt.Errorf("--nodes: only --preset %s takes a node count", fleet.PresetUniform)
			}
			if preset == fleet.PresetUniform && !cmd.Flags().Changed("nodes") {
				return fmt.Errorf("--nodes: required with --preset %s: a node count from 1 to %d", fleet.PresetUniform, fleet.MaxNodes)
			}
			spec, err := fleet.GenerateWith(fleet.GenerateOptions{Preset: preset, Seed: seed, Nodes: nodes})
			if errors.Is(err, fleet.ErrNodes) {
				return fmt.Errorf("--nodes: %w", err)
			}
			if err != nil {
				return fmt.Errorf("--preset: %w", err)
			}
			out, err := spec.YAML()
			if err != nil {
				return err
			}
			if file == "" || file == "-" {
				_, err = e.stdout.Write(out)
				return err
			}
			return os.WriteFile(file, out, 0o644)
		},
	}
	cmd.Flags().StringVar(&preset, "preset", "reference-300mw", "preset: "+presets)
	cmd.Flags().Int64Var(&seed, "seed", 1, "seed for the empty slots; 0 = fully populated (no effect on uniform)")
	cmd.Flags().IntVar(&nodes, "nodes", 0, fmt.Sprintf("node count of --preset %s (1 to %d); required for it, refused for the others", fleet.PresetUniform, fleet.MaxNodes))
	cmd.Flags().StringVarP(&file, "file", "f", "", "write here instead of standard output")
	return cmd
}

func newFleetValidateCmd(e *env) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check a fleet file offline and summarise it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := e.readFleetFile(file)
			if err != nil {
				return err
			}
			f, err := spec.Expand()
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			return e.printFleetSummary(f)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "fleet file (YAML or JSON; - for stdin)")
	return cmd
}

// FleetSummary is what validate reports of a fleet file.
type FleetSummary struct {
	Valid bool          `json:"valid"`
	Sites []SiteSummary `json:"sites"`
	Pools []api.Pool    `json:"pools"`
}

// SiteSummary compares a site's installed IT load with what it can feed.
type SiteSummary struct {
	Name         string  `json:"name"`
	Nodes        int     `json:"nodes"`
	GPUs         int64   `json:"gpus"`
	InstalledMW  float64 `json:"installed_it_mw" doc:"IT power of every node at full load."`
	ITBudgetMW   float64 `json:"it_budget_mw"`
	FacilityMW   float64 `json:"facility_mw"`
	PowerCapped  bool    `json:"power_capped" doc:"Installed IT load exceeds the IT budget: not every GPU can run at full power at once."`
	PowerDomains int     `json:"power_domains"`
}

func (e *env) printFleetSummary(f *fleet.Fleet) error {
	sum := FleetSummary{Valid: true}
	bySite := map[string]*SiteSummary{}
	for _, s := range f.Sites {
		sum.Sites = append(sum.Sites, SiteSummary{Name: s.Name, ITBudgetMW: s.ITBudget().MW(), FacilityMW: s.FacilityPower.MW(), PowerDomains: len(s.PowerDomains)})
	}
	for i := range sum.Sites {
		bySite[sum.Sites[i].Name] = &sum.Sites[i]
	}
	installed := map[string]unit.Power{}
	for _, n := range f.Nodes {
		s := bySite[n.Site]
		s.Nodes++
		s.GPUs += int64(n.GPUs)
		installed[n.Site] += n.ITPower
	}
	for i := range sum.Sites {
		s := &sum.Sites[i]
		s.InstalledMW = installed[s.Name].MW()
		s.PowerCapped = s.InstalledMW > s.ITBudgetMW
	}
	for _, p := range fleet.Pools(f) {
		sum.Pools = append(sum.Pools, api.Pool{ID: p.ID, Site: p.Site, GPUModel: p.Model, Nodes: p.Nodes, GPUs: int64(p.GPUs),
			ITMW: p.ITPower.MW(), FacilityMW: p.FacilityPower.MW()})
	}
	return e.print(sum, func() [][]string {
		rows := [][]string{{"SITE/POOL", "NODES", "GPUS", "IT_MW", "IT_BUDGET_MW", "NOTE"}}
		for _, s := range sum.Sites {
			note := ""
			if s.PowerCapped {
				note = "power-capped: installed IT load exceeds facility/PUE (valid; enforced at admission)"
			}
			rows = append(rows, []string{s.Name, strconv.Itoa(s.Nodes), i64(s.GPUs), f1(s.InstalledMW), f1(s.ITBudgetMW), note})
		}
		for _, p := range sum.Pools {
			rows = append(rows, []string{"  " + p.ID, i64(p.Nodes), i64(p.GPUs), f1(p.ITMW), "", ""})
		}
		return rows
	})
}

func newFleetApplyCmd(e *env) *cobra.Command {
	var file string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Make the server's fleet equal to a fleet file (one transaction)",
		Long: `apply sends the fleet file to the server, which adds, updates and retires
nodes and sites so that the fleet in service equals the file, in one
transaction. A node that holds or will hold an allocation is never retired or
moved to another pool: the apply is refused and nothing changes. --dry-run
shows the diff without writing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := e.readFleetFile(file)
			if err != nil {
				return err
			}
			q := url.Values{}
			if dryRun {
				q.Set("dry_run", "true")
			}
			var out api.ApplyResult
			if err := e.call(cmd.Context(), http.MethodPost, "/v1/fleet/apply", q, spec, &out); err != nil {
				return err
			}
			return e.print(out, func() [][]string {
				rev := i64(out.Revision)
				if out.DryRun {
					rev = "(dry run)"
				}
				return [][]string{
					{"REVISION", "SITES", "NODES", "GPUS", "ADDED", "UPDATED", "RETIRED", "UNCHANGED", "SHA256"},
					{rev, strconv.Itoa(out.Sites), strconv.Itoa(out.Nodes), i64(out.GPUs), strconv.Itoa(out.Added),
						strconv.Itoa(out.Updated), strconv.Itoa(out.Retired), strconv.Itoa(out.Unchanged), shortHash(out.SHA256)},
				}
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "fleet file (YAML or JSON; - for stdin)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the diff, change nothing")
	return cmd
}

func newFleetShowCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Print the fleet file in force on the server (YAML; -o json for JSON with its revision)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out api.FleetRevision
			if err := e.call(cmd.Context(), http.MethodGet, "/v1/fleet", nil, nil, &out); err != nil {
				return err
			}
			if e.output == "json" {
				return e.print(out, nil)
			}
			y, err := out.Spec.YAML()
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "# revision %d, applied %s by %s, sha256 %s\n", out.Revision, ts(out.At), out.By, out.SHA256)
			_, err = e.stdout.Write(y)
			return err
		},
	}
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
