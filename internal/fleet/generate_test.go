package fleet

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/unit"
)

// fleetStats counts what a preset must contain.
type fleetStats struct {
	Nodes, Pods, LeafGroups, NVLinkDomains int
	GPUs                                   unit.GPUs
	ITPower                                unit.Power
	NodesByModel                           map[string]int
	GPUsByModel                            map[string]unit.GPUs
	NodesByDomain                          map[string]int
}

func statsOf(t *testing.T, f *Fleet) fleetStats {
	t.Helper()
	st := fleetStats{NodesByModel: map[string]int{}, GPUsByModel: map[string]unit.GPUs{}, NodesByDomain: map[string]int{}}
	pods, leafs, domains, names := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, n := range f.Nodes {
		if names[n.Name] {
			t.Errorf("node name %q appears twice", n.Name)
		}
		names[n.Name] = true
		st.Nodes++
		st.GPUs += n.GPUs
		st.ITPower += n.ITPower
		st.NodesByModel[n.Model]++
		st.GPUsByModel[n.Model] += n.GPUs
		st.NodesByDomain[n.PowerDomain]++
		pods[n.Site+"/"+n.Position.Pod] = true
		leafs[n.Site+"/"+n.Position.LeafGroup] = true
		domains[n.Site+"/"+n.Position.NVLinkDomain] = true
	}
	st.Pods, st.LeafGroups, st.NVLinkDomains = len(pods), len(leafs), len(domains)
	return st
}

func TestReferencePreset(t *testing.T) {
	t.Parallel()
	s, err := Generate(PresetReference300MW, 0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Expand()
	if err != nil {
		t.Fatalf("Expand() error = %v", err)
	}
	want := fleetStats{
		Nodes:         31_488,
		Pods:          36 + 12 + 6,
		LeafGroups:    48*16 + 6*8,
		NVLinkDomains: 18_432 + 6_144 + 384,
		GPUs:          224_256,
		// 24,576 HGX nodes x 10.2 kW + 6,912 trays x 7.333 kW: ~301 MW,
		// more than the 250 MW IT budget (power-capped, FLEET.md).
		ITPower:       301_360_896,
		NodesByModel:  map[string]int{"H100-SXM": 18_432, "H200-SXM": 6_144, "GB200": 6_912},
		GPUsByModel:   map[string]unit.GPUs{"H100-SXM": 147_456, "H200-SXM": 49_152, "GB200": 27_648},
		NodesByDomain: map[string]int{"hall-1": 6_144, "hall-2": 6_144, "hall-3": 6_144, "hall-4": 6_144, "hall-5": 6_912},
	}
	if diff := cmp.Diff(want, statsOf(t, f)); diff != "" {
		t.Errorf("reference fleet mismatch (-want +got):\n%s", diff)
	}
	site := f.Sites[0]
	if got, want := site.ITBudget(), 250*unit.Megawatt; got != want {
		t.Errorf("IT budget = %v, want %v", got, want)
	}
	var budget unit.Power
	for _, d := range site.PowerDomains {
		budget += d.Budget
	}
	if budget != site.ITBudget() {
		t.Errorf("hall budgets add up to %v, want the IT budget %v", budget, site.ITBudget())
	}
	if diff := cmp.Diff(Site{
		Name: "ref-300mw", FacilityPower: 300 * unit.Megawatt, PUEMilli: 1200, TariffMicrosPerMWh: 62_500_000,
		Timezone: "America/Chicago", PowerDomains: site.PowerDomains,
	}, site); diff != "" {
		t.Errorf("site mismatch (-want +got):\n%s", diff)
	}
}

func TestSmallLabPreset(t *testing.T) {
	t.Parallel()
	s, err := Generate(PresetSmallLab, 0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Expand()
	if err != nil {
		t.Fatalf("Expand() error = %v", err)
	}
	want := fleetStats{
		Nodes: 58, Pods: 3, LeafGroups: 6, NVLinkDomains: 32 + 8 + 1,
		GPUs: 32*8 + 8*8 + 72, ITPower: 40*10_200 + 18*7_333,
		NodesByModel:  map[string]int{"H100-SXM": 32, "H200-SXM": 8, "GB200": 18},
		GPUsByModel:   map[string]unit.GPUs{"H100-SXM": 256, "H200-SXM": 64, "GB200": 72},
		NodesByDomain: map[string]int{"row-a": 32, "row-b": 26},
	}
	if diff := cmp.Diff(want, statsOf(t, f)); diff != "" {
		t.Errorf("small lab mismatch (-want +got):\n%s", diff)
	}
}

func TestGenerateSeeds(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		preset     string
		wantAbsent int
		wantNodes  int
	}{
		"reference": {PresetReference300MW, 63, 31_488 - 63},
		"small lab": {PresetSmallLab, 1, 57},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a, err := Generate(tc.preset, 1)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Generate(tc.preset, 1)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(a, again); diff != "" {
				t.Errorf("two generations with seed 1 differ (-first +second):\n%s", diff)
			}
			if got := len(a.Sites[0].Absent); got != tc.wantAbsent {
				t.Errorf("seed 1 lists %d absent nodes, want %d", got, tc.wantAbsent)
			}
			f, err := a.Expand()
			if err != nil {
				t.Fatalf("Expand() error = %v", err)
			}
			if len(f.Nodes) != tc.wantNodes {
				t.Errorf("seed 1 expands to %d nodes, want %d", len(f.Nodes), tc.wantNodes)
			}
			b, err := Generate(tc.preset, 2)
			if err != nil {
				t.Fatal(err)
			}
			if cmp.Equal(a.Sites[0].Absent, b.Sites[0].Absent) && tc.wantAbsent > 1 {
				t.Errorf("seeds 1 and 2 give the same absent nodes %v", a.Sites[0].Absent)
			}
			y, err := a.YAML()
			if err != nil {
				t.Fatal(err)
			}
			if len(y) >= 16<<10 {
				t.Errorf("YAML() is %d bytes, want under 16 KiB", len(y))
			}
			back, err := Parse(y)
			if err != nil {
				t.Fatalf("Parse(YAML()) error = %v", err)
			}
			if diff := cmp.Diff(a, back); diff != "" {
				t.Errorf("YAML round trip mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGenerateUnknownPreset(t *testing.T) {
	t.Parallel()
	_, err := Generate("huge", 1)
	if err == nil || !strings.Contains(err.Error(), "want one of reference-300mw, small-lab") {
		t.Errorf("Generate(huge) error = %v, want one naming the presets", err)
	}
	for _, p := range Presets() {
		if _, err := Generate(p, 0); err != nil {
			t.Errorf("Generate(%s) error = %v", p, err)
		}
	}
}
