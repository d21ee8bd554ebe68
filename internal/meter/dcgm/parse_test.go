package dcgm

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/valid"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// at is the scrape time the tests pass to Parse.
var at = time.Date(2026, 11, 27, 8, 0, 0, 123_456_789, time.UTC)

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parse(t testing.TB, data []byte, m *Mapping) []meter.Reading {
	t.Helper()
	rs, err := Parse(bytes.NewReader(data), at, m)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return rs
}

// TestParseGolden parses each testdata scrape and compares the readings,
// in the CSV wire format, with its golden file (rewritten with -update).
func TestParseGolden(t *testing.T) {
	podMapping, err := LoadMapping(filepath.Join("testdata", "mapping.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		scrape  string
		edit    func(string) string // applied to the scrape before parsing
		mapping *Mapping
		golden  string
		gpus    int
	}{
		{name: "H100 node", scrape: "h100-sxm-8gpu.prom", golden: "h100-sxm-8gpu.golden.csv", gpus: 8},
		{name: "GB200 tray", scrape: "gb200-nvl72-tray.prom", golden: "gb200-nvl72-tray.golden.csv", gpus: 4},
		{name: "XID errors", scrape: "h100-sxm-8gpu-xid.prom", golden: "h100-sxm-8gpu-xid.golden.csv", gpus: 8},
		{name: "energy scrape 1", scrape: "h100-sxm-8gpu-energy-1.prom", golden: "h100-sxm-8gpu-energy-1.golden.csv", gpus: 8},
		{name: "energy scrape 2 (GPU 2 reset)", scrape: "h100-sxm-8gpu-energy-2.prom", golden: "h100-sxm-8gpu-energy-2.golden.csv", gpus: 8},
		{
			name:   "GB200 tray from a pod, mapped by pod name and UUID",
			scrape: "gb200-nvl72-tray.prom",
			edit: func(s string) string {
				return strings.ReplaceAll(s, `Hostname="gb200-a-r07-t03"`, `Hostname="nvidia-dcgm-exporter-7x2kq"`)
			},
			mapping: podMapping,
			golden:  "gb200-nvl72-tray-mapped.golden.csv",
			gpus:    4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := read(t, tt.scrape)
			if tt.edit != nil {
				data = []byte(tt.edit(string(data)))
			}
			rs := parse(t, data, tt.mapping)
			if len(rs) != tt.gpus {
				t.Errorf("%d readings, want %d", len(rs), tt.gpus)
			}
			if err := (meter.Batch{ID: "golden", Readings: rs}).Validate(); err != nil {
				t.Errorf("readings do not validate: %v", err)
			}
			var got bytes.Buffer
			if err := meter.EncodeCSV(&got, meter.Batch{ID: "golden", Readings: rs}); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want := read(t, tt.golden)
			if diff := cmp.Diff(string(want), got.String()); diff != "" {
				t.Errorf("readings differ from %s (-want +got), rerun with -update if intended:\n%s", path, diff)
			}
		})
	}
}

