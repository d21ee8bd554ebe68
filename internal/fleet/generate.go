package fleet

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/neocloud/neocloud/internal/unit"
)

// Preset names accepted by Generate and GenerateWith. PresetUniform needs a
// node count, so only GenerateWith builds it.
const (
	PresetReference300MW = "reference-300mw"
	PresetSmallLab       = "small-lab"
	PresetUniform        = "uniform"
)

// GenerateOptions says which preset fleet GenerateWith builds.
type GenerateOptions struct {
	Preset string
	// Seed picks the empty node slots, as for Generate. It has no effect on
	// PresetUniform, whose slots are all present.
	Seed int64
	// Nodes is the node count of PresetUniform, 1 to MaxNodes; it must be 0
	// for every other preset.
	Nodes int
}

// ErrNodes is wrapped by the errors of GenerateWith about
// GenerateOptions.Nodes: missing or out of range for PresetUniform, or given
// for another preset.
var ErrNodes = errors.New("node count")

// absentPerMille is the share of node slots a seeded preset leaves empty
// (servers out for repair or RMA): 0.2%, at least one.
const absentPerMille = 2

// Presets returns the names of the fixed preset fleets, those Generate
// builds from a name and a seed alone, sorted. PresetUniform, which also
// needs a node count, is not among them.
func Presets() []string {
	return []string{PresetReference300MW, PresetSmallLab}
}

// allPresets returns every preset name GenerateWith accepts.
func allPresets() []string { return append(Presets(), PresetUniform) }

// Generate returns the spec of a preset fleet. A seed other than 0 picks,
// deterministically, about 0.2% of the node slots (at least one) and lists
// them as absent; seed 0 gives the fully populated fleet. The same preset
// and seed always give the same spec. An unknown preset is an error naming
// the valid ones; so is PresetUniform, which needs GenerateWith and a node
// count.
func Generate(preset string, seed int64) (*Spec, error) {
	return GenerateWith(GenerateOptions{Preset: preset, Seed: seed})
}

// GenerateWith returns the spec of a preset fleet, as Generate does, and
// builds PresetUniform from o.Nodes (see Uniform). Errors about o.Nodes wrap
// ErrNodes; an unknown preset is an error naming the valid ones.
func GenerateWith(o GenerateOptions) (*Spec, error) {
	preset, seed := o.Preset, o.Seed
	var s *Spec
	switch preset {
	case PresetReference300MW:
		s = reference300MW()
	case PresetSmallLab:
		s = smallLab()
	case PresetUniform:
		// All slots are present: the seed has nothing to pick.
		return Uniform(o.Nodes)
	default:
		return nil, fmt.Errorf("unknown fleet preset %q: want one of %s", preset, strings.Join(allPresets(), ", "))
	}
	if o.Nodes != 0 {
		return nil, fmt.Errorf("fleet preset %s: %w %d: only the %s preset takes one", preset, ErrNodes, o.Nodes, PresetUniform)
	}
	if seed != 0 {
		if err := pickAbsent(s, seed); err != nil {
			return nil, fmt.Errorf("fleet preset %s: %w", preset, err)
		}
	}
	return s, nil
}

// hgxPods is an entry of pods of 8-GPU HGX nodes in NVIDIA's reference
// scalable unit: 16 leaf groups of 32 nodes (256 GPUs behind 8 rail leaf
// switches, FLEET.md "Fabric"), so 512 nodes and 4,096 GPUs per pod.
func hgxPods(name, domain, model string, pods int) PodSpec {
	return PodSpec{
		Name: name, Count: new(pods), PowerDomain: domain,
		LeafGroups: []LeafGroupSpec{{
			Name: "l{n:02}", Count: new(16),
			Nodes: []NodeSpec{{Name: "n{n:02}", Count: new(32), Model: model}},
		}},
	}
}

