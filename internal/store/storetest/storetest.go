package storetest

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/unit"
)

// DBer is implemented by stores that expose their database, for the
// checks that must bypass the contract.
type DBer interface {
	DB() *sql.DB
}

// Option configures Run.
type Option func(*config)

type config struct {
	pair func(t *testing.T) (engine.Store, engine.Store)
}

// WithPair gives Run a way to open two stores on one database (two
// processes, two replicas), so that the race test makes writers of two
// stores race and the database, not a lock in one process, must refuse
// the double allocation.
func WithPair(open func(t *testing.T) (engine.Store, engine.Store)) Option {
	return func(c *config) { c.pair = open }
}

// Run runs the conformance suite. open must return an empty, migrated
// store that the test's cleanup closes; each subtest opens its own and
// they run in parallel.
func Run(t *testing.T, open func(t *testing.T) engine.Store, opts ...Option) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	tests := []struct {
		name string
		run  func(t *testing.T, s engine.Store)
	}{
		{"Empty", testEmpty},
		{"Fleet/AddUpdateRetireReadd", testFleetLifecycle},
		{"Fleet/RefusesBadChange", testFleetRefusesBadChange},
		{"Fleet/RetireSite", testRetireSite},
		{"Fleet/PowerDomains", testPowerDomains},
		{"Fleet/Revisions", testRevisions},
		{"Pools", testPools},
		{"Nodes", testNodes},
		{"Fleet/Ordinals", testOrdinals},
		{"SetNodeState", testSetNodeState},
		{"HeldNodes", testHeldNodes},
		{"Allocations/Overlap", testAllocationOverlap},
		{"Allocations/Batch", testAllocationBatch},
		{"Allocations/RetiredNode", testAllocationRetiredNode},
		{"Allocations/End", testEndAllocations},
		{"Allocations/Read", testAllocationsRead},
		{"Allocations/Property", testAllocationProperty},
		{"Leases", testLeases},
		{"Holdback", testHoldback},
		{"Demand", testDemand},
		{"Shortfalls", testShortfalls},
		{"Tenants", testTenants},
		{"Keys", testKeys},
		{"Audit", testAudit},
		{"Audit/AppendOnly", testAuditAppendOnly},
		{"Idempotency", testIdempotency},
		{"Events", testEvents},
		{"Webhooks", testWebhooks},
		{"Billing/InvoicesFrozen", testInvoicesFrozen},
		{"Billing/SpotPrices", testSpotPrices},
		{"Update/ErrorRollsBack", testUpdateError},
		{"Update/PanicRollsBack", testUpdatePanic},
		{"Update/ReadsOwnWrites", testUpdateReadsOwnWrites},
		{"Race/OneStore", func(t *testing.T, s engine.Store) { testRace(t, s, s) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, open(t))
		})
	}
	t.Run("Race/TwoStores", func(t *testing.T) {
		if cfg.pair == nil {
			t.Skip("no WithPair option: cannot open two stores on one database")
		}
		t.Parallel()
		a, b := cfg.pair(t)
		testRace(t, a, b)
	})
}

// T0 is the instant the suite's fixtures start at.
var T0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// at returns T0 plus d.
func at(d time.Duration) time.Time { return T0.Add(d) }

// tb is what the helpers need of a *testing.T or a *rapid.T.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
}

// update runs fn in one transaction of s and fails the test on error.
func update(t tb, s engine.Store, fn func(engine.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

// apply writes c in one transaction of s and fails the test on error.
func apply(t tb, s engine.Store, c engine.FleetChange) {
	t.Helper()
	update(t, s, func(tx engine.Tx) error { return tx.ApplyFleet(context.Background(), c) })
}

// site returns a site with PUE 1.25 and the named power domains of 2 MW.
func site(name string, domains ...string) fleet.Site {
	s := fleet.Site{Name: name, FacilityPower: 30 * unit.Megawatt, PUEMilli: 1250,
		TariffMicrosPerMWh: 85_000_000, Timezone: "America/Chicago"}
	for _, d := range domains {
		s.PowerDomains = append(s.PowerDomains, fleet.PowerDomain{Name: d, Budget: 2 * unit.Megawatt})
	}
	return s
}

// node returns an available node of model at site in power domain domain,
// with the catalog's GPU count and power.
func node(name, site, model, domain string) fleet.Node {
	m, ok := fleet.LookupModel(model)
	if !ok {
		panic("storetest: unknown model " + model)
	}
	return fleet.Node{
		Name: name, Site: site, Model: model, GPUs: m.GPUsPerNode, ITPower: m.NodeITPower,
		PowerDomain: domain,
		Position:    fleet.Position{Pod: "pod-1", LeafGroup: "leaf-1", NVLinkDomain: name},
		State:       fleet.Available,
	}
}

// withState returns n in state st.
func withState(n fleet.Node, st fleet.State) fleet.Node {
	n.State = st
	return n
}