// TestParseFields checks the golden files' key values by hand, so that a
// wrong golden cannot hide a wrong unit.
func TestParseFields(t *testing.T) {
	h100 := parse(t, read(t, "h100-sxm-8gpu.prom"), nil)
	want0 := meter.Reading{
		Node: "h100-a-n0017", GPU: 0, UUID: "GPU-cdeb6a2c-fa34-cfe2-b43c-27ec6d84656e",
		Time: time.Date(2026, 11, 27, 8, 0, 0, 123_000_000, time.UTC),
	}
	got0 := h100[0]
	if got0.Node != want0.Node || got0.GPU != want0.GPU || got0.UUID != want0.UUID || !got0.Time.Equal(want0.Time) || got0.Time.Location() != time.UTC {
		t.Errorf("h100[0] = %s GPU %d at %s, want %s GPU %d at %s (UTC, whole ms)", got0.Node, got0.GPU, got0.Time, want0.Node, want0.GPU, want0.Time)
	}
	for i, r := range h100 {
		if r.GPU != i || r.Node != "h100-a-n0017" {
			t.Errorf("reading %d is %s GPU %d", i, r.Node, r.GPU)
		}
	}

	xid := parse(t, read(t, "h100-sxm-8gpu-xid.prom"), nil)
	for i, r := range xid {
		wantXID := map[int]int{3: 79, 5: 13}[i]
		if r.XID != wantXID {
			t.Errorf("GPU %d: XID %d, want %d", i, r.XID, wantXID)
		}
		if r.RemapFailure != (i == 6) {
			t.Errorf("GPU %d: RemapFailure %v", i, r.RemapFailure)
		}
		if (r.ThermalViolationUS > 0) != (i == 1) {
			t.Errorf("GPU %d: ThermalViolationUS %d", i, r.ThermalViolationUS)
		}
	}
	if r := xid[3]; r.UtilPct != 0 || r.PowerMW != 71_204 {
		t.Errorf("GPU 3 (off the bus): util %d%%, power %d mW; want 0%%, 71204 mW (71.204000 W)", r.UtilPct, r.PowerMW)
	}
	if r := xid[1]; r.ThermalViolationUS != 18_250_000 || r.TempC != 87 {
		t.Errorf("GPU 1: thermal violation %d µs at %d C, want 18250000 µs at 87 C", r.ThermalViolationUS, r.TempC)
	}

	e1 := parse(t, read(t, "h100-sxm-8gpu-energy-1.prom"), nil)
	e2 := parse(t, read(t, "h100-sxm-8gpu-energy-2.prom"), nil)
	for i := range e1 {
		grew := e2[i].EnergyMJ > e1[i].EnergyMJ
		if i == 2 {
			if grew || e2[i].EnergyMJ != 4518 {
				t.Errorf("GPU 2: energy %d → %d mJ, want a reset to 4518", e1[i].EnergyMJ, e2[i].EnergyMJ)
			}
			continue
		}
		// 10 s at 550-700 W is 5.5-7 kJ: 5.5e6-7e6 mJ.
		if d := e2[i].EnergyMJ - e1[i].EnergyMJ; !grew || d < 5_000_000 || d > 7_500_000 {
			t.Errorf("GPU %d: energy grew by %d mJ in 10 s, want 5-7.5 kJ", i, d)
		}
	}
}