// reference300MW is the site of DESIGN.md and FLEET.md ("The reference
// site"): ~150k H100 and ~50k H200 GPUs in 8-GPU nodes plus GB200 NVL72
// racks, on a 300 MW grid connection at PUE 1.2. Halls 1-3 hold 12 H100
// pods each (18,432 nodes), hall 4 12 H200 pods (6,144 nodes), hall 5 6
// GB200 pods of 8 leaf groups of 8 NVL72 racks of 18 trays (6,912 trays):
// 31,488 nodes, 224,256 GPUs and ~301 MW of IT load at full power against
// an IT budget of 300/1.2 = 250 MW, so the site is power-capped, as FLEET.md
// says the real one is.
func reference300MW() *Spec {
	return &Spec{
		Version: FormatVersion,
		Sites: []SiteSpec{{
			Name:                  "ref-300mw",
			FacilityMW:            300,
			PUE:                   1.2,
			EnergyTariffUSDPerMWh: 62.5,
			Timezone:              "America/Chicago",
			// The hall budgets add up to the 250 MW IT budget.
			PowerDomains: []PowerDomainSpec{
				{Name: "hall-1", BudgetKW: 52_000},
				{Name: "hall-2", BudgetKW: 52_000},
				{Name: "hall-3", BudgetKW: 52_000},
				{Name: "hall-4", BudgetKW: 52_000},
				{Name: "hall-5", BudgetKW: 42_000},
			},
			Pods: []PodSpec{
				hgxPods("h1-h100-p{n:02}", "hall-1", "H100-SXM", 12),
				hgxPods("h2-h100-p{n:02}", "hall-2", "H100-SXM", 12),
				hgxPods("h3-h100-p{n:02}", "hall-3", "H100-SXM", 12),
				hgxPods("h4-h200-p{n:02}", "hall-4", "H200-SXM", 12),
				{
					Name: "h5-gb200-p{n:02}", Count: new(6), PowerDomain: "hall-5",
					LeafGroups: []LeafGroupSpec{{
						Name: "l{n:02}", Count: new(8),
						// One GB200 NVL72 rack: 18 compute trays of 4 GPUs
						// (FLEET.md "GPUs and nodes").
						Racks: []RackSpec{{
							Name: "r{n:02}", Count: new(8),
							Nodes: []NodeSpec{{Name: "t{n:02}", Count: new(18), Model: "GB200"}},
						}},
					}},
				},
			},
		}},
	}
}

// smallLab is a lab-sized site for tests and quick demos: 32 H100 nodes in
// row A, 8 H200 nodes and one GB200 NVL72 rack in row B (58 nodes).
func smallLab() *Spec {
	return &Spec{
		Version: FormatVersion,
		Sites: []SiteSpec{{
			Name:                  "lab-1",
			FacilityMW:            1.5,
			PUE:                   1.3,
			EnergyTariffUSDPerMWh: 80,
			Timezone:              "Europe/Amsterdam",
			PowerDomains: []PowerDomainSpec{
				{Name: "row-a", BudgetKW: 400},
				{Name: "row-b", BudgetKW: 500},
			},
			Pods: []PodSpec{
				{
					Name: "h100", PowerDomain: "row-a",
					LeafGroups: []LeafGroupSpec{{
						Name: "l{n}", Count: new(4),
						Nodes: []NodeSpec{{Name: "n{n:02}", Count: new(8), Model: "H100-SXM"}},
					}},
				},
				{
					Name: "h200", PowerDomain: "row-b",
					LeafGroups: []LeafGroupSpec{{
						Name:  "l1",
						Nodes: []NodeSpec{{Name: "n{n:02}", Count: new(8), Model: "H200-SXM"}},
					}},
				},
				{
					Name: "gb200", PowerDomain: "row-b",
					LeafGroups: []LeafGroupSpec{{
						Name: "l1",
						Racks: []RackSpec{{
							Name:  "r1",
							Nodes: []NodeSpec{{Name: "t{n:02}", Count: new(18), Model: "GB200"}},
						}},
					}},
				},
			},
		}},
	}
}

// Layout of the uniform preset: NVIDIA's 32-node scalable unit as the leaf
// group and 16 of them to a pod (FLEET.md "Fabric"), as in hgxPods.
const (
	uniformLeafNodes = 32
	uniformPodLeafs  = 16
	uniformPodNodes  = uniformLeafNodes * uniformPodLeafs
	uniformModel     = "H100-SXM"
	// uniformPUEMilli is the PUE of the uniform site, 1.2 (FLEET.md "GPUs
	// and nodes": 1.1-1.3 for modern liquid-cooled AI halls).
	uniformPUEMilli = 1200
)

