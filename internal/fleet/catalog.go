package fleet

import (
	"sort"

	"github.com/neocloud/neocloud/internal/unit"
)

// GPUModel describes one GPU model as deployed in a node.
type GPUModel struct {
	Name string
	// GPUsPerNode is the GPU count of the standard server (an HGX board, or a
	// GB200 compute tray).
	GPUsPerNode unit.GPUs
	// GPUPower is one GPU's maximum power.
	GPUPower unit.Power
	// NodeITPower is the standard node's IT power at full load.
	NodeITPower unit.Power
	// NVLinkDomainGPUs is the size of one NVLink domain in GPUs: 8 for an HGX
	// node, 72 for a GB200 NVL72 rack.
	NVLinkDomainGPUs unit.GPUs
	// MemoryGB is HBM per GPU.
	MemoryGB int
}

// NodesPerNVLinkDomain returns how many standard nodes make one NVLink domain.
func (m GPUModel) NodesPerNVLinkDomain() int64 {
	return int64(m.NVLinkDomainGPUs / m.GPUsPerNode)
}

// catalog is built from ../shared/FLEET.md (NVIDIA DGX/HGX guides):
// H100/H200 SXM 700 W per GPU, 10.2 kW per 8-GPU node; B200 1,000 W per GPU,
// 14.3 kW per node; GB200 NVL72 ~132 kW per rack of 18 compute trays of 4
// GPUs, so ~7.33 kW per tray including its share of the NVLink switch trays.
var catalog = map[string]GPUModel{
	"H100-SXM": {Name: "H100-SXM", GPUsPerNode: 8, GPUPower: 700, NodeITPower: 10_200, NVLinkDomainGPUs: 8, MemoryGB: 80},
	"H200-SXM": {Name: "H200-SXM", GPUsPerNode: 8, GPUPower: 700, NodeITPower: 10_200, NVLinkDomainGPUs: 8, MemoryGB: 141},
	"B200":     {Name: "B200", GPUsPerNode: 8, GPUPower: 1_000, NodeITPower: 14_300, NVLinkDomainGPUs: 8, MemoryGB: 180},
	"GB200":    {Name: "GB200", GPUsPerNode: 4, GPUPower: 1_200, NodeITPower: 7_333, NVLinkDomainGPUs: 72, MemoryGB: 186},
}

// LookupModel returns the catalog entry for name and whether it exists.
func LookupModel(name string) (GPUModel, bool) {
	m, ok := catalog[name]
	return m, ok
}

// Models returns the catalog's model names, sorted.
func Models() []string {
	names := make([]string, 0, len(catalog))
	for n := range catalog {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
