package fleet

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/valid"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestParseErrors(t *testing.T) {
	t.Parallel()
	const head = "version: 1\nsites:\n  - name: a\n"
	tests := map[string]struct {
		in               string
		line, col        int
		field, msgSubstr string
	}{
		"malformed YAML": {
			in:   head + "    pue: 1.2\n   timezone: UTC\n",
			line: 5, col: 4, msgSubstr: "not allowed in this context",
		},
		"unclosed flow sequence": {
			in:   head + "    absent: [a, b\n",
			line: 4, col: 13, msgSubstr: "']' not found",
		},
		"unknown field": {
			in:   head + "    pue: 1.2\n    colour: red\n",
			line: 5, col: 5, field: "sites[0]", msgSubstr: `unknown field "colour": want one of name, facility_mw`,
		},
		"unknown field in a flow node entry": {
			in:   head + "    pods:\n      - name: p\n        leaf_groups:\n          - name: l\n            nodes: [{name: n, modle: B200}]\n",
			line: 8, col: 31, field: "sites[0].pods[0].leaf_groups[0].nodes[0]", msgSubstr: `unknown field "modle"`,
		},
		"string for count": {
			in:   head + "    pods:\n      - name: p{n}\n        count: \"12\"\n",
			line: 6, col: 16, field: "sites[0].pods[0].count", msgSubstr: `want an integer, got quoted string "12"`,
		},
		"float for count": {
			in:   head + "    pods:\n      - name: p{n}\n        count: 1.5\n",
			line: 6, col: 16, field: "sites[0].pods[0].count", msgSubstr: "want an integer, got float",
		},
		"hexadecimal count": {
			in:   head + "    pods:\n      - name: p{n}\n        count: 0x10\n",
			line: 6, col: 16, field: "sites[0].pods[0].count", msgSubstr: "want a decimal integer",
		},
		"count too large for int": {
			in:   head + "    pods:\n      - name: p{n}\n        count: 99999999999999999999\n",
			line: 6, col: 16, field: "sites[0].pods[0].count", msgSubstr: "want an integer",
		},
		"number for name": {
			in:   "version: 1\nsites:\n  - name: 123\n",
			line: 3, col: 11, field: "sites[0].name", msgSubstr: "want a string, got integer",
		},
		"boolean for a number": {
			in:   head + "    pue: true\n",
			line: 4, col: 10, field: "sites[0].pue", msgSubstr: "want a finite decimal number, got boolean",
		},
		"infinity": {
			in:   head + "    facility_mw: .inf\n",
			line: 4, col: 18, field: "sites[0].facility_mw", msgSubstr: "want a finite decimal number, got infinity",
		},
		"quoted number": {
			in:   head + "    pue: \"1.2\"\n",
			line: 4, col: 10, field: "sites[0].pue", msgSubstr: "want a finite decimal number",
		},
		"list for a mapping": {
			in:   "- version: 1\n",
			line: 1, col: 1, msgSubstr: "want a mapping, got a list",
		},
		"mapping for a list": {
			in:   "version: 1\nsites: {name: a}\n",
			line: 2, col: 8, field: "sites", msgSubstr: "want a list, got a mapping",
		},
		"anchor and alias": {
			in:   head + "    power_domains: &d [{name: x, budget_kw: 1}]\n  - name: b\n    power_domains: *d\n",
			line: 4, col: 20, field: "sites[0].power_domains", msgSubstr: "anchors and aliases are not supported",
		},
		"tag": {
			in:   head + "    timezone: !!str UTC\n",
			line: 4, col: 15, field: "sites[0].timezone", msgSubstr: "tags are not supported",
		},
		"duplicate key": {
			in:   head + "    pue: 1.2\n    pue: 1.3\n",
			line: 5, col: 5, msgSubstr: `mapping key "pue" already defined`,
		},
		"two documents": {
			in:   "version: 1\n---\nversion: 1\n",
			line: 2, col: 1, msgSubstr: "one YAML document",
		},
		"two document headers": {
			in:   "---\nversion: 1\n---\nversion: 1\n",
			line: 3, col: 1, msgSubstr: "one YAML document",
		},
		"deeply nested flow": {
			in:   "version: " + strings.Repeat("[", 40),
			line: 1, col: 42, msgSubstr: "nested more than 32 deep",
		},
		"deeply nested blocks": {
			in:   "version: 1\nsites:\n" + strings.Repeat("- ", 150) + "x\n",
			line: 3, col: 201, msgSubstr: "indented past column 200",
		},
		"mapping with too many keys": {
			in:   "version: 1\n" + manyKeys(70),
			line: 65, col: 1, msgSubstr: "more than 64 keys",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.in))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse() error = %v, want a *ParseError", err)
			}
			if pe.Line != tc.line || pe.Column != tc.col || pe.Field != tc.field {
				t.Errorf("Parse() error at line %d:%d field %q, want %d:%d field %q (%v)", pe.Line, pe.Column, pe.Field, tc.line, tc.col, tc.field, err)
			}
			if !strings.Contains(pe.Msg, tc.msgSubstr) {
				t.Errorf("Parse() error message %q, want it to contain %q", pe.Msg, tc.msgSubstr)
			}
			if want := fmt.Sprintf("line %d:%d", tc.line, tc.col); !strings.Contains(err.Error(), want) {
				t.Errorf("Parse() error %q does not mention %q", err, want)
			}
		})
	}
}

