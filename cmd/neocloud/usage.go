package main

import (
	"encoding/csv"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/neocloud/neocloud/internal/api"
)

func newUsageCmd(e *env) *cobra.Command {
	var from, to, step, leaseID, tenantID, pool, use string
	var asCSV bool
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "Usage by lease and step: GPU-hours allocated, used and healthy, and energy (tenants: their own leases)",
		Example: `  neocloud usage --lease ls_1aa585600c2302c4 --from 2026-11-01T00:00:00Z --to 2026-11-02T00:00:00Z
  neocloud usage --step day --from 2026-11-01T00:00:00Z --to 2026-12-01T00:00:00Z --csv > november.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{"step": {step}}
			now := time.Now().UTC()
			if from == "" {
				from = now.Add(-24 * time.Hour).Truncate(time.Hour).Format(time.RFC3339)
			}
			if to == "" {
				to = now.Truncate(time.Hour).Add(time.Hour).Format(time.RFC3339)
			}
			q.Set("from", from)
			q.Set("to", to)
			for k, v := range map[string]string{"lease": leaseID, "tenant": tenantID, "pool": pool, "use": use} {
				if v != "" {
					q.Set(k, v)
				}
			}
			var out api.Usage
			if err := e.call(cmd.Context(), http.MethodGet, "/v1/usage", q, nil, &out); err != nil {
				return err
			}
			if asCSV {
				w := csv.NewWriter(e.stdout)
				_ = w.Write([]string{"from", "to", "pool", "use", "lease_id", "tenant_id", "allocated_gpu_hours", "used_gpu_hours", "healthy_gpu_hours", "energy_kwh", "readings"})
				for _, r := range out.Items {
					_ = w.Write([]string{r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), r.Pool, r.Use, r.LeaseID, r.TenantID,
						f3(r.AllocatedGPUHours), f3(r.UsedGPUHours), f3(r.HealthyGPUHours), f3(r.EnergyKWh), i64(r.Readings)})
				}
				w.Flush()
				return w.Error()
			}
			return e.print(out, func() [][]string {
				rows := [][]string{{"FROM", "POOL", "USE", "LEASE", "TENANT", "ALLOCATED_GPU_H", "USED_GPU_H", "HEALTHY_GPU_H", "ENERGY_KWH", "READINGS"}}
				for _, r := range out.Items {
					rows = append(rows, []string{r.From.Format(time.RFC3339), r.Pool, r.Use, dash(r.LeaseID), dash(r.TenantID),
						f3(r.AllocatedGPUHours), f3(r.UsedGPUHours), f3(r.HealthyGPUHours), f3(r.EnergyKWh), i64(r.Readings)})
				}
				return rows
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "start (RFC 3339); default 24 hours ago")
	f.StringVar(&to, "to", "", "end (RFC 3339); default the end of this hour")
	f.StringVar(&step, "step", "hour", "hour, day or month (UTC)")
	f.StringVar(&leaseID, "lease", "", "one lease")
	f.StringVar(&tenantID, "tenant", "", "one tenant's leases (operators)")
	f.StringVar(&pool, "pool", "", "one pool (site/GPU-MODEL)")
	f.StringVar(&use, "use", "", "lease, internal or idle (operators see all three)")
	f.BoolVar(&asCSV, "csv", false, "write CSV (for spreadsheets and billing checks)")
	return cmd
}

func newSLACmd(e *env) *cobra.Command {
	var month string
	cmd := &cobra.Command{
		Use:     "sla LEASE",
		Short:   "A guaranteed lease's SLA delivery in a month: committed vs delivered GPU-hours, availability, shortfall episodes",
		Example: `  neocloud sla ls_1aa585600c2302c4 --month 2026-11`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"lease": {args[0]}}
			if month != "" {
				q.Set("month", month)
			}
			var out api.SLA
			if err := e.call(cmd.Context(), http.MethodGet, "/v1/sla", q, nil, &out); err != nil {
				return err
			}
			return e.print(out, func() [][]string {
				rows := [][]string{
					{"LEASE", "MONTH", "COMMITTED_GPU_H", "HELD_GPU_H", "UNHEALTHY_GPU_H", "DELIVERED_GPU_H", "AVAILABILITY_%"},
					{out.LeaseID, out.Month, f3(out.CommittedGPUHours), f3(out.HeldGPUHours), f3(out.UnhealthyGPUHours), f3(out.DeliveredGPUHours),
						strconv.FormatFloat(out.AvailabilityPct, 'f', 4, 64)},
				}
				if len(out.Episodes) > 0 {
					rows = append(rows, []string{""}, []string{"EPISODE_FROM", "TO", "SHORT_GPU_H", "CAUSES"})
					for _, ep := range out.Episodes {
						rows = append(rows, []string{ep.From.Format(time.RFC3339), ep.To.Format(time.RFC3339), f3(ep.ShortGPUHours), strings.Join(ep.Causes, "; ")})
					}
				}
				return rows
			})
		},
	}
	cmd.Flags().StringVar(&month, "month", "", "YYYY-MM (UTC); default this month")
	return cmd
}

func newHealthCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "health", Short: "Node health from telemetry (operators)"}
	var node string
	var limit int
	findings := &cobra.Command{
		Use:     "findings",
		Short:   "Health findings, newest first: fatal XIDs, row-remap failures, throttling, silent nodes",
		Example: "  neocloud health findings --node ref-300mw-h100-p01-l01-n0001",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if node != "" {
				q.Set("node", node)
			}
			if limit > 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			var out api.HealthFindings
			if err := e.call(cmd.Context(), http.MethodGet, "/v1/health/findings", q, nil, &out); err != nil {
				return err
			}
			return e.print(out, func() [][]string {
				rows := [][]string{{"AT", "NODE", "GPU", "SEVERITY", "RULE", "DETAIL"}}
				for _, f := range out.Items {
					gpu := strconv.Itoa(f.GPU)
					if f.GPU < 0 {
						gpu = "-"
					}
					rows = append(rows, []string{f.At.Format(time.RFC3339), f.Node, gpu, f.Severity, f.Rule, f.Detail})
				}
				return rows
			})
		},
	}
	findings.Flags().StringVar(&node, "node", "", "one node")
	findings.Flags().IntVar(&limit, "limit", 0, "at most this many (default 100)")
	cmd.AddCommand(findings)
	return cmd
}
