package workload

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"
)

// FuzzParse checks that Parse never panics, that every failure is a
// *ParseError (the reader never fails here), and that what it accepts
// obeys every rule of the format.
func FuzzParse(f *testing.F) {
	f.Add([]byte("id,nodes,start,duration_min\nr00001,64,2027-01-03T07:00:00Z,2880\n"))
	f.Add([]byte("\uFEFFid,nodes,start,duration_min\r\nr1,2,2027-01-03T09:00:00+02:00,60\r\n\r\n"))
	f.Add([]byte("id,nodes,start,duration_min\nr1,1,2027-01-03T07:00:00Z,1\nr1,1,2027-01-03T07:00:00Z,1\n"))
	f.Add([]byte("id,nodes,start,duration_min\n\"r\"\"1\",1,2027-01-03T07:00:00.5Z,5259600\n"))
	if data, err := os.ReadFile("testdata/sample-4000n-1000r.csv"); err == nil {
		f.Add(data[:min(len(data), 2048)])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		reqs, err := Parse(bytes.NewReader(data))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse() error = %v (%T), want a *ParseError", err, err)
			}
			if pe.Line < 1 || pe.Rule == "" {
				t.Fatalf("Parse() error %#v lacks a line or a rule", pe)
			}
			if reqs != nil {
				t.Fatalf("Parse() returned %d requests with its error", len(reqs))
			}
			return
		}
		seen := map[string]bool{}
		prev := 1
		for _, r := range reqs {
			if !validID(r.ID) || seen[r.ID] {
				t.Fatalf("accepted id %q: invalid or repeated", r.ID)
			}
			seen[r.ID] = true
			if r.Nodes < 1 || r.Nodes > MaxNodes {
				t.Fatalf("accepted %s with %d nodes", r.ID, r.Nodes)
			}
			if r.Duration < time.Minute || r.Duration > MaxDurationMin*time.Minute || r.Duration%time.Minute != 0 {
				t.Fatalf("accepted %s with duration %v", r.ID, r.Duration)
			}
			if r.Start.Location() != time.UTC || !r.End().After(r.Start) {
				t.Fatalf("accepted %s with window [%v, %v)", r.ID, r.Start, r.End())
			}
			if r.Line <= prev {
				t.Fatalf("accepted %s at line %d after line %d", r.ID, r.Line, prev)
			}
			prev = r.Line
		}
	})
}
