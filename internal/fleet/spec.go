package fleet

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Limits of the fleet file format. They keep a hostile file from exhausting
// memory or time: the node limit is checked on the product of the counts,
// before anything is expanded.
const (
	// FormatVersion is the only fleet file version this package reads.
	FormatVersion = 1
	// MaxNodes is the most nodes one fleet file may expand to.
	MaxNodes = 1_000_000
	// MaxCount is the largest count of one entry.
	MaxCount = 10_000
	// MaxFileBytes is the largest fleet file Parse reads: room for 30,000
	// nodes listed one by one. The YAML parser reads about 1 MB a second,
	// so the bound is also one on time.
	MaxFileBytes = 2 << 20
)

// Spec is a fleet file: the sites of a fleet and, in each, templated entries
// for its fabric and nodes. The same type is read from YAML (Parse) and from
// JSON (DecodeJSON, for the API); both encodings round-trip it exactly.
// Optional numbers are pointers so that an explicit 0 is told apart from an
// omitted value (which takes a default). A Spec says nothing about its own
// validity: call Validate or Expand.
type Spec struct {
	Version int        `json:"version" yaml:"version" doc:"Fleet file format version; must be 1."`
	Sites   []SiteSpec `json:"sites,omitempty" yaml:"sites,omitempty"`
}

// SiteSpec is one data center in a fleet file.
type SiteSpec struct {
	// Name is a lowercase DNS label, unique in the file; it prefixes the
	// site's node names.
	Name string `json:"name" yaml:"name" doc:"Lowercase DNS label, unique in the file; prefixes the site's node names."`
	// FacilityMW is the facility (grid) power in megawatts.
	FacilityMW float64 `json:"facility_mw" yaml:"facility_mw" doc:"Facility (grid) power in MW."`
	// PUE is the power usage effectiveness, 1.0 to 3.0; it is stored in
	// thousandths (Site.PUEMilli).
	PUE float64 `json:"pue" yaml:"pue" doc:"Power usage effectiveness, 1.0 to 3.0."`
	// EnergyTariffUSDPerMWh is the energy price; at most 6 decimals, since
	// it is stored in micro-USD (Site.TariffMicrosPerMWh).
	EnergyTariffUSDPerMWh float64 `json:"energy_tariff_usd_per_mwh,omitempty" yaml:"energy_tariff_usd_per_mwh,omitempty" doc:"Energy price in USD per MWh, at most 6 decimals."`
	// Timezone is an IANA time zone name such as America/Chicago.
	Timezone     string            `json:"timezone" yaml:"timezone" doc:"IANA time zone, e.g. America/Chicago."`
	PowerDomains []PowerDomainSpec `json:"power_domains,omitempty" yaml:"power_domains,omitempty"`
	Pods         []PodSpec         `json:"pods,omitempty" yaml:"pods,omitempty"`
	// Absent lists full node names removed from the expansion: empty slots,
	// such as servers out for repair. Each must name a node of this site.
	Absent []string `json:"absent,omitempty" yaml:"absent,omitempty" doc:"Full node names removed from the expansion (empty slots)."`
}

// PowerDomainSpec is a hall or feed of a site and its power budget.
type PowerDomainSpec struct {
	// Name is a lowercase DNS label, unique within the site.
	Name     string  `json:"name" yaml:"name"`
	BudgetKW float64 `json:"budget_kw" yaml:"budget_kw" doc:"Power budget the domain's nodes share, in kW."`
}

// PodSpec is an entry for Count pods (spine groups) built alike.
//
// Name is a pattern: "{n}" stands for the 1-based index within the entry and
// "{n:0W}" for the index zero-padded to W digits (W from 1 to 9). An entry
// with Count greater than 1 must use {n} so that its names differ. The same
// holds for leaf group, rack and node entries.
type PodSpec struct {
	Name string `json:"name" yaml:"name" doc:"Name pattern: {n} is the 1-based index in this entry, {n:0W} zero-pads it to W digits."`
	// Count is the number of pods of this entry; nil means 1.
	Count *int `json:"count,omitempty" yaml:"count,omitempty" doc:"How many alike; default 1, at most 10,000."`
	// PowerDomain is inherited by the pod's leaf groups, racks and nodes
	// unless they name their own.
	PowerDomain string          `json:"power_domain,omitempty" yaml:"power_domain,omitempty" doc:"Power domain of this entry's nodes unless a lower level names its own."`
	LeafGroups  []LeafGroupSpec `json:"leaf_groups,omitempty" yaml:"leaf_groups,omitempty"`
}

