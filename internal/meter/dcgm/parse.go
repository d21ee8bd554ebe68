package dcgm

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/neocloud/neocloud/internal/meter"
)

// ErrFormat is wrapped by every Parse error about the exposition itself: a
// line that is not Prometheus text, a kept metric of the wrong type, a
// value outside its range, a gpu label that is not an index, labels that
// disagree.
var ErrFormat = errors.New("DCGM exposition")

// ErrUnmapped is wrapped by Parse's error when GPUs have no node: no
// Hostname label and no Mapping entry for the UUID, no index, or a
// Hostname that is not a valid node name.
var ErrUnmapped = errors.New("GPU without a node")

// field is a meter.Reading field that a DCGM metric fills.
type field uint8

const (
	fUtil field = iota
	fPower
	fEnergy
	fTemp
	fXID
	fPowerViol
	fThermViol
	fRemap
	numFields
)

// metricNames are the DCGM metrics Parse keeps, by field.
var metricNames = [numFields]string{
	fUtil:      "DCGM_FI_DEV_GPU_UTIL",
	fPower:     "DCGM_FI_DEV_POWER_USAGE",
	fEnergy:    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
	fTemp:      "DCGM_FI_DEV_GPU_TEMP",
	fXID:       "DCGM_FI_DEV_XID_ERRORS",
	fPowerViol: "DCGM_FI_DEV_POWER_VIOLATION",
	fThermViol: "DCGM_FI_DEV_THERMAL_VIOLATION",
	fRemap:     "DCGM_FI_DEV_ROW_REMAP_FAILURE",
}

const (
	// maxExact is the largest integer a float64 holds exactly (2^53): the
	// bound on counters, and on times in the wire format.
	maxExact = 1 << 53
	// minTimeMs is 2000-01-01T00:00:00Z, the earliest time a reading may
	// carry (meter.Batch.Validate).
	minTimeMs = 946_684_800_000
	// maxUnmappedListed bounds the GPUs an ErrUnmapped error lists.
	maxUnmappedListed = 8
)

// uuidPattern is what a GPU UUID may hold ("GPU-5f3c…", "MIG-…"): no
// comma or space, which the CSV wire format could not carry.
var uuidPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// gpuSamples are one GPU's kept samples in one scrape.
type gpuSamples struct {
	host, uuid, gpu, device string
	v                       [numFields]int64
	has                     [numFields]bool
	tsMs                    int64 // the latest sample timestamp; 0 when none has one
}

// Parse reads one scrape of a DCGM exporter (Prometheus text format) and
// returns one reading per GPU that has at least one kept metric (see the
// package comment), sorted by node and GPU index; none, and no error, when
// the scrape has no kept metric. Only the lines of kept metrics are
// parsed: a malformed line of another metric, or text that is no
// exposition at all, is not an error.
//
// Each GPU's node and index come from m (see Mapping.Resolve; m may be
// nil). Its time is the latest timestamp among its kept samples when the
// exposition has any, else at; either is truncated to the millisecond, in
// UTC. A metric that appears more than once for a GPU (once per MIG
// instance or per pod label set) contributes its largest value: the
// device-wide values are equal, and a nonzero XID or remap failure wins.
//
// Errors wrap ErrFormat, naming the line or the sample (metric and
// labels) and the rule, or ErrUnmapped, listing the GPUs (Hostname, gpu,
// UUID) that have no node. Every reading returned passes
// meter.Batch.Validate.
func Parse(r io.Reader, at time.Time, m *Mapping) ([]meter.Reading, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read exposition: %w", err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(keptLines(data)))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	var order []string // group keys in the order first seen
	groups := map[string]*gpuSamples{}
	for f := range numFields {
		fam := families[metricNames[f]]
		if fam == nil {
			continue
		}
		switch fam.GetType() {
		case dto.MetricType_GAUGE, dto.MetricType_COUNTER, dto.MetricType_UNTYPED:
		default:
			return nil, fmt.Errorf("%w: %s: type %s, want gauge or counter", ErrFormat, fam.GetName(), strings.ToLower(fam.GetType().String()))
		}
		for _, s := range fam.GetMetric() {
			g, key, err := labelsOf(fam.GetName(), s)
			if err != nil {
				return nil, err
			}
			v, err := convert(f, value(fam.GetType(), s))
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrFormat, describe(fam.GetName(), s), err)
			}
			var ts int64
			if s.TimestampMs != nil {
				ts = s.GetTimestampMs()
				if ts < minTimeMs || ts >= maxExact {
					return nil, fmt.Errorf("%w: %s: timestamp %d ms is not between 2000-01-01 and 2^53 ms", ErrFormat, describe(fam.GetName(), s), ts)
				}
			}
			acc := groups[key]
			if acc == nil {
				acc = &g
				groups[key] = acc
				order = append(order, key)
			}
			if !acc.has[f] || v > acc.v[f] {
				acc.v[f] = v
			}
			acc.has[f] = true
			acc.tsMs = max(acc.tsMs, ts)
		}
	}
	if len(order) == 0 {
		return nil, nil
	}

	atMs := at.UnixMilli()
	out := make([]meter.Reading, 0, len(order))
	taken := make(map[GPURef]string, len(order))
	var unmapped []string
	for _, key := range order {
		g := groups[key]
		r, why, err := g.reading(m)
		if err != nil {
			return nil, err
		}
		if why != "" {
			unmapped = append(unmapped, why)
			continue
		}
		ref := GPURef{Node: r.Node, GPU: r.GPU}
		if other, dup := taken[ref]; dup {
			return nil, fmt.Errorf("%w: %s and %s are both node %s GPU %d", ErrFormat, other, g, r.Node, r.GPU)
		}
		taken[ref] = g.String()
		ms := g.tsMs
		if ms == 0 {
			ms = atMs
			if ms < minTimeMs || ms >= maxExact {
				return nil, fmt.Errorf("%w: scrape time %s is not between 2000-01-01 and 2^53 ms", ErrFormat, at.UTC().Format(time.RFC3339Nano))
			}
		}
		r.Time = time.UnixMilli(ms).UTC()
		out = append(out, r)
	}
	if len(unmapped) > 0 {
		n := len(unmapped)
		if n > maxUnmappedListed {
			unmapped = append(unmapped[:maxUnmappedListed], fmt.Sprintf("and %d more", n-maxUnmappedListed))
		}
		return nil, fmt.Errorf("%w: %d GPU(s): %s (map them by hostname or UUID in the mapping file)", ErrUnmapped, n, strings.Join(unmapped, "; "))
	}
	slices.SortFunc(out, func(a, b meter.Reading) int {
		return cmp.Or(strings.Compare(a.Node, b.Node), cmp.Compare(a.GPU, b.GPU))
	})
	return out, nil
}

