package meter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/neocloud/neocloud/internal/valid"
)

// CSVContentType is the media type of the agent's wire format: compact,
// and decoded without reflection, so that one core parses and attributes
// over a million GPU readings a second.
const CSVContentType = "text/csv"

// Columns are the CSV format's columns in the order EncodeCSV writes them.
// DecodeCSV takes them in any order from the header line; node, gpu and
// time_ms are required, a missing other column reads as 0 (false, "").
var Columns = []string{"node", "gpu", "time_ms", "util_pct", "power_mw", "energy_mj", "temp_c", "xid",
	"power_violation_us", "thermal_violation_us", "remap_failure", "uuid"}

const (
	colNode = iota
	colGPU
	colTime
	colUtil
	colPower
	colEnergy
	colTemp
	colXID
	colPowerViol
	colThermViol
	colRemap
	colUUID
)

// EncodeCSV writes b in the CSV wire format:
//
//	# batch_id=ID agent=NAME
//	node,gpu,time_ms,util_pct,...,uuid
//	h100-a-n0001,0,1764201600123,87,612250,123456789012,61,0,0,0,0,GPU-...
//
// Node names, batch IDs and UUIDs hold no commas (Validate).
func EncodeCSV(w io.Writer, b Batch) error {
	buf := make([]byte, 0, 64+len(b.Readings)*96)
	buf = append(buf, "# batch_id="...)
	buf = append(buf, b.ID...)
	if b.Agent != "" {
		buf = append(buf, " agent="...)
		buf = append(buf, b.Agent...)
	}
	buf = append(buf, '\n')
	buf = append(buf, strings.Join(Columns, ",")...)
	buf = append(buf, '\n')
	for _, r := range b.Readings {
		buf = append(buf, r.Node...)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, int64(r.GPU), 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, r.Time.UnixMilli(), 10)
		for _, v := range [...]int64{int64(r.UtilPct), r.PowerMW, r.EnergyMJ, int64(r.TempC), int64(r.XID), r.PowerViolationUS, r.ThermalViolationUS} {
			buf = append(buf, ',')
			buf = strconv.AppendInt(buf, v, 10)
		}
		if r.RemapFailure {
			buf = append(buf, ",1,"...)
		} else {
			buf = append(buf, ",0,"...)
		}
		buf = append(buf, r.UUID...)
		buf = append(buf, '\n')
	}
	_, err := w.Write(buf)
	return err
}

// ErrFormat is wrapped by every DecodeCSV error about the shape of the
// input (as opposed to a field value breaking a rule, which is a
// *valid.Error).
var ErrFormat = errors.New("telemetry CSV")

// DecodeCSV parses a batch in the CSV wire format. names interns node
// names (pass one map per decoder to keep allocations down; nil is fine).
// A line that cannot be parsed is an error naming the line and column; the
// values are then checked by Batch.Validate.
func DecodeCSV(data []byte, names map[string]string) (Batch, error) {
	var b Batch
	line := 0
	next := func() ([]byte, bool) {
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			var l []byte
			if i < 0 {
				l, data = data, nil
			} else {
				l, data = data[:i], data[i+1:]
			}
			line++
			l = bytes.TrimSuffix(l, []byte{'\r'})
			if len(l) > 0 {
				return l, true
			}
		}
		return nil, false
	}
	first, ok := next()
	if !ok || !bytes.HasPrefix(first, []byte("#")) {
		return b, fmt.Errorf("%w: line 1: must be the batch line \"# batch_id=ID [agent=NAME]\"", ErrFormat)
	}
	for _, kv := range strings.Fields(string(first[1:])) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "batch_id":
			b.ID = v
		case "agent":
			b.Agent = v
		}
	}
	if b.ID == "" {
		return b, fmt.Errorf("%w: line 1: batch_id is required", ErrFormat)
	}
	head, ok := next()
	if !ok {
		return b, fmt.Errorf("%w: line %d: the header line is missing", ErrFormat, line+1)
	}
	var order []int // column index in the header → field
	seen := map[string]bool{}
	for h := range strings.SplitSeq(string(head), ",") {
		col := -1
		for i, c := range Columns {
			if c == h {
				col = i
			}
		}
		if col < 0 {
			return b, fmt.Errorf("%w: line %d: unknown column %q (columns: %s)", ErrFormat, line, h, strings.Join(Columns, ","))
		}
		if seen[h] {
			return b, fmt.Errorf("%w: line %d: column %q appears twice", ErrFormat, line, h)
		}
		seen[h] = true
		order = append(order, col)
	}
	for _, req := range Columns[:colTime+1] {
		if !seen[req] {
			return b, fmt.Errorf("%w: line %d: column %q is required", ErrFormat, line, req)
		}
	}
	if names == nil {
		names = map[string]string{}
	}
	b.Readings = make([]Reading, 0, bytes.Count(data, []byte{'\n'})+1)
	for {
		l, ok := next()
		if !ok {
			break
		}
		if len(b.Readings) == MaxBatchReadings {
			return b, fmt.Errorf("%w: more than %d readings in one batch", ErrFormat, MaxBatchReadings)
		}
		var r Reading
		for k, col := range order {
			var f []byte
			if k == len(order)-1 {
				f, l = l, nil
				if bytes.IndexByte(f, ',') >= 0 {
					return b, fmt.Errorf("%w: line %d: more than %d fields", ErrFormat, line, len(order))
				}
			} else {
				i := bytes.IndexByte(l, ',')
				if i < 0 {
					return b, fmt.Errorf("%w: line %d: %d fields, the header has %d", ErrFormat, line, k+1, len(order))
				}
				f, l = l[:i], l[i+1:]
			}
			if col == colNode || col == colUUID {
				s, ok := names[string(f)]
				if !ok {
					s = string(f)
					if col == colNode {
						names[s] = s
					}
				}
				if col == colNode {
					r.Node = s
				} else {
					r.UUID = s
				}
				continue
			}
			v, ok := atoi(f)
			if !ok {
				return b, fmt.Errorf("%w: line %d: column %s: %q is not an integer", ErrFormat, line, Columns[col], f)
			}
			switch col {
			case colGPU:
				r.GPU = clampInt(v)
			case colTime:
				if v < -1<<53 || v > 1<<53 {
					return b, fmt.Errorf("%w: line %d: column time_ms: %d is out of range", ErrFormat, line, v)
				}
				r.Time = time.UnixMilli(v).UTC()
			case colUtil:
				r.UtilPct = clampInt(v)
			case colPower:
				r.PowerMW = v
			case colEnergy:
				r.EnergyMJ = v
			case colTemp:
				r.TempC = clampInt(v)
			case colXID:
				r.XID = clampInt(v)
			case colPowerViol:
				r.PowerViolationUS = v
			case colThermViol:
				r.ThermalViolationUS = v
			case colRemap:
				r.RemapFailure = v != 0
			}
		}
		b.Readings = append(b.Readings, r)
	}
	return b, nil
}

// atoi parses a decimal int64 with an optional sign, without allocating.
func atoi(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	neg := false
	switch b[0] {
	case '-':
		neg, b = true, b[1:]
	case '+':
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	if neg {
		return -int64(n), true
	}
	return int64(n), true
}

// clampInt keeps an int64 within int's range so that Validate sees an out-
// of-range value as such rather than a wrapped one.
func clampInt(v int64) int {
	return int(max(min(v, math.MaxInt32), math.MinInt32))
}

// ValidationError reports whether err is a field-rule error (400 with the
// fields) as opposed to a malformed body.
func ValidationError(err error) bool {
	var e *valid.Error
	return errors.As(err, &e)
}
