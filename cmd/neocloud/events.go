package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/neocloud/neocloud/internal/api"
	"github.com/neocloud/neocloud/internal/client"
)

func newEventsCmd(e *env) *cobra.Command {
	var (
		follow bool
		after  int64
		limit  int
	)
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show events (lease, node, shortfall, spot), or follow them as they happen",
		Long: `events prints the events the key may see, in commit order: a tenant key its
tenant's, an operator key every event (operator-only ones have no tenant).
Without --follow it prints one page (--limit) after --after. With --follow it
prints the events after --after, then each one as it commits, one line each
(-o json: one JSON object a line), until interrupted; when the stream drops
it reconnects and resumes after the last event printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if after < 0 {
				return fmt.Errorf("--after %d: want a seq, 0 or more", after)
			}
			if !follow {
				q := url.Values{"follow": {"false"}, "after": {i64(after)}, "limit": {strconv.Itoa(limit)}}
				var out []api.Event
				if err := e.call(cmd.Context(), http.MethodGet, "/v1/events", q, nil, &out); err != nil {
					return err
				}
				return e.print(out, func() [][]string {
					rows := [][]string{{"SEQ", "AT", "TYPE", "TENANT", "LEASE", "DATA"}}
					for _, ev := range out {
						rows = append(rows, eventRow(ev))
					}
					return rows
				})
			}
			return e.followEvents(cmd.Context(), after)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "stream events as they commit, until interrupted")
	cmd.Flags().Int64Var(&after, "after", 0, "only events after this seq")
	cmd.Flags().IntVar(&limit, "limit", 100, "without --follow: the most events to print (1-1000)")
	return cmd
}

func eventRow(ev api.Event) []string {
	return []string{i64(ev.Seq), ts(ev.At), ev.Type, dash(ev.Tenant), dash(ev.Lease), string(ev.Data)}
}

// followEvents prints the event stream after seq after until ctx ends,
// reconnecting (after the last event printed) when the stream drops.
func (e *env) followEvents(ctx context.Context, after int64) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	last := i64(after)
	for {
		err := c.Stream(ctx, "/v1/events", nil, last, func(se client.ServerEvent) error {
			var ev api.Event
			if err := json.Unmarshal([]byte(se.Data), &ev); err != nil {
				return fmt.Errorf("event %s: %w", se.ID, err)
			}
			if e.output == "json" {
				fmt.Fprintln(e.stdout, se.Data)
			} else {
				row := eventRow(ev)
				fmt.Fprintf(e.stdout, "%s  %s  %-20s  %s  %s  %s\n", row[0], row[1], row[2], row[3], row[4], row[5])
			}
			last = se.ID
			return nil
		})
		if ctx.Err() != nil {
			return nil // interrupted: the normal end
		}
		var pe *client.ProblemError
		if errors.As(err, &pe) {
			return err
		}
		why := "the server ended the stream"
		if err != nil {
			why = err.Error()
		}
		fmt.Fprintf(e.stderr, "events: %s; reconnecting after seq %s\n", why, last)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
}

func newWebhooksCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "webhooks", Short: "Webhook endpoints: events POSTed, signed, to your URL",
		Long: `webhooks manages the endpoints that receive events by signed POST (see
docs/spot-reclaim.md, "Events and webhooks"): a tenant key's endpoints get
its tenant's events, an operator endpoint (created without --tenant by an
operator key) every event.`}
	printHooks := func(v any, ws []api.Webhook) error {
		return e.print(v, func() [][]string {
			rows := [][]string{{"WEBHOOK", "TENANT", "URL", "CREATED", "LAST_SEQ", "ATTEMPTS", "LAST_STATUS", "LAST_ERROR"}}
			for _, w := range ws {
				status := "-"
				if w.LastStatus != 0 {
					status = strconv.Itoa(w.LastStatus)
				}
				rows = append(rows, []string{w.ID, dash(w.Tenant), w.URL, ts(w.Created), i64(w.LastSeq), strconv.Itoa(w.Attempts), status, dash(w.LastError)})
			}
			return rows
		})
	}
	var tenantID, hookURL string
	create := &cobra.Command{
		Use: "create", Short: "Register an endpoint; its signing secret is printed once", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := map[string]string{"url": hookURL}
			if tenantID != "" {
				in["tenant"] = tenantID
			}
			var out api.WebhookCreated
			if err := e.call(cmd.Context(), http.MethodPost, "/v1/webhooks", nil, in, &out); err != nil {
				return err
			}
			if e.output == "json" {
				return e.print(out, nil)
			}
			if err := printHooks(out, []api.Webhook{out.Webhook}); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "\nsigning secret (shown once; store it now): %s\n", out.Secret)
			return nil
		},
	}
	create.Flags().StringVar(&hookURL, "url", "", "the endpoint: an absolute https URL (http only where the server allows it), outside the server's own network")
	create.Flags().StringVar(&tenantID, "tenant", "", "operators: the tenant whose events it receives (default: every event)")
	_ = create.MarkFlagRequired("url")
	var listTenant string
	list := &cobra.Command{
		Use: "list", Short: "List endpoints with their delivery state", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if listTenant != "" {
				q.Set("tenant", listTenant)
			}
			var out []api.Webhook
			if err := e.call(cmd.Context(), http.MethodGet, "/v1/webhooks", q, nil, &out); err != nil {
				return err
			}
			return printHooks(out, out)
		},
	}
	list.Flags().StringVar(&listTenant, "tenant", "", "only this tenant's endpoints")
	del := &cobra.Command{
		Use: "delete WEBHOOK_ID", Short: "Delete an endpoint: nothing more is sent to it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out api.Webhook
			if err := e.call(cmd.Context(), http.MethodDelete, "/v1/webhooks/"+url.PathEscape(args[0]), nil, nil, &out); err != nil {
				return err
			}
			return printHooks(out, []api.Webhook{out})
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}
