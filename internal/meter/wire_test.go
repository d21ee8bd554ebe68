package meter

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func sampleBatch() Batch {
	t := time.Date(2026, 11, 27, 8, 0, 0, 123_000_000, time.UTC)
	return Batch{ID: "agent-7:boot-1:42", Agent: "agent-7", Readings: []Reading{
		{Node: "ref-h100-n0001", GPU: 0, UUID: "GPU-1b2c", Time: t, UtilPct: 87, PowerMW: 612_250, EnergyMJ: 123_456_789_012, TempC: 61},
		{Node: "ref-h100-n0001", GPU: 3, Time: t, UtilPct: 0, XID: 79, ThermalViolationUS: 1200, PowerViolationUS: 5, RemapFailure: true},
	}}
}

func TestCSVRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := EncodeCSV(&buf, sampleBatch()); err != nil {
		t.Fatal(err)
	}
	got, err := DecodeCSV(buf.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sampleBatch(), got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestDecodeCSVErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "line 1: must be the batch line"},
		{"no batch id", "# agent=a\nnode,gpu,time_ms\n", "batch_id is required"},
		{"no header", "# batch_id=b\n", "header line is missing"},
		{"unknown column", "# batch_id=b\nnode,gpu,time_ms,watts\n", `unknown column "watts"`},
		{"twice", "# batch_id=b\nnode,gpu,time_ms,gpu\n", `column "gpu" appears twice`},
		{"required", "# batch_id=b\nnode,gpu\n", `column "time_ms" is required`},
		{"short row", "# batch_id=b\nnode,gpu,time_ms\nn1,0\n", "line 3: 2 fields, the header has 3"},
		{"long row", "# batch_id=b\nnode,gpu,time_ms\nn1,0,1,2\n", "line 3: more than 3 fields"},
		{"not a number", "# batch_id=b\nnode,gpu,time_ms\nn1,x,1\n", `line 3: column gpu: "x" is not an integer`},
		{"overflow", "# batch_id=b\nnode,gpu,time_ms\nn1,0,99999999999999999999\n", "is not an integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeCSV([]byte(tt.in), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	// Columns in another order, optional ones missing, CRLF line ends.
	b, err := DecodeCSV([]byte("# batch_id=b agent=x\r\ntime_ms,node,gpu\r\n1764201600000,n1,2\r\n\r\n"), nil)
	if err != nil || len(b.Readings) != 1 || b.Readings[0].GPU != 2 || b.Readings[0].Node != "n1" || b.Agent != "x" {
		t.Errorf("reordered columns: %+v, %v", b, err)
	}
}

// FuzzDecodeCSV: the decoder never panics, and a batch it accepts and
// Validate passes survives encoding and decoding unchanged.
func FuzzDecodeCSV(f *testing.F) {
	var buf bytes.Buffer
	_ = EncodeCSV(&buf, sampleBatch())
	f.Add(buf.Bytes())
	f.Add([]byte("# batch_id=b\nnode,gpu,time_ms\nn1,0,1\n"))
	f.Add([]byte("# batch_id=b\ntime_ms,node,gpu,util_pct\n-5,n,-1,101\n"))
	f.Add([]byte("#\n,\n,,\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeCSV(data, nil)
		if err != nil || b.Validate() != nil {
			return
		}
		var out bytes.Buffer
		if err := EncodeCSV(&out, b); err != nil {
			t.Fatal(err)
		}
		again, err := DecodeCSV(out.Bytes(), nil)
		if err != nil {
			t.Fatalf("re-decoding %q: %v", out.Bytes(), err)
		}
		if diff := cmp.Diff(b, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