func TestParse(t *testing.T) {
	const lbl = `gpu="0",UUID="GPU-a",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="h100-a-n0001"`
	atMs := at.Truncate(time.Millisecond)
	base := meter.Reading{Node: "h100-a-n0001", GPU: 0, UUID: "GPU-a", Time: atMs}
	with := func(f func(*meter.Reading)) []meter.Reading {
		r := base
		f(&r)
		return []meter.Reading{r}
	}
	tests := []struct {
		name    string
		in      string
		mapping *Mapping
		want    []meter.Reading
	}{
		{name: "empty scrape", in: "", want: nil},
		{name: "no kept metric", in: "# TYPE DCGM_FI_DEV_SM_CLOCK gauge\nDCGM_FI_DEV_SM_CLOCK{" + lbl + "} 1980\n", want: nil},
		{
			name: "other metrics' lines are not parsed",
			in:   "DCGM_FI_DEV_SM_CLOCK{gpu=\"0\" 1980\n# a comment\nDCGM_FI_DEV_GPU_UTIL{" + lbl + "} 7\n",
			want: with(func(r *meter.Reading) { r.UtilPct = 7 }),
		},
		{
			name: "power rounds to the milliwatt",
			in:   "DCGM_FI_DEV_POWER_USAGE{" + lbl + "} 612.3456\n",
			want: with(func(r *meter.Reading) { r.PowerMW = 612_346 }),
		},
		{
			name: "all fields",
			in: "DCGM_FI_DEV_GPU_UTIL{" + lbl + "} 87\nDCGM_FI_DEV_POWER_USAGE{" + lbl + "} 612.25\n" +
				"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{" + lbl + "} 123456789012\nDCGM_FI_DEV_GPU_TEMP{" + lbl + "} 61\n" +
				"DCGM_FI_DEV_XID_ERRORS{" + lbl + "} 48\nDCGM_FI_DEV_POWER_VIOLATION{" + lbl + "} 1500\n" +
				"DCGM_FI_DEV_THERMAL_VIOLATION{" + lbl + "} 2500\nDCGM_FI_DEV_ROW_REMAP_FAILURE{" + lbl + "} 1\n",
			want: with(func(r *meter.Reading) {
				r.UtilPct, r.PowerMW, r.EnergyMJ, r.TempC, r.XID = 87, 612_250, 123_456_789_012, 61, 48
				r.PowerViolationUS, r.ThermalViolationUS, r.RemapFailure = 1500, 2500, true
			}),
		},
		{
			name: "a sample timestamp wins over the scrape time",
			in:   "DCGM_FI_DEV_GPU_UTIL{" + lbl + "} 50 1764201600123\nDCGM_FI_DEV_GPU_TEMP{" + lbl + "} 40 1764201599000\n",
			want: with(func(r *meter.Reading) {
				r.UtilPct, r.TempC, r.Time = 50, 40, time.UnixMilli(1764201600123).UTC()
			}),
		},
		{
			name: "lower-case hostname and uuid labels",
			in:   `DCGM_FI_DEV_GPU_UTIL{gpu="0",uuid="GPU-a",hostname="h100-a-n0001"} 5` + "\n",
			want: with(func(r *meter.Reading) { r.UtilPct = 5 }),
		},
		{
			name: "the same label spelt two ways with one value",
			in:   `DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",Hostname="h100-a-n0001",hostname="h100-a-n0001"} 5` + "\n",
			want: with(func(r *meter.Reading) { r.UtilPct = 5 }),
		},
		{
			name: "no gpu label: the index from device",
			in:   `DCGM_FI_DEV_GPU_UTIL{device="nvidia6",Hostname="h100-a-n0001"} 9` + "\n",
			want: []meter.Reading{{Node: "h100-a-n0001", GPU: 6, Time: atMs, UtilPct: 9}},
		},
		{
			name: "MIG instances: one reading per GPU, the largest value",
			in: `DCGM_FI_DEV_XID_ERRORS{` + lbl + `,GPU_I_PROFILE="3g.40gb",GPU_I_ID="1"} 0` + "\n" +
				`DCGM_FI_DEV_XID_ERRORS{` + lbl + `,GPU_I_PROFILE="3g.40gb",GPU_I_ID="2"} 94` + "\n" +
				`DCGM_FI_DEV_POWER_USAGE{` + lbl + `,GPU_I_PROFILE="3g.40gb",GPU_I_ID="1"} 300` + "\n" +
				`DCGM_FI_DEV_POWER_USAGE{` + lbl + `,GPU_I_PROFILE="3g.40gb",GPU_I_ID="2"} 300` + "\n",
			want: with(func(r *meter.Reading) { r.XID, r.PowerMW = 94, 300_000 }),
		},
		{
			name:    "mapped by hostname",
			in:      `DCGM_FI_DEV_GPU_UTIL{gpu="2",UUID="GPU-b",Hostname="dgx017.cluster.internal"} 70` + "\n",
			mapping: &Mapping{Hosts: map[string]string{"dgx017.cluster.internal": "h100-a-n0017"}},
			want:    []meter.Reading{{Node: "h100-a-n0017", GPU: 2, UUID: "GPU-b", Time: atMs, UtilPct: 70}},
		},
		{
			name:    "mapped by UUID without gpu or Hostname labels",
			in:      `DCGM_FI_DEV_GPU_UTIL{UUID="GPU-b"} 70` + "\n",
			mapping: &Mapping{GPUs: map[string]GPURef{"GPU-b": {Node: "h100-a-n0017", GPU: 5}}},
			want:    []meter.Reading{{Node: "h100-a-n0017", GPU: 5, UUID: "GPU-b", Time: atMs, UtilPct: 70}},
		},
		{
			name: "sorted by node and GPU",
			in: `DCGM_FI_DEV_GPU_UTIL{gpu="1",Hostname="b"} 1` + "\n" + `DCGM_FI_DEV_GPU_UTIL{gpu="10",Hostname="a"} 2` + "\n" +
				`DCGM_FI_DEV_GPU_UTIL{gpu="2",Hostname="a"} 3` + "\n",
			want: []meter.Reading{{Node: "a", GPU: 2, Time: atMs, UtilPct: 3}, {Node: "a", GPU: 10, Time: atMs, UtilPct: 2},
				{Node: "b", GPU: 1, Time: atMs, UtilPct: 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in), at, tt.mapping)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("readings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const lbl = `gpu="0",UUID="GPU-a",Hostname="h100-a-n0001"`
	tests := []struct {
		name    string
		in      string
		at      time.Time
		mapping *Mapping
		want    error
		says    []string // substrings of the message
	}{
		{name: "not Prometheus text", in: "DCGM_FI_DEV_GPU_UTIL{" + lbl + "} 1\nDCGM_FI_DEV_GPU_UTIL{gpu=\"1\" 5\n",
			want: ErrFormat, says: []string{"line 2"}},
		{name: "line numbers count the lines of other metrics",
			in:   "# HELP DCGM_FI_DEV_SM_CLOCK SM clock frequency (in MHz).\nDCGM_FI_DEV_SM_CLOCK{" + lbl + "} 1980\n\nDCGM_FI_DEV_GPU_UTIL{gpu=\"1\" 5\n",
			want: ErrFormat, says: []string{"line 4"}},
		{name: "value not a number", in: "DCGM_FI_DEV_GPU_TEMP{" + lbl + "} hot\n", want: ErrFormat, says: []string{"line 1", "hot"}},
		{name: "NaN", in: "DCGM_FI_DEV_GPU_UTIL{" + lbl + "} NaN\n", want: ErrFormat,
			says: []string{`DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",Hostname="h100-a-n0001"}`, "not a finite number"}},
		{name: "utilization over 100", in: "DCGM_FI_DEV_GPU_UTIL{" + lbl + "} 101\n", want: ErrFormat,
			says: []string{"DCGM_FI_DEV_GPU_UTIL{", "101 is not within 0..100"}},
		{name: "negative power", in: "DCGM_FI_DEV_POWER_USAGE{" + lbl + "} -3\n", want: ErrFormat,
			says: []string{"DCGM_FI_DEV_POWER_USAGE{", "-3000 mW"}},
		{name: "energy beyond 2^53", in: "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{" + lbl + "} 1e17\n", want: ErrFormat,
			says: []string{"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"}},
		{name: "a histogram", in: "# TYPE DCGM_FI_DEV_GPU_TEMP histogram\nDCGM_FI_DEV_GPU_TEMP_bucket{le=\"+Inf\"} 1\n",
			want: ErrFormat, says: []string{"DCGM_FI_DEV_GPU_TEMP: type histogram"}},
		{name: "gpu label not an index", in: `DCGM_FI_DEV_GPU_UTIL{gpu="first",Hostname="h"} 1` + "\n", want: ErrFormat,
			says: []string{`gpu="first" is not an index`}},
		{name: "gpu label out of range", in: `DCGM_FI_DEV_GPU_UTIL{gpu="256",Hostname="h"} 1` + "\n", want: ErrFormat,
			says: []string{`gpu="256"`, "0..255"}},
		{name: "labels disagree", in: `DCGM_FI_DEV_GPU_UTIL{gpu="0",Hostname="a",hostname="b"} 1` + "\n", want: ErrFormat,
			says: []string{`hostname="b" disagrees`}},
		{name: "UUID with a comma", in: `DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a,b",Hostname="h"} 1` + "\n", want: ErrFormat,
			says: []string{`UUID="GPU-a,b"`}},
		{name: "timestamp before 2000", in: "DCGM_FI_DEV_GPU_UTIL{" + lbl + "} 1 12345\n", want: ErrFormat,
			says: []string{"timestamp 12345 ms"}},
		{name: "scrape time before 2000", in: "DCGM_FI_DEV_GPU_UTIL{" + lbl + "} 1\n", at: time.Unix(0, 0), want: ErrFormat,
			says: []string{"scrape time 1970-01-01T00:00:00Z"}},
		{name: "two GPUs on one slot", in: `DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",Hostname="h"} 1` + "\n" +
			`DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-b",Hostname="h"} 1` + "\n",
			want: ErrFormat, says: []string{`UUID="GPU-a"`, `UUID="GPU-b"`, "both node h GPU 0"}},
		{name: "no Hostname and no mapping", in: `DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a"} 1` + "\n" +
			`DCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="GPU-b"} 1` + "\n",
			want: ErrUnmapped, says: []string{"2 GPU(s)", `gpu="0" UUID="GPU-a"`, `gpu="1" UUID="GPU-b"`, "mapping file"}},
		{name: "UUID not in the mapping", in: `DCGM_FI_DEV_GPU_UTIL{UUID="GPU-c"} 1` + "\n",
			mapping: &Mapping{GPUs: map[string]GPURef{"GPU-b": {Node: "n", GPU: 0}}},
			want:    ErrUnmapped, says: []string{`UUID="GPU-c"`}},
		{name: "Hostname not a node name", in: `DCGM_FI_DEV_GPU_UTIL{gpu="0",Hostname="pod/x y"} 1` + "\n",
			want: ErrUnmapped, says: []string{`Hostname="pod/x y"`, "not a node name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			when := at
			if !tt.at.IsZero() {
				when = tt.at
			}
			rs, err := Parse(strings.NewReader(tt.in), when, tt.mapping)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse = %v, %v; want an error wrapping %v", rs, err, tt.want)
			}
			if rs != nil {
				t.Errorf("Parse returned readings with its error: %v", rs)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

func TestParseMapping(t *testing.T) {
	m, err := LoadMapping(filepath.Join("testdata", "mapping.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Mapping{
		Hosts: map[string]string{"nvidia-dcgm-exporter-7x2kq": "gb200-a-r07-t03"},
		GPUs: map[string]GPURef{
			"GPU-1ecb6a43-d6e1-c6d4-e38f-e10260a37243": {Node: "gb200-a-r07-t03", GPU: 1},
			"GPU-c1f3312f-b685-431f-99c3-8cb481f63752": {Node: "gb200-a-r07-t03", GPU: 0},
		},
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("mapping (-want +got):\n%s", diff)
	}

	bad := []struct {
		name  string
		in    string
		field bool     // a *valid.Error rather than a YAML error
		says  []string // substrings of the message
	}{
		{name: "unknown key", in: "hostz:\n  a: b\n", says: []string{"hostz", "[1:1]"}},
		{name: "GPU index not a number", in: "gpus:\n  GPU-a: {node: n, gpu: three}\n", says: []string{"[2:"}},
		{name: "bad node name", in: "hosts:\n  a: \"node one\"\n", field: true, says: []string{"hosts.a", `"node one"`}},
		{name: "GPU index missing", in: "gpus:\n  GPU-a: {node: n}\n", field: true, says: []string{"gpus.GPU-a.gpu", "required"}},
		{name: "GPU index out of range", in: "gpus:\n  GPU-a: {node: n, gpu: 256}\n", field: true, says: []string{"gpus.GPU-a.gpu", "0..255"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMapping([]byte(tt.in))
			if err == nil {
				t.Fatal("ParseMapping succeeded")
			}
			var v *valid.Error
			if errors.As(err, &v) != tt.field {
				t.Errorf("error %v: *valid.Error %v, want %v", err, !tt.field, tt.field)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

func TestResolve(t *testing.T) {
	m := &Mapping{Hosts: map[string]string{"pod-1": "n1"}, GPUs: map[string]GPURef{"GPU-x": {Node: "n9", GPU: 7}}}
	tests := []struct {
		name       string
		m          *Mapping
		host, uuid string
		gpu        int
		node       string
		index      int
		ok         bool
	}{
		{name: "nil mapping: the hostname", m: nil, host: "h", gpu: 2, node: "h", index: 2, ok: true},
		{name: "nil mapping, no index", m: nil, host: "h", gpu: -1},
		{name: "nil mapping, no host", m: nil, uuid: "GPU-x", gpu: 1},
		{name: "by host", m: m, host: "pod-1", uuid: "GPU-y", gpu: 3, node: "n1", index: 3, ok: true},
		{name: "unmapped host is its own node", m: m, host: "other", gpu: 0, node: "other", index: 0, ok: true},
		{name: "UUID wins", m: m, host: "pod-1", uuid: "GPU-x", gpu: 3, node: "n9", index: 7, ok: true},
		{name: "UUID needs no index label", m: m, uuid: "GPU-x", gpu: -1, node: "n9", index: 7, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node, index, ok := tt.m.Resolve(tt.host, tt.uuid, tt.gpu)
			if node != tt.node || index != tt.index || ok != tt.ok {
				t.Errorf("Resolve(%q, %q, %d) = %q, %d, %v; want %q, %d, %v", tt.host, tt.uuid, tt.gpu, node, index, ok, tt.node, tt.index, tt.ok)
			}
		})
	}
}

// FuzzParse checks that Parse never panics, and that what it returns
// without an error passes meter.Batch.Validate and survives the CSV wire
// format unchanged.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.prom"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",hostname="h"} 50 1764201600123` + "\n"))
	f.Add([]byte(`DCGM_FI_DEV_POWER_USAGE{device="nvidia3",Hostname="pod-1"} 612.3456` + "\n"))
	f.Add([]byte(`DCGM_FI_DEV_XID_ERRORS{UUID="GPU-x"} 79` + "\n"))
	m := &Mapping{Hosts: map[string]string{"pod-1": "n1"}, GPUs: map[string]GPURef{"GPU-x": {Node: "n9", GPU: 7}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := Parse(bytes.NewReader(data), at, m)
		if err != nil {
			if rs != nil {
				t.Fatalf("Parse returned %d readings with its error %v", len(rs), err)
			}
			return
		}
		b := meter.Batch{ID: "x", Readings: rs}
		if err := b.Validate(); err != nil {
			t.Fatalf("Parse returned readings that do not validate: %v", err)
		}
		var buf bytes.Buffer
		if err := meter.EncodeCSV(&buf, b); err != nil {
			t.Fatal(err)
		}
		back, err := meter.DecodeCSV(buf.Bytes(), nil)
		if err != nil {
			t.Fatalf("the wire format does not carry Parse's readings: %v\n%s", err, buf.Bytes())
		}
		if len(rs) == 0 {
			rs = nil
		}
		if len(back.Readings) == 0 {
			back.Readings = nil
		}
		if diff := cmp.Diff(rs, back.Readings); diff != "" {
			t.Fatalf("readings changed on the wire (-parsed +decoded):\n%s", diff)
		}
	})
}

// BenchmarkParse parses an 8-GPU H100 node's scrape of the default
// counters (230 lines, 23 metrics of which 6 are kept).
func BenchmarkParse(b *testing.B) {
	data := read(b, "h100-sxm-8gpu.prom")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		rs, err := Parse(bytes.NewReader(data), at, nil)
		if err != nil {
			b.Fatal(err)
		}
		n += len(rs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "readings/s")
}
