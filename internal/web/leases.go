package web

import (
	"context"
	"net/http"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/tenant"
)

// leaseEngine is what the lease pages read.
type leaseEngine interface {
	Leases(ctx context.Context, p tenant.Principal, f engine.LeaseFilter) ([]lease.Lease, error)
}

func (s *Server) leaseRoutes() {
	s.mux.HandleFunc("GET /leases", s.signedIn(s.leases))
}

type leaseRow struct {
	ID, TenantID, Kind, Pool, Start, End, State string
	GPUs                                        int64
}

func (s *Server) leases(w http.ResponseWriter, r *http.Request, p tenant.Principal, v view) {
	v.Title, v.Page = "Leases", "leases"
	ls, err := s.eng.Leases(r.Context(), p, engine.LeaseFilter{Limit: 500})
	if err != nil {
		s.fail(w, v, err)
		return
	}
	now := time.Now()
	rows := make([]leaseRow, 0, len(ls))
	for _, l := range ls {
		rows = append(rows, leaseRow{ID: l.ID, TenantID: l.TenantID, Kind: string(l.Kind), Pool: l.Pool,
			Start: l.Start.Format("2006-01-02 15:04"), End: l.End.Format("2006-01-02 15:04"), GPUs: int64(l.MaxGPUs()), State: string(l.StateAt(now))})
	}
	v.Data = rows
	s.render(w, http.StatusOK, "leases", v)
}
