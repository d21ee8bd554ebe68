package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/neocloud/neocloud/internal/api"
	"github.com/neocloud/neocloud/internal/client"
	"github.com/neocloud/neocloud/internal/demand"
)

// leaseFlags are the flags of quote and leases create.
type leaseFlags struct {
	tenant, kind, pool, start, end, packing, isolation string
	maxPrice, notice, planFile                         string
	gpus                                               int64
	steps                                              []string
}

func (f *leaseFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.tenant, "tenant", "", "tenant the lease is for (operator keys; tenant keys act for their own)")
	fl.StringVar(&f.kind, "kind", "reservation", "contract, reservation or spot")
	fl.StringVar(&f.pool, "pool", "", "pool: site/GPU-MODEL, e.g. ref-300mw/H100-SXM")
	fl.StringVar(&f.start, "start", "", "first hour, RFC 3339 on a whole UTC hour (not for spot)")
	fl.StringVar(&f.end, "end", "", "end, RFC 3339 on a whole UTC hour, exclusive; or a duration after start, e.g. 72h")
	fl.Int64Var(&f.gpus, "gpus", 0, "GPUs (whole nodes)")
	fl.StringArrayVar(&f.steps, "step", nil, "contract ramp step FROM=GPUS or FROM=NNmw, repeatable (first FROM = --start)")
	fl.StringVar(&f.packing, "packing", "", "any, node, nvlink-domain, leaf or pod (default any)")
	fl.StringVar(&f.isolation, "isolation", "", "shared-leaf or dedicated-leaf (default shared-leaf)")
	fl.StringVar(&f.maxPrice, "max-price", "", "spot: the most paid per GPU-hour, USD (e.g. 3.50); above it the lease is reclaimed")
	fl.StringVar(&f.notice, "notice", "", "spot: notice tier, e.g. 2m, 30m or 24h (default the shortest; longer costs more)")
	fl.StringVar(&f.planFile, "plan", "", "a price plan (JSON file, see docs/billing.md): a quote is priced on it, a created lease gets it (operator admins)")
}

func (f *leaseFlags) request() (api.LeaseRequest, error) {
	r := api.LeaseRequest{Tenant: f.tenant, Kind: f.kind, Pool: f.pool, GPUs: f.gpus, Packing: f.packing, Isolation: f.isolation,
		MaxPrice: f.maxPrice, Notice: f.notice}
	var err error
	if f.planFile != "" {
		if r.Plan, err = readPlan(f.planFile); err != nil {
			return r, err
		}
	}
	if f.start != "" {
		if r.Start, err = time.Parse(time.RFC3339, f.start); err != nil {
			return r, fmt.Errorf("--start %q: want RFC 3339, e.g. 2027-01-01T00:00:00Z", f.start)
		}
	}
	if f.end != "" {
		if d, derr := time.ParseDuration(f.end); derr == nil {
			if r.Start.IsZero() {
				return r, fmt.Errorf("--end %q: a duration needs --start", f.end)
			}
			r.End = r.Start.Add(d)
		} else if r.End, err = time.Parse(time.RFC3339, f.end); err != nil {
			return r, fmt.Errorf("--end %q: want RFC 3339 or a duration such as 72h", f.end)
		}
	}
	for _, s := range f.steps {
		from, size, ok := strings.Cut(s, "=")
		t, err := time.Parse(time.RFC3339, from)
		if !ok || err != nil {
			return r, fmt.Errorf("--step %q: want FROM=GPUS or FROM=NNmw with FROM in RFC 3339", s)
		}
		st := api.Step{From: t}
		if mw, isMW := strings.CutSuffix(strings.ToLower(size), "mw"); isMW {
			if st.MW, err = strconv.ParseFloat(mw, 64); err != nil {
				return r, fmt.Errorf("--step %q: %q is not a number of MW", s, mw)
			}
		} else if st.GPUs, err = strconv.ParseInt(size, 10, 64); err != nil {
			return r, fmt.Errorf("--step %q: %q is not a number of GPUs", s, size)
		}
		r.Schedule = append(r.Schedule, st)
	}
	return r, nil
}