func manyKeys(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "k%d: 1\n", i)
	}
	return b.String()
}

func TestParseTooLarge(t *testing.T) {
	t.Parallel()
	data := make([]byte, MaxFileBytes+1)
	if _, err := Parse(data); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("Parse(%d bytes) error = %v, want a size error", len(data), err)
	}
}

func TestParseEmpty(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "# nothing\n", "---\n", "null\n", "{}\n"} {
		s, err := Parse([]byte(in))
		if err != nil {
			t.Errorf("Parse(%q) error = %v", in, err)
			continue
		}
		if diff := cmp.Diff(&Spec{}, s); diff != "" {
			t.Errorf("Parse(%q) mismatch (-want +got):\n%s", in, diff)
		}
	}
}

// baseSpec is a valid spec the issue cases break one rule of: 2 pods of 2
// leaf groups, each with 4 HGX nodes and one GB200 NVL72 rack.
func baseSpec() *Spec {
	return &Spec{Version: 1, Sites: []SiteSpec{{
		Name: "abilene-1", FacilityMW: 300, PUE: 1.2, EnergyTariffUSDPerMWh: 62.5, Timezone: "America/Chicago",
		PowerDomains: []PowerDomainSpec{{Name: "hall-1", BudgetKW: 52_000}, {Name: "hall-2", BudgetKW: 52_000}},
		Pods: []PodSpec{{
			Name: "p{n:02}", Count: new(2), PowerDomain: "hall-1",
			LeafGroups: []LeafGroupSpec{{
				Name: "l{n:02}", Count: new(2),
				Nodes: []NodeSpec{{Name: "n{n:02}", Count: new(4), Model: "H100-SXM"}},
				Racks: []RackSpec{{Name: "r{n}", Nodes: []NodeSpec{{Name: "t{n:02}", Count: new(18), Model: "GB200"}}}},
			}},
		}},
	}}}
}

// onePod replaces the base spec's pods by one pod of one leaf group holding
// nodes.
func onePod(s *Spec, nodes ...NodeSpec) {
	s.Sites[0].Pods = []PodSpec{{Name: "p", PowerDomain: "hall-1", LeafGroups: []LeafGroupSpec{{Name: "l", Nodes: nodes}}}}
}

const (
	leaf0 = "sites[0].pods[0].leaf_groups[0]"
	node0 = leaf0 + ".nodes[0]"
	rack0 = leaf0 + ".racks[0]"
)

// issue is an expected issue: the exact field and a substring of the rule.
type issue struct{ Field, Rule string }

