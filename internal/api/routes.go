package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/tenant"
)

const (
	permKey        = "permission"
	fleetApplyPath = "/v1/fleet/apply"
)

// registerRoutes is the one list of routes. Every route declares the
// permission it needs; the authorization matrix test fails when a route is
// added without an entry there.
func (s *Server) registerRoutes() {
	// Plain routes, outside the OpenAPI document.
	s.plain("GET /healthz", tenant.PermPublic, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	}))
	s.plain("GET /metrics", tenant.PermNodesRead, promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	// The OpenAPI documents huma serves (3.1, and 3.0 for older tools).
	for _, path := range []string{"/openapi.json", "/openapi.yaml", "/openapi-3.0.json", "/openapi-3.0.yaml"} {
		s.routes = append(s.routes, Route{Method: http.MethodGet, Path: path, Perm: tenant.PermPublic})
	}

	register(s, huma.Operation{OperationID: "whoami", Method: http.MethodGet, Path: "/v1/me", Tags: []string{"auth"},
		Summary: "The calling key: its ID, tenant, role and permissions"}, tenant.PermSelf, s.me)

	register(s, huma.Operation{OperationID: "list-sites", Method: http.MethodGet, Path: "/v1/sites", Tags: []string{"fleet"},
		Summary: "Sites in service with their power domains"}, tenant.PermFleetRead, s.listSites)
	register(s, huma.Operation{OperationID: "list-pools", Method: http.MethodGet, Path: "/v1/pools", Tags: []string{"fleet"},
		Summary: "Pools (site × GPU model): node and GPU counts, IT and facility MW"}, tenant.PermFleetRead, s.listPools)
	register(s, huma.Operation{OperationID: "list-nodes", Method: http.MethodGet, Path: "/v1/nodes", Tags: []string{"fleet"},
		Summary: "Nodes in service, by name, one page at a time"}, tenant.PermNodesRead, s.listNodes)
	register(s, huma.Operation{OperationID: "get-fleet", Method: http.MethodGet, Path: "/v1/fleet", Tags: []string{"fleet"},
		Summary: "The fleet file in force and its revision"}, tenant.PermNodesRead, s.getFleet)
	register(s, huma.Operation{OperationID: "apply-fleet", Method: http.MethodPost, Path: fleetApplyPath, Tags: []string{"fleet"},
		Summary:      "Make the fleet equal to a fleet file, in one transaction",
		Description:  "Adds, updates and retires nodes (and sites) so that the fleet in service equals the file. Refuses (409) to retire or re-pool a node that holds or will hold an allocation; then nothing changes. `dry_run=true` answers the same diff and writes nothing.",
		MaxBodyBytes: fleetMaxBody}, tenant.PermFleetWrite, s.applyFleet)

	register(s, huma.Operation{OperationID: "list-tenants", Method: http.MethodGet, Path: "/v1/tenants", Tags: []string{"tenants"},
		Summary: "Tenants: all for operators, its own for a tenant key"}, tenant.PermTenantRead, s.listTenants)
	register(s, huma.Operation{OperationID: "create-tenant", Method: http.MethodPost, Path: "/v1/tenants", Tags: []string{"tenants"},
		Summary: "Create a tenant", DefaultStatus: http.StatusCreated}, tenant.PermTenantWrite, s.createTenant)
	register(s, huma.Operation{OperationID: "get-tenant", Method: http.MethodGet, Path: "/v1/tenants/{tenant}", Tags: []string{"tenants"},
		Summary: "One tenant"}, tenant.PermTenantRead, s.getTenant)

	register(s, huma.Operation{OperationID: "list-keys", Method: http.MethodGet, Path: "/v1/keys", Tags: []string{"keys"},
		Summary: "API keys (metadata only; secrets are never shown again)"}, tenant.PermKeysRead, s.listKeys)
	register(s, huma.Operation{OperationID: "create-key", Method: http.MethodPost, Path: "/v1/keys", Tags: []string{"keys"},
		Summary: "Issue an API key; the secret is in this response only", DefaultStatus: http.StatusCreated}, tenant.PermKeysWrite, s.createKey)
	register(s, huma.Operation{OperationID: "revoke-key", Method: http.MethodDelete, Path: "/v1/keys/{key}", Tags: []string{"keys"},
		Summary: "Revoke an API key"}, tenant.PermKeysWrite, s.revokeKey)

	register(s, huma.Operation{OperationID: "list-audit", Method: http.MethodGet, Path: "/v1/audit", Tags: []string{"audit"},
		Summary: "The audit log, newest first: every mutation and every denial"}, tenant.PermAuditRead, s.listAudit)

	s.registerLeaseRoutes()
	s.registerDemandRoutes()
	s.registerEventRoutes()
	s.registerSpotRoutes()
	s.registerMeterRoutes()
	s.registerBillingRoutes()
}

