package fleet

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/valid"
)

// Ranges of a site's and a node's numbers. The upper bounds are far beyond
// any real site; they keep every product in int64.
const (
	maxFacilityMW = 100_000     // 100 GW
	maxBudgetKW   = 100_000_000 // 100 GW
	maxTariff     = 1_000_000   // USD per MWh
	maxNodeKW     = 100
	minPUE        = 1.0
	maxPUE        = 3.0
)

// Validate checks s against every rule of the fleet file format and returns
// a *valid.Error listing all the issues found (nil when there is none). Each
// issue names the field by its path, such as
// "sites[0].pods[2].leaf_groups[0].nodes[1].model". Checks that need the
// expanded names (duplicates, absent names) run only when the counts and
// name patterns are sound and the file expands to at most MaxNodes nodes,
// a bound checked on the product of the counts before anything is expanded.
// Installed power above a site's facility power or a domain's budget is
// valid: power-capped sites are normal.
func (s *Spec) Validate() error {
	b := newBuilder(s, false)
	b.run()
	return b.issues.Err()
}

// Expand validates s and returns its fleet: the sites in file order, and the
// nodes in file order of expansion (pod instances in order, and within a
// leaf group its nodes before its racks), each Available, with its absent
// slots left out. It returns the *valid.Error of Validate when s is invalid.
func (s *Spec) Expand() (*Fleet, error) {
	b := newBuilder(s, true)
	b.run()
	if err := b.issues.Err(); err != nil {
		return nil, err
	}
	return b.fleet, nil
}

// loc locates an entry of a spec for issue paths; -1 marks a level that
// does not apply.
type loc struct{ site, pod, leaf, rack, node int }

func (l loc) String() string {
	b := make([]byte, 0, 64)
	b = appendIndex(b, "sites", l.site)
	for _, lv := range [...]struct {
		name string
		i    int
	}{{".pods", l.pod}, {".leaf_groups", l.leaf}, {".racks", l.rack}, {".nodes", l.node}} {
		if lv.i >= 0 {
			b = appendIndex(b, lv.name, lv.i)
		}
	}
	return string(b)
}

func appendIndex(b []byte, name string, i int) []byte {
	b = append(b, name...)
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(i), 10)
	return append(b, ']')
}

func (l loc) field(name string) string { return l.String() + "." + name }

// The compiled spec: each entry with its parsed name pattern, its count and
// resolved values, and a flag so that a duplicate is reported once per
// entry rather than once per expanded name.
type (
	cSite struct {
		idx     int
		site    Site
		domains map[string]bool
		pods    []*cPod
		absent  map[string]int // absent name -> index in SiteSpec.Absent
		found   []bool
	}
	cPod struct {
		at    loc
		name  pattern
		count int
		leafs []*cLeaf
		dup   bool
	}
	cLeaf struct {
		at    loc
		name  pattern
		count int
		nodes []*cNode
		racks []*cRack
		dup   bool
	}
	cRack struct {
		at    loc
		name  pattern
		count int
		nodes []*cNode
		dup   bool
	}
	cNode struct {
		idx      int32 // in builder.entries
		site     int
		at       loc
		name     pattern
		hostname string
		count    int
		model    string
		gpus     unit.GPUs
		power    unit.Power
		domain   string
		inRack   bool
		dup      bool
	}
)

// builder validates a spec and, when emit is set, builds its fleet.
type builder struct {
	spec   *Spec
	emit   bool
	issues valid.Error
	// expandable is cleared by issues that make names meaningless or the
	// expansion too large: the name checks then do not run.
	expandable bool
	total      int64 // nodes the counts multiply to, saturating
	sites      []*cSite
	entries    []*cNode
	names      nameSet
	zones      map[string]bool // time zone name -> valid
	fleet      *Fleet
}

// nameSet maps full node names to their entries (an index in
// builder.entries). Its strings are carved from shared chunks so that a
// fleet of n nodes costs n/chunk allocations for names rather than n.
type nameSet struct {
	m     map[string]int32
	chunk strings.Builder
}

const nameChunk = 64 << 10

// intern returns name as a string that shares a chunk with others. A
// strings.Builder never changes bytes once written, so the strings stay
// valid after it grows or is replaced.
func (s *nameSet) intern(name []byte) string {
	if s.chunk.Cap()-s.chunk.Len() < len(name) {
		s.chunk = strings.Builder{}
		s.chunk.Grow(max(nameChunk, len(name)))
	}
	start := s.chunk.Len()
	s.chunk.Write(name)
	return s.chunk.String()[start:]
}