func TestValidateIssues(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		edit func(s *Spec)
		want []issue
	}{
		"unsupported version": {
			edit: func(s *Spec) { s.Version = 2 },
			want: []issue{{"version", "unsupported format version: want 1"}},
		},
		"no site": {
			edit: func(s *Spec) { s.Sites = nil },
			want: []issue{{"sites", "at least one site is required"}},
		},
		"duplicate site name": {
			edit: func(s *Spec) {
				s.Sites = append(s.Sites, SiteSpec{Name: "abilene-1", FacilityMW: 1, PUE: 1.1, Timezone: "UTC"})
			},
			want: []issue{{"sites[1].name", "duplicate site name; first defined at sites[0]"}},
		},
		"bad site name": {
			edit: func(s *Spec) { s.Sites[0].Name = "Abilene_1" },
			want: []issue{{"sites[0].name", "lowercase DNS label"}},
		},
		"facility power zero": {
			edit: func(s *Spec) { s.Sites[0].FacilityMW = 0 },
			want: []issue{{"sites[0].facility_mw", "out of range"}},
		},
		"pue out of range": {
			edit: func(s *Spec) { s.Sites[0].PUE = 0.9 },
			want: []issue{{"sites[0].pue", "out of range: want 1.0 to 3.0"}},
		},
		"negative tariff": {
			edit: func(s *Spec) { s.Sites[0].EnergyTariffUSDPerMWh = -1 },
			want: []issue{{"sites[0].energy_tariff_usd_per_mwh", "out of range"}},
		},
		"tariff with 7 decimals": {
			edit: func(s *Spec) { s.Sites[0].EnergyTariffUSDPerMWh = 62.1234567 },
			want: []issue{{"sites[0].energy_tariff_usd_per_mwh", "at most 6 decimals"}},
		},
		"bad timezone": {
			edit: func(s *Spec) { s.Sites[0].Timezone = "Mars/Olympus_Mons" },
			want: []issue{{"sites[0].timezone", "unknown time zone"}},
		},
		"local timezone": {
			edit: func(s *Spec) { s.Sites[0].Timezone = "Local" },
			want: []issue{{"sites[0].timezone", "unknown time zone"}},
		},
		"no timezone": {
			edit: func(s *Spec) { s.Sites[0].Timezone = "" },
			want: []issue{{"sites[0].timezone", "required"}},
		},
		"duplicate power domain": {
			edit: func(s *Spec) { s.Sites[0].PowerDomains[1].Name = "hall-1" },
			want: []issue{{"sites[0].power_domains[1].name", `duplicate power domain name in site "abilene-1"`}},
		},
		"power domain without budget": {
			edit: func(s *Spec) { s.Sites[0].PowerDomains[1].BudgetKW = 0 },
			want: []issue{{"sites[0].power_domains[1].budget_kw", "out of range"}},
		},
		"unknown GPU model": {
			edit: func(s *Spec) { s.Sites[0].Pods[0].LeafGroups[0].Nodes[0].Model = "A100" },
			want: []issue{{node0 + ".model", "unknown GPU model: want one of B200, GB200, H100-SXM, H200-SXM"}},
		},
		"no GPU model": {
			edit: func(s *Spec) { s.Sites[0].Pods[0].LeafGroups[0].Nodes[0].Model = "" },
			want: []issue{{node0 + ".model", "required: a GPU model"}},
		},
		"GB200 outside a rack": {
			edit: func(s *Spec) { s.Sites[0].Pods[0].LeafGroups[0].Nodes[0].Model = "GB200" },
			want: []issue{{node0 + ".model", "list them under a rack"}},
		},
		"pod in an unknown power domain": {
			edit: func(s *Spec) { s.Sites[0].Pods[0].PowerDomain = "hall-9" },
			want: []issue{{"sites[0].pods[0].power_domain", `not a declared power domain of site "abilene-1"`}},
		},
		"node in an unknown power domain": {
			edit: func(s *Spec) { s.Sites[0].Pods[0].LeafGroups[0].Nodes[0].PowerDomain = "hall-9" },
			want: []issue{{node0 + ".power_domain", `not a declared power domain of site "abilene-1"`}},
		},
		"no power domain at any level": {
			edit: func(s *Spec) { s.Sites[0].Pods[0].PowerDomain = "" },
			want: []issue{
				{node0 + ".power_domain", "required: no power domain is given here or on an enclosing rack, leaf group or pod"},
				{rack0 + ".nodes[0].power_domain", "required"},
			},
		},
		"power domain given on the rack only": {
			edit: func(s *Spec) {
				s.Sites[0].Pods[0].PowerDomain = ""
				s.Sites[0].Pods[0].LeafGroups[0].Racks[0].PowerDomain = "hall-2"
			},
			want: []issue{{node0 + ".power_domain", "required"}},
		},
		"duplicate explicit nodes": {
			edit: func(s *Spec) {
				onePod(s, NodeSpec{Name: "a", Model: "H100-SXM"}, NodeSpec{Name: "a", Model: "H100-SXM"})
			},
			want: []issue{{leaf0 + ".nodes[1].name", "duplicate node name; first defined at " + node0}},
		},
		"duplicate hostnames": {
			edit: func(s *Spec) {
				onePod(s, NodeSpec{Hostname: "gpu-0173.dc1", Model: "H100-SXM"}, NodeSpec{Hostname: "gpu-0173.dc1", Model: "H200-SXM"})
			},
			want: []issue{{leaf0 + ".nodes[1].hostname", "duplicate node name; first defined at " + node0}},
		},
		"hostname clashes with an expanded name": {
			edit: func(s *Spec) {
				onePod(s, NodeSpec{Name: "n{n}", Count: new(2), Model: "H100-SXM"}, NodeSpec{Hostname: "abilene-1-p-l-n2", Model: "H100-SXM"})
			},
			want: []issue{{leaf0 + ".nodes[1].hostname", "duplicate node name; first defined at " + node0}},
		},
		"hostname under a pod of count 2": {
			edit: func(s *Spec) {
				onePod(s, NodeSpec{Hostname: "gpu-1", Model: "H100-SXM"})
				s.Sites[0].Pods[0].Name, s.Sites[0].Pods[0].Count = "p{n}", new(2)
			},
			want: []issue{{node0 + ".hostname", "duplicate node name; first defined at " + node0}},
		},
		"hostname with count 2": {
			edit: func(s *Spec) { onePod(s, NodeSpec{Name: "n{n}", Hostname: "gpu-1", Count: new(2), Model: "H100-SXM"}) },
			want: []issue{{node0 + ".hostname", "allowed only when count is 1"}},
		},
		"bad hostname": {
			edit: func(s *Spec) { onePod(s, NodeSpec{Hostname: "gpu_1.", Model: "H100-SXM"}) },
			want: []issue{{node0 + ".hostname", "must be letters, digits"}},
		},
		"count 0": {
			edit: func(s *Spec) { s.Sites[0].Pods[0].LeafGroups[0].Nodes[0].Count = new(0) },
			want: []issue{{node0 + ".count", "out of range: want 1 to 10000"}},
		},
		"count over the maximum": {
			edit: func(s *Spec) { s.Sites[0].Pods[0].Count = new(10_001) },
			want: []issue{{"sites[0].pods[0].count", "out of range: want 1 to 10000"}},
		},
		"count above 1 without {n}": {
			edit: func(s *Spec) { s.Sites[0].Pods[0].LeafGroups[0].Nodes[0].Name = "n" },
			want: []issue{{node0 + ".name", "must contain {n} when count is greater than 1"}},
		},
		"no name": {
			edit: func(s *Spec) { s.Sites[0].Pods[0].LeafGroups[0].Racks[0].Name = "" },
			want: []issue{{rack0 + ".name", "required"}},
		},
		"bad slug": {
			edit: func(s *Spec) { s.Sites[0].Pods[0].Name = "P{n}" },
			want: []issue{{"sites[0].pods[0].name", "lowercase DNS label"}},
		},
		"slug too long once expanded": {
			edit: func(s *Spec) { s.Sites[0].Pods[0].Name = strings.Repeat("p", 63) + "{n}" },
			want: []issue{{"sites[0].pods[0].name", "lowercase DNS label"}},
		},
		"bad name pattern": {
			edit: func(s *Spec) { s.Sites[0].Pods[0].Name = "p{i}" },
			want: []issue{{"sites[0].pods[0].name", "bad name pattern"}},
		},
		"zero-width pattern": {
			edit: func(s *Spec) { s.Sites[0].Pods[0].Name = "p{n:00}" },
			want: []issue{{"sites[0].pods[0].name", "bad name pattern"}},
		},
		"duplicate pod names": {
			edit: func(s *Spec) {
				p := s.Sites[0].Pods[0]
				p.Name, p.Count = "p02", nil
				s.Sites[0].Pods = append(s.Sites[0].Pods, p)
			},
			want: []issue{
				{"sites[0].pods[1].name", `duplicate pod name in site "abilene-1"; first defined at sites[0].pods[0]`},
				{"sites[0].pods[1].leaf_groups[0].name", "duplicate leaf group"},
				{"sites[0].pods[1].leaf_groups[0].nodes[0].name", "duplicate node name; first defined at " + node0},
				{"sites[0].pods[1].leaf_groups[0].racks[0].name", "duplicate NVLink domain"},
				{"sites[0].pods[1].leaf_groups[0].racks[0].nodes[0].name", "duplicate node name"},
			},
		},
		"leaf group names clash across pods": {
			edit: func(s *Spec) {
				// p01-l01 as pod "p01" leaf "l01", and as pod "p01-l01"... no:
				// as pod "p" leaf "01-l01".
				s.Sites[0].Pods = append(s.Sites[0].Pods, PodSpec{Name: "p01", PowerDomain: "hall-1", LeafGroups: []LeafGroupSpec{{
					Name: "l01", Nodes: []NodeSpec{{Name: "m", Model: "B200"}},
				}}})
			},
			want: []issue{{"sites[0].pods[1].name", "duplicate pod name"}, {"sites[0].pods[1].leaf_groups[0].name", "duplicate leaf group"}},
		},
		"rack domain named like an HGX node": {
			edit: func(s *Spec) {
				// Pod "abilene-1-p" leaf "l" rack "n1" has NVLink domain
				// "abilene-1-p-l-n1", the name of HGX node n1 of pod "p".
				onePod(s, NodeSpec{Name: "n1", Model: "H100-SXM"})
				s.Sites[0].Pods = append(s.Sites[0].Pods, PodSpec{Name: "abilene-1-p", PowerDomain: "hall-1", LeafGroups: []LeafGroupSpec{{
					Name: "l", Racks: []RackSpec{{Name: "n1", Nodes: []NodeSpec{{Name: "t", Model: "GB200"}}}},
				}}})
			},
			want: []issue{{"sites[0].pods[1].leaf_groups[0].racks[0].name", "the NVLink domain of the node defined at " + node0}},
		},
		"absent name not in the expansion": {
			edit: func(s *Spec) { s.Sites[0].Absent = []string{"abilene-1-p01-l01-n01", "abilene-1-p09-l01-n01"} },
			want: []issue{{"sites[0].absent[1]", `no such node in the expansion of site "abilene-1"`}},
		},
		"absent name listed twice": {
			edit: func(s *Spec) { s.Sites[0].Absent = []string{"abilene-1-p01-l01-n01", "abilene-1-p01-l01-n01"} },
			want: []issue{{"sites[0].absent[1]", "listed twice; first at sites[0].absent[0]"}},
		},
		"absent name of another site": {
			edit: func(s *Spec) {
				s.Sites = append(s.Sites, SiteSpec{Name: "b", FacilityMW: 1, PUE: 1.1, Timezone: "UTC", Absent: []string{"abilene-1-p01-l01-n01"}})
			},
			want: []issue{{"sites[1].absent[0]", `no such node in the expansion of site "b"`}},
		},
		"rack with mixed models": {
			edit: func(s *Spec) {
				r := &s.Sites[0].Pods[0].LeafGroups[0].Racks[0]
				r.Nodes = append(r.Nodes, NodeSpec{Name: "x", Model: "H100-SXM"})
				r.Nodes[0].Count = new(16)
			},
			want: []issue{{rack0 + ".nodes[1].model", `must all be one model: want "GB200" as in ` + rack0 + ".nodes[0]"}},
		},
		"rack over its NVLink domain": {
			edit: func(s *Spec) { s.Sites[0].Pods[0].LeafGroups[0].Racks[0].Nodes[0].Count = new(19) },
			want: []issue{{rack0 + ".nodes", "at most 72 GB200 GPUs"}},
		},
		"rack of two HGX nodes": {
			edit: func(s *Spec) {
				s.Sites[0].Pods[0].LeafGroups[0].Racks[0].Nodes = []NodeSpec{{Name: "t{n}", Count: new(2), Model: "H200-SXM"}}
			},
			want: []issue{{rack0 + ".nodes", "at most 8 H200-SXM GPUs"}},
		},
		"empty rack": {
			edit: func(s *Spec) { s.Sites[0].Pods[0].LeafGroups[0].Racks[0].Nodes = nil },
			want: []issue{{rack0, "a rack needs at least one node entry"}},
		},
		"empty leaf group": {
			edit: func(s *Spec) {
				s.Sites[0].Pods[0].LeafGroups[0].Racks = nil
				s.Sites[0].Pods[0].LeafGroups[0].Nodes = nil
			},
			want: []issue{{leaf0, "a leaf group needs at least one node or rack entry"}},
		},
		"empty pod": {
			edit: func(s *Spec) { s.Sites[0].Pods[0].LeafGroups = nil },
			want: []issue{{"sites[0].pods[0].leaf_groups", "a pod needs at least one leaf group"}},
		},
		"too many GPUs for the model": {
			edit: func(s *Spec) { s.Sites[0].Pods[0].LeafGroups[0].Nodes[0].GPUs = new(9) },
			want: []issue{{node0 + ".gpus", "out of range: want 1 to 8 for H100-SXM"}},
		},
		"zero GPUs": {
			edit: func(s *Spec) { s.Sites[0].Pods[0].LeafGroups[0].Nodes[0].GPUs = new(0) },
			want: []issue{{node0 + ".gpus", "out of range"}},
		},
		"node power out of range": {
			edit: func(s *Spec) { s.Sites[0].Pods[0].LeafGroups[0].Nodes[0].ITKW = new(100.5) },
			want: []issue{{node0 + ".it_kw", "out of range: want more than 0 and at most 100 kW"}},
		},
		"total nodes over the limit": {
			edit: func(s *Spec) {
				s.Sites[0].Pods[0].Count = new(10_000)
				s.Sites[0].Pods[0].LeafGroups[0].Count = new(10_000)
			},
			want: []issue{{"sites", "the file expands to too many nodes: at most 1000000 allowed"}},
		},
		"several issues at once": {
			edit: func(s *Spec) {
				s.Sites[0].Timezone = "Nowhere/Land"
				s.Sites[0].Pods[0].LeafGroups[0].Nodes[0].Model = "A100"
				s.Sites[0].Pods[0].LeafGroups[0].Racks[0].Nodes[0].Count = new(0)
				s.Sites[0].Absent = []string{"nope"}
			},
			// The count makes names meaningless: duplicates and absent
			// names are not checked.
			want: []issue{
				{"sites[0].timezone", "unknown time zone"},
				{node0 + ".model", "unknown GPU model"},
				{rack0 + ".nodes[0].count", "out of range"},
			},
		},
		"power above the site's facility power is valid": {
			edit: func(s *Spec) {
				s.Sites[0].FacilityMW = 0.001
				s.Sites[0].PowerDomains[0].BudgetKW = 1
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := baseSpec()
			tc.edit(s)
			err := s.Validate()
			got := issuesOf(t, err)
			if len(got) != len(tc.want) {
				t.Errorf("Validate() = %v, want %d issue(s): %v", err, len(tc.want), tc.want)
			}
			for i := range min(len(got), len(tc.want)) {
				if got[i].Field != tc.want[i].Field || !strings.Contains(got[i].Rule, tc.want[i].Rule) {
					t.Errorf("issue %d = %v, want field %q and rule containing %q", i, got[i], tc.want[i].Field, tc.want[i].Rule)
				}
			}
			// Expand reports the same issues.
			f, expandErr := s.Expand()
			if diff := cmp.Diff(issuesOf(t, err), issuesOf(t, expandErr)); diff != "" {
				t.Errorf("Expand() issues differ from Validate() (-validate +expand):\n%s", diff)
			}
			if (expandErr == nil) != (f != nil) {
				t.Errorf("Expand() = %v, %v: want exactly one of a fleet and an error", f, expandErr)
			}
		})
	}
}

