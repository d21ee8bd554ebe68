package engine_test

import (
	"context"
	"os"
	"testing"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/store/postgres"
	"github.com/neocloud/neocloud/internal/store/sqlite"
)

// BenchmarkApplyReference applies the reference-300mw fleet (31,425 nodes
// with seed 1) through the engine into an empty store: parse of the YAML,
// expand, diff, one transaction. Target (issue 2): <= 5 s and <= 500 MB.
// PostgreSQL runs when NEOCLOUD_TEST_POSTGRES is set.
//
//	go test -run '^$' -bench ApplyReference -benchmem ./internal/engine/
func BenchmarkApplyReference(b *testing.B) {
	spec, err := fleet.Generate(fleet.PresetReference300MW, 1)
	if err != nil {
		b.Fatal(err)
	}
	y, err := spec.YAML()
	if err != nil {
		b.Fatal(err)
	}
	backends := map[string]func(b *testing.B) engine.Store{
		"sqlite": func(b *testing.B) engine.Store { return sqlite.OpenTest(b) },
	}
	if dsn := os.Getenv("NEOCLOUD_TEST_POSTGRES"); dsn != "" {
		backends["postgres"] = func(b *testing.B) engine.Store { return postgres.OpenTest(b, dsn) }
	}
	for name, open := range backends {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				b.StopTimer()
				e, _ := newEngine(b, open(b))
				b.StartTimer()
				parsed, err := fleet.Parse(y)
				if err != nil {
					b.Fatal(err)
				}
				res, err := e.ApplyFleet(ctx, admin, parsed, false)
				if err != nil {
					b.Fatal(err)
				}
				if res.Nodes != 31_425 {
					b.Fatalf("applied %d nodes", res.Nodes)
				}
			}
		})
	}
}