func newBuilder(s *Spec, emit bool) *builder {
	if s == nil {
		s = &Spec{}
	}
	return &builder{spec: s, emit: emit, expandable: true}
}

func (b *builder) run() {
	b.check()
	if b.expandable {
		b.walk()
	}
}

func (b *builder) add(field string, value any, rule string, args ...any) {
	b.issues.Add(field, value, rule, args...)
}

// check runs every rule that needs no expansion and compiles the entries.
func (b *builder) check() {
	s := b.spec
	if s.Version != FormatVersion {
		b.add("version", s.Version, "unsupported format version: want %d", FormatVersion)
	}
	if len(s.Sites) == 0 {
		b.add("sites", nil, "at least one site is required")
	}
	first := make(map[string]int, len(s.Sites))
	for i := range s.Sites {
		b.checkSite(i, first)
	}
	if b.total > MaxNodes {
		b.add("sites", b.total, "the file expands to too many nodes: at most %d allowed", MaxNodes)
		b.expandable = false
	}
}

func (b *builder) checkSite(i int, first map[string]int) {
	ss := &b.spec.Sites[i]
	at := loc{site: i, pod: -1, leaf: -1, rack: -1, node: -1}
	cs := &cSite{idx: i, domains: make(map[string]bool, len(ss.PowerDomains))}
	b.sites = append(b.sites, cs)

	switch j, dup := first[ss.Name]; {
	case !isSlug(ss.Name):
		b.add(at.field("name"), ss.Name, "%s", slugRule)
	case dup:
		b.add(at.field("name"), ss.Name, "duplicate site name; first defined at sites[%d]", j)
	default:
		first[ss.Name] = i
	}
	cs.site = Site{Name: ss.Name, Timezone: ss.Timezone}
	if !(ss.FacilityMW > 0 && ss.FacilityMW <= maxFacilityMW) {
		b.add(at.field("facility_mw"), ss.FacilityMW, "out of range: want more than 0 and at most %d MW", maxFacilityMW)
	} else {
		cs.site.FacilityPower, _ = unit.PowerFromMW(ss.FacilityMW)
	}
	if !(ss.PUE >= minPUE && ss.PUE <= maxPUE) {
		b.add(at.field("pue"), ss.PUE, "out of range: want 1.0 to 3.0")
	}
	cs.site.PUEMilli = int64(math.Round(ss.PUE * 1000))
	switch t := ss.EnergyTariffUSDPerMWh; {
	case !(t >= 0 && t <= maxTariff):
		b.add(at.field("energy_tariff_usd_per_mwh"), t, "out of range: want 0 to %d USD per MWh", maxTariff)
	case math.Abs(t*1e6-math.Round(t*1e6)) > 1e-3:
		b.add(at.field("energy_tariff_usd_per_mwh"), t, "at most 6 decimals (it is kept in micro-USD)")
	default:
		cs.site.TariffMicrosPerMWh = int64(math.Round(t * 1e6))
	}
	switch tz := ss.Timezone; {
	case tz == "":
		b.add(at.field("timezone"), nil, "required: an IANA time zone name such as America/Chicago")
	case !b.validZone(tz):
		b.add(at.field("timezone"), tz, "unknown time zone: want an IANA time zone name such as America/Chicago")
	}

	for j, pd := range ss.PowerDomains {
		field := at.String() + ".power_domains[" + strconv.Itoa(j) + "]"
		switch {
		case !isSlug(pd.Name):
			b.add(field+".name", pd.Name, "%s", slugRule)
		case cs.domains[pd.Name]:
			b.add(field+".name", pd.Name, "duplicate power domain name in site %q", ss.Name)
		default:
			cs.domains[pd.Name] = true
		}
		if !(pd.BudgetKW > 0 && pd.BudgetKW <= maxBudgetKW) {
			b.add(field+".budget_kw", pd.BudgetKW, "out of range: want more than 0 and at most %d kW", maxBudgetKW)
		}
		budget, _ := unit.PowerFromKW(pd.BudgetKW)
		cs.site.PowerDomains = append(cs.site.PowerDomains, PowerDomain{Name: pd.Name, Budget: budget})
	}

	for j := range ss.Pods {
		b.checkPod(cs, ss, j)
	}

	if len(ss.Absent) > 0 {
		cs.absent = make(map[string]int, len(ss.Absent))
		cs.found = make([]bool, len(ss.Absent))
	}
	for j, name := range ss.Absent {
		field := at.String() + ".absent[" + strconv.Itoa(j) + "]"
		if k, dup := cs.absent[name]; dup {
			b.add(field, name, "listed twice; first at %s.absent[%d]", at, k)
			cs.found[j] = true // reported once is enough
			continue
		}
		cs.absent[name] = j
	}
}