// keptLines blanks out the lines of data that cannot concern a kept
// metric — the samples, HELP and TYPE lines of other metrics, and other
// comments — so that the text parser, which allocates for every label,
// reads a quarter of a default scrape. Blank lines keep the line numbers of
// its errors true. Lines that start with a quoted name or a brace (the
// UTF-8 syntax) are kept.
func keptLines(data []byte) []byte {
	out := make([]byte, 0, len(data)/2)
	for len(data) > 0 {
		line, rest, found := bytes.Cut(data, []byte{'\n'})
		data = rest
		if keep(line) {
			out = append(out, line...)
		}
		if found {
			out = append(out, '\n')
		}
	}
	return out
}

// keep reports whether a line of the exposition may concern a kept
// metric: its name (a sample's, or a HELP or TYPE line's) starts with a
// kept metric's name (histogram and summary samples add a suffix).
func keep(line []byte) bool {
	line = bytes.TrimLeft(line, " \t")
	if len(line) == 0 {
		return false
	}
	if line[0] == '#' {
		keyword, rest := token(bytes.TrimLeft(line[1:], " \t"))
		if string(keyword) != "HELP" && string(keyword) != "TYPE" {
			return false
		}
		line = bytes.TrimLeft(rest, " \t")
	}
	if len(line) == 0 || line[0] == '{' || line[0] == '"' {
		return true
	}
	name, _ := token(line)
	for _, kept := range metricNames {
		if bytes.HasPrefix(name, []byte(kept)) {
			return true
		}
	}
	return false
}

// token splits a line at its first blank, tab or brace.
func token(line []byte) (tok, rest []byte) {
	i := bytes.IndexAny(line, " \t{")
	if i < 0 {
		return line, nil
	}
	return line[:i], line[i:]
}

// labelsOf reads the labels that identify a sample's GPU, matching their
// names without regard to case, and returns them with the GPU's group
// key: its UUID, or else its host and index labels.
func labelsOf(name string, s *dto.Metric) (gpuSamples, string, error) {
	var g gpuSamples
	for _, l := range s.GetLabel() {
		var dst *string
		switch n := l.GetName(); {
		case strings.EqualFold(n, "gpu"):
			dst = &g.gpu
		case strings.EqualFold(n, "uuid"):
			dst = &g.uuid
		case strings.EqualFold(n, "hostname"):
			dst = &g.host
		case strings.EqualFold(n, "device"):
			dst = &g.device
		default:
			continue
		}
		v := l.GetValue()
		if *dst != "" && v != "" && *dst != v {
			return g, "", fmt.Errorf("%w: %s: label %s=%q disagrees with another spelling of it (%q)", ErrFormat, describe(name, s), l.GetName(), v, *dst)
		}
		if v != "" {
			*dst = v
		}
	}
	if g.uuid != "" {
		return g, "u\x00" + g.uuid, nil
	}
	return g, "h\x00" + g.host + "\x00" + g.gpu + "\x00" + g.device, nil
}

