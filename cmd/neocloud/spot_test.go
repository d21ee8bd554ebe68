package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/neocloud/neocloud/internal/api"
)

func TestSpotCLI(t *testing.T) {
	eachBackend(t, func(t *testing.T, db string) {
		s := startServer(t, db)
		fleetFile := filepath.Join(t.TempDir(), "fleet.yaml")
		if _, err := s.admin(t, "fleet", "generate", "--preset", "uniform", "--nodes", "64", "-f", fleetFile); err != nil {
			t.Fatal(err)
		}
		if _, err := s.admin(t, "fleet", "apply", "-f", fleetFile); err != nil {
			t.Fatal(err)
		}
		if _, err := s.admin(t, "tenants", "create", "spotty"); err != nil {
			t.Fatal(err)
		}
		q := mustJSON[api.Quote](t, s, "", "quote", "--tenant", "spotty", "--kind", "spot", "--pool", "uni/H100-SXM", "--gpus", "64", "--max-price", "4", "--notice", "24h")
		if !q.Feasible || q.Price != "1.68" {
			t.Fatalf("quote = %+v, want feasible at 1.68 (2.10 × 0.5 × 1.6)", q)
		}
		l := mustJSON[api.LeaseCreated](t, s, "", "leases", "create", "--tenant", "spotty", "--kind", "spot", "--pool", "uni/H100-SXM", "--gpus", "64", "--max-price", "4", "--notice", "30m")
		if l.MaxPrice != "4.00" || l.Notice != "30m" {
			t.Fatalf("lease = %+v", l)
		}
		out, err := s.admin(t, "spot", "prices", "--pool", "uni/H100-SXM")
		if err != nil || !strings.Contains(out, "30m") || !strings.Contains(out, "SPOT_IDLE_GPUS") {
			t.Fatalf("spot prices = %q, %v", out, err)
		}
		iu := mustJSON[api.InternalUse](t, s, "", "internal-use", "set", "--pool", "uni/H100-SXM", "--gpus", "512")
		if len(iu.Reclaimed) != 1 || iu.Reclaimed[0] != l.ID {
			t.Fatalf("internal-use = %+v, want %s reclaimed", iu, l.ID)
		}
		if _, err := s.admin(t, "leases", "create", "--tenant", "spotty", "--kind", "spot", "--pool", "uni/H100-SXM", "--gpus", "8"); err == nil || !strings.Contains(errText(err), "max_price") {
			t.Fatalf("spot without --max-price: err = %v, want one naming max_price", err)
		}
		node := mustJSON[api.NodePage](t, s, "", "nodes", "list", "--limit", "1").Items[0].Name
		if _, err := s.admin(t, "nodes", "sanitized", node); err == nil || !strings.Contains(errText(err), "not sanitizing") {
			t.Fatalf("sanitized on an available node: err = %v", err)
		}
	})
}