// LeafGroupSpec is an entry for Count leaf switch groups of a pod. A leaf
// group holds HGX-style nodes (each its own NVLink domain), racks that form
// one NVLink domain each, or both; its nodes expand before its racks.
type LeafGroupSpec struct {
	Name        string     `json:"name" yaml:"name"`
	Count       *int       `json:"count,omitempty" yaml:"count,omitempty"`
	PowerDomain string     `json:"power_domain,omitempty" yaml:"power_domain,omitempty"`
	Nodes       []NodeSpec `json:"nodes,omitempty" yaml:"nodes,omitempty"`
	Racks       []RackSpec `json:"racks,omitempty" yaml:"racks,omitempty"`
}

// RackSpec is an entry for Count racks that are each one NVLink domain, such
// as a GB200 NVL72: its nodes share one GPU model and at most that model's
// NVLink domain of GPUs.
type RackSpec struct {
	Name        string     `json:"name" yaml:"name"`
	Count       *int       `json:"count,omitempty" yaml:"count,omitempty"`
	PowerDomain string     `json:"power_domain,omitempty" yaml:"power_domain,omitempty"`
	Nodes       []NodeSpec `json:"nodes,omitempty" yaml:"nodes,omitempty"`
}

// NodeSpec is an entry for Count servers alike.
type NodeSpec struct {
	// Name is the node's last name segment; optional when Hostname is set.
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Hostname, allowed only with a count of 1, is used as the node's full
	// name instead of the name built from site, pod, leaf group and rack.
	Hostname string `json:"hostname,omitempty" yaml:"hostname,omitempty" doc:"With count 1: the node's full name, verbatim."`
	Count    *int   `json:"count,omitempty" yaml:"count,omitempty"`
	// Model is a catalog key (see Models).
	Model string `json:"model" yaml:"model" doc:"GPU model: B200, GB200, H100-SXM or H200-SXM."`
	// GPUs defaults to the model's GPUsPerNode; it may be lower (a node with
	// GPUs pulled), never higher.
	GPUs *int `json:"gpus,omitempty" yaml:"gpus,omitempty" doc:"GPUs in the node; default and maximum: the model's per-node count."`
	// ITKW is the node's IT power at full load in kW; it defaults to the
	// model's NodeITPower.
	ITKW        *float64 `json:"it_kw,omitempty" yaml:"it_kw,omitempty" doc:"IT power at full load in kW; default: the model's node power."`
	PowerDomain string   `json:"power_domain,omitempty" yaml:"power_domain,omitempty"`
}

// ParseError reports a fleet file that is not well-formed YAML, or whose
// structure does not match Spec: an unknown field, a value of the wrong
// type. Line and Column are 1-based; Field is the path of the offending
// value (such as "sites[0].pods[1].count"), empty when the YAML itself is
// malformed.
type ParseError struct {
	Line   int
	Column int
	Field  string
	Msg    string
}

func (e *ParseError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("fleet file: line %d:%d: %s", e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("fleet file: line %d:%d: %s: %s", e.Line, e.Column, e.Field, e.Msg)
}

// Parse reads a fleet file in YAML (or JSON, which is YAML too). It checks
// only syntax and structure and returns a *ParseError naming the line,
// column and field of the first problem; call Validate or Expand for the
// rules. Unknown fields, values of the wrong type (a quoted "12" for a
// count, 1.5 for a count), anchors, aliases, tags and several documents are
// errors; so is a file nested beyond any use, which would make the YAML
// parser slow. A file over MaxFileBytes is refused before parsing, with an
// error that is not a *ParseError.
func Parse(data []byte) (*Spec, error) {
	var s Spec
	if err := decodeYAML(data, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// DecodeJSON reads a Spec from JSON, as the API receives it. Unknown fields
// and trailing data are errors. Field names match case-insensitively, as
// encoding/json does. Callers bound the size of data.
func DecodeJSON(data []byte) (*Spec, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("fleet spec: decode JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("fleet spec: decode JSON: unexpected data after the spec at offset %d", dec.InputOffset())
	}
	return &s, nil
}

// YAML encodes s as a fleet file: block style, with leaf entries (power
// domains, nodes) in flow style, and omitted fields left out. Parse of the
// result returns a Spec equal to s. It fails only for a number that YAML
// cannot carry (NaN or an infinity).
func (s *Spec) YAML() ([]byte, error) {
	b, err := encodeYAML(s)
	if err != nil {
		return nil, fmt.Errorf("fleet spec: encode YAML: %w", err)
	}
	return b, nil
}

// CanonicalJSON returns the deterministic JSON encoding of s: fields in
// declaration order, omitted fields left out, no HTML escaping, no
// indentation, no trailing newline. Equal specs encode to equal bytes; it is
// what fleet revisions are recorded and hashed as.
func (s *Spec) CanonicalJSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("fleet spec: encode JSON: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// SHA256 returns the lowercase hex SHA-256 digest of s's CanonicalJSON.
func (s *Spec) SHA256() (string, error) {
	b, err := s.CanonicalJSON()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