const slugRule = "must be a lowercase DNS label: 1 to 63 of a-z, 0-9 and '-', not starting or ending with '-'"

// validZone reports whether tz names an IANA time zone. "Local" is refused:
// it means the zone of whatever host reads the file. Answers are kept for
// the builder's run, since loading a zone reads a file.
func (b *builder) validZone(tz string) bool {
	ok, seen := b.zones[tz]
	if !seen {
		_, err := time.LoadLocation(tz)
		ok = err == nil && tz != "Local"
		if b.zones == nil {
			b.zones = make(map[string]bool)
		}
		b.zones[tz] = ok
	}
	return ok
}

// count checks an entry's count and returns it, or 1 when it is invalid.
func (b *builder) count(at loc, c *int) int {
	if c == nil {
		return 1
	}
	if *c < 1 || *c > MaxCount {
		b.add(at.field("count"), *c, "out of range: want 1 to %d", MaxCount)
		b.expandable = false
		return 1
	}
	return *c
}

// pattern checks an entry's name pattern against its count.
func (b *builder) pattern(at loc, s string, count int) pattern {
	field := at.field("name")
	if s == "" {
		b.add(field, nil, "required")
		b.expandable = false
		return pattern{}
	}
	p, err := parsePattern(s)
	if err != nil {
		b.add(field, s, "%s", err.Error())
		b.expandable = false
		return pattern{}
	}
	if count > 1 && !p.hasN {
		b.add(field, s, "must contain {n} when count is greater than 1, so that the names differ")
		b.expandable = false
		return p
	}
	if longest := p.name(count); !isSlug(longest) {
		b.add(field, s, "%s; it expands to %q", slugRule, longest)
	}
	return p
}

// domain checks a power domain named at an entry (empty is inherited).
func (b *builder) domain(cs *cSite, at loc, name string) {
	if name != "" && !cs.domains[name] {
		b.add(at.field("power_domain"), name, "not a declared power domain of site %q", b.spec.Sites[cs.idx].Name)
	}
}

func inherit(own, parent string) string {
	if own != "" {
		return own
	}
	return parent
}

func (b *builder) checkPod(cs *cSite, ss *SiteSpec, j int) {
	ps := &ss.Pods[j]
	at := loc{site: cs.idx, pod: j, leaf: -1, rack: -1, node: -1}
	p := &cPod{at: at}
	p.count = b.count(at, ps.Count)
	p.name = b.pattern(at, ps.Name, p.count)
	b.domain(cs, at, ps.PowerDomain)
	if len(ps.LeafGroups) == 0 {
		// An empty pod would still be walked once per count, unbounded by
		// the node limit.
		b.add(at.field("leaf_groups"), nil, "a pod needs at least one leaf group")
		b.expandable = false
	}
	for k := range ps.LeafGroups {
		ls := &ps.LeafGroups[k]
		lat := at
		lat.leaf = k
		l := &cLeaf{at: lat}
		l.count = b.count(lat, ls.Count)
		l.name = b.pattern(lat, ls.Name, l.count)
		b.domain(cs, lat, ls.PowerDomain)
		domain := inherit(ls.PowerDomain, ps.PowerDomain)
		mult := int64(p.count) * int64(l.count)
		if len(ls.Nodes) == 0 && len(ls.Racks) == 0 {
			// Likewise for an empty leaf group or rack.
			b.add(lat.String(), nil, "a leaf group needs at least one node or rack entry")
			b.expandable = false
		}
		for m := range ls.Nodes {
			nat := lat
			nat.node = m
			l.nodes = append(l.nodes, b.checkNode(cs, nat, &ls.Nodes[m], domain, mult, false))
		}
		for r := range ls.Racks {
			l.racks = append(l.racks, b.checkRack(cs, lat, r, &ls.Racks[r], domain, mult))
		}
		p.leafs = append(p.leafs, l)
	}
	cs.pods = append(cs.pods, p)
}

