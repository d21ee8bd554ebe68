package web

import (
	"fmt"
	"html/template"
	"strings"
	"unicode/utf8"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/fleet"
)

// The fabric drawing of a lease: a server-rendered SVG of the pods and
// leaf groups the lease touches, each leaf group with all its nodes,
// grouped by NVLink domain (a GB200 NVL72 rack is a column of its trays;
// HGX nodes, each its own domain, sit in rows of 16). Colours come from
// classes (static/tenant.css): the CSP allows no style attributes. A
// tenant's drawing names only its own nodes; every other node is the same
// neutral grey, without name, state or holder (the engine leaves them out).

// Geometry of the drawing, in SVG user units (pixels at 100%).
const (
	fabCell    = 10 // a node's square
	fabPitch   = 12 // a cell plus the gap
	fabDomGap  = 4  // extra space between NVLink domains of a rack leaf
	fabPad     = 6  // inside a leaf group's box
	fabLabel   = 16 // a leaf group's label line
	fabPodHead = 22 // a pod's heading line
	fabRowGap  = 10 // between rows of leaf groups
	fabWidth   = 1160
	fabHGXRow  = 16 // single-node domains per row
)

type fabBox struct{ w, h int }

// leafLabel is the line atop a leaf group's box.
func leafLabel(l engine.FabricLeaf) string {
	return fmt.Sprintf("%s · %d of its nodes", l.Name, l.Mine)
}

// labelWidth is a generous width of s at the label's 11px font.
func labelWidth(s string) int { return 2*fabPad + 6*utf8.RuneCountInString(s) + 4 }

// fabricLeafSize returns the size of a leaf group's box.
func fabricLeafSize(l engine.FabricLeaf) fabBox {
	if singleNodeDomains(l) {
		n := 0
		for _, d := range l.Domains {
			n += len(d.Nodes)
		}
		cols := min(n, fabHGXRow)
		rows := (n + fabHGXRow - 1) / fabHGXRow
		return fabBox{max(2*fabPad+cols*fabPitch, labelWidth(leafLabel(l))), fabLabel + fabPad + rows*fabPitch + fabPad/2}
	}
	w, tall := 2*fabPad, 0
	for i, d := range l.Domains {
		if i > 0 {
			w += fabDomGap
		}
		w += fabPitch
		tall = max(tall, len(d.Nodes))
	}
	return fabBox{max(w, labelWidth(leafLabel(l))), fabLabel + fabPad + tall*fabPitch + fabPad/2}
}

// singleNodeDomains reports whether every NVLink domain of l is one node (HGX).
func singleNodeDomains(l engine.FabricLeaf) bool {
	for _, d := range l.Domains {
		if len(d.Nodes) != 1 {
			return false
		}
	}
	return true
}

// fabricNodeClass returns the classes of a node's square and its tooltip.
func fabricNodeClass(n engine.FabricNode, operator bool) (class, title string) {
	down := n.State != "" && n.State != fleet.Available && n.State != fleet.Allocated
	switch {
	case n.Mine:
		class, title = "fab-mine", n.Name+" ("+string(n.State)+")"
		if down {
			class += " fab-down"
		}
	case !operator:
		class = "fab-other" // no name, no state, no holder
	case n.Lease != "":
		class, title = "fab-busy", fmt.Sprintf("%s (%s) · lease %s of %s", n.Name, n.State, n.Lease, n.Tenant)
	case down:
		class, title = "fab-down", n.Name+" ("+string(n.State)+")"
	default:
		class, title = "fab-free", n.Name+" ("+string(n.State)+")"
	}
	return class, title
}

// fabricSVG draws f; "" when the lease holds no nodes at any time.
func fabricSVG(f engine.LeaseFabric, operator bool) template.HTML {
	if len(f.Pods) == 0 {
		return ""
	}
	var b strings.Builder
	esc := template.HTMLEscapeString
	y, width := 0, 0
	for _, pod := range f.Pods {
		y += fabPodHead
		fmt.Fprintf(&b, `<text class="fab-pod" x="0" y="%d">pod %s</text>`, y-7, esc(pod.Name))
		x, rowH := 0, 0
		for _, l := range pod.Leafs {
			box := fabricLeafSize(l)
			if x > 0 && x+box.w > fabWidth {
				x, y, rowH = 0, y+rowH+fabRowGap, 0
			}
			fmt.Fprintf(&b, `<g class="fab-leafgroup" transform="translate(%d %d)"><rect class="fab-leaf" x="0" y="0" width="%d" height="%d" rx="3"/>`, x, y, box.w, box.h)
			fmt.Fprintf(&b, `<text class="fab-label" x="%d" y="12">%s</text>`, fabPad, esc(leafLabel(l)))
			cx, cy := fabPad, fabLabel+fabPad/2
			if singleNodeDomains(l) {
				i := 0
				for _, d := range l.Domains {
					for _, n := range d.Nodes {
						fabricCell(&b, n, operator, cx+(i%fabHGXRow)*fabPitch, cy+(i/fabHGXRow)*fabPitch)
						i++
					}
				}
			} else {
				for di, d := range l.Domains {
					dx := cx + di*(fabPitch+fabDomGap)
					if d.Name != "" {
						fmt.Fprintf(&b, `<g class="fab-domain"><title>NVLink domain %s</title>`, esc(d.Name))
					} else {
						b.WriteString(`<g class="fab-domain">`)
					}
					for ni, n := range d.Nodes {
						fabricCell(&b, n, operator, dx, cy+ni*fabPitch)
					}
					b.WriteString(`</g>`)
				}
			}
			b.WriteString(`</g>`)
			x += box.w + fabRowGap
			width = max(width, x)
			rowH = max(rowH, box.h)
		}
		y += rowH + fabRowGap
		if pod.MoreLeafs > 0 {
			y += 14
			fmt.Fprintf(&b, `<text class="fab-label" x="0" y="%d">+ %d more leaf groups of this pod with %d of its nodes (not drawn)</text>`, y-4, pod.MoreLeafs, pod.MoreNodes)
		}
	}
	width = max(width, 320)
	return template.HTML(fmt.Sprintf(`<svg id="fabric" class="chart fabric" data-drawn="true" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Nodes of lease %s on the fabric of %s" viewBox="0 0 %d %d" width="%d" height="%d">`,
		esc(f.LeaseID), esc(f.Pool), width, y, width, y) + b.String() + `</svg>`)
}

func fabricCell(b *strings.Builder, n engine.FabricNode, operator bool, x, y int) {
	class, title := fabricNodeClass(n, operator)
	if title == "" {
		fmt.Fprintf(b, `<rect class="%s" x="%d" y="%d" width="%d" height="%d"/>`, class, x, y, fabCell, fabCell)
		return
	}
	fmt.Fprintf(b, `<rect class="%s" x="%d" y="%d" width="%d" height="%d"><title>%s</title></rect>`, class, x, y, fabCell, fabCell, template.HTMLEscapeString(title))
}

// fabricNote says what the drawing leaves out.
func fabricNote(f engine.LeaseFabric) string {
	more, nodes := 0, 0
	for _, p := range f.Pods {
		more += p.MoreLeafs
		nodes += p.MoreNodes
	}
	if more == 0 {
		return ""
	}
	return fmt.Sprintf("The first %d leaf groups are drawn; %d more hold %d of the lease's nodes.", engine.MaxFabricLeafs, more, nodes)
}
