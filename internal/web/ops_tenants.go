package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/tenant"
)

// The tenants and keys pages: every operator reads them; only a key that
// may write tenants and keys (operator-admin) sees and may use their forms.

const (
	// maxTenantRows and maxKeyRows bound the tables.
	maxTenantRows = 2000
	maxKeyRows    = 500
	// auditScan is how many of a tenant's latest audit entries are read
	// for its keys' last activity.
	auditScan = 1000
)

type tenantRow struct {
	ID, Name, Created        string
	LiveLeases, Keys, Active int
}

type tenantsData struct {
	Rows     []tenantRow
	More     int // tenants not shown
	CanWrite bool
	ID, Name string // the create form's values, after a refusal
}

// tenants lists the tenants with their live leases and keys.
func (s *Server) tenants(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Tenants", "tenants"
	if !s.operatorOnly(w, v, p, tenant.PermTenantRead) {
		return
	}
	s.showTenants(w, r, p, v, http.StatusOK, tenantsData{})
}

func (s *Server) showTenants(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view, status int, data tenantsData) {
	ts, err := s.eng.TenantSummaries(r.Context(), p)
	if err != nil {
		s.fail(w, v, err)
		return
	}
	data.CanWrite = p.Can(tenant.PermTenantWrite)
	if len(ts) > maxTenantRows {
		data.More = len(ts) - maxTenantRows
		ts = ts[:maxTenantRows]
	}
	for _, t := range ts {
		data.Rows = append(data.Rows, tenantRow{ID: t.ID, Name: t.DisplayName, Created: dateTime(t.Created),
			LiveLeases: t.LiveLeases, Keys: t.Keys, Active: t.ActiveKeys})
	}
	v.Data = data
	s.render(w, status, "tenants", v)
}

// createTenant creates a tenant and sends the visitor to its page; input
// the engine refuses re-renders the list with the message.
func (s *Server) createTenant(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Tenants", "tenants"
	if !s.operatorOnly(w, v, p, tenant.PermTenantWrite) {
		return
	}
	t := tenant.Tenant{ID: strings.TrimSpace(r.PostFormValue("id")), DisplayName: strings.TrimSpace(r.PostFormValue("display_name"))}
	if _, err := s.eng.CreateTenant(r.Context(), p, t); err != nil {
		status, msg, ok := refusal(err)
		if !ok {
			s.fail(w, v, err)
			return
		}
		v.Error = msg
		s.showTenants(w, r, p, v, status, tenantsData{ID: t.ID, Name: t.DisplayName})
		return
	}
	http.Redirect(w, r, "/tenants/"+url.PathEscape(t.ID), http.StatusSeeOther)
}

type keyRow struct {
	ID, Name, Role, Created, CreatedBy, LastActive, Revoked string
	Active                                                  bool
}

// newKey is a key just created, with its secret: shown once.
type newKey struct{ ID, Name, Role, Secret string }

type tenantData struct {
	ID, Name, Created string
	LiveLeases        int
	Keys              []keyRow
	MoreKeys          int
	LeasesURL         string
	CanWrite          bool
	Roles             []tenant.Role
	New               *newKey
	KeyName, KeyRole  string // the form's values, after a refusal
}

// tenantPage shows a tenant, its keys and a link to its leases.
func (s *Server) tenantPage(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Tenant", "tenants"
	if !s.operatorOnly(w, v, p, tenant.PermTenantRead) {
		return
	}
	s.showTenant(w, r, p, v, http.StatusOK, tenantData{})
}

func (s *Server) showTenant(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view, status int, data tenantData) {
	ctx := r.Context()
	id := r.PathValue("id")
	t, err := s.eng.TenantSummary(ctx, p, id)
	if err != nil {
		s.fail(w, v, err)
		return
	}
	v.Title = "Tenant " + t.ID
	keys, err := s.eng.Keys(ctx, p, t.ID, true)
	if err != nil {
		s.fail(w, v, err)
		return
	}
	// Last activity: the newest audit entry each key wrote (reads are not
	// audited, so a key used only to read shows none).
	last := map[string]string{}
	entries, err := s.eng.Audit(ctx, p, engine.AuditFilter{TenantID: t.ID, Limit: auditScan})
	if err != nil {
		s.fail(w, v, err)
		return
	}
	for _, e := range entries {
		if _, seen := last[e.Actor.KeyID]; !seen {
			last[e.Actor.KeyID] = dateTime(e.At)
		}
	}
	data.ID, data.Name, data.Created = t.ID, t.DisplayName, dateTime(t.Created)
	data.LiveLeases = t.LiveLeases
	data.LeasesURL = "/leases?" + url.Values{"tenant": {t.ID}}.Encode()
	data.CanWrite = p.Can(tenant.PermKeysWrite)
	data.Roles = []tenant.Role{tenant.TenantViewer, tenant.TenantAdmin}
	// Newest first.
	for i := len(keys) - 1; i >= 0 && len(data.Keys) < maxKeyRows; i-- {
		k := keys[i]
		row := keyRow{ID: k.ID, Name: k.Name, Role: string(k.Role), Created: dateTime(k.Created), CreatedBy: k.CreatedBy,
			LastActive: last[k.ID], Revoked: dateTime(k.Revoked), Active: k.Active()}
		data.Keys = append(data.Keys, row)
	}
	data.MoreKeys = len(keys) - len(data.Keys)
	v.Data = data
	s.render(w, status, "tenant", v)
}

// createKey issues a key for the tenant and shows its secret, once.
func (s *Server) createKey(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Tenant", "tenants"
	if !s.operatorOnly(w, v, p, tenant.PermKeysWrite) {
		return
	}
	id := r.PathValue("id")
	if _, err := s.eng.Tenant(r.Context(), p, id); err != nil {
		s.fail(w, v, err)
		return
	}
	req := engine.KeyRequest{TenantID: id, Role: tenant.Role(r.PostFormValue("role")), Name: strings.TrimSpace(r.PostFormValue("name"))}
	k, secret, err := s.eng.CreateKey(r.Context(), p, req)
	if err != nil {
		status, msg, ok := refusal(err)
		if !ok {
			s.fail(w, v, err)
			return
		}
		v.Error = msg
		s.showTenant(w, r, p, v, status, tenantData{KeyName: req.Name, KeyRole: string(req.Role)})
		return
	}
	s.log.Info("web: key created", "key_id", k.ID, "tenant", id, "role", string(k.Role), "by", p.KeyID)
	s.showTenant(w, r, p, v, http.StatusOK, tenantData{New: &newKey{ID: k.ID, Name: k.Name, Role: string(k.Role), Secret: secret}})
}

// revokeKey revokes one of the tenant's keys: its sessions end at their
// next request, its event streams within seconds.
func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Tenant", "tenants"
	if !s.operatorOnly(w, v, p, tenant.PermKeysWrite) {
		return
	}
	id, keyID := r.PathValue("id"), r.PathValue("key")
	keys, err := s.eng.Keys(r.Context(), p, id, true)
	if err != nil {
		s.fail(w, v, err)
		return
	}
	found := false
	for _, k := range keys {
		found = found || k.ID == keyID
	}
	if !found {
		s.fail(w, v, tenant.ErrNotFound)
		return
	}
	if _, err := s.eng.RevokeKey(r.Context(), p, keyID); err != nil {
		s.fail(w, v, err)
		return
	}
	http.Redirect(w, r, "/tenants/"+url.PathEscape(id), http.StatusSeeOther)
}