// register adds one operation with its permission. Handlers get the
// authenticated principal and return domain errors, which problem maps.
func register[I, O any](s *Server, op huma.Operation, perm tenant.Permission, h func(context.Context, tenant.Principal, *I) (*O, error)) {
	if op.Metadata == nil {
		op.Metadata = map[string]any{}
	}
	op.Metadata[permKey] = perm
	if op.MaxBodyBytes == 0 {
		op.MaxBodyBytes = defaultMaxBody
	}
	if perm != tenant.PermPublic {
		op.Security = []map[string][]string{{"bearer": {}}}
		op.Description = joinNonEmpty(op.Description, "Permission: `"+string(perm)+"`.")
	}
	if op.Method != http.MethodGet {
		op.Parameters = append(op.Parameters, &huma.Param{Name: IdempotencyHeader, In: "header", Schema: &huma.Schema{Type: "string", MaxLength: ptr(255)},
			Description: "Retry safely: a replay of the same request within 24 h gets the first response (Idempotent-Replayed: true); the same key with another request is refused (422)."})
	}
	s.routes = append(s.routes, Route{Method: op.Method, Path: op.Path, Perm: perm})
	huma.Register(s.api, op, func(ctx context.Context, in *I) (*O, error) {
		out, err := h(ctx, principal(ctx), in)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return out, nil
	})
}

