package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/neocloud/neocloud/internal/clock"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/simrun"
	"github.com/neocloud/neocloud/internal/tenant"
)

// demoTenants are the tenants of the story whose keys the demo writes:
// the rival lab on the anchor contract, a lab renting short blocks, and a
// spot buyer (the live simulation adds more of each).
var demoTenants = []tenant.Tenant{
	{ID: "rival-lab", DisplayName: "Rival Lab (anchor contract)"},
	{ID: "blocks-1", DisplayName: "Blocks One (reservations)"},
	{ID: "spot-1", DisplayName: "Spot One (spot)"},
}

func newDemoCmd(e *env) *cobra.Command {
	var o serveOptions
	var preset string
	var seed int64
	var speed float64
	var months int
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Serve the reference fleet with the story running live on an accelerated clock (embedded SQLite)",
		Long: `demo is the first thing to run. It creates a data directory (a temporary one
unless --data is given), generates the reference 300 MW site (~224,000 GPUs
in ~31,500 nodes), applies it, creates the story's tenants with keys, and
serves the API. Then the simulation runs live on the server's clock, sped up
--speed times (default 3600: one simulated hour per second): a year of the
owner's demand history and the holdback forecast from it, the rival lab's
anchor contract (MW ramp, first two months discounted), reservations, spot
buyers, reclaims when the owner's demand returns, node failures and wipes.
Watch it with the CLI (events --follow, spot prices, capacity show).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if speed <= 0 || speed > 1e6 {
				return fmt.Errorf("--speed %g: want between 0 (exclusive) and 1000000", speed)
			}
			if o.data == "" {
				dir, err := os.MkdirTemp("", "neocloud-demo-")
				if err != nil {
					return err
				}
				o.data = dir
			}
			clk := clock.NewScaled(time.Now().UTC(), speed)
			o.clock = clk
			srv, err := start(ctx, e, o)
			if err != nil {
				return err
			}
			admin, err := seedDemo(ctx, e, srv, o.data, preset, seed)
			if err != nil {
				srv.close()
				return err
			}
			printDemoHelp(e, srv.url, o.data, srv.adminKey, speed)
			if admin != nil {
				go runLive(ctx, e, srv, *admin, clk, months, uint64(seed))
			}
			return srv.wait(ctx)
		},
	}
	o.flags(cmd, "")
	cmd.Flags().StringVar(&preset, "preset", "reference-300mw", "fleet preset: "+fmt.Sprint(fleet.Presets()))
	cmd.Flags().Int64Var(&seed, "seed", 1, "fleet and simulation seed")
	cmd.Flags().Float64Var(&speed, "speed", 3600, "simulated seconds per real second (3600: an hour per second)")
	cmd.Flags().IntVar(&months, "months", 12, "months the live simulation runs (then the server keeps serving)")
	return cmd
}

// seedDemo applies the fleet and creates the demo tenants and their keys,
// through the engine as the bootstrap operator; it returns the operator
// to run the live simulation as, or nil when the data directory was
// already seeded (a rerun keeps what is there and runs nothing live).
func seedDemo(ctx context.Context, e *env, srv *running, data, preset string, seed int64) (*tenant.Principal, error) {
	if srv.adminKey == "" {
		fmt.Fprintf(e.stdout, "reusing the demo data in %s (no live simulation on a reused directory)\n", data)
		return nil, nil
	}
	secret, err := os.ReadFile(srv.adminKey)
	if err != nil {
		return nil, err
	}
	admin, err := srv.eng.Authenticate(ctx, strings.TrimSpace(string(secret)))
	if err != nil {
		return nil, fmt.Errorf("demo: admin key: %w", err)
	}
	spec, err := fleet.Generate(preset, seed)
	if err != nil {
		return nil, fmt.Errorf("--preset: %w", err)
	}
	res, err := srv.eng.ApplyFleet(ctx, admin, spec, false)
	if err != nil {
		return nil, fmt.Errorf("demo: apply fleet: %w", err)
	}
	fmt.Fprintf(e.stdout, "fleet %s applied: %d sites, %d nodes, %d GPUs (revision %d)\n", preset, res.Sites, res.Nodes, res.GPUs, res.Revision)
	for _, t := range demoTenants {
		if _, err := srv.eng.CreateTenant(ctx, admin, t); err != nil && !errors.Is(err, tenant.ErrExists) {
			return nil, fmt.Errorf("demo: tenant %s: %w", t.ID, err)
		}
		_, secret, err := srv.eng.CreateKey(ctx, admin, engine.KeyRequest{TenantID: t.ID, Role: tenant.TenantAdmin, Name: "demo"})
		if err != nil {
			return nil, fmt.Errorf("demo: key for %s: %w", t.ID, err)
		}
		if err := writeSecret(filepath.Join(data, "keys", t.ID+".key"), secret); err != nil {
			return nil, err
		}
	}
	return &admin, nil
}

// runLive runs the simulation on the demo server's engine and clock; it
// logs its progress monthly and its summary at the end.
func runLive(ctx context.Context, e *env, srv *running, admin tenant.Principal, clk *clock.Scaled, months int, seed uint64) {
	began := clk.Now()
	last := -1
	res, err := simrun.Run(ctx, simrun.Config{Engine: srv.eng, Clock: clk, Admin: admin, Months: months, Seed: seed,
		FleetName: "demo", Progress: func(at time.Time) {
			if m := int(at.Sub(began).Hours() / (24 * 30)); m != last {
				last = m
				srv.log.Info("live simulation", "virtual_time", at.Format(time.RFC3339), "month", m+1)
			}
		}})
	if err != nil {
		if ctx.Err() == nil {
			srv.log.Error("live simulation stopped", "err", err)
		}
		return
	}
	t := res.Summary.Totals
	srv.log.Info("live simulation done", "months", months, "monetized_pct", t.MonetizedPct, "preemptions", t.Preemptions,
		"internal_shortfall_gpu_hours", t.InternalShortfallGPUHours, "revenue_usd", t.Revenue.Total.String())
}

func printDemoHelp(e *env, url, data, admin string, speed float64) {
	if admin == "" {
		admin = filepath.Join(data, "admin.key")
	}
	keys := filepath.Join(data, "keys")
	fmt.Fprintf(e.stdout, `
Neocloud demo is serving at %s
  data:        %s (SQLite: neocloud.db)
  keys:        %s (operator-admin), %s/<tenant>.key (tenant-admin of %s, %s, %s)
  dashboard:   %s/ (sign in with a key file's contents: the operator's or a tenant's)
  API schema:  %s/openapi.json
  clock:       %g× real time (one simulated hour every %.2g s); the story runs live: demand,
               the anchor contract, reservations, spot buyers, reclaims, failures, wipes

Try, in another terminal:
  export NEOCLOUD_SERVER=%s NEOCLOUD_TOKEN_FILE=%s
  go run ./cmd/neocloud events --follow                       # reclaims, failures, wipes as they happen
  go run ./cmd/neocloud spot prices                           # prices by notice tier, the capacity behind them
  NEOCLOUD_TOKEN_FILE=%s/spot-1.key go run ./cmd/neocloud leases create --kind spot \
      --pool ref-300mw/H100-SXM --gpus 64 --max-price 12 --notice 30m   # buy spot as a tenant

Stop with Ctrl-C.
`, url, data, admin, keys, demoTenants[0].ID, demoTenants[1].ID, demoTenants[2].ID, url, url, speed, 3600/speed, url, admin, keys)
}