func newQuoteCmd(e *env) *cobra.Command {
	var f leaseFlags
	var placement bool
	cmd := &cobra.Command{
		Use:   "quote",
		Short: "Ask whether a lease would be admitted now, or why not and from when (--placement: and where)",
		Example: `  neocloud quote --pool ref-300mw/H100-SXM --gpus 1024 --start 2027-01-01T00:00:00Z --end 720h
  neocloud quote --pool ref-300mw/H100-SXM --gpus 512 --packing pod --start 2027-01-01T00:00:00Z --end 72h --placement
  neocloud quote --kind spot --pool ref-300mw/H100-SXM --gpus 64 --max-price 4.00 --notice 30m
  neocloud quote --kind contract --pool ref-300mw/GB200 --start 2027-01-01T00:00:00Z --end 2029-01-01T00:00:00Z \
      --step 2027-01-01T00:00:00Z=20mw --step 2027-03-01T00:00:00Z=40mw --packing nvlink-domain`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := f.request()
			if err != nil {
				return err
			}
			var q api.Quote
			var query url.Values
			if placement {
				query = url.Values{"placement": {"true"}}
			}
			if err := e.call(cmd.Context(), http.MethodPost, "/v1/quotes", query, in, &q); err != nil {
				return err
			}
			return e.print(q, func() [][]string {
				earliest := "-"
				if q.EarliestStart != nil {
					earliest = ts(*q.EarliestStart)
				}
				gpus := int64(0)
				for _, s := range q.Schedule {
					gpus = max(gpus, s.GPUs)
				}
				rows := [][]string{{"FEASIBLE", "POOL", "START", "END", "GPUS", "NODES", "LEAF_GROUPS", "PODS", "PRICE", "TOTAL", "REASON", "EARLIEST_START", "DETAIL"},
					{strconv.FormatBool(q.Feasible), q.Pool, ts(q.Start), ts(q.End), i64(gpus), strconv.Itoa(q.Nodes), dashInt(q.LeafGroups),
						dashInt(q.Pods), dash(q.Price), dash(q.Total), dash(q.Reason), earliest, dash(q.Detail)}}
				if len(q.Charges) > 0 {
					rows = append(rows, []string{""}, []string{"MONTH", "FEE", "PRORATION", "DISCOUNT", "AMOUNT"})
					for _, c := range q.Charges {
						rows = append(rows, []string{c.Month, c.Fee, c.Proration, c.Discount, c.Amount})
					}
				}
				return rows
			})
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&placement, "placement", false, "also choose the nodes: the leaf groups and pods an admission now would get (slower)")
	return cmd
}

// dashInt is n, or "-" for 0.
func dashInt(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func leaseRows(ls []api.Lease) [][]string {
	rows := [][]string{{"LEASE", "TENANT", "KIND", "POOL", "GPUS", "START", "END", "PACKING", "ISOLATION", "STATE"}}
	for _, l := range ls {
		rows = append(rows, []string{l.ID, l.Tenant, l.Kind, l.Pool, i64(l.GPUs), ts(l.Start), ts(l.End), l.Packing, l.Isolation, l.State})
	}
	return rows
}

func newLeasesCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "leases", Short: "Leases: a tenant's right to capacity"}

	var f leaseFlags
	var idem string
	create := &cobra.Command{
		Use:   "create",
		Short: "Request a lease: admitted and placed, or refused with the reason and the earliest start that fits",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := f.request()
			if err != nil {
				return err
			}
			if idem == "" {
				var b [16]byte
				_, _ = rand.Read(b[:])
				idem = hex.EncodeToString(b[:])
			}
			var out api.LeaseCreated
			ctx := client.WithIdempotencyKey(cmd.Context(), idem)
			if err := e.call(ctx, http.MethodPost, "/v1/leases", nil, in, &out); err != nil {
				return err
			}
			return e.print(out, func() [][]string {
				rows := leaseRows([]api.Lease{out.Lease})
				nodes := 0
				for _, a := range out.Allocations {
					nodes += len(a.Nodes)
				}
				return append(rows, []string{fmt.Sprintf("(%d allocations, %d node-intervals; neocloud leases allocations %s)", len(out.Allocations), nodes, out.ID)})
			})
		},
	}
	f.add(create)
	create.Flags().StringVar(&idem, "idempotency-key", "", "retry key (default: a random one per invocation)")

	var tenantF, poolF, cursor string
	var limit int
	var all bool
	list := &cobra.Command{
		Use: "list", Short: "List leases (a tenant key sees its own)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"tenant": tenantF, "pool": poolF} {
				if v != "" {
					q.Set(k, v)
				}
			}
			q.Set("limit", strconv.Itoa(limit))
			var items []api.Lease
			next := cursor
			for {
				if next != "" {
					q.Set("cursor", next)
				}
				var page api.LeasePage
				if err := e.call(cmd.Context(), http.MethodGet, "/v1/leases", q, nil, &page); err != nil {
					return err
				}
				items = append(items, page.Items...)
				next = page.NextCursor
				if !all || next == "" {
					break
				}
			}
			out := api.LeasePage{Items: items}
			if !all {
				out.NextCursor = next
			}
			return e.print(out, func() [][]string {
				rows := leaseRows(items)
				if out.NextCursor != "" {
					rows = append(rows, []string{"(more: --cursor " + out.NextCursor + " or --all)"})
				}
				return rows
			})
		},
	}
	lf := list.Flags()
	lf.StringVar(&tenantF, "tenant", "", "only this tenant's leases")
	lf.StringVar(&poolF, "pool", "", "only this pool")
	lf.IntVar(&limit, "limit", 100, "leases per page (1-1000)")
	lf.StringVar(&cursor, "cursor", "", "start after this lease ID")
	lf.BoolVar(&all, "all", false, "follow every page")

	show := &cobra.Command{
		Use: "show LEASE", Short: "Show one lease", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var l api.Lease
			if err := e.call(cmd.Context(), http.MethodGet, "/v1/leases/"+url.PathEscape(args[0]), nil, nil, &l); err != nil {
				return err
			}
			return e.print(l, func() [][]string { return leaseRows([]api.Lease{l}) })
		},
	}

	var reason string
	cancel := &cobra.Command{
		Use: "cancel LEASE", Short: "Cancel a lease: allocations not started are dropped, running ones end now", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var l api.Lease
			in := map[string]string{"reason": reason}
			if err := e.call(cmd.Context(), http.MethodPost, "/v1/leases/"+url.PathEscape(args[0])+"/cancel", nil, in, &l); err != nil {
				return err
			}
			return e.print(l, func() [][]string { return leaseRows([]api.Lease{l}) })
		},
	}
	cancel.Flags().StringVar(&reason, "reason", "", "why (kept with the lease and in the audit log)")

	allocs := &cobra.Command{
		Use: "allocations LEASE", Short: "Show a lease's allocations (nodes over time) and shortfalls", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out api.LeaseAllocations
			if err := e.call(cmd.Context(), http.MethodGet, "/v1/leases/"+url.PathEscape(args[0])+"/allocations", nil, nil, &out); err != nil {
				return err
			}
			return e.print(out, func() [][]string {
				rows := [][]string{{"ALLOCATION", "START", "END", "NODES", "FIRST", "LAST"}}
				for _, a := range out.Allocations {
					first, last := "-", "-"
					if len(a.Nodes) > 0 {
						first, last = a.Nodes[0], a.Nodes[len(a.Nodes)-1]
					}
					rows = append(rows, []string{a.ID, ts(a.Start), ts(a.End), strconv.Itoa(len(a.Nodes)), first, last})
				}
				for _, s := range out.Shortfalls {
					rows = append(rows, []string{"shortfall", ts(s.From), ts(s.To), i64(s.GPUs) + " GPUs", s.Node, f1(s.GPUHours) + " GPU-h"})
				}
				return rows
			})
		},
	}
	cmd.AddCommand(create, list, show, cancel, allocs, newPlanCmd(e))
	return cmd
}

func newCapacityCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "capacity", Short: "Capacity over time (operators)"}
	var pool, from, to, step string
	show := &cobra.Command{
		Use: "show", Short: "A pool's capacity series: physical, healthy, holdback, contract, reservation, spot, free", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now().UTC().Truncate(time.Hour)
			q := url.Values{"pool": {pool}, "step": {step}}
			f, err := timeOrOffset(now, from)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			t, err := timeOrOffset(f, to)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			q.Set("from", f.Format(time.RFC3339))
			q.Set("to", t.Format(time.RFC3339))
			var out api.Capacity
			if err := e.call(cmd.Context(), http.MethodGet, "/v1/capacity", q, nil, &out); err != nil {
				return err
			}
			return e.print(out, func() [][]string {
				rows := [][]string{{"AT", "PHYSICAL", "HEALTHY", "HOLDBACK", "CONTRACT", "RESERVATION", "SPOT", "FREE"}}
				for _, p := range out.Points {
					rows = append(rows, []string{ts(p.At), i64(p.Physical), i64(p.Healthy), i64(p.Holdback), i64(p.Contract), i64(p.Reservation), i64(p.Spot), i64(p.Free)})
				}
				return rows
			})
		},
	}
	fl := show.Flags()
	fl.StringVar(&pool, "pool", "", "pool: site/GPU-MODEL")
	fl.StringVar(&from, "from", "", "start, RFC 3339 (default: the current hour)")
	fl.StringVar(&to, "to", "720h", "end, RFC 3339 or a duration after --from")
	fl.StringVar(&step, "step", "24h", "step, whole hours")
	cmd.AddCommand(show)
	return cmd
}

// timeOrOffset parses s as RFC 3339, or as a duration after base; "" is base.
func timeOrOffset(base time.Time, s string) (time.Time, error) {
	if s == "" {
		return base, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return base.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want RFC 3339 or a duration such as 720h", s)
	}
	return t, nil
}

func newHoldbackCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "holdback", Short: "Holdback: capacity never leased as guaranteed (operators)"}
	var pool string
	show := &cobra.Command{
		Use: "show", Short: "Show a pool's holdback schedule", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out api.Holdback
			if err := e.call(cmd.Context(), http.MethodGet, "/v1/holdback", url.Values{"pool": {pool}}, nil, &out); err != nil {
				return err
			}
			return e.print(out, func() [][]string { return holdbackRows(out) })
		},
	}
	show.Flags().StringVar(&pool, "pool", "", "pool: site/GPU-MODEL")
	var steps []string
	set := &cobra.Command{
		Use:     "set",
		Short:   "Replace a pool's holdback schedule",
		Example: "  neocloud holdback set --pool ref-300mw/H100-SXM --step 2027-01-01T00:00:00Z=20000 --step 2027-06-01T00:00:00Z=10000",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := api.Holdback{Pool: pool, Steps: []api.HoldbackStep{}}
			for _, s := range steps {
				from, gpus, ok := strings.Cut(s, "=")
				t, err := time.Parse(time.RFC3339, from)
				g, gerr := strconv.ParseInt(gpus, 10, 64)
				if !ok || err != nil || gerr != nil {
					return fmt.Errorf("--step %q: want FROM=GPUS with FROM in RFC 3339", s)
				}
				in.Steps = append(in.Steps, api.HoldbackStep{From: t, GPUs: g})
			}
			var out api.Holdback
			if err := e.call(cmd.Context(), http.MethodPost, "/v1/holdback", nil, in, &out); err != nil {
				return err
			}
			return e.print(out, func() [][]string { return holdbackRows(out) })
		},
	}
	set.Flags().StringVar(&pool, "pool", "", "pool: site/GPU-MODEL")
	set.Flags().StringArrayVar(&steps, "step", nil, "FROM=GPUS, repeatable; none clears the schedule")
	var months int
	pol := demand.DefaultPolicy()
	plan := &cobra.Command{
		Use:   "plan",
		Short: "Set a pool's holdback from its demand forecast: each month's peak quantile plus a buffer",
		Long: `plan fits the forecast to the pool's stored demand history (neocloud demand
import) and sets the holdback schedule the policy implies, month by month:
the forecast drives the calendar. A month in which the guaranteed leases
already admitted leave less room is set as high as they allow (WANTED shows the
policy's figure). See neocloud sellable for what it leaves.`,
		Example: "  neocloud holdback plan --pool ref-300mw/H100-SXM --months 12 --quantile 0.95 --buffer-permille 50",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := api.HoldbackPlanIn{Pool: pool, Months: months, Quantile: pol.Quantile, BufferPermille: pol.BufferPermille}
			var out api.HoldbackPlan
			if err := e.call(cmd.Context(), http.MethodPost, "/v1/holdback/plan", nil, in, &out); err != nil {
				return err
			}
			return e.print(out, func() [][]string {
				rows := [][]string{{"POOL", "FROM", "GPUS", "WANTED"}}
				for i, s := range out.Steps {
					wanted := "-"
					if i < len(out.Wanted) {
						wanted = i64(out.Wanted[i].GPUs)
					}
					rows = append(rows, []string{out.Pool, ts(s.From), i64(s.GPUs), wanted})
				}
				return rows
			})
		},
	}
	plan.Flags().StringVar(&pool, "pool", "", "pool: site/GPU-MODEL")
	plan.Flags().IntVar(&months, "months", 12, "months ahead (1-36)")
	plan.Flags().Float64Var(&pol.Quantile, "quantile", pol.Quantile, "forecast quantile held back, in (0, 1)")
	plan.Flags().Int64Var(&pol.BufferPermille, "buffer-permille", pol.BufferPermille, "buffer on top of the quantile, thousandths")
	cmd.AddCommand(show, set, plan)
	return cmd
}

func holdbackRows(h api.Holdback) [][]string {
	rows := [][]string{{"POOL", "FROM", "GPUS"}}
	for _, s := range h.Steps {
		rows = append(rows, []string{h.Pool, ts(s.From), i64(s.GPUs)})
	}
	return rows
}

func newNodeStateCmd(e *env) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "set-state NODE available|failed|maintenance",
		Short: "Mark a node failed or in maintenance (its guaranteed leases get replacements), or available again",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out api.NodeStateChange
			in := map[string]string{"state": args[1], "reason": reason}
			if err := e.call(cmd.Context(), http.MethodPost, "/v1/nodes/"+url.PathEscape(args[0])+"/state", nil, in, &out); err != nil {
				return err
			}
			return e.print(out, func() [][]string {
				return [][]string{{"NODE", "STATE", "ALLOCATIONS_ENDED", "REPLACED", "SHORTFALLS"},
					{out.Node.Name, out.Node.State, strconv.Itoa(out.Ended), strconv.Itoa(out.Replaced), strconv.Itoa(len(out.Shortfalls))}}
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (in the audit log)")
	return cmd
}
