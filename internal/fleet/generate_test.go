package fleet

import (
	"errors"
	"strconv"
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
	if err == nil || !strings.Contains(err.Error(), "want one of reference-300mw, small-lab, uniform") {
		t.Errorf("Generate(huge) error = %v, want one naming the presets", err)
	}
	for _, p := range Presets() {
		if _, err := Generate(p, 0); err != nil {
			t.Errorf("Generate(%s) error = %v", p, err)
		}
	}
}

func TestUniformPreset(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 31, 32, 33, 511, 512, 513, 32_000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			t.Parallel()
			s, err := GenerateWith(GenerateOptions{Preset: PresetUniform, Seed: 1, Nodes: n})
			if err != nil {
				t.Fatal(err)
			}
			f, err := s.Expand()
			if err != nil {
				t.Fatalf("Expand() error = %v", err)
			}
			st := statsOf(t, f)
			if st.Nodes != n || st.GPUs != unit.GPUs(8*n) {
				t.Errorf("expands to %d nodes, %d GPUs; want %d, %d", st.Nodes, st.GPUs, n, 8*n)
			}
			if diff := cmp.Diff(map[string]int{"H100-SXM": n}, st.NodesByModel); diff != "" {
				t.Errorf("nodes by model mismatch (-want +got):\n%s", diff)
			}
			if st.Pods != (n+511)/512 || st.LeafGroups != (n+31)/32 {
				t.Errorf("%d pods, %d leaf groups; want %d, %d", st.Pods, st.LeafGroups, (n+511)/512, (n+31)/32)
			}
			perLeaf := map[string]int{}
			for _, node := range f.Nodes {
				if node.GPUs != 8 {
					t.Fatalf("node %s has %d GPUs, want 8", node.Name, node.GPUs)
				}
				perLeaf[node.Position.LeafGroup]++
			}
			for leaf, c := range perLeaf {
				if c > 32 {
					t.Errorf("leaf group %s holds %d nodes, want at most 32", leaf, c)
				}
			}
			if got := f.Nodes[0].Name; got != "uni-p0001-l01-n01" {
				t.Errorf("first node = %q, want uni-p0001-l01-n01", got)
			}
			pools := Pools(f)
			if len(pools) != 1 || pools[0].Nodes != int64(n) {
				t.Errorf("pools = %+v, want one of %d nodes", pools, n)
			}
			// Power never limits the fleet: the domain covers the full
			// load, the IT budget too, and the facility is that load x 1.2
			// rounded up to a whole MW.
			site := f.Sites[0]
			if len(site.PowerDomains) != 1 || site.PowerDomains[0].Budget < st.ITPower {
				t.Errorf("power domains %+v do not cover the load %v", site.PowerDomains, st.ITPower)
			}
			if site.ITBudget() < st.ITPower {
				t.Errorf("IT budget %v below the load %v", site.ITBudget(), st.ITPower)
			}
			facility := st.ITPower.Scale(1200, 1000)
			if site.FacilityPower < facility || site.FacilityPower-facility >= unit.Megawatt || site.FacilityPower%unit.Megawatt != 0 {
				t.Errorf("facility power %v, want %v rounded up to a whole MW", site.FacilityPower, facility)
			}
			y, err := s.YAML()
			if err != nil {
				t.Fatal(err)
			}
			again, err := GenerateWith(GenerateOptions{Preset: PresetUniform, Seed: 2, Nodes: n})
			if err != nil {
				t.Fatal(err)
			}
			y2, err := again.YAML()
			if err != nil {
				t.Fatal(err)
			}
			if string(y) != string(y2) {
				t.Errorf("two generations differ:\n%s\n---\n%s", y, y2)
			}
			if len(y) >= 2<<10 {
				t.Errorf("YAML() is %d bytes, want under 2 KiB", len(y))
			}
			back, err := Parse(y)
			if err != nil {
				t.Fatalf("Parse(YAML()) error = %v", err)
			}
			if diff := cmp.Diff(s, back); diff != "" {
				t.Errorf("YAML round trip mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUniformMaxNodes(t *testing.T) {
	t.Parallel()
	s, err := Uniform(MaxNodes)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("Validate() error = %v", err)
	}
	if got, want := s.Sites[0].Pods[1].Name, "p1954"; got != want {
		t.Errorf("last pod = %q, want %q", got, want)
	}
}

func TestGenerateNodes(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		opts GenerateOptions
		want string
	}{
		"uniform without a count": {GenerateOptions{Preset: PresetUniform}, "node count 0: out of range: want 1 to 1000000"},
		"uniform negative":        {GenerateOptions{Preset: PresetUniform, Nodes: -1}, "node count -1: out of range"},
		"uniform too many":        {GenerateOptions{Preset: PresetUniform, Nodes: MaxNodes + 1}, "node count 1000001: out of range"},
		"small lab with a count":  {GenerateOptions{Preset: PresetSmallLab, Nodes: 4}, "node count 4: only the uniform preset takes one"},
		"reference with a count":  {GenerateOptions{Preset: PresetReference300MW, Seed: 1, Nodes: 4}, "only the uniform preset"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := GenerateWith(tc.opts)
			if !errors.Is(err, ErrNodes) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("GenerateWith(%+v) error = %v, want ErrNodes with %q", tc.opts, err, tc.want)
			}
		})
	}
	if _, err := Generate(PresetUniform, 0); !errors.Is(err, ErrNodes) {
		t.Errorf("Generate(uniform) error = %v, want ErrNodes", err)
	}
}