func (b *builder) checkRack(cs *cSite, lat loc, r int, rs *RackSpec, parentDomain string, mult int64) *cRack {
	at := lat
	at.rack = r
	c := &cRack{at: at}
	c.count = b.count(at, rs.Count)
	c.name = b.pattern(at, rs.Name, c.count)
	b.domain(cs, at, rs.PowerDomain)
	domain := inherit(rs.PowerDomain, parentDomain)
	if len(rs.Nodes) == 0 {
		b.add(at.String(), nil, "a rack needs at least one node entry")
		b.expandable = false
	}
	var gpus unit.GPUs
	mixed := false
	for m := range rs.Nodes {
		nat := at
		nat.node = m
		n := b.checkNode(cs, nat, &rs.Nodes[m], domain, mult*int64(c.count), true)
		c.nodes = append(c.nodes, n)
		gpus += unit.GPUs(n.count) * n.gpus
		if m > 0 && n.model != c.nodes[0].model && !mixed {
			b.add(nat.field("model"), n.model, "a rack is one NVLink domain, so its nodes must all be one model: want %q as in %s", c.nodes[0].model, c.nodes[0].at)
			mixed = true
		}
	}
	if len(c.nodes) > 0 && !mixed {
		if m, ok := LookupModel(c.nodes[0].model); ok && gpus > m.NVLinkDomainGPUs {
			b.add(at.field("nodes"), int64(gpus), "a rack is one NVLink domain: at most %d %s GPUs", m.NVLinkDomainGPUs, m.Name)
		}
	}
	return c
}

func (b *builder) checkNode(cs *cSite, at loc, ns *NodeSpec, parentDomain string, mult int64, inRack bool) *cNode {
	n := &cNode{idx: int32(len(b.entries)), site: cs.idx, at: at, inRack: inRack, model: ns.Model}
	b.entries = append(b.entries, n)
	n.count = b.count(at, ns.Count)
	if ns.Hostname != "" {
		if ns.Count != nil && *ns.Count != 1 {
			b.add(at.field("hostname"), ns.Hostname, "allowed only when count is 1")
			b.expandable = false
		}
		if !isHostname(ns.Hostname) {
			b.add(at.field("hostname"), ns.Hostname, "must be letters, digits, '.' and '-', at most 253 characters, starting and ending with a letter or digit")
		}
		n.hostname = ns.Hostname
		if ns.Name != "" {
			n.name = b.pattern(at, ns.Name, n.count)
		}
	} else {
		n.name = b.pattern(at, ns.Name, n.count)
	}

	m, ok := LookupModel(ns.Model)
	switch {
	case ns.Model == "":
		b.add(at.field("model"), nil, "required: a GPU model, one of %s", strings.Join(Models(), ", "))
	case !ok:
		b.add(at.field("model"), ns.Model, "unknown GPU model: want one of %s", strings.Join(Models(), ", "))
	case !inRack && m.NVLinkDomainGPUs > m.GPUsPerNode:
		b.add(at.field("model"), ns.Model, "%s nodes form NVLink domains of %d GPUs: list them under a rack", m.Name, m.NVLinkDomainGPUs)
	}
	n.gpus, n.power = m.GPUsPerNode, m.NodeITPower
	if ns.GPUs != nil {
		max := int(m.GPUsPerNode)
		if !ok {
			max = math.MaxInt
		}
		if g := *ns.GPUs; g < 1 || g > max {
			if ok {
				b.add(at.field("gpus"), g, "out of range: want 1 to %d for %s", max, m.Name)
			} else {
				b.add(at.field("gpus"), g, "out of range: want at least 1")
			}
		} else {
			n.gpus = unit.GPUs(g)
		}
	}
	if ns.ITKW != nil {
		if kw := *ns.ITKW; !(kw > 0 && kw <= maxNodeKW) {
			b.add(at.field("it_kw"), kw, "out of range: want more than 0 and at most %d kW", maxNodeKW)
		} else {
			n.power, _ = unit.PowerFromKW(kw)
		}
	}

	b.domain(cs, at, ns.PowerDomain)
	n.domain = inherit(ns.PowerDomain, parentDomain)
	if n.domain == "" {
		b.add(at.field("power_domain"), nil, "required: no power domain is given here or on an enclosing rack, leaf group or pod")
	}
	b.total = addSat(b.total, mult*int64(n.count))
	return n
}

// addSat adds non-negative a and b, saturating well below overflow.
func addSat(a, b int64) int64 {
	const limit = math.MaxInt64 / 2
	if a > limit-b {
		return limit
	}
	return a + b
}

