package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/store/sqlite"
)

// TestEarliestStartPastPower: when the power budget, not the counts, keeps
// a request out, the earliest start skips to where the budget has room
// again, however many hours on.
func TestEarliestStartPastPower(t *testing.T) {
	// 16 nodes of 10.2 kW; the budget powers 8 of them.
	e, _ := setup(t, sqlite.OpenTest(t), 8*10.2+1)
	ctx := context.Background()
	acme := acmeAdmin()
	if _, err := e.RequestLease(ctx, acme, "", reservation(64, 2, 48)); err != nil {
		t.Fatal(err)
	}
	// The counts have room for 4 more nodes from hour 3 on; power only
	// once the first lease ends at hour 50.
	_, err := e.RequestLease(ctx, acme, "", reservation(32, 10, 10))
	var ref *engine.Refusal
	if !errors.As(err, &ref) || ref.Reason != "power" {
		t.Fatalf("err = %v, want a power refusal", err)
	}
	if want := t0.Add(50 * time.Hour); !ref.EarliestStart.Equal(want) {
		t.Errorf("earliest start = %s, want %s", ref.EarliestStart, want)
	}
	q, err := e.Quote(ctx, acme, "", reservation(32, 10, 10))
	if err != nil || q.Feasible || q.Refusal == nil || !q.Refusal.EarliestStart.Equal(ref.EarliestStart) {
		t.Errorf("quote = %+v, %v", q, err)
	}
}
