package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/demand"
	"github.com/neocloud/neocloud/internal/engine"
)

func testDemand(t *testing.T, s engine.Store) {
	ctx := t.Context()
	h := func(n int) time.Time { return at(time.Duration(n) * time.Hour).Truncate(time.Hour).UTC() }
	var many []demand.Sample
	for i := range 3000 { // more than one multi-row statement on SQLite
		many = append(many, demand.Sample{Pool: "dfw/H100-SXM", Hour: h(i), GPUs: int64(1000 + i)})
	}
	update(t, s, func(tx engine.Tx) error {
		if err := tx.UpsertDemand(ctx, many); err != nil {
			return err
		}
		return tx.UpsertDemand(ctx, []demand.Sample{{Pool: "dfw/GB200", Hour: h(0), GPUs: 72}})
	})
	got, err := s.Demand(ctx, "dfw/H100-SXM", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(many, got); diff != "" {
		t.Fatalf("Demand (-want +got):\n%s", diff)
	}

	// Replacing some hours, adding others; a window; a duplicate refused.
	update(t, s, func(tx engine.Tx) error {
		if err := tx.UpsertDemand(ctx, []demand.Sample{{Pool: "dfw/GB200", Hour: h(1), GPUs: 1}, {Pool: "dfw/GB200", Hour: h(1), GPUs: 2}}); !checkErr(err, errOther) {
			t.Errorf("UpsertDemand with a duplicate: err = %v, want an error", err)
		}
		return tx.UpsertDemand(ctx, []demand.Sample{{Pool: "dfw/GB200", Hour: h(0), GPUs: 144}, {Pool: "dfw/GB200", Hour: h(2), GPUs: 0}})
	})
	got, err = s.Demand(ctx, "dfw/GB200", h(0), h(2))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]demand.Sample{{Pool: "dfw/GB200", Hour: h(0), GPUs: 144}}, got); diff != "" {
		t.Errorf("Demand over [h0, h2) (-want +got):\n%s", diff)
	}
	if got, err := s.Demand(ctx, "nowhere/X", time.Time{}, time.Time{}); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Demand of an unknown pool = %v, %v; want an empty slice", got, err)
	}
}
