package fleet

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// specGen draws small valid specs. Entry names start with a letter of their
// own (pods "p", leaf groups "l", racks "r", nodes "n") and the index of the
// entry in its list, so that expanded names never clash; want counts the
// nodes the counts multiply to.
type specGen struct {
	t        *rapid.T
	want     int
	hostname int
}

func (g *specGen) count(label string) *int {
	c := rapid.IntRange(0, 3).Draw(g.t, label)
	if c == 0 {
		return nil // the default, 1
	}
	return &c
}

func (g *specGen) name(prefix string, i int, count *int) string {
	base := fmt.Sprintf("%s%c", prefix, 'a'+i)
	if count == nil && rapid.Bool().Draw(g.t, "literal") {
		return base
	}
	return base + rapid.SampledFrom([]string{"{n}", "{n:02}", "-{n:03}", "{n}x"}).Draw(g.t, "placeholder")
}

func (g *specGen) domain(domains []string, required bool) string {
	if !required && rapid.Bool().Draw(g.t, "inherit") {
		return ""
	}
	return rapid.SampledFrom(domains).Draw(g.t, "power_domain")
}

func deref(c *int) int {
	if c == nil {
		return 1
	}
	return *c
}

func (g *specGen) spec() *Spec {
	t := g.t
	s := &Spec{Version: 1}
	for i := range rapid.IntRange(1, 2).Draw(t, "sites") {
		site := SiteSpec{
			Name:                  rapid.SampledFrom([]string{"s", "dc", "ref-300mw"}).Draw(t, "site") + fmt.Sprint(i),
			FacilityMW:            float64(rapid.IntRange(1, 1_000_000).Draw(t, "facility_kw")) / 1000,
			PUE:                   float64(rapid.IntRange(1000, 3000).Draw(t, "pue_milli")) / 1000,
			EnergyTariffUSDPerMWh: float64(rapid.IntRange(0, 500_000_000).Draw(t, "tariff_micros")) / 1e6,
			Timezone:              rapid.SampledFrom([]string{"UTC", "America/Chicago", "Europe/Amsterdam", "Asia/Tokyo"}).Draw(t, "timezone"),
		}
		var domains []string
		for j := range rapid.IntRange(1, 3).Draw(t, "domains") {
			domains = append(domains, fmt.Sprintf("d%d", j))
			site.PowerDomains = append(site.PowerDomains, PowerDomainSpec{Name: domains[j], BudgetKW: float64(rapid.IntRange(1, 100_000).Draw(t, "budget_kw"))})
		}
		for j := range rapid.IntRange(0, 2).Draw(t, "pods") {
			p := PodSpec{Count: g.count("pod_count"), PowerDomain: g.domain(domains, false)}
			p.Name = g.name("p", j, p.Count)
			for k := range rapid.IntRange(1, 2).Draw(t, "leaf_groups") {
				l := LeafGroupSpec{Count: g.count("leaf_count"), PowerDomain: g.domain(domains, false)}
				l.Name = g.name("l", k, l.Count)
				mult := deref(p.Count) * deref(l.Count)
				dom := inherit(l.PowerDomain, p.PowerDomain)
				nodes, racks := rapid.IntRange(0, 2).Draw(t, "node_entries"), rapid.IntRange(0, 1).Draw(t, "rack_entries")
				if nodes+racks == 0 {
					nodes = 1
				}
				for m := range nodes {
					l.Nodes = append(l.Nodes, g.hgxNode(m, domains, dom, mult))
				}
				for m := range racks {
					l.Racks = append(l.Racks, g.rack(m, domains, dom, mult))
				}
				p.LeafGroups = append(p.LeafGroups, l)
			}
			site.Pods = append(site.Pods, p)
		}
		s.Sites = append(s.Sites, site)
	}
	return s
}

