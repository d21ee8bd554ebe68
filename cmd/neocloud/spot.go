package main

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/neocloud/neocloud/internal/api"
)

func newSpotCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "spot", Short: "The spot market: prices by notice tier, and (operators) the capacity behind them"}
	var pool string
	prices := &cobra.Command{
		Use:     "prices",
		Short:   "Spot prices per GPU-hour now, per pool and notice tier",
		Example: "  neocloud spot prices --pool ref-300mw/H100-SXM",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out api.SpotMarkets
			q := url.Values{}
			if pool != "" {
				q.Set("pool", pool)
			}
			if err := e.call(cmd.Context(), http.MethodGet, "/v1/spot/prices", q, nil, &out); err != nil {
				return err
			}
			return e.print(out, func() [][]string {
				rows := [][]string{{"POOL", "TIER", "NOTICE", "PRICE_USD_PER_GPU_H", "UTILIZATION_%", "SPOT_GPUS", "SPOT_IDLE_GPUS"}}
				for _, m := range out.Items {
					for _, p := range m.Prices {
						util, held, idle := "-", "-", "-"
						if m.UtilizationPct != nil {
							util = strconv.FormatFloat(*m.UtilizationPct, 'f', 1, 64)
							held, idle = i64(m.SpotByTier[p.Tier]), i64(*m.SpotIdle)
						}
						rows = append(rows, []string{m.Pool, p.Tier, p.Notice, p.Price, util, held, idle})
					}
				}
				return rows
			})
		},
	}
	prices.Flags().StringVar(&pool, "pool", "", "one pool (site/GPU-MODEL); default every pool")
	cmd.AddCommand(prices)
	return cmd
}

func newInternalUseCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "internal-use", Short: "The owner's own GPU use now (operators): spot makes room for it"}
	var pool string
	var gpus int64
	set := &cobra.Command{
		Use:     "set",
		Short:   "Report the owner's use of a pool now; spot leases are reclaimed after their notice to make room",
		Example: "  neocloud internal-use set --pool ref-300mw/H100-SXM --gpus 60000",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out api.InternalUse
			if err := e.call(cmd.Context(), http.MethodPost, "/v1/internal-use", nil, api.InternalUseIn{Pool: pool, GPUs: gpus}, &out); err != nil {
				return err
			}
			return e.print(out, func() [][]string {
				sort.Strings(out.Reclaimed)
				return [][]string{{"POOL", "GPUS", "RECLAIMED"}, {out.Pool, i64(out.GPUs), dash(strings.Join(out.Reclaimed, ","))}}
			})
		},
	}
	set.Flags().StringVar(&pool, "pool", "", "pool: site/GPU-MODEL")
	set.Flags().Int64Var(&gpus, "gpus", 0, "GPUs the owner's jobs use now")
	cmd.AddCommand(set)
	return cmd
}

func newNodeSanitizedCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "sanitized NODE",
		Short: "Confirm a node's wipe after a hand-over: it is available again (else the wipe ends after 30 minutes)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out api.Node
			if err := e.call(cmd.Context(), http.MethodPost, "/v1/nodes/"+url.PathEscape(args[0])+"/sanitized", nil, nil, &out); err != nil {
				return err
			}
			return e.print(out, func() [][]string {
				return [][]string{{"NODE", "STATE"}, {out.Name, out.State}}
			})
		},
	}
}
