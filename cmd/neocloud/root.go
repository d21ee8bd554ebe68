package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/neocloud/neocloud/internal/client"
)

// env is what a command may touch of the process: its environment and
// streams, injected so tests run commands in-process.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	server string
	token  string
	output string
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "neocloud",
		Short: "Lease a GPU fleet's spare capacity without starving its owner",
		Long: `neocloud is the control plane a GPU fleet's owner runs to lease the capacity
it does not use. One binary: server (serve, demo), CLI client (sites, pools,
nodes, tenants, keys, audit, fleet apply, events, webhooks) and offline fleet
tools.

Client commands read --server / NEOCLOUD_SERVER and --token / NEOCLOUD_TOKEN
(or --token-file / NEOCLOUD_TOKEN_FILE).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := func(name, fallback string) string {
		if v := e.getenv(name); v != "" {
			return v
		}
		return fallback
	}
	var tokenFile string
	pf := root.PersistentFlags()
	pf.StringVar(&e.server, "server", def("NEOCLOUD_SERVER", "http://127.0.0.1:8080"), "server URL (env NEOCLOUD_SERVER)")
	pf.StringVar(&e.token, "token", e.getenv("NEOCLOUD_TOKEN"), "API key (env NEOCLOUD_TOKEN)")
	pf.StringVar(&tokenFile, "token-file", e.getenv("NEOCLOUD_TOKEN_FILE"), "file holding the API key, e.g. DATA/admin.key (env NEOCLOUD_TOKEN_FILE)")
	pf.StringVarP(&e.output, "output", "o", "table", "output format: table or json")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if e.output != "table" && e.output != "json" {
			return fmt.Errorf("--output %q: want table or json", e.output)
		}
		if e.token == "" && tokenFile != "" {
			b, err := os.ReadFile(tokenFile)
			if err != nil {
				return fmt.Errorf("--token-file: %w", err)
			}
			e.token = strings.TrimSpace(string(b))
		}
		return nil
	}
	root.AddCommand(
		newServeCmd(e), newDemoCmd(e), newFleetCmd(e), newBenchCmd(e),
		newSitesCmd(e), newPoolsCmd(e), newNodesCmd(e), newTenantsCmd(e), newKeysCmd(e), newAuditCmd(e), newWhoamiCmd(e),
		newQuoteCmd(e), newLeasesCmd(e), newCapacityCmd(e), newHoldbackCmd(e), newDemandCmd(e), newSellableCmd(e),
		newEventsCmd(e), newWebhooksCmd(e), newSpotCmd(e), newInternalUseCmd(e), newSimulateCmd(e), newAgentCmd(e),
		newUsageCmd(e), newSLACmd(e), newHealthCmd(e), newInvoicesCmd(e), newRevenueCmd(e), newScreenshotsCmd(e),
	)
	return root
}

// client returns an API client for the --server and --token flags.
func (e *env) client() (*client.Client, error) {
	return client.New(e.server, e.token)
}

// call is the common shape of a client command: one request, then print.
func (e *env) call(ctx context.Context, method, path string, query url.Values, in, out any) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	return c.Do(ctx, method, path, query, in, out)
}

// print writes v as indented JSON with -o json, else as a table made by
// table (a header row, then rows).
func (e *env) print(v any, table func() [][]string) error {
	if e.output == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	for _, row := range table() {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}