// Uniform returns the spec of the uniform preset: nodes identical 8-GPU
// H100-SXM nodes at one site "uni", so in one pool, in pods of 16 leaf
// groups of 32 nodes; the last pod and its last leaf group hold the
// remainder. Nodes are named uni-pPPPP-lLL-nNN (uni-p0001-l01-n01 first).
// One power domain's budget covers every node at full load, and the
// facility power is that load times a PUE of 1.2, rounded up to a whole MW,
// so power never limits the fleet. A count outside 1 to MaxNodes is an
// error wrapping ErrNodes. The spec is the same for the same count.
func Uniform(nodes int) (*Spec, error) {
	if nodes < 1 || nodes > MaxNodes {
		return nil, fmt.Errorf("fleet preset %s: %w %d: out of range: want 1 to %d", PresetUniform, ErrNodes, nodes, MaxNodes)
	}
	m, _ := LookupModel(uniformModel)
	load := unit.Power(nodes) * m.NodeITPower
	// Whole MW of at least load x PUE, in integers so no rounding can leave
	// the IT budget (facility / PUE) below the load.
	den := int64(unit.Megawatt) * 1000
	facilityMW := (int64(load)*uniformPUEMilli + den - 1) / den
	const domain = "all"
	nodeEntry := func(n int) []NodeSpec {
		return []NodeSpec{{Name: "n{n:02}", Count: new(n), Model: uniformModel}}
	}
	var pods []PodSpec
	full, rest := nodes/uniformPodNodes, nodes%uniformPodNodes
	if full > 0 {
		pods = append(pods, PodSpec{
			Name: "p{n:04}", Count: new(full), PowerDomain: domain,
			LeafGroups: []LeafGroupSpec{{Name: "l{n:02}", Count: new(uniformPodLeafs), Nodes: nodeEntry(uniformLeafNodes)}},
		})
	}
	if rest > 0 {
		// The partial pod, named as the next index of the first entry.
		last := PodSpec{Name: fmt.Sprintf("p%04d", full+1), PowerDomain: domain}
		leafs, tail := rest/uniformLeafNodes, rest%uniformLeafNodes
		if leafs > 0 {
			last.LeafGroups = append(last.LeafGroups, LeafGroupSpec{Name: "l{n:02}", Count: new(leafs), Nodes: nodeEntry(uniformLeafNodes)})
		}
		if tail > 0 {
			last.LeafGroups = append(last.LeafGroups, LeafGroupSpec{Name: fmt.Sprintf("l%02d", leafs+1), Nodes: nodeEntry(tail)})
		}
		pods = append(pods, last)
	}
	return &Spec{
		Version: FormatVersion,
		Sites: []SiteSpec{{
			Name:       "uni",
			FacilityMW: float64(facilityMW),
			PUE:        float64(uniformPUEMilli) / 1000,
			// As the reference site.
			EnergyTariffUSDPerMWh: 62.5,
			Timezone:              "UTC",
			PowerDomains:          []PowerDomainSpec{{Name: domain, BudgetKW: load.KW()}},
			Pods:                  pods,
		}},
	}, nil
}

// pickAbsent lists, per site, absentPerMille of its node slots (rounded,
// at least one) chosen by a PCG generator seeded with seed, in file order.
func pickAbsent(s *Spec, seed int64) error {
	f, err := s.Expand()
	if err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(uint64(seed), 0x6e656f636c6f7564)) // "neocloud"
	start := 0
	for i := range s.Sites {
		end := start
		for end < len(f.Nodes) && f.Nodes[end].Site == s.Sites[i].Name {
			end++
		}
		nodes := f.Nodes[start:end]
		start = end
		if len(nodes) == 0 {
			continue
		}
		k := max(1, (len(nodes)*absentPerMille+500)/1000)
		chosen := make([]bool, len(nodes))
		for picked := 0; picked < k; {
			if j := r.IntN(len(nodes)); !chosen[j] {
				chosen[j] = true
				picked++
			}
		}
		for j, c := range chosen {
			if c {
				s.Sites[i].Absent = append(s.Sites[i].Absent, nodes[j].Name)
			}
		}
	}
	return nil
}
