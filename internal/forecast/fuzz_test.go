package forecast

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/valid"
)

// decodePoints turns fuzz input into a history of n points from start:
// steps[i%len] says how far each point is from the one before (1: the next
// hour, 2-9: a gap, 0: the same hour, 10: half an hour, 11: a nanosecond,
// others: a thousand hours or back an hour) and values[i%len] its GPUs
// (0: NaN, 1: -1, 2: +Inf, others: the byte).
func decodePoints(n uint16, startHour int64, steps, values []byte) []Point {
	if len(steps) == 0 {
		steps = []byte{1}
	}
	if len(values) == 0 {
		values = []byte{100}
	}
	at := time.Unix(0, 0).UTC().Add(time.Duration(startHour%(1<<20)) * time.Hour)
	points := make([]Point, int(n)%3000)
	for i := range points {
		if i > 0 {
			switch s := steps[i%len(steps)]; {
			case s == 0:
			case s <= 9:
				at = at.Add(time.Duration(s) * time.Hour)
			case s == 10:
				at = at.Add(30 * time.Minute)
			case s == 11:
				at = at.Add(1)
			case s == 12:
				at = at.Add(-time.Hour)
			default:
				at = at.Add(1000 * time.Hour)
			}
		}
		v := float64(values[i%len(values)])
		switch values[i%len(values)] {
		case 0:
			v = math.NaN()
		case 1:
			v = -1
		case 2:
			v = math.Inf(1)
		}
		points[i] = Point{At: at, GPUs: v}
	}
	return points
}

// acceptable is the reference for newSeries: the rules, written plainly.
func acceptable(points []Point) bool {
	if len(points) < MinHistory {
		return false
	}
	for i, p := range points {
		if p.At.IsZero() || p.At.UnixNano()%int64(time.Hour) != 0 {
			return false
		}
		if i > 0 && !p.At.After(points[i-1].At) {
			return false
		}
		if math.IsNaN(p.GPUs) || math.IsInf(p.GPUs, 0) || p.GPUs < 0 {
			return false
		}
	}
	span := int(points[len(points)-1].At.Sub(points[0].At)/time.Hour) + 1
	return span <= MaxHistory && 2*len(points) >= span
}

// FuzzSeries checks the validation of histories against the plain rules:
// it never panics, accepts exactly the valid histories and lays them out
// hour by hour; what it refuses, it refuses with issues on history fields.
func FuzzSeries(f *testing.F) {
	f.Add(uint16(400), int64(480000), []byte{1}, []byte{100})
	f.Add(uint16(400), int64(480000), []byte{1, 1, 2, 1}, []byte{100, 7, 9})
	f.Add(uint16(400), int64(480000), []byte{1, 1, 1, 0}, []byte{100})
	f.Add(uint16(400), int64(480000), []byte{1, 10}, []byte{100})
	f.Add(uint16(400), int64(480000), []byte{1}, []byte{100, 0})
	f.Add(uint16(400), int64(480000), []byte{1}, []byte{100, 1, 2})
	f.Add(uint16(400), int64(480000), []byte{3}, []byte{100})
	f.Add(uint16(400), int64(480000), []byte{1, 200}, []byte{100})
	f.Add(uint16(335), int64(0), []byte{1}, []byte{3})
	f.Fuzz(func(t *testing.T, n uint16, startHour int64, steps, values []byte) {
		points := decodePoints(n, startHour, steps, values)
		s, err := newSeries("history", points)
		if want := acceptable(points); (err == nil) != want {
			t.Fatalf("newSeries error %v, want valid = %v", err, want)
		}
		if err != nil {
			var ve *valid.Error
			if !errors.As(err, &ve) || ve.Len() == 0 {
				t.Fatalf("error %v is not a *valid.Error with issues", err)
			}
			for _, is := range ve.Issues {
				if !strings.HasPrefix(is.Field, "history") || is.Rule == "" {
					t.Fatalf("issue %v", is)
				}
			}
			return
		}
		if s.observed != len(points) || !s.start.Equal(points[0].At) || !s.end().Equal(points[len(points)-1].At.Add(time.Hour)) {
			t.Fatalf("series of %d observed hours from %s to %s, for %d points", s.observed, s.start, s.end(), len(points))
		}
		gaps := 0
		for _, v := range s.y {
			if math.IsNaN(v) {
				gaps++
			}
		}
		if gaps != len(s.y)-len(points) {
			t.Fatalf("%d gaps in %d hours for %d points", gaps, len(s.y), len(points))
		}
		for _, p := range points {
			if got := s.y[p.At.Sub(s.start)/time.Hour]; got != p.GPUs {
				t.Fatalf("%s: %v laid out as %v", p.At, p.GPUs, got)
			}
		}
	})
}