func issuesOf(t *testing.T, err error) []valid.Issue {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *valid.Error
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is a %T, want a *valid.Error", err, err)
	}
	return ve.Issues
}

func TestValidateOverLimitFailsFast(t *testing.T) {
	// 10,000 pods of 10,000 leaf groups of 10,000 racks of 10,000 nodes:
	// 10^16 nodes, refused by arithmetic alone.
	s := baseSpec()
	lg := &s.Sites[0].Pods[0].LeafGroups[0]
	s.Sites[0].Pods[0].Count, lg.Count = new(MaxCount), new(MaxCount)
	lg.Racks[0].Count = new(MaxCount)
	lg.Racks[0].Nodes[0].Count = new(MaxCount)
	allocs := testing.AllocsPerRun(3, func() {
		if _, err := s.Expand(); err == nil {
			t.Fatal("Expand() succeeded, want the node limit error")
		}
	})
	if allocs > 200 {
		t.Errorf("Expand() of an over-limit spec made %v allocations, want it to stop before expanding", allocs)
	}
	got := issuesOf(t, s.Validate())
	want := []valid.Issue{
		{Field: rack0 + ".nodes", Value: "40000", Rule: "a rack is one NVLink domain: at most 72 GB200 GPUs"},
		{Field: "sites", Value: "10000000400000000", Rule: "the file expands to too many nodes: at most 1000000 allowed"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Validate() issues mismatch (-want +got):\n%s", diff)
	}
}

func TestExpandGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Parse(data)
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			f, err := s.Expand()
			if err != nil {
				t.Fatalf("Expand() error = %v", err)
			}
			got := formatFleet(f)
			golden := strings.TrimSuffix(path, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("expansion of %s mismatch (-want +got):\n%s", path, diff)
			}
		})
	}
}

