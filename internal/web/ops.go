package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/neocloud/neocloud/internal/demand"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/event"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/valid"
)

// opsEngine is what the operator pages (sellable capacity, revenue, live
// events, tenants and keys) read and submit.
type opsEngine interface {
	Sellable(ctx context.Context, p tenant.Principal, pool string, months int, pol demand.Policy) (engine.SellableReport, error)
	Revenue(ctx context.Context, p tenant.Principal, from, to time.Time) ([]engine.RevenueRow, error)

	Events(ctx context.Context, p tenant.Principal, after int64, limit int) ([]event.Event, error)
	RecentEvents(ctx context.Context, p tenant.Principal, before int64, limit int) ([]event.Event, error)
	LastEventSeq(ctx context.Context) (int64, error)
	EventsChanged() <-chan struct{}

	TenantSummaries(ctx context.Context, p tenant.Principal) ([]engine.TenantSummary, error)
	TenantSummary(ctx context.Context, p tenant.Principal, id string) (engine.TenantSummary, error)
	Tenant(ctx context.Context, p tenant.Principal, id string) (tenant.Tenant, error)
	CreateTenant(ctx context.Context, p tenant.Principal, t tenant.Tenant) (tenant.Tenant, error)
	Keys(ctx context.Context, p tenant.Principal, tenantID string, includeRevoked bool) ([]tenant.Key, error)
	CreateKey(ctx context.Context, p tenant.Principal, req engine.KeyRequest) (tenant.Key, string, error)
	RevokeKey(ctx context.Context, p tenant.Principal, id string) (tenant.Key, error)
	Audit(ctx context.Context, p tenant.Principal, f engine.AuditFilter) ([]tenant.AuditEntry, error)
}

func (s *Server) opsRoutes() {
	s.mux.HandleFunc("GET /sellable", s.signedIn(s.sellable))
	s.mux.HandleFunc("GET /revenue", s.signedIn(s.revenue))
	s.mux.HandleFunc("GET /events", s.signedIn(s.events))
	s.mux.Handle("GET /events/stream", newEventStreams(s))
	s.mux.HandleFunc("GET /tenants", s.signedIn(s.tenants))
	s.mux.HandleFunc("POST /tenants", s.form(s.createTenant))
	s.mux.HandleFunc("GET /tenants/{id}", s.signedIn(s.tenantPage))
	s.mux.HandleFunc("POST /tenants/{id}/keys", s.form(s.createKey))
	s.mux.HandleFunc("POST /tenants/{id}/keys/{key}/revoke", s.form(s.revokeKey))
}

// operatorOnly answers 403 and returns false unless p acts for the owner
// and holds perm.
func (s *Server) operatorOnly(w http.ResponseWriter, v view, p tenant.Principal, perm tenant.Permission) bool {
	if !p.Role.IsOperator() || !p.Can(perm) {
		s.fail(w, v, tenant.ErrForbidden)
		return false
	}
	return true
}

// refusal returns the status for input the engine refused (a bad field,
// a taken ID), with its message for the page; false for any other error,
// which the caller hands to fail.
func refusal(err error) (int, string, bool) {
	var v *valid.Error
	switch {
	case errors.As(err, &v):
		return http.StatusBadRequest, v.Error(), true
	case errors.Is(err, tenant.ErrExists):
		return http.StatusConflict, err.Error(), true
	}
	return 0, "", false
}

// site is a site's pools, for the pool selectors.
type site struct {
	Name  string
	Pools []string
}

// bySite groups pool IDs by site, in the order of pools (by ID, so sites
// come sorted).
func bySite(pools []engine.PoolRef) []site {
	var out []site
	for _, pl := range pools {
		if len(out) == 0 || out[len(out)-1].Name != pl.Site {
			out = append(out, site{Name: pl.Site})
		}
		out[len(out)-1].Pools = append(out[len(out)-1].Pools, pl.ID)
	}
	return out
}

// maxPoolsNamed is how many pools an unknown pool's message lists.
const maxPoolsNamed = 20

// unknownPool is the message of a page asked for a pool the fleet does
// not have: the field, the value, and the pools in service (the first
// maxPoolsNamed).
func unknownPool(pools []engine.PoolRef, want string) string {
	var names []string
	for _, pl := range pools[:min(len(pools), maxPoolsNamed)] {
		names = append(names, pl.ID)
	}
	known := strings.Join(names, ", ")
	switch {
	case len(pools) == 0:
		known = "none (the fleet has no node in service)"
	case len(pools) > maxPoolsNamed:
		known += fmt.Sprintf(" and %d more", len(pools)-maxPoolsNamed)
	}
	var v valid.Error
	v.Add("pool", want, "must be a pool of the fleet's nodes in service: %s", known)
	return v.Error()
}

// pickPool returns the pool the query names, the first pool when it names
// none, and false when it names one the fleet does not have.
func pickPool(pools []engine.PoolRef, want string) (string, bool) {
	if want == "" {
		if len(pools) == 0 {
			return "", true
		}
		return pools[0].ID, true
	}
	ok := slices.ContainsFunc(pools, func(pl engine.PoolRef) bool { return pl.ID == want })
	return want, ok
}

// group formats n with thin separators every three digits (12 345).
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var b []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, s[i])
	}
	if neg {
		return "-" + string(b)
	}
	return string(b)
}

const day = 24 * time.Hour

// dateTime formats t for tables: UTC, to the minute.
func dateTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// barChart is the JSON block static/bars.js draws: bars per t (Unix
// seconds), Stack stacked from the bottom up, Below each drawn from zero
// down.
type barChart struct {
	T     []int64     `json:"t"`
	Unit  string      `json:"unit"`
	Stack []barSeries `json:"stack"`
	Below []barSeries `json:"below,omitempty"`
}

type barSeries struct {
	Label  string  `json:"label"`
	Color  string  `json:"color"`
	Values []int64 `json:"values"`
}

// chartJSON marshals a chart's data for a <script type="application/json">
// block (json.Marshal escapes <, > and &).
func chartJSON(v any) (template.JS, error) {
	b, err := json.Marshal(v)
	return template.JS(b), err
}