func (g *specGen) hgxNode(m int, domains []string, inherited string, mult int) NodeSpec {
	t := g.t
	n := NodeSpec{
		Count:       g.count("node_count"),
		Model:       rapid.SampledFrom([]string{"H100-SXM", "H200-SXM", "B200"}).Draw(t, "model"),
		PowerDomain: g.domain(domains, inherited == ""),
	}
	n.Name = g.name("n", m, n.Count)
	// A hostname names one node: only where nothing above repeats it.
	if n.Count == nil && mult == 1 && rapid.IntRange(0, 3).Draw(t, "hostname") == 0 {
		g.hostname++
		n.Hostname = fmt.Sprintf("gpu-%04d.Example", g.hostname)
		if rapid.Bool().Draw(t, "no_name") {
			n.Name = ""
		}
	}
	if rapid.Bool().Draw(t, "gpus") {
		n.GPUs = new(rapid.IntRange(1, 8).Draw(t, "gpus_n"))
	}
	if rapid.Bool().Draw(t, "it_kw") {
		n.ITKW = new(float64(rapid.IntRange(1, 100_000).Draw(t, "it_w")) / 1000)
	}
	g.want += mult * deref(n.Count)
	return n
}

func (g *specGen) rack(m int, domains []string, inherited string, mult int) RackSpec {
	t := g.t
	r := RackSpec{Count: g.count("rack_count"), PowerDomain: g.domain(domains, false)}
	r.Name = g.name("r", m, r.Count)
	inherited = inherit(r.PowerDomain, inherited)
	mult *= deref(r.Count)
	for k := range rapid.IntRange(1, 2).Draw(t, "tray_entries") {
		// At most 2 x 9 trays of 4 GPUs: within one NVL72 domain.
		c := rapid.IntRange(1, 9).Draw(t, "trays")
		n := NodeSpec{Count: &c, Model: "GB200", PowerDomain: g.domain(domains, inherited == "")}
		n.Name = fmt.Sprintf("t%c{n:02}", 'a'+k)
		r.Nodes = append(r.Nodes, n)
		g.want += mult * c
	}
	return r
}

