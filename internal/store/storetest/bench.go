package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/unit"
)

// SyntheticFleet returns a fleet change that adds n nodes (H100, H200 and
// GB200, 8 power domains, racks of 18 GB200 trays) at one site "bench", as
// an apply to an empty store would.
func SyntheticFleet(n int) engine.FleetChange {
	s := fleet.Site{Name: "bench", FacilityPower: 300 * unit.Megawatt, PUEMilli: 1200,
		TariffMicrosPerMWh: 70_000_000, Timezone: "America/Chicago"}
	for d := range 8 {
		s.PowerDomains = append(s.PowerDomains, fleet.PowerDomain{Name: fmt.Sprintf("hall-%d", d+1), Budget: 40 * unit.Megawatt})
	}
	models := []string{"H100-SXM", "H200-SXM", "GB200"}
	nodes := make([]fleet.Node, 0, n)
	var gpus int64
	for i := range n {
		model := models[i%len(models)]
		nd := node(fmt.Sprintf("bench-%s-%06d", model, i), "bench", model, fmt.Sprintf("hall-%d", i%8+1))
		nd.Position = fleet.Position{Pod: fmt.Sprintf("pod-%02d", i/4096), LeafGroup: fmt.Sprintf("leaf-%03d", i/256),
			NVLinkDomain: fmt.Sprintf("rack-%05d", i/18)}
		nodes = append(nodes, nd)
		gpus += int64(nd.GPUs)
	}
	return engine.FleetChange{At: T0, Sites: []fleet.Site{s}, Add: nodes,
		Revision: engine.FleetRevision{At: T0, By: "key_bench", SHA256: "bench", Spec: []byte("{}"), NodeCount: int64(n), GPUCount: gpus}}
}

// BenchmarkApplyFleet measures applying SyntheticFleet(n) to an empty store
// in one transaction; opening the store is not measured.
func BenchmarkApplyFleet(b *testing.B, n int, open func(b *testing.B) engine.Store) {
	ctx := context.Background()
	c := SyntheticFleet(n)
	for b.Loop() {
		b.StopTimer()
		s := open(b)
		b.StartTimer()
		if err := s.Update(ctx, func(tx engine.Tx) error { return tx.ApplyFleet(ctx, c) }); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/node")
}

// BenchmarkAllNodes measures reading every node of a store holding
// SyntheticFleet(n).
func BenchmarkAllNodes(b *testing.B, n int, open func(b *testing.B) engine.Store) {
	ctx := context.Background()
	s := open(b)
	c := SyntheticFleet(n)
	if err := s.Update(ctx, func(tx engine.Tx) error { return tx.ApplyFleet(ctx, c) }); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		nodes, err := s.AllNodes(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(nodes) != n {
			b.Fatalf("AllNodes = %d nodes, want %d", len(nodes), n)
		}
	}
}

// BenchmarkUpdateFleet measures, on a store holding SyntheticFleet(n),
// an apply that updates every node (all move to another pod) and one that
// retires every node and adds them all back.
func BenchmarkUpdateFleet(b *testing.B, n int, open func(b *testing.B) engine.Store) {
	ctx := context.Background()
	s := open(b)
	c := SyntheticFleet(n)
	if err := s.Update(ctx, func(tx engine.Tx) error { return tx.ApplyFleet(ctx, c) }); err != nil {
		b.Fatal(err)
	}
	names := make([]string, len(c.Add))
	for i, nd := range c.Add {
		names[i] = nd.Name
	}
	b.Run("UpdateAll", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			u := engine.FleetChange{At: T0, Sites: c.Sites, Update: make([]fleet.Node, len(c.Add))}
			for j, nd := range c.Add {
				nd.Position.Pod = fmt.Sprintf("pod-moved-%d", i)
				u.Update[j] = nd
			}
			if err := s.Update(ctx, func(tx engine.Tx) error { return tx.ApplyFleet(ctx, u) }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RetireAndReaddAll", func(b *testing.B) {
		for b.Loop() {
			retire := engine.FleetChange{At: T0, Sites: c.Sites, Retire: names}
			readd := engine.FleetChange{At: T0, Sites: c.Sites, Add: c.Add}
			for _, ch := range []engine.FleetChange{retire, readd} {
				if err := s.Update(ctx, func(tx engine.Tx) error { return tx.ApplyFleet(ctx, ch) }); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