// walk expands every name once: it checks duplicates (pods, leaf groups
// and NVLink domains within a site; nodes across the fleet) and absent
// names, and appends the nodes when the builder emits.
func (b *builder) walk() {
	b.names.m = make(map[string]int32, b.total)
	if b.emit {
		b.fleet = &Fleet{Sites: make([]Site, 0, len(b.sites)), Nodes: make([]Node, 0, b.total)}
	}
	var buf []byte
	for _, cs := range b.sites {
		if b.emit {
			b.fleet.Sites = append(b.fleet.Sites, cs.site)
		}
		siteName := cs.site.Name
		pods := make(map[string]loc)
		leafs := make(map[string]loc)
		racks := make(map[string]*cRack)
		for _, p := range cs.pods {
			for i := 1; i <= p.count; i++ {
				podName := p.name.name(i)
				if first, dup := pods[podName]; dup {
					if !p.dup {
						p.dup = true
						b.add(p.at.field("name"), podName, "duplicate pod name in site %q; first defined at %s", siteName, first)
					}
				} else {
					pods[podName] = p.at
				}
				for _, l := range p.leafs {
					for j := 1; j <= l.count; j++ {
						buf = append(append(buf[:0], podName...), '-')
						leafID := string(l.name.appendName(buf, j))
						if first, dup := leafs[leafID]; dup {
							if !l.dup {
								l.dup = true
								b.add(l.at.field("name"), leafID, "duplicate leaf group in site %q; first defined at %s", siteName, first)
							}
						} else {
							leafs[leafID] = l.at
						}
						pos := Position{Pod: podName, LeafGroup: leafID}
						for _, n := range l.nodes {
							buf = append(append(append(append(buf[:0], siteName...), '-'), leafID...), '-')
							prefix := len(buf)
							for k := 1; k <= n.count; k++ {
								buf = n.name.appendName(buf[:prefix], k)
								b.node(cs, n, buf, pos)
							}
						}
						for _, r := range l.racks {
							for m := 1; m <= r.count; m++ {
								buf = append(append(buf[:0], leafID...), '-')
								rackID := string(r.name.appendName(buf, m))
								if first, dup := racks[rackID]; dup {
									if !r.dup {
										r.dup = true
										b.add(r.at.field("name"), rackID, "duplicate NVLink domain in site %q; first defined at %s", siteName, first.at)
									}
								} else {
									racks[rackID] = r
								}
								pos.NVLinkDomain = rackID
								for _, n := range r.nodes {
									buf = append(append(append(append(buf[:0], siteName...), '-'), rackID...), '-')
									prefix := len(buf)
									for k := 1; k <= n.count; k++ {
										buf = n.name.appendName(buf[:prefix], k)
										b.node(cs, n, buf, pos)
									}
								}
							}
						}
					}
				}
			}
		}
		// A rack's NVLink domain must not take the name of an HGX node of
		// the same site, whose NVLink domain is its own name.
		for id, r := range racks {
			if idx, ok := b.names.m[id]; ok {
				if e := b.entries[idx]; !e.inRack && e.site == cs.idx && !r.dup {
					r.dup = true
					b.add(r.at.field("name"), id, "duplicate NVLink domain in site %q: the NVLink domain of the node defined at %s", siteName, e.at)
				}
			}
		}
		for j, found := range cs.found {
			if !found {
				b.add(loc{site: cs.idx, pod: -1, leaf: -1, rack: -1, node: -1}.String()+".absent["+strconv.Itoa(j)+"]",
					b.spec.Sites[cs.idx].Absent[j], "no such node in the expansion of site %q", siteName)
			}
		}
	}
}

// node records one expanded node named name (the builder's buffer), or
// named by the entry's hostname, at pos.
func (b *builder) node(cs *cSite, n *cNode, name []byte, pos Position) {
	full := n.hostname
	var idx int32
	var dup bool
	if full != "" {
		idx, dup = b.names.m[full]
	} else {
		idx, dup = b.names.m[string(name)] // no allocation for a lookup
	}
	if dup {
		if !n.dup {
			n.dup = true
			field := "name"
			if n.hostname != "" {
				field, name = "hostname", []byte(n.hostname)
			}
			b.add(n.at.field(field), string(name), "duplicate node name; first defined at %s", b.entries[idx].at)
		}
		return
	}
	if full == "" {
		full = b.names.intern(name)
	}
	b.names.m[full] = n.idx
	if cs.absent != nil {
		if k, ok := cs.absent[full]; ok {
			cs.found[k] = true
			return
		}
	}
	if !b.emit {
		return
	}
	if !n.inRack {
		pos.NVLinkDomain = full
	}
	b.fleet.Nodes = append(b.fleet.Nodes, Node{
		Name:        full,
		Site:        cs.site.Name,
		Model:       n.model,
		GPUs:        n.gpus,
		ITPower:     n.power,
		PowerDomain: n.domain,
		Position:    pos,
		State:       Available,
	})
}