// value returns a sample's value for its family's type.
func value(t dto.MetricType, s *dto.Metric) float64 {
	switch t {
	case dto.MetricType_COUNTER:
		return s.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return s.GetGauge().GetValue()
	default:
		return s.GetUntyped().GetValue()
	}
}

// convert turns a DCGM value into field f's integer unit, or says which
// rule it breaks.
func convert(f field, v float64) (int64, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("value %v is not a finite number", v)
	}
	lo, hi := 0.0, float64(maxExact)
	switch f {
	case fUtil:
		hi = 100
	case fPower:
		v *= 1000 // W → mW
	case fTemp:
		lo, hi = -273, 1000
	case fXID:
		hi = math.MaxInt32
	case fRemap:
		if v != 0 {
			return 1, nil
		}
		return 0, nil
	}
	v = math.Round(v)
	if v < lo || v > hi {
		unit := ""
		if f == fPower {
			unit = " mW"
		}
		return 0, fmt.Errorf("value %v%s is not within %v..%v", v, unit, lo, hi)
	}
	return int64(v), nil
}

// index returns the GPU's index from its gpu label, else from its device
// label ("nvidia3"); -1 when neither has one.
func (g *gpuSamples) index() (int, error) {
	if g.gpu != "" {
		i, err := strconv.Atoi(g.gpu)
		if err != nil || i < 0 || i > meter.MaxGPU {
			return 0, fmt.Errorf("%w: %s: label gpu=%q is not an index within 0..%d", ErrFormat, g, g.gpu, meter.MaxGPU)
		}
		return i, nil
	}
	if n, ok := strings.CutPrefix(g.device, "nvidia"); ok {
		if i, err := strconv.Atoi(n); err == nil && i >= 0 && i <= meter.MaxGPU {
			return i, nil
		}
	}
	return -1, nil
}

// reading returns the GPU's reading without its time, or (as unmapped)
// why the GPU has no valid node or index.
func (g *gpuSamples) reading(m *Mapping) (r meter.Reading, unmapped string, err error) {
	idx, err := g.index()
	if err != nil {
		return meter.Reading{}, "", err
	}
	if g.uuid != "" && !uuidPattern.MatchString(g.uuid) {
		return meter.Reading{}, "", fmt.Errorf("%w: %s: UUID must be 1-128 letters, digits or . _ : -", ErrFormat, g)
	}
	node, idx, ok := m.Resolve(g.host, g.uuid, idx)
	switch {
	case !ok && g.host == "":
		return meter.Reading{}, g.String() + ": no Hostname label", nil
	case !ok:
		return meter.Reading{}, g.String() + `: no gpu label (nor device="nvidiaN")`, nil
	case !nodePattern.MatchString(node):
		return meter.Reading{}, fmt.Sprintf("%s: node %q is not a node name (letters, digits, . _ -)", g, node), nil
	case idx < 0 || idx > meter.MaxGPU:
		return meter.Reading{}, fmt.Sprintf("%s: GPU index %d is not within 0..%d", g, idx, meter.MaxGPU), nil
	}
	return meter.Reading{
		Node:               node,
		GPU:                idx,
		UUID:               g.uuid,
		UtilPct:            int(g.v[fUtil]),
		PowerMW:            g.v[fPower],
		EnergyMJ:           g.v[fEnergy],
		TempC:              int(g.v[fTemp]),
		XID:                int(g.v[fXID]),
		PowerViolationUS:   g.v[fPowerViol],
		ThermalViolationUS: g.v[fThermViol],
		RemapFailure:       g.v[fRemap] != 0,
	}, "", nil
}

// String names the GPU by its identifying labels, for errors.
func (g *gpuSamples) String() string {
	var b strings.Builder
	b.WriteString("GPU")
	for _, l := range [...]struct{ k, v string }{{"Hostname", g.host}, {"gpu", g.gpu}, {"device", g.device}, {"UUID", g.uuid}} {
		if l.v != "" {
			fmt.Fprintf(&b, " %s=%q", l.k, l.v)
		}
	}
	if b.Len() == len("GPU") {
		b.WriteString(" without labels")
	}
	return b.String()
}

// describe prints a sample as its exposition line's name and labels.
func describe(name string, s *dto.Metric) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, l := range s.GetLabel() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.GetName())
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.GetValue()))
	}
	b.WriteByte('}')
	return b.String()
}