// formatFleet renders a fleet as text for golden files: sites, their power
// domains, pools, then one line per node.
func formatFleet(f *Fleet) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 1, ' ', 0)
	for _, s := range f.Sites {
		fmt.Fprintf(w, "site\t%s\tfacility_w=%d\tpue_milli=%d\ttariff_micros_per_mwh=%d\ttimezone=%s\n",
			s.Name, s.FacilityPower, s.PUEMilli, s.TariffMicrosPerMWh, s.Timezone)
		for _, d := range s.PowerDomains {
			fmt.Fprintf(w, "domain\t%s/%s\tbudget_w=%d\n", s.Name, d.Name, d.Budget)
		}
	}
	fmt.Fprintln(w)
	for _, p := range Pools(f) {
		fmt.Fprintf(w, "pool\t%s\tnodes=%d\tgpus=%d\tit_w=%d\tfacility_w=%d\tby_state=%v\n",
			p.ID, p.Nodes, p.GPUs, p.ITPower, p.FacilityPower, p.ByState)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "NAME\tSITE\tMODEL\tGPUS\tIT_W\tDOMAIN\tPOD\tLEAF_GROUP\tNVLINK_DOMAIN\tSTATE")
	for _, n := range f.Nodes {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.Site, n.Model, n.GPUs, n.ITPower,
			n.PowerDomain, n.Position.Pod, n.Position.LeafGroup, n.Position.NVLinkDomain, n.State)
	}
	w.Flush()
	return b.String()
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	specs := map[string]*Spec{"base": baseSpec()}
	for _, p := range Presets() {
		s, err := Generate(p, 7)
		if err != nil {
			t.Fatal(err)
		}
		specs[p] = s
	}
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Parse(data)
		if err != nil {
			t.Fatalf("Parse(%s) error = %v", path, err)
		}
		specs[path] = s
	}
	odd := baseSpec()
	odd.Sites[0].Absent = []string{"1e3", "true", "null", "{n}", "a: b", "#x", "-", "tab\there", `quote"back\slash`, "émoji ✓", ""}
	odd.Sites[0].Pods[0].LeafGroups[0].Nodes[0].ITKW = new(0.0)
	odd.Sites[0].Pods[0].LeafGroups[0].Nodes[0].GPUs = new(0)
	odd.Sites[0].Pods[0].LeafGroups[0].Nodes[0].Name = "{n}"
	odd.Sites[0].FacilityMW = 1e-7
	odd.Sites[0].PUE = 1e22
	specs["odd values"] = odd
	for name, s := range specs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			y, err := s.YAML()
			if err != nil {
				t.Fatalf("YAML() error = %v", err)
			}
			fromYAML, err := Parse(y)
			if err != nil {
				t.Fatalf("Parse(YAML()) error = %v\n%s", err, y)
			}
			if diff := cmp.Diff(s, fromYAML); diff != "" {
				t.Errorf("YAML round trip mismatch (-want +got):\n%s\n%s", diff, y)
			}
			j, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			fromJSON, err := DecodeJSON(j)
			if err != nil {
				t.Fatalf("DecodeJSON() error = %v", err)
			}
			if diff := cmp.Diff(s, fromJSON); diff != "" {
				t.Errorf("JSON round trip mismatch (-want +got):\n%s", diff)
			}
			// JSON is YAML too.
			fromJSONAsYAML, err := Parse(j)
			if err != nil {
				t.Fatalf("Parse(JSON) error = %v", err)
			}
			if diff := cmp.Diff(s, fromJSONAsYAML); diff != "" {
				t.Errorf("Parse(JSON) mismatch (-want +got):\n%s", diff)
			}
			h1, err := s.SHA256()
			if err != nil {
				t.Fatal(err)
			}
			h2, err := fromYAML.SHA256()
			if err != nil {
				t.Fatal(err)
			}
			if h1 != h2 || len(h1) != 64 {
				t.Errorf("SHA256() = %q after the round trip, %q before", h2, h1)
			}
		})
	}
}

