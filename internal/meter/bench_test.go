package meter

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

type lastOnly struct{}

func (lastOnly) Last(GPU) (Point, bool, error)                             { return Point{}, false, nil }
func (lastOnly) Around(GPU, int64) (Point, bool, Point, bool, bool, error) { panic("in order") }
func (lastOnly) Put(GPU, Point) error                                      { return nil }

// BenchmarkDecodeAttribute decodes CSV batches of 32 nodes × 8 GPUs and
// attributes every reading (holder lookup, pair contributions) with no
// store: the per-core rate of ingestion. Target ≥ 1M readings/s.
func BenchmarkDecodeAttribute(b *testing.B) {
	const nodes, gpus = 3200, 8
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	refs := map[string]NodeRef{}
	h := memHolders{}
	var names []string
	for i := range nodes {
		n := fmt.Sprintf("uniform-n%06d", i+1)
		names = append(names, n)
		refs[n] = NodeRef{Ordinal: int64(i + 1), Pool: "p/H100"}
		if i%10 < 7 {
			h[int64(i+1)] = []Span{{ID: "a", From: start.UnixMilli(), To: start.Add(1000 * time.Hour).UnixMilli(), LeaseID: fmt.Sprint("l", i/32), TenantID: "t"}}
		}
	}
	l, _ := NewLedger(Config{})
	interned := map[string]string{}
	acc := &Acc{}
	var round int64
	batch := func() [][]byte {
		round++
		t := start.Add(time.Duration(round) * 10 * time.Second)
		var out [][]byte
		for i := 0; i < nodes; i += 32 {
			bt := Batch{ID: "x"}
			for _, n := range names[i : i+32] {
				for g := range gpus {
					bt.Readings = append(bt.Readings, Reading{Node: n, GPU: g, Time: t, UtilPct: 50 + g, EnergyMJ: round * 5_000_000, PowerMW: 500_000, TempC: 60})
				}
			}
			var buf bytes.Buffer
			_ = EncodeCSV(&buf, bt)
			out = append(out, buf.Bytes())
		}
		return out
	}
	n := 0
	for b.Loop() {
		b.StopTimer()
		bodies := batch()
		now := start.Add(time.Duration(round)*10*time.Second).UnixMilli() + 1000
		b.StartTimer()
		for _, body := range bodies {
			bt, err := DecodeCSV(body, interned)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range bt.Readings {
				ref := refs[r.Node]
				if _, err := l.Apply(lastOnly{}, h, ref, GPU{ref.Ordinal, r.GPU}, PointOf(r), now, acc); err != nil {
					b.Fatal(err)
				}
			}
			n += len(bt.Readings)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "readings/s")
}