// plain adds a route outside the OpenAPI document, guarded by perm.
func (s *Server) plain(pattern string, perm tenant.Permission, h http.Handler) {
	method, path, _ := strings.Cut(pattern, " ")
	s.routes = append(s.routes, Route{Method: method, Path: path, Perm: perm})
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.authorize(r.Context(), r.Header.Get("Authorization"), perm, pattern); err != nil {
			pe := s.problem(r.Context(), err)
			if errors.Is(err, tenant.ErrUnauthenticated) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="neocloud"`)
			}
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(pe.GetStatus())
			_ = json.NewEncoder(w).Encode(pe)
			return
		}
		h.ServeHTTP(w, r)
	}))
}

func ptr[T any](v T) *T { return &v }

func joinNonEmpty(a, b string) string {
	if a == "" {
		return b
	}
	return a + "\n\n" + b
}

type body[T any] struct {
	Body T
}

func ok[T any](v T) (*body[T], error) { return &body[T]{Body: v}, nil }

// Me describes the calling key.
type Me struct {
	KeyID       string   `json:"key_id"`
	Tenant      string   `json:"tenant,omitempty"`
	Role        string   `json:"role"`
	Permissions []string `json:"permissions"`
}

func (s *Server) me(_ context.Context, p tenant.Principal, _ *struct{}) (*body[Me], error) {
	out := Me{KeyID: p.KeyID, Tenant: p.TenantID, Role: string(p.Role), Permissions: []string{}}
	seen := map[tenant.Permission]bool{}
	for _, r := range s.routes {
		if r.Perm != tenant.PermPublic && !seen[r.Perm] && p.Can(r.Perm) {
			seen[r.Perm] = true
			out.Permissions = append(out.Permissions, string(r.Perm))
		}
	}
	return ok(out)
}

func (s *Server) listSites(ctx context.Context, _ tenant.Principal, _ *struct{}) (*body[[]Site], error) {
	sites, err := s.eng.Sites(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Site, len(sites))
	for i, site := range sites {
		out[i] = siteJSON(site)
	}
	return ok(out)
}

type poolsIn struct {
	Site string `query:"site" pattern:"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$" doc:"Only this site's pools."`
}

func (s *Server) listPools(ctx context.Context, p tenant.Principal, in *poolsIn) (*body[[]Pool], error) {
	pools, err := s.eng.Pools(ctx, in.Site)
	if err != nil {
		return nil, err
	}
	out := make([]Pool, len(pools))
	for i, pool := range pools {
		out[i] = poolJSON(pool)
		if !p.Role.IsOperator() {
			// How many nodes are allocated, failed or in maintenance is the
			// owner's business (and, through allocations, other tenants').
			out[i].NodesByState = nil
		}
	}
	return ok(out)
}

type nodesIn struct {
	Site   string `query:"site" pattern:"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"`
	Pool   string `query:"pool" pattern:"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/[A-Za-z0-9-]{1,32}$" doc:"site/GPU-MODEL, e.g. ref-300mw/H100-SXM"`
	State  string `query:"state" enum:"available,allocated,draining,sanitizing,failed,maintenance"`
	Limit  int    `query:"limit" minimum:"1" maximum:"5000" default:"500"`
	Cursor string `query:"cursor" pattern:"^[A-Za-z0-9.-]{0,253}$" doc:"next_cursor of the previous page"`
}

// NodePage is one page of nodes.
type NodePage struct {
	Items      []Node `json:"items"`
	NextCursor string `json:"next_cursor,omitempty" doc:"Pass as cursor for the next page; absent on the last page."`
}

func (s *Server) listNodes(ctx context.Context, _ tenant.Principal, in *nodesIn) (*body[NodePage], error) {
	limit := in.Limit
	if limit <= 0 {
		limit = 500
	}
	nodes, err := s.eng.Nodes(ctx, engine.NodeFilter{Site: in.Site, Pool: in.Pool, State: fleet.State(in.State), After: in.Cursor, Limit: limit + 1})
	if err != nil {
		return nil, err
	}
	out := NodePage{Items: make([]Node, 0, min(len(nodes), limit))}
	for i, n := range nodes {
		if i == limit {
			out.NextCursor = nodes[limit-1].Name
			break
		}
		out.Items = append(out.Items, nodeJSON(n))
	}
	return ok(out)
}

func (s *Server) getFleet(ctx context.Context, _ tenant.Principal, _ *struct{}) (*body[FleetRevision], error) {
	rev, err := s.eng.FleetRevision(ctx)
	if err != nil {
		return nil, err
	}
	spec, err := fleet.DecodeJSON(rev.Spec)
	if err != nil {
		return nil, err
	}
	return ok(FleetRevision{Revision: rev.Seq, At: rev.At, By: rev.By, SHA256: rev.SHA256, Nodes: rev.NodeCount, GPUs: rev.GPUCount, Spec: *spec})
}

type applyIn struct {
	DryRun bool       `query:"dry_run" doc:"Compute and answer the diff without writing."`
	Body   fleet.Spec `required:"true"`
}

func (s *Server) applyFleet(ctx context.Context, p tenant.Principal, in *applyIn) (*body[ApplyResult], error) {
	res, err := s.eng.ApplyFleet(ctx, p, &in.Body, in.DryRun)
	if err != nil {
		return nil, err
	}
	return ok(applyResultJSON(res))
}

func (s *Server) listTenants(ctx context.Context, p tenant.Principal, _ *struct{}) (*body[[]Tenant], error) {
	ts, err := s.eng.Tenants(ctx, p)
	if err != nil {
		return nil, err
	}
	out := make([]Tenant, len(ts))
	for i, t := range ts {
		out[i] = tenantJSON(t)
	}
	return ok(out)
}

type createTenantIn struct {
	Body struct {
		ID          string `json:"id" required:"true" doc:"A slug: lowercase letters, digits and '-'; never changes." maxLength:"63"`
		DisplayName string `json:"display_name" maxLength:"200"`
	}
}

func (s *Server) createTenant(ctx context.Context, p tenant.Principal, in *createTenantIn) (*body[Tenant], error) {
	t, err := s.eng.CreateTenant(ctx, p, tenant.Tenant{ID: in.Body.ID, DisplayName: in.Body.DisplayName})
	if err != nil {
		return nil, err
	}
	return ok(tenantJSON(t))
}

type tenantPath struct {
	Tenant string `path:"tenant" pattern:"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"`
}

func (s *Server) getTenant(ctx context.Context, p tenant.Principal, in *tenantPath) (*body[Tenant], error) {
	t, err := s.eng.Tenant(ctx, p, in.Tenant)
	if err != nil {
		return nil, err
	}
	return ok(tenantJSON(t))
}

type keysIn struct {
	Tenant         string `query:"tenant" pattern:"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$" doc:"Only this tenant's keys (tenant keys always see only their own)."`
	IncludeRevoked bool   `query:"include_revoked"`
}

func (s *Server) listKeys(ctx context.Context, p tenant.Principal, in *keysIn) (*body[[]Key], error) {
	ks, err := s.eng.Keys(ctx, p, in.Tenant, in.IncludeRevoked)
	if err != nil {
		return nil, err
	}
	out := make([]Key, len(ks))
	for i, k := range ks {
		out[i] = keyJSON(k)
	}
	return ok(out)
}

type createKeyIn struct {
	Body struct {
		Tenant string `json:"tenant" doc:"Required for tenant roles; empty for operator roles." pattern:"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)?$"`
		Role   string `json:"role" required:"true" enum:"operator-admin,operator-viewer,operator-agent,tenant-admin,tenant-viewer"`
		Name   string `json:"name" maxLength:"100" doc:"A label to recognise the key by."`
	}
}

// KeyCreated is a new key with its secret, shown this once.
type KeyCreated struct {
	Key
	Secret string `json:"secret" doc:"The API key. It is not stored and cannot be shown again."`
}

func (s *Server) createKey(ctx context.Context, p tenant.Principal, in *createKeyIn) (*body[KeyCreated], error) {
	k, secret, err := s.eng.CreateKey(ctx, p, engine.KeyRequest{TenantID: in.Body.Tenant, Role: tenant.Role(in.Body.Role), Name: in.Body.Name})
	if err != nil {
		return nil, err
	}
	return ok(KeyCreated{Key: keyJSON(k), Secret: secret})
}

type keyPath struct {
	Key string `path:"key" pattern:"^(key_[0-9a-f]{16}|nc_[0-9A-Za-z]{43})$" doc:"A key ID, or the leaked secret itself (it is turned into its ID and never stored)."`
}

func (s *Server) revokeKey(ctx context.Context, p tenant.Principal, in *keyPath) (*body[Key], error) {
	k, err := s.eng.RevokeKey(ctx, p, in.Key)
	if err != nil {
		return nil, err
	}
	return ok(keyJSON(k))
}

type auditIn struct {
	Tenant string `query:"tenant" pattern:"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"`
	Before int64  `query:"before" minimum:"0" doc:"Only entries with seq below this (the last seq of the previous page)."`
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
}

func (s *Server) listAudit(ctx context.Context, p tenant.Principal, in *auditIn) (*body[[]AuditEntry], error) {
	es, err := s.eng.Audit(ctx, p, engine.AuditFilter{TenantID: in.Tenant, Before: in.Before, Limit: in.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]AuditEntry, len(es))
	for i, e := range es {
		out[i] = auditJSON(e)
	}
	return ok(out)
}
