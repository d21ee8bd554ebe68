package main

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/neocloud/neocloud/internal/api"
)

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
func f3(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
func i64(v int64) string  { return strconv.FormatInt(v, 10) }
func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func newWhoamiCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show the calling key's ID, tenant, role and permissions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var me api.Me
			if err := e.call(cmd.Context(), http.MethodGet, "/v1/me", nil, nil, &me); err != nil {
				return err
			}
			return e.print(me, func() [][]string {
				t := me.Tenant
				if t == "" {
					t = "-"
				}
				return [][]string{{"KEY", "TENANT", "ROLE", "PERMISSIONS"}, {me.KeyID, t, me.Role, fmt.Sprint(me.Permissions)}}
			})
		},
	}
}

func newSitesCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "sites", Short: "Sites (data centers)"}
	cmd.AddCommand(&cobra.Command{
		Use: "list", Short: "List sites with power and power domains", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var sites []api.Site
			if err := e.call(cmd.Context(), http.MethodGet, "/v1/sites", nil, nil, &sites); err != nil {
				return err
			}
			return e.print(sites, func() [][]string {
				rows := [][]string{{"SITE", "FACILITY_MW", "PUE", "IT_BUDGET_MW", "TARIFF_USD/MWH", "TIMEZONE", "POWER_DOMAINS"}}
				for _, s := range sites {
					rows = append(rows, []string{s.Name, f1(s.FacilityMW), f3(s.PUE), f1(s.ITBudgetMW), s.EnergyTariffUSDPerMWh, s.Timezone, strconv.Itoa(len(s.PowerDomains))})
				}
				return rows
			})
		},
	})
	return cmd
}

func newPoolsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "pools", Short: "Pools: the nodes of one GPU model at one site"}
	var site string
	list := &cobra.Command{
		Use: "list", Short: "List pools with node and GPU counts and power", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if site != "" {
				q.Set("site", site)
			}
			var pools []api.Pool
			if err := e.call(cmd.Context(), http.MethodGet, "/v1/pools", q, nil, &pools); err != nil {
				return err
			}
			return e.print(pools, func() [][]string {
				rows := [][]string{{"POOL", "NODES", "GPUS", "IT_MW", "FACILITY_MW", "AVAILABLE", "OTHER_STATES"}}
				for _, p := range pools {
					other := int64(0)
					for st, n := range p.NodesByState {
						if st != "available" {
							other += n
						}
					}
					rows = append(rows, []string{p.ID, i64(p.Nodes), i64(p.GPUs), f1(p.ITMW), f1(p.FacilityMW), i64(p.NodesByState["available"]), i64(other)})
				}
				return rows
			})
		},
	}
	list.Flags().StringVar(&site, "site", "", "only this site's pools")
	cmd.AddCommand(list)
	return cmd
}

func newNodesCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "nodes", Short: "Nodes (operators only)"}
	var site, pool, state, cursor string
	var limit int
	var all bool
	list := &cobra.Command{
		Use: "list", Short: "List nodes, one page or --all", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"site": site, "pool": pool, "state": state} {
				if v != "" {
					q.Set(k, v)
				}
			}
			q.Set("limit", strconv.Itoa(limit))
			var items []api.Node
			next := cursor
			for {
				if next != "" {
					q.Set("cursor", next)
				}
				var page api.NodePage
				if err := e.call(cmd.Context(), http.MethodGet, "/v1/nodes", q, nil, &page); err != nil {
					return err
				}
				items = append(items, page.Items...)
				next = page.NextCursor
				if !all || next == "" {
					break
				}
			}
			out := api.NodePage{Items: items}
			if !all {
				out.NextCursor = next
			}
			return e.print(out, func() [][]string {
				rows := [][]string{{"NODE", "POOL", "GPUS", "IT_KW", "POWER_DOMAIN", "LEAF_GROUP", "NVLINK_DOMAIN", "STATE"}}
				for _, n := range items {
					rows = append(rows, []string{n.Name, n.Pool, i64(n.GPUs), f1(n.ITKW), n.PowerDomain, n.LeafGroup, n.NVLinkDomain, n.State})
				}
				if out.NextCursor != "" {
					rows = append(rows, []string{"(more: --cursor " + out.NextCursor + " or --all)"})
				}
				return rows
			})
		},
	}
	fl := list.Flags()
	fl.StringVar(&site, "site", "", "only this site")
	fl.StringVar(&pool, "pool", "", "only this pool (site/GPU-MODEL)")
	fl.StringVar(&state, "state", "", "only this state: available, allocated, draining, sanitizing, failed, maintenance")
	fl.IntVar(&limit, "limit", 100, "nodes per page (1-5000)")
	fl.StringVar(&cursor, "cursor", "", "start after this node name (the previous page's next_cursor)")
	fl.BoolVar(&all, "all", false, "follow every page")
	cmd.AddCommand(list, newNodeStateCmd(e), newNodeSanitizedCmd(e))
	return cmd
}

func newTenantsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "tenants", Short: "Tenants: organisations that lease capacity"}
	printTenants := func(v any, list []api.Tenant) error {
		return e.print(v, func() [][]string {
			rows := [][]string{{"TENANT", "DISPLAY_NAME", "CREATED"}}
			for _, t := range list {
				rows = append(rows, []string{t.ID, t.DisplayName, ts(t.Created)})
			}
			return rows
		})
	}
	cmd.AddCommand(&cobra.Command{
		Use: "list", Short: "List tenants", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out []api.Tenant
			if err := e.call(cmd.Context(), http.MethodGet, "/v1/tenants", nil, nil, &out); err != nil {
				return err
			}
			return printTenants(out, out)
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use: "show TENANT", Short: "Show one tenant", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out api.Tenant
			if err := e.call(cmd.Context(), http.MethodGet, "/v1/tenants/"+url.PathEscape(args[0]), nil, nil, &out); err != nil {
				return err
			}
			return printTenants(out, []api.Tenant{out})
		},
	})
	var display string
	create := &cobra.Command{
		Use: "create TENANT", Short: "Create a tenant (TENANT is a slug: lowercase letters, digits, '-')", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := map[string]string{"id": args[0], "display_name": display}
			var out api.Tenant
			if err := e.call(cmd.Context(), http.MethodPost, "/v1/tenants", nil, in, &out); err != nil {
				return err
			}
			return printTenants(out, []api.Tenant{out})
		},
	}
	create.Flags().StringVar(&display, "display-name", "", "a human name, e.g. \"Rival Lab Inc.\"")
	cmd.AddCommand(create)
	return cmd
}

func newKeysCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "API keys"}
	printKeys := func(v any, ks []api.Key) error {
		return e.print(v, func() [][]string {
			rows := [][]string{{"KEY", "TENANT", "ROLE", "NAME", "CREATED", "REVOKED"}}
			for _, k := range ks {
				rev := "-"
				if k.Revoked != nil {
					rev = ts(*k.Revoked)
				}
				t := k.Tenant
				if t == "" {
					t = "-"
				}
				rows = append(rows, []string{k.ID, t, k.Role, k.Name, ts(k.Created), rev})
			}
			return rows
		})
	}
	var tenantID, role, name string
	var revoked bool
	list := &cobra.Command{
		Use: "list", Short: "List keys (metadata; secrets are never shown again)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if tenantID != "" {
				q.Set("tenant", tenantID)
			}
			if revoked {
				q.Set("include_revoked", "true")
			}
			var out []api.Key
			if err := e.call(cmd.Context(), http.MethodGet, "/v1/keys", q, nil, &out); err != nil {
				return err
			}
			sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
			return printKeys(out, out)
		},
	}
	list.Flags().StringVar(&tenantID, "tenant", "", "only this tenant's keys")
	list.Flags().BoolVar(&revoked, "include-revoked", false, "show revoked keys too")
	create := &cobra.Command{
		Use: "create", Short: "Issue a key; its secret is printed once", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := map[string]string{"tenant": tenantID, "role": role, "name": name}
			var out api.KeyCreated
			if err := e.call(cmd.Context(), http.MethodPost, "/v1/keys", nil, in, &out); err != nil {
				return err
			}
			if e.output == "json" {
				return e.print(out, nil)
			}
			if err := printKeys(out, []api.Key{out.Key}); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "\nsecret (shown once; store it now): %s\n", out.Secret)
			return nil
		},
	}
	create.Flags().StringVar(&tenantID, "tenant", "", "the key's tenant (required for tenant roles)")
	create.Flags().StringVar(&role, "role", "", "operator-admin, operator-viewer, operator-agent (telemetry push only), tenant-admin or tenant-viewer")
	create.Flags().StringVar(&name, "name", "", "a label for the key")
	_ = create.MarkFlagRequired("role")
	revoke := &cobra.Command{
		Use: "revoke KEY_ID", Short: "Revoke a key", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out api.Key
			if err := e.call(cmd.Context(), http.MethodDelete, "/v1/keys/"+url.PathEscape(args[0]), nil, nil, &out); err != nil {
				return err
			}
			return printKeys(out, []api.Key{out})
		},
	}
	cmd.AddCommand(list, create, revoke)
	return cmd
}

func newAuditCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "The audit log"}
	var tenantID string
	var before int64
	var limit int
	list := &cobra.Command{
		Use: "list", Short: "List audit entries, newest first", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if tenantID != "" {
				q.Set("tenant", tenantID)
			}
			if before > 0 {
				q.Set("before", i64(before))
			}
			var out []api.AuditEntry
			if err := e.call(cmd.Context(), http.MethodGet, "/v1/audit", q, nil, &out); err != nil {
				return err
			}
			return e.print(out, func() [][]string {
				rows := [][]string{{"SEQ", "AT", "ACTOR", "ROLE", "ACTION", "OBJECT", "OUTCOME", "DETAIL"}}
				for _, a := range out {
					rows = append(rows, []string{i64(a.Seq), ts(a.At), a.ActorKey, a.ActorRole, a.Action, a.Object, a.Outcome, a.Detail})
				}
				return rows
			})
		},
	}
	list.Flags().StringVar(&tenantID, "tenant", "", "only this tenant's entries")
	list.Flags().Int64Var(&before, "before", 0, "only entries with a sequence number below this")
	list.Flags().IntVar(&limit, "limit", 50, "entries to show (1-1000)")
	cmd.AddCommand(list)
	return cmd
}
