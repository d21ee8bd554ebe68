package workload

import (
	"errors"
	"os"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	t.Parallel()
	start := time.Date(2027, 1, 3, 7, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		in   string
		want []Request
	}{
		"one request": {
			in:   "id,nodes,start,duration_min\nr00001,64,2027-01-03T07:00:00Z,2880\n",
			want: []Request{{ID: "r00001", Nodes: 64, Start: start, Duration: 48 * time.Hour, Line: 2}},
		},
		"header only": {in: "id,nodes,start,duration_min\n"},
		"no final newline": {
			in:   "id,nodes,start,duration_min\nr1,1,2027-01-03T07:00:00Z,1",
			want: []Request{{ID: "r1", Nodes: 1, Start: start, Duration: time.Minute, Line: 2}},
		},
		"BOM, CRLF and blank trailing lines": {
			in: "\uFEFFid,nodes,start,duration_min\r\nr1,2,2027-01-03T07:00:00Z,60\r\nr2,3,2027-01-03T08:00:00Z,120\r\n\r\n\n",
			want: []Request{
				{ID: "r1", Nodes: 2, Start: start, Duration: time.Hour, Line: 2},
				{ID: "r2", Nodes: 3, Start: start.Add(time.Hour), Duration: 2 * time.Hour, Line: 3},
			},
		},
		"offset converted to UTC": {
			in:   "id,nodes,start,duration_min\na.b_c-D9,1000000,2027-01-03T09:00:00+02:00,5259600\n",
			want: []Request{{ID: "a.b_c-D9", Nodes: MaxNodes, Start: start, Duration: 5_259_600 * time.Minute, Line: 2}},
		},
		"quoted fields": {
			in:   "id,nodes,start,duration_min\n\"r1\",\"5\",2027-01-03T07:00:00Z,\"60\"\n",
			want: []Request{{ID: "r1", Nodes: 5, Start: start, Duration: time.Hour, Line: 2}},
		},
		"longest id": {
			in:   "id,nodes,start,duration_min\n" + strings.Repeat("x", 64) + ",1,2027-01-03T07:00:00Z,1\n",
			want: []Request{{ID: strings.Repeat("x", 64), Nodes: 1, Start: start, Duration: time.Minute, Line: 2}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(strings.NewReader(tc.in))
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Parse() mismatch (-want +got):\n%s", diff)
			}
			for _, r := range got {
				if r.Start.Location() != time.UTC {
					t.Errorf("%s: start %v not in UTC", r.ID, r.Start)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	const h = "id,nodes,start,duration_min\n"
	const ok = ",1,2027-01-03T07:00:00Z,60\n"
	tests := map[string]struct {
		in   string
		want ParseError
		msg  string // the whole message, when set
	}{
		"empty":               {in: "", want: ParseError{Line: 1, Rule: "missing header: want id,nodes,start,duration_min"}},
		"no header":           {in: "r1" + ok, want: ParseError{Line: 1, Rule: "header must be id,nodes,start,duration_min (got r1,1,2027-01-03T07:00:00Z,60)"}},
		"columns reordered":   {in: "id,start,nodes,duration_min\n", want: ParseError{Line: 1, Rule: "header must be id,nodes,start,duration_min (got id,start,nodes,duration_min)"}},
		"extra header column": {in: "id,nodes,start,duration_min,x\n", want: ParseError{Line: 1, Rule: "header must be id,nodes,start,duration_min (got id,nodes,start,duration_min,x)"}},
		"header case":         {in: "ID,nodes,start,duration_min\n", want: ParseError{Line: 1, Rule: "header must be id,nodes,start,duration_min (got ID,nodes,start,duration_min)"}},
		"too few fields":      {in: h + "r1,1,2027-01-03T07:00:00Z\n", want: ParseError{Line: 2, Rule: "want 4 fields (id,nodes,start,duration_min), got 3"}},
		"too many fields":     {in: h + "r1,1,2027-01-03T07:00:00Z,60,x\n", want: ParseError{Line: 2, Rule: "want 4 fields (id,nodes,start,duration_min), got 5"}},
		"malformed CSV":       {in: h + "r1,\"1,2027-01-03T07:00:00Z,60\n", want: ParseError{Line: 2, Rule: `malformed CSV: extraneous or missing " in quoted-field`}},
		"empty id":            {in: h + ok, want: ParseError{Line: 2, Column: "id", Rule: ruleID}},
		"id too long":         {in: h + strings.Repeat("x", 65) + ok, want: ParseError{Line: 2, Column: "id", Value: strings.Repeat("x", 65), Rule: ruleID}},
		"id with space":       {in: h + "r 1" + ok, want: ParseError{Line: 2, Column: "id", Value: "r 1", Rule: ruleID}},
		"id not ASCII":        {in: h + "réq" + ok, want: ParseError{Line: 2, Column: "id", Value: "réq", Rule: ruleID}},
		"duplicate id": {
			in:   h + "r1" + ok + "r2" + ok + "r1" + ok,
			want: ParseError{Line: 4, Column: "id", Value: "r1", Rule: "must be unique; first at line 2"},
			msg:  `line 4: id "r1": must be unique; first at line 2`,
		},
		"nodes zero":      {in: h + "r1,0,2027-01-03T07:00:00Z,60\n", want: ParseError{Line: 2, Column: "nodes", Value: "0", Rule: ruleNodes}},
		"nodes too many":  {in: h + "r1,1000001,2027-01-03T07:00:00Z,60\n", want: ParseError{Line: 2, Column: "nodes", Value: "1000001", Rule: ruleNodes}},
		"nodes signed":    {in: h + "r1,+4,2027-01-03T07:00:00Z,60\n", want: ParseError{Line: 2, Column: "nodes", Value: "+4", Rule: ruleNodes}},
		"nodes fraction":  {in: h + "r1,1.5,2027-01-03T07:00:00Z,60\n", want: ParseError{Line: 2, Column: "nodes", Value: "1.5", Rule: ruleNodes}},
		"nodes space":     {in: h + "r1, 4,2027-01-03T07:00:00Z,60\n", want: ParseError{Line: 2, Column: "nodes", Value: " 4", Rule: ruleNodes}},
		"nodes overflow":  {in: h + "r1,99999999999999999999,2027-01-03T07:00:00Z,60\n", want: ParseError{Line: 2, Column: "nodes", Value: "99999999999999999999", Rule: ruleNodes}},
		"start no zone":   {in: h + "r1,1,2027-01-03T07:00:00,60\n", want: ParseError{Line: 2, Column: "start", Value: "2027-01-03T07:00:00", Rule: ruleStart}},
		"start date only": {in: h + "r1,1,2027-01-03,60\n", want: ParseError{Line: 2, Column: "start", Value: "2027-01-03", Rule: ruleStart}},
		"start bad month": {in: h + "r1,1,2027-13-03T07:00:00Z,60\n", want: ParseError{Line: 2, Column: "start", Value: "2027-13-03T07:00:00Z", Rule: ruleStart}},
		"duration negative": {
			in:   h + "r1" + ok + "r2,1,2027-01-03T07:00:00Z,-5\n",
			want: ParseError{Line: 3, Column: "duration_min", Value: "-5", Rule: ruleDuration},
			msg:  `line 3: duration_min "-5": must be a positive whole number of minutes, at most 5259600 (10 years)`,
		},
		"duration zero":      {in: h + "r1,1,2027-01-03T07:00:00Z,0\n", want: ParseError{Line: 2, Column: "duration_min", Value: "0", Rule: ruleDuration}},
		"duration too long":  {in: h + "r1,1,2027-01-03T07:00:00Z,5259601\n", want: ParseError{Line: 2, Column: "duration_min", Value: "5259601", Rule: ruleDuration}},
		"duration fraction":  {in: h + "r1,1,2027-01-03T07:00:00Z,1.5\n", want: ParseError{Line: 2, Column: "duration_min", Value: "1.5", Rule: ruleDuration}},
		"duration empty":     {in: h + "r1,1,2027-01-03T07:00:00Z,\n", want: ParseError{Line: 2, Column: "duration_min", Rule: ruleDuration}},
		"line after a blank": {in: h + "r1" + ok + "\n" + "r2,0,2027-01-03T07:00:00Z,60\n", want: ParseError{Line: 4, Column: "nodes", Value: "0", Rule: ruleNodes}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(strings.NewReader(tc.in))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse() = %v, %v; want a *ParseError", got, err)
			}
			if got != nil {
				t.Errorf("Parse() returned %d requests with its error, want none", len(got))
			}
			if diff := cmp.Diff(tc.want, *pe); diff != "" {
				t.Errorf("Parse() error mismatch (-want +got):\n%s", diff)
			}
			if tc.msg != "" && err.Error() != tc.msg {
				t.Errorf("Parse() error = %q, want %q", err, tc.msg)
			}
		})
	}
}

func TestParseReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	_, err := Parse(iotest.ErrReader(boom))
	if !errors.Is(err, boom) {
		t.Errorf("Parse() error = %v, want one wrapping %v", err, boom)
	}
}

func TestParseSample(t *testing.T) {
	t.Parallel()
	// A copy of ../shared/workloads/sample-4000n-1000r.csv.
	f, err := os.Open("testdata/sample-4000n-1000r.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	reqs, err := Parse(f)
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	if len(reqs) != 1000 {
		t.Fatalf("Parse() = %d requests, want 1000", len(reqs))
	}
	want := Request{ID: "r00001", Nodes: 114, Start: time.Date(2027, 1, 5, 6, 0, 0, 0, time.UTC), Duration: 13_200 * time.Minute, Line: 2}
	if diff := cmp.Diff(want, reqs[0]); diff != "" {
		t.Errorf("first request mismatch (-want +got):\n%s", diff)
	}
	if got, want := reqs[0].End(), time.Date(2027, 1, 14, 10, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("End() = %v, want %v", got, want)
	}
	if last := reqs[999]; last.ID != "r01000" || last.Line != 1001 {
		t.Errorf("last request = %s at line %d, want r01000 at line 1001", last.ID, last.Line)
	}
	// The README: 8 to 512 nodes, whole hours.
	for _, r := range reqs {
		if r.Nodes < 8 || r.Nodes > 512 || r.Duration%time.Hour != 0 || r.Start.Minute() != 0 {
			t.Errorf("request %s = %+v, outside the sample's description", r.ID, r)
		}
	}
}

func BenchmarkParseSample(b *testing.B) {
	data, err := os.ReadFile("testdata/sample-4000n-1000r.csv")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(strings.NewReader(string(data))); err != nil {
			b.Fatal(err)
		}
	}
}
