package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/neocloud/neocloud/internal/api"
)

// readPlan reads a price plan from a JSON file (unknown fields refused).
func readPlan(path string) (*api.Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--plan: %w", err)
	}
	var p api.Plan
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("--plan %s: %w", path, err)
	}
	return &p, nil
}

func newPlanCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "plan", Short: "A lease's price plan"}
	show := &cobra.Command{
		Use: "show LEASE", Short: "Show the plan a lease is billed on (the default when none was set)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out api.LeasePlan
			if err := e.call(cmd.Context(), http.MethodGet, "/v1/leases/"+url.PathEscape(args[0])+"/plan", nil, nil, &out); err != nil {
				return err
			}
			return e.printJSON(out)
		},
	}
	var file string
	set := &cobra.Command{
		Use: "set LEASE --file PLAN.json", Short: "Attach a price plan to a lease (operator admins)", Args: cobra.ExactArgs(1),
		Example: `  neocloud leases plan set ls_0123456789abcdef --file anchor-plan.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := readPlan(file)
			if err != nil {
				return err
			}
			var out api.LeasePlan
			if err := e.call(cmd.Context(), http.MethodPut, "/v1/leases/"+url.PathEscape(args[0])+"/plan", nil, p, &out); err != nil {
				return err
			}
			return e.printJSON(out)
		},
	}
	set.Flags().StringVar(&file, "file", "", "the plan, JSON (see docs/billing.md)")
	cmd.AddCommand(show, set)
	return cmd
}

// printJSON writes v as indented JSON whatever --output says (for objects
// with no table form).
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newInvoicesCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "invoices", Short: "Invoices: one per tenant and month; draft -> finalized -> paid | void"}
	run := &cobra.Command{
		Use: "run MONTH", Short: "Rate a month (YYYY-MM) into one draft per tenant; reruns replace drafts, never finalized invoices", Args: cobra.ExactArgs(1),
		Example: "  neocloud invoices run 2026-11",
		RunE: func(cmd *cobra.Command, args []string) error {
			var out api.InvoiceRunResult
			body := map[string]string{"month": args[0]}
			if err := e.call(cmd.Context(), http.MethodPost, "/v1/invoices/run", nil, body, &out); err != nil {
				return err
			}
			return e.print(out, func() [][]string {
				return [][]string{{"MONTH", "LEASES", "DRAFTS", "LINES", "TOTAL", "SKIPPED", "NO_PLAN"},
					{out.Month, fmt.Sprint(out.Leases), fmt.Sprint(out.Drafts), fmt.Sprint(out.Lines), out.Total,
						dash(strings.Join(out.Skipped, ",")), dash(strings.Join(out.NoPlan, ","))}}
			})
		},
	}
	var tenantID, month, state string
	list := &cobra.Command{
		Use: "list", Short: "List invoices (tenants: their own)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"tenant": tenantID, "month": month, "state": state} {
				if v != "" {
					q.Set(k, v)
				}
			}
			var out api.Invoices
			if err := e.call(cmd.Context(), http.MethodGet, "/v1/invoices", q, nil, &out); err != nil {
				return err
			}
			return e.print(out, func() [][]string {
				rows := [][]string{{"ID", "TENANT", "MONTH", "STATE", "TOTAL", "CURRENCY"}}
				for _, i := range out.Items {
					rows = append(rows, []string{i.ID, i.TenantID, i.Month, i.State, i.Total, i.Currency})
				}
				return rows
			})
		},
	}
	list.Flags().StringVar(&tenantID, "tenant", "", "one tenant (operators)")
	list.Flags().StringVar(&month, "month", "", "one month, YYYY-MM")
	list.Flags().StringVar(&state, "state", "", "draft, finalized, paid or void")
	show := &cobra.Command{
		Use: "show INVOICE", Short: "Show an invoice with its lines", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out api.Invoice
			if err := e.call(cmd.Context(), http.MethodGet, "/v1/invoices/"+url.PathEscape(args[0]), nil, nil, &out); err != nil {
				return err
			}
			return e.print(out, func() [][]string { return invoiceTable(out) })
		},
	}
	var format, outFile string
	export := &cobra.Command{
		Use: "export INVOICE", Short: "Export an invoice as JSON, CSV or printable HTML", Args: cobra.ExactArgs(1),
		Example: "  neocloud invoices export inv-acme-202611 --format html -f acme-2026-11.html",
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "json" && format != "csv" && format != "html" {
				return fmt.Errorf("--format %q: want json, csv or html", format)
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			body, err := c.Raw(cmd.Context(), http.MethodGet, "/v1/invoices/"+url.PathEscape(args[0]), url.Values{"format": {format}})
			if err != nil {
				return err
			}
			var w io.Writer = e.stdout
			if outFile != "" {
				f, err := os.Create(outFile)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			_, err = w.Write(body)
			return err
		},
	}
	export.Flags().StringVar(&format, "format", "json", "json, csv or html")
	export.Flags().StringVarP(&outFile, "file", "f", "", "write to this file instead of standard output")
	cmd.AddCommand(run, list, show, export)
	for _, v := range []struct{ verb, short string }{
		{"finalize", "Finalize a draft: rounded to the cent, totalled, hashed; it never changes again"},
		{"pay", "Mark a finalized invoice paid"},
		{"void", "Void a draft or an unpaid finalized invoice"},
	} {
		verb := v.verb
		cmd.AddCommand(&cobra.Command{
			Use: verb + " INVOICE", Short: v.short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				var out api.Invoice
				if err := e.call(cmd.Context(), http.MethodPost, "/v1/invoices/"+url.PathEscape(args[0])+"/"+verb, nil, nil, &out); err != nil {
					return err
				}
				return e.print(out, func() [][]string {
					return [][]string{{"ID", "STATE", "TOTAL", "HASH"}, {out.ID, out.State, out.Total, dash(out.Hash)}}
				})
			},
		})
	}
	var reason, leaseID, amount, desc string
	credit := &cobra.Command{
		Use: "credit INVOICE", Short: "Issue a credit note against a finalized invoice (a correction; the invoice never changes)", Args: cobra.ExactArgs(1),
		Example: `  neocloud invoices credit inv-acme-202611 --amount 1200.00 --reason "maintenance overran" --lease ls_0123456789abcdef`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if desc == "" {
				desc = reason
			}
			body := map[string]any{"reason": reason, "lines": []api.CreditNoteLine{{LeaseID: leaseID, Description: desc, Amount: amount}}}
			var out api.CreditNote
			if err := e.call(cmd.Context(), http.MethodPost, "/v1/invoices/"+url.PathEscape(args[0])+"/credit-notes", nil, body, &out); err != nil {
				return err
			}
			return e.print(out, func() [][]string {
				return [][]string{{"ID", "INVOICE", "TOTAL", "REASON"}, {out.ID, out.InvoiceID, out.Total, out.Reason}}
			})
		},
	}
	credit.Flags().StringVar(&reason, "reason", "", "why")
	credit.Flags().StringVar(&amount, "amount", "", "the credit, a positive decimal amount")
	credit.Flags().StringVar(&leaseID, "lease", "", "the lease it is for (default the whole invoice)")
	credit.Flags().StringVar(&desc, "description", "", "the line's text (default the reason)")
	cmd.AddCommand(credit)
	return cmd
}

func invoiceTable(inv api.Invoice) [][]string {
	rows := [][]string{{"KIND", "LEASE", "DESCRIPTION", "QUANTITY", "UNIT", "UNIT_PRICE", "AMOUNT"}}
	for _, l := range inv.Lines {
		price := l.UnitPrice
		if l.Per > 1 {
			price += fmt.Sprintf("/%d", l.Per)
		}
		rows = append(rows, []string{l.Kind, dash(l.LeaseID), l.Description, l.Quantity, l.Unit, price, l.Amount})
	}
	rows = append(rows, []string{"total", "", fmt.Sprintf("%s %s (%s)", inv.ID, inv.Month, inv.State), "", "", "", inv.Total + " " + inv.Currency})
	return rows
}

func newRevenueCmd(e *env) *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use: "revenue", Short: "Revenue by month and kind: invoiced, in drafts, and forecast from signed contracts (operators)", Args: cobra.NoArgs,
		Example: "  neocloud revenue --from 2026-09 --to 2027-08",
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now().UTC()
			if from == "" {
				from = now.AddDate(0, -2, 0).Format("2006-01")
			}
			if to == "" {
				to = now.AddDate(0, 12, 0).Format("2006-01")
			}
			var out api.Revenue
			if err := e.call(cmd.Context(), http.MethodGet, "/v1/revenue", url.Values{"from": {from}, "to": {to}}, nil, &out); err != nil {
				return err
			}
			return e.print(out, func() [][]string {
				rows := [][]string{{"MONTH", "KIND", "INVOICED", "DRAFT", "FORECAST"}}
				for _, r := range out.Items {
					rows = append(rows, []string{r.Month, r.Kind, r.Invoiced, r.Draft, r.Forecast})
				}
				return rows
			})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "first month, YYYY-MM (default two months ago)")
	cmd.Flags().StringVar(&to, "to", "", "last month, YYYY-MM (default a year ahead)")
	return cmd
}