func TestCanonicalJSON(t *testing.T) {
	t.Parallel()
	s := &Spec{Version: 1, Sites: []SiteSpec{{
		Name: "a<b>", FacilityMW: 1.5, PUE: 1.2, Timezone: "UTC",
		Pods: []PodSpec{{Name: "p", LeafGroups: []LeafGroupSpec{{Name: "l", Nodes: []NodeSpec{{Name: "n", Model: "B200", ITKW: new(12.5)}}}}}},
	}}}
	got, err := s.CanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"version":1,"sites":[{"name":"a<b>","facility_mw":1.5,"pue":1.2,"timezone":"UTC",` +
		`"pods":[{"name":"p","leaf_groups":[{"name":"l","nodes":[{"name":"n","model":"B200","it_kw":12.5}]}]}]}]}`
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("CanonicalJSON() mismatch (-want +got):\n%s", diff)
	}
	h, err := s.SHA256()
	if err != nil {
		t.Fatal(err)
	}
	s.Sites[0].PUE = 1.3
	if h2, _ := s.SHA256(); h2 == h {
		t.Errorf("SHA256() = %s for two different specs", h)
	}
}

func TestDecodeJSONErrors(t *testing.T) {
	t.Parallel()
	tests := map[string]struct{ in, wantSubstr string }{
		"unknown field":  {`{"version":1,"sites":[{"name":"a","colour":"red"}]}`, `unknown field "colour"`},
		"string count":   {`{"version":1,"sites":[{"name":"a","pods":[{"name":"p","count":"12"}]}]}`, "sites.pods.count"},
		"trailing data":  {`{"version":1} {"version":1}`, "unexpected data after the spec"},
		"malformed JSON": {`{"version":1`, "unexpected EOF"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeJSON([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.wantSubstr) {
				t.Errorf("DecodeJSON() error = %v, want it to contain %q", err, tc.wantSubstr)
			}
		})
	}
}

func TestPools(t *testing.T) {
	t.Parallel()
	f := &Fleet{
		Sites: []Site{{Name: "a", PUEMilli: 1250}},
		Nodes: []Node{
			{Name: "1", Site: "a", Model: "H100-SXM", GPUs: 8, ITPower: 10_200, State: Available},
			{Name: "2", Site: "a", Model: "H100-SXM", GPUs: 8, ITPower: 10_201, State: Failed},
			{Name: "3", Site: "a", Model: "B200", GPUs: 8, ITPower: 14_300, State: Allocated},
			{Name: "4", Site: "a", Model: "B200", GPUs: 8, ITPower: 14_300, State: Allocated, Retired: mustTime(t, "2026-01-01T00:00:00Z")},
			{Name: "5", Site: "zz", Model: "B200", GPUs: 7, ITPower: 1_000, State: Available},
			{Name: "6", Site: "a", Model: "H100-SXM", GPUs: 4, ITPower: 5_000, State: Draining},
		},
	}
	want := []Pool{
		{ID: "a/B200", Site: "a", Model: "B200", Nodes: 1, GPUs: 8, ITPower: 14_300, FacilityPower: 17_875, ByState: map[State]int64{Allocated: 1}},
		// 25,401 W x 1.25 = 31,751.25 W, rounded once for the pool.
		{ID: "a/H100-SXM", Site: "a", Model: "H100-SXM", Nodes: 3, GPUs: 20, ITPower: 25_401, FacilityPower: 31_751, ByState: map[State]int64{Available: 1, Failed: 1, Draining: 1}},
		// A site missing from Sites counts with PUE 1.
		{ID: "zz/B200", Site: "zz", Model: "B200", Nodes: 1, GPUs: 7, ITPower: 1_000, FacilityPower: 1_000, ByState: map[State]int64{Available: 1}},
	}
	if diff := cmp.Diff(want, Pools(f)); diff != "" {
		t.Errorf("Pools() mismatch (-want +got):\n%s", diff)
	}
	if got := Pools(&Fleet{}); got != nil {
		t.Errorf("Pools(empty) = %v, want nil", got)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}
