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

	"github.com/neocloud/neocloud/internal/demand"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/forecast"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/unit"
)

// demoTenants are the tenants of the story: the rival lab on the anchor
// contract, a lab renting short blocks, and a spot buyer.
var demoTenants = []tenant.Tenant{
	{ID: "rival-lab", DisplayName: "Rival Lab (anchor contract)"},
	{ID: "acme-ai", DisplayName: "Acme AI (reservations)"},
	{ID: "spotty", DisplayName: "Spotty Research (spot)"},
}

func newDemoCmd(e *env) *cobra.Command {
	var o serveOptions
	var preset string
	var seed int64
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Serve a generated reference fleet with demo tenants on an embedded SQLite store",
		Long: `demo is the first thing to run. It creates a data directory (a temporary one
unless --data is given), generates the reference 300 MW site (~224,000 GPUs
in ~31,500 nodes), applies it, creates three tenants with keys, and serves
the API; on the reference site it also books the story's leases (the rival
lab's anchor contract, reservations, spot). Internal demand, the simulator and
the dashboard join the demo as they land.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if o.data == "" {
				dir, err := os.MkdirTemp("", "neocloud-demo-")
				if err != nil {
					return err
				}
				o.data = dir
			}
			srv, err := start(ctx, e, o)
			if err != nil {
				return err
			}
			if err := seedDemo(ctx, e, srv, o.data, preset, seed); err != nil {
				srv.close()
				return err
			}
			printDemoHelp(e, srv.url, o.data, srv.adminKey)
			return srv.wait(ctx)
		},
	}
	o.flags(cmd, "")
	cmd.Flags().StringVar(&preset, "preset", "reference-300mw", "fleet preset: "+fmt.Sprint(fleet.Presets()))
	cmd.Flags().Int64Var(&seed, "seed", 1, "fleet seed")
	return cmd
}

// seedDemo applies the fleet and creates the demo tenants and their keys,
// through the engine as the bootstrap operator. A rerun on the same --data
// keeps what is there.
func seedDemo(ctx context.Context, e *env, srv *running, data, preset string, seed int64) error {
	if srv.adminKey == "" {
		fmt.Fprintf(e.stdout, "reusing the demo data in %s\n", data)
		return nil
	}
	secret, err := os.ReadFile(srv.adminKey)
	if err != nil {
		return err
	}
	admin, err := srv.eng.Authenticate(ctx, strings.TrimSpace(string(secret)))
	if err != nil {
		return fmt.Errorf("demo: admin key: %w", err)
	}
	spec, err := fleet.Generate(preset, seed)
	if err != nil {
		return fmt.Errorf("--preset: %w", err)
	}
	res, err := srv.eng.ApplyFleet(ctx, admin, spec, false)
	if err != nil {
		return fmt.Errorf("demo: apply fleet: %w", err)
	}
	fmt.Fprintf(e.stdout, "fleet %s applied: %d sites, %d nodes, %d GPUs (revision %d)\n", preset, res.Sites, res.Nodes, res.GPUs, res.Revision)
	for _, t := range demoTenants {
		if _, err := srv.eng.CreateTenant(ctx, admin, t); err != nil && !errors.Is(err, tenant.ErrExists) {
			return fmt.Errorf("demo: tenant %s: %w", t.ID, err)
		}
		_, secret, err := srv.eng.CreateKey(ctx, admin, engine.KeyRequest{TenantID: t.ID, Role: tenant.TenantAdmin, Name: "demo"})
		if err != nil {
			return fmt.Errorf("demo: key for %s: %w", t.ID, err)
		}
		if err := writeSecret(filepath.Join(data, "keys", t.ID+".key"), secret); err != nil {
			return err
		}
	}
	if err := seedDemand(ctx, e, srv.eng, admin, seed); err != nil {
		return err
	}
	if preset == fleet.PresetReference300MW {
		seedLeases(ctx, e, srv.eng, admin)
	}
	return nil
}

// seedDemand imports a year of the owner's internal demand per pool, up
// to the current hour: around 45% of the pool at first, falling by 8% of
// it a year, with a daytime peak, quieter weekends, noise and bursts — the
// story's owner whose own use fell below what it built.
func seedDemand(ctx context.Context, e *env, eng *engine.Engine, admin tenant.Principal, seed int64) error {
	pools, err := eng.Pools(ctx, "")
	if err != nil {
		return err
	}
	end := eng.Clock().Now().UTC().Truncate(time.Hour)
	total := 0
	for i, p := range pools {
		g := float64(p.GPUs)
		syn := forecast.Synth{Start: end.Add(-52 * 7 * 24 * time.Hour), Hours: 52 * 7 * 24, Seed: uint64(seed)*100 + uint64(i),
			Base: 0.45 * g, TrendPerYear: -0.08 * g, Daily: 0.04 * g, PeakHour: 15, Weekend: 0.05 * g,
			Noise:  forecast.Noise{Dist: forecast.Normal, SD: 0.012 * g, AR: 0.8},
			Bursts: forecast.Bursts{PerWeek: 1, Hours: 8, GPUs: 0.03 * g}}
		points, err := syn.Generate()
		if err != nil {
			return fmt.Errorf("demo: demand of %s: %w", p.ID, err)
		}
		samples := make([]demand.Sample, 0, len(points))
		for _, pt := range points {
			samples = append(samples, demand.Sample{Pool: p.ID, Hour: pt.At, GPUs: min(int64(pt.GPUs+0.5), int64(p.GPUs))})
		}
		n, err := eng.ImportDemand(ctx, admin, samples)
		if err != nil {
			return fmt.Errorf("demo: demand of %s: %w", p.ID, err)
		}
		total += n
	}
	fmt.Fprintf(e.stdout, "internal demand: a year of hourly history imported for %d pools (%d samples)\n", len(pools), total)
	return nil
}

// seedLeases books the story's leases on the reference site: the rival
// lab's anchor contract (ramping in MW until 2029), Acme's reservations and
// Spotty's spot lease. A lease that does not fit is reported, not fatal.
func seedLeases(ctx context.Context, e *env, eng *engine.Engine, admin tenant.Principal) {
	now := eng.Clock().Now().UTC()
	start := now.Truncate(time.Hour).Add(time.Hour)
	ramp := start.AddDate(0, 2, 0).Truncate(time.Hour)
	end := time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)
	if !end.After(ramp) {
		end = ramp.AddDate(2, 0, 0)
	}
	mw := func(v float64) unit.Power { p, _ := unit.PowerFromMW(v); return p }
	leases := []struct {
		tenant, what string
		r            lease.Request
	}{
		{"rival-lab", "anchor contract, H100: 60 MW for two months, then 120 MW until 2029", lease.Request{Kind: lease.Contract, Pool: "ref-300mw/H100-SXM",
			Start: start, End: end, Schedule: []lease.Step{{From: start, Power: mw(60)}, {From: ramp, Power: mw(120)}}}},
		{"acme-ai", "reservation, 64 H200 nodes for two weeks from in three days", lease.Request{Kind: lease.Reservation, Pool: "ref-300mw/H200-SXM",
			Start: start.Add(72 * time.Hour), End: start.Add(72*time.Hour + 14*24*time.Hour), GPUs: 512, Packing: lease.PackPod, Isolation: lease.DedicatedLeaf}},
		{"acme-ai", "reservation, 4 GB200 NVL72 racks for 30 days", lease.Request{Kind: lease.Reservation, Pool: "ref-300mw/GB200",
			Start: start, End: start.Add(30 * 24 * time.Hour), GPUs: 288, Packing: lease.PackNVLinkDomain}},
		{"spotty", "spot, 100 H100 nodes for a day", lease.Request{Kind: lease.Spot, Pool: "ref-300mw/H100-SXM", End: start.Add(24 * time.Hour), GPUs: 800}},
	}
	for _, l := range leases {
		res, err := eng.RequestLease(ctx, admin, l.tenant, l.r)
		if err != nil {
			fmt.Fprintf(e.stdout, "lease for %s (%s): %v\n", l.tenant, l.what, err)
			continue
		}
		fmt.Fprintf(e.stdout, "lease %s for %s: %s (%d GPUs at most, %d allocation rows)\n", res.Lease.ID, l.tenant, l.what, res.Lease.MaxGPUs(), len(res.Allocations))
	}
}

func printDemoHelp(e *env, url, data, admin string) {
	if admin == "" {
		admin = filepath.Join(data, "admin.key")
	}
	fmt.Fprintf(e.stdout, `
Neocloud demo is serving at %s
  data:        %s (SQLite: neocloud.db)
  keys:        %s (operator-admin), %s/<tenant>.key (tenant-admin of %s, %s, %s)
  API schema:  %s/openapi.json

Try, in another terminal:
  export NEOCLOUD_SERVER=%s NEOCLOUD_TOKEN_FILE=%s
  go run ./cmd/neocloud pools list
  go run ./cmd/neocloud nodes list --pool ref-300mw/GB200 --limit 5
  go run ./cmd/neocloud leases list
  go run ./cmd/neocloud capacity show --pool ref-300mw/H100-SXM --step 168h --to 2160h
  go run ./cmd/neocloud sellable --pool ref-300mw/H200-SXM --months 12
  NEOCLOUD_TOKEN_FILE=%s/acme-ai.key go run ./cmd/neocloud quote --pool ref-300mw/H200-SXM --gpus 4096 --start %s --end 720h

Stop with Ctrl-C.
`, url, data, admin, filepath.Join(data, "keys"), demoTenants[0].ID, demoTenants[1].ID, demoTenants[2].ID, url, url, admin, filepath.Join(data, "keys"),
		time.Now().UTC().Truncate(time.Hour).Add(24*time.Hour).Format(time.RFC3339))
}
