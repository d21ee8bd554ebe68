package engine

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestByHourAddsUp checks that spans which meet add up to the time they
// cover, whatever the sub-millisecond part of the instant between them: a
// contract's allocation ended at a live clock's instant and its
// replacement started there held the whole hour, not 1 ms less per GPU.
func TestByHourAddsUp(t *testing.T) {
	h10 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return h10.Add(d) }
	split := at(20*time.Minute + 10*time.Second + 327*time.Microsecond) // the store keeps µs
	nano := at(43*time.Minute + 53*time.Second + 351_724_917)           // a live clock's ns
	for name, tc := range map[string]struct {
		spans [][2]time.Time
		want  map[string]int64 // hour -> ms, summed over the spans
	}{
		"whole hour": {
			spans: [][2]time.Time{{h10, at(time.Hour)}},
			want:  map[string]int64{"10:00": 3_600_000},
		},
		"split at a microsecond instant": {
			spans: [][2]time.Time{{h10, split}, {split, at(time.Hour)}},
			want:  map[string]int64{"10:00": 3_600_000},
		},
		"split at a nanosecond instant, three ways": {
			spans: [][2]time.Time{{h10, split}, {split, nano}, {nano, at(time.Hour)}},
			want:  map[string]int64{"10:00": 3_600_000},
		},
		"across hours from a sub-millisecond start": {
			spans: [][2]time.Time{{at(time.Hour - 500*time.Microsecond), at(2*time.Hour + 400*time.Microsecond)}},
			// 10:59:59.9995 counts from 10:59:59.999, 12:00:00.0004
			// up to 12:00:00.000: nothing of hour 12.
			want: map[string]int64{"10:00": 1, "11:00": 3_600_000, "12:00": 0},
		},
		"within one millisecond": {
			spans: [][2]time.Time{{at(time.Microsecond), at(999 * time.Microsecond)}},
			want:  map[string]int64{"10:00": 0},
		},
		"empty": {
			spans: [][2]time.Time{{split, split}},
			want:  map[string]int64{},
		},
	} {
		t.Run(name, func(t *testing.T) {
			got := map[string]int64{}
			for _, sp := range tc.spans {
				byHour(sp[0], sp[1], func(h time.Time, ms int64) { got[h.Format("15:04")] += ms })
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ms by hour (-want +got):\n%s", diff)
			}
		})
	}
}
