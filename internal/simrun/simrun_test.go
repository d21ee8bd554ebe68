package simrun_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/simrun"
	"github.com/neocloud/neocloud/internal/valid"
)

func smallFleet(t *testing.T) *fleet.Spec {
	t.Helper()
	spec, err := fleet.GenerateWith(fleet.GenerateOptions{Preset: fleet.PresetUniform, Nodes: 256})
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// The same seed gives the same summary, byte for byte; another seed
// another one. The story holds on a small fleet: most idle capacity is
// sold, spot is reclaimed, and no internal demand waits beyond notice.
func TestDeterministic(t *testing.T) {
	run := func(seed uint64) []byte {
		res, err := simrun.Run(context.Background(), simrun.Config{Fleet: smallFleet(t), FleetName: "uniform-256", Months: 1, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		b, err := res.Summary.JSON()
		if err != nil {
			t.Fatal(err)
		}
		s := res.Summary
		if s.Hours != 720 || s.MonetizedPct < 80 || s.InternalShortfallGPUHours != 0 || s.Preemptions == 0 || s.Baseline.MonetizedPct >= s.MonetizedPct {
			t.Errorf("seed %d: implausible summary:\n%s", seed, b)
		}
		return b
	}
	a, b, c := run(7), run(7), run(8)
	if !bytes.Equal(a, b) {
		t.Fatalf("seed 7 twice: summaries differ:\n%s\n%s", a, b)
	}
	if bytes.Equal(a, c) {
		t.Fatal("seeds 7 and 8 gave the same summary")
	}
}

func TestBadInput(t *testing.T) {
	sc := simrun.DefaultScenario()
	sc.Contract.Share = 2
	sc.Spot.MinNodes = 0
	_, err := simrun.Run(context.Background(), simrun.Config{Fleet: smallFleet(t), Months: 0, Scenario: sc})
	v, ok := err.(*valid.Error)
	if !ok {
		t.Fatalf("got %v, want a *valid.Error", err)
	}
	for _, f := range []string{"months", "scenario.contract.share", "scenario.spot"} {
		if !slices.ContainsFunc(v.Issues, func(i valid.Issue) bool { return i.Field == f }) {
			t.Errorf("error %v does not name %s", err, f)
		}
	}
	if _, err := simrun.ParseScenario([]byte("spot:\n  attempts_per_hour: 3\n  bogus: 1\n")); err == nil {
		t.Error("unknown scenario field accepted")
	}
	sc, err = simrun.ParseScenario([]byte("contract:\n  share: 0.5\n"))
	if err != nil || sc.Contract.Share != 0.5 || sc.Spot.AttemptsPerHour != simrun.DefaultScenario().Spot.AttemptsPerHour {
		t.Errorf("partial scenario: %+v, %v; want share 0.5 over the defaults", sc.Contract, err)
	}
	sc, err = simrun.ParseScenario([]byte("holdback: {quantile: 0.9, buffer_permille: 30}\nfailures:\n  per_thousand_node_days: 5\n  repair_mean: 4h\n"))
	if err != nil || sc.Holdback.Quantile != 0.9 || sc.Failures.PerThousandNodeDays != 5 || sc.Failures.RepairMean != 4*time.Hour || sc.Failures.RepairSigma != 1 {
		t.Errorf("holdback and failures: %+v %+v, %v", sc.Holdback, sc.Failures, err)
	}
}
