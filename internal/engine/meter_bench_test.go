package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/clock"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/store/sqlite"
	"github.com/neocloud/neocloud/internal/tenant"
)

// BenchmarkIngest pushes batches of 32 nodes × 8 GPUs through the engine
// into SQLite (synchronous=FULL) from 16 goroutines, scrape after scrape
// of a 3,200-node fleet: readings/s is what one server sustains.
func BenchmarkIngest(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "b.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	clk := clock.NewFake(t0)
	e, err := engine.New(engine.Config{Store: st, Clock: clk})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	spec, err := fleet.Uniform(3200)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.ApplyFleet(ctx, admin, spec, false); err != nil {
		b.Fatal(err)
	}
	ns, err := e.Nodes(ctx, engine.NodeFilter{Limit: 4000})
	if err != nil {
		b.Fatal(err)
	}
	agent := tenant.Principal{KeyID: "a", Role: tenant.OperatorAgent}
	var names []string
	for _, n := range ns {
		names = append(names, n.Name)
	}
	type job struct {
		round int
		first int
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				t := t0.Add(time.Duration(j.round) * 10 * time.Second)
				bt := meter.Batch{ID: fmt.Sprintf("r%d-n%d", j.round, j.first)}
				for _, n := range names[j.first:min(j.first+32, len(names))] {
					for g := range 8 {
						bt.Readings = append(bt.Readings, meter.Reading{Node: n, GPU: g, Time: t, UtilPct: 50, EnergyMJ: int64(j.round) * 5_000_000})
					}
				}
				if _, err := e.Ingest(ctx, agent, bt); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	n := 0
	round := 0
	for b.Loop() {
		round++
		clk.Set(t0.Add(time.Duration(round) * 10 * time.Second))
		for i := 0; i < len(names); i += 32 {
			jobs <- job{round, i}
			n += 32 * 8
		}
	}
	close(jobs)
	wg.Wait()
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "readings/s")
}