func TestExpandProperties(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		g := &specGen{t: t}
		s := g.spec()
		full, err := s.Expand()
		if err != nil {
			t.Fatalf("Expand() of a generated valid spec: %v", err)
		}
		if len(full.Nodes) != g.want {
			t.Fatalf("Expand() gave %d nodes, want the product of the counts, %d", len(full.Nodes), g.want)
		}
		// Take a few slots out.
		var absent []int
		if len(full.Nodes) > 0 {
			absent = rapid.SliceOfNDistinct(rapid.IntRange(0, len(full.Nodes)-1), 0, min(4, len(full.Nodes)), rapid.ID).Draw(t, "absent")
			slices.Sort(absent)
		}
		gone := map[string]bool{}
		for _, i := range absent {
			n := full.Nodes[i]
			j := slices.IndexFunc(s.Sites, func(ss SiteSpec) bool { return ss.Name == n.Site })
			s.Sites[j].Absent = append(s.Sites[j].Absent, n.Name)
			gone[n.Name] = true
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Validate() = %v", err)
		}
		f, err := s.Expand()
		if err != nil {
			t.Fatalf("Expand() with absent nodes: %v", err)
		}
		if len(f.Nodes) != g.want-len(absent) {
			t.Fatalf("Expand() gave %d nodes, want %d - %d absent", len(f.Nodes), g.want, len(absent))
		}
		domains := map[string]bool{}
		for _, site := range f.Sites {
			for _, d := range site.PowerDomains {
				domains[site.Name+"/"+d.Name] = true
			}
		}
		names := map[string]bool{}
		for _, n := range f.Nodes {
			if names[n.Name] || gone[n.Name] {
				t.Fatalf("node %q is duplicate or absent", n.Name)
			}
			names[n.Name] = true
			if !domains[n.Site+"/"+n.PowerDomain] {
				t.Fatalf("node %q is in power domain %q, not declared in site %q", n.Name, n.PowerDomain, n.Site)
			}
			if !strings.HasPrefix(n.Position.LeafGroup, n.Position.Pod+"-") {
				t.Fatalf("node %q: leaf group %q is not in pod %q", n.Name, n.Position.LeafGroup, n.Position.Pod)
			}
			if rack := n.Model == "GB200"; rack == (n.Position.NVLinkDomain == n.Name) ||
				rack && !strings.HasPrefix(n.Position.NVLinkDomain, n.Position.LeafGroup+"-") {
				t.Fatalf("node %q (%s) has NVLink domain %q", n.Name, n.Model, n.Position.NVLinkDomain)
			}
			if n.State != Available || n.GPUs < 1 || n.ITPower < 1 {
				t.Fatalf("node %+v", n)
			}
		}
		y, err := s.YAML()
		if err != nil {
			t.Fatalf("YAML() error = %v", err)
		}
		back, err := Parse(y)
		if err != nil {
			t.Fatalf("Parse(YAML()) error = %v\n%s", err, y)
		}
		if diff := cmp.Diff(s, back); diff != "" {
			t.Fatalf("YAML round trip mismatch (-want +got):\n%s\n%s", diff, y)
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
			t.Fatalf("JSON round trip mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestValidateBrokenSpecs breaks generated specs at random and checks that
// Validate and Expand never panic and agree.
func TestValidateBrokenSpecs(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		g := &specGen{t: t}
		s := g.spec()
		ints := rapid.SampledFrom([]int{-1, 0, 1, 2, 9, 73, MaxCount, MaxCount + 1})
		strs := rapid.SampledFrom([]string{"", "x", "{n}", "{", "}{", "{n:0}", "{n:09}", "A", "-a", "d0", "d9", "GB200", "H100-SXM", "Local", "a.b"})
		for range rapid.IntRange(1, 4).Draw(t, "edits") {
			site := &s.Sites[rapid.IntRange(0, len(s.Sites)-1).Draw(t, "site")]
			switch rapid.IntRange(0, 5).Draw(t, "edit") {
			case 0:
				site.Timezone = strs.Draw(t, "timezone")
			case 1:
				site.Absent = append(site.Absent, strs.Draw(t, "absent"))
			case 2:
				site.PUE = float64(ints.Draw(t, "pue"))
			}
			if len(site.Pods) == 0 {
				continue
			}
			p := &site.Pods[rapid.IntRange(0, len(site.Pods)-1).Draw(t, "pod")]
			l := &p.LeafGroups[rapid.IntRange(0, len(p.LeafGroups)-1).Draw(t, "leaf")]
			switch rapid.IntRange(0, 7).Draw(t, "entry_edit") {
			case 0:
				p.Count = new(ints.Draw(t, "count"))
			case 1:
				p.Name = strs.Draw(t, "name")
			case 2:
				l.PowerDomain = strs.Draw(t, "domain")
			case 3:
				l.Nodes, l.Racks = nil, nil
			case 4:
				if len(l.Nodes) > 0 {
					l.Nodes[0].Model = strs.Draw(t, "model")
					l.Nodes[0].GPUs = new(ints.Draw(t, "gpus"))
				}
			case 5:
				if len(l.Racks) > 0 {
					l.Racks[0].Nodes[0].Count = new(ints.Draw(t, "trays"))
				}
			case 6:
				l.Nodes = append(l.Nodes, NodeSpec{Name: strs.Draw(t, "name"), Hostname: strs.Draw(t, "hostname"), Model: "B200"})
			case 7:
				p.LeafGroups = append(p.LeafGroups, *l)
			}
		}
		verr := s.Validate()
		f, err := s.Expand()
		if (verr == nil) != (err == nil) || (err == nil) != (f != nil) {
			t.Fatalf("Validate() = %v but Expand() = %v, %v", verr, f, err)
		}
	})
}
