package dcgm

import (
	"fmt"
	"os"
	"regexp"
	"slices"

	"github.com/goccy/go-yaml"

	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/valid"
)

// Mapping names the fleet's node (and GPU index) for GPUs whose exporter
// labels do not: an exporter whose Hostname is a short name, an FQDN or a
// Kubernetes pod's name. A nil *Mapping maps every GPU by its Hostname and
// gpu labels.
type Mapping struct {
	// Hosts maps an exporter's Hostname label to a node name.
	Hosts map[string]string
	// GPUs maps a GPU UUID to its node and index on the node; it wins
	// over Hosts and over the gpu label.
	GPUs map[string]GPURef
}

// GPURef is one GPU of the fleet: a node and the GPU's index on it.
type GPURef struct {
	Node string
	GPU  int
}

// mappingFile is the YAML form of a Mapping (see ParseMapping); gpu is a
// pointer so that a missing index is an error rather than GPU 0.
type mappingFile struct {
	Hosts map[string]string `yaml:"hosts"`
	GPUs  map[string]struct {
		Node string `yaml:"node"`
		GPU  *int   `yaml:"gpu"`
	} `yaml:"gpus"`
}

// nodePattern is meter.Batch.Validate's rule for node names.
var nodePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,253}$`)

// LoadMapping reads a mapping file (see ParseMapping).
func LoadMapping(path string) (*Mapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	m, err := ParseMapping(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ParseMapping parses a mapping file, YAML with two optional sections:
//
//	hosts:                       # Hostname label → node name
//	  dgx017.cluster.internal: h100-a-n0017
//	gpus:                        # GPU UUID → node and GPU index
//	  GPU-5f3c2a7e-1d2b-4c6a-9e8f-0a1b2c3d4e5f: {node: h100-a-n0017, gpu: 3}
//
// A YAML error (unknown key, wrong type) names its line; a bad node name
// or GPU index is a *valid.Error naming the entry.
func ParseMapping(data []byte) (*Mapping, error) {
	var f mappingFile
	if err := yaml.UnmarshalWithOptions(data, &f, yaml.Strict()); err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	var v valid.Error
	m := &Mapping{Hosts: make(map[string]string, len(f.Hosts)), GPUs: make(map[string]GPURef, len(f.GPUs))}
	for _, host := range sortedKeys(f.Hosts) {
		node := f.Hosts[host]
		if host == "" {
			v.Add("hosts", host, "a hostname must not be empty")
		}
		if !nodePattern.MatchString(node) {
			v.Add("hosts."+host, node, "must be a node name: 1-253 letters, digits, . _ -")
		}
		m.Hosts[host] = node
	}
	for _, uuid := range sortedKeys(f.GPUs) {
		g := f.GPUs[uuid]
		if uuid == "" {
			v.Add("gpus", uuid, "a GPU UUID must not be empty")
		}
		if !nodePattern.MatchString(g.Node) {
			v.Add("gpus."+uuid+".node", g.Node, "must be a node name: 1-253 letters, digits, . _ -")
		}
		switch {
		case g.GPU == nil:
			v.Add("gpus."+uuid+".gpu", nil, "is required: the GPU's index on the node")
		case *g.GPU < 0 || *g.GPU > meter.MaxGPU:
			v.Add("gpus."+uuid+".gpu", *g.GPU, "must be within 0..%d", meter.MaxGPU)
		default:
			m.GPUs[uuid] = GPURef{Node: g.Node, GPU: *g.GPU}
		}
	}
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	return m, nil
}

// Resolve returns the node and index of the GPU that an exporter labels
// with host, uuid and index gpu (-1 when its labels give none): the GPUs
// entry for uuid if there is one, else the Hosts entry for host (or host
// itself) with gpu. ok is false when neither gives a node and an index.
func (m *Mapping) Resolve(host, uuid string, gpu int) (node string, index int, ok bool) {
	if m != nil && uuid != "" {
		if r, found := m.GPUs[uuid]; found {
			return r.Node, r.GPU, true
		}
	}
	node = host
	if m != nil && host != "" {
		if n, found := m.Hosts[host]; found {
			node = n
		}
	}
	if node == "" || gpu < 0 {
		return "", 0, false
	}
	return node, gpu, true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
