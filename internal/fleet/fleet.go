package fleet

import (
	"fmt"
	"time"

	"github.com/neocloud/neocloud/internal/unit"
)

// Site is a data center.
type Site struct {
	Name string
	// FacilityPower is the site's total facility power (grid connection).
	FacilityPower unit.Power
	// PUEMilli is the power usage effectiveness in thousandths (1.2 = 1200).
	PUEMilli int64
	// TariffMicrosPerMWh is the energy price in micro-USD per MWh.
	TariffMicrosPerMWh int64
	// Timezone is an IANA zone name, for display and local-time demand.
	Timezone     string
	PowerDomains []PowerDomain
}

// ITBudget returns the IT power the facility can feed: facility power / PUE.
func (s Site) ITBudget() unit.Power { return s.FacilityPower.Scale(1000, s.PUEMilli) }

// PowerDomain is a hall or feed with a power budget its nodes share.
type PowerDomain struct {
	Name   string
	Budget unit.Power
}

// State is the operational state of a node.
type State string

// Node states. A new node starts Available.
const (
	Available   State = "available"
	Allocated   State = "allocated"
	Draining    State = "draining"
	Sanitizing  State = "sanitizing"
	Failed      State = "failed"
	Maintenance State = "maintenance"
)

// States lists every node state, in lifecycle order.
var States = []State{Available, Allocated, Draining, Sanitizing, Failed, Maintenance}

// ParseState returns the state named s, or an error naming the valid ones.
func ParseState(s string) (State, error) {
	for _, st := range States {
		if string(st) == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("unknown node state %q: want one of %v", s, States)
}

// Position is a node's place in the fabric: pod (spine group) ⊃ leaf group ⊃
// NVLink domain. Names are unique within a site; NVLinkDomain is unique
// within its leaf group. For 8-GPU HGX servers the NVLink domain is the node
// itself; for a GB200 NVL72 rack it is the rack.
type Position struct {
	Pod          string
	LeafGroup    string
	NVLinkDomain string
}

// Node is the unit of placement: a server with GPUs of one model.
type Node struct {
	// Name is unique across the whole fleet and stable across applies.
	Name  string
	Site  string
	Model string // a Catalog key, e.g. "H100-SXM"
	GPUs  unit.GPUs
	// ITPower is the node's IT power at full load.
	ITPower     unit.Power
	PowerDomain string
	Position    Position
	State       State
	// Retired is when the node left the fleet; zero while it is in service.
	Retired time.Time
	// Ordinal is the node's stable integer identity, assigned by the store
	// when the node is first added (1, 2, ... in the order of
	// FleetChange.Add); a retired node that comes back keeps its ordinal.
	// It is 0 on nodes not yet stored.
	Ordinal int64
}

// PoolID returns the pool the node counts in.
func (n Node) PoolID() string { return PoolID(n.Site, n.Model) }

// PoolID names the pool of GPU model model at site site: "site/MODEL".
func PoolID(site, model string) string { return site + "/" + model }

// Fleet is an expanded fleet: every site and every node, in a deterministic
// order (sites as given; nodes in file order of expansion).
type Fleet struct {
	Sites []Site
	Nodes []Node
}

// Pool summarises the nodes of one GPU model at one site.
type Pool struct {
	ID    string
	Site  string
	Model string
	Nodes int64
	GPUs  unit.GPUs
	// ITPower is the pool's IT power at full load; FacilityPower adds the
	// site's PUE.
	ITPower       unit.Power
	FacilityPower unit.Power
	// ByState counts nodes per state.
	ByState map[State]int64
}
