package event

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// payload is what the tests build both ways: with Object and with
// json.Marshal.
type payload struct {
	Kind  string    `json:"kind"`
	Pool  string    `json:"pool"`
	Start time.Time `json:"start"`
	GPUs  int64     `json:"gpus"`
}

func (p payload) object() Object {
	var o Object
	o.String("kind", p.Kind)
	o.String("pool", p.Pool)
	o.Time("start", p.Start)
	o.Int("gpus", p.GPUs)
	return o
}

func TestObjectMatchesMarshal(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tests := map[string]payload{
		"plain":              {Kind: "reservation", Pool: "site/H100", Start: at, GPUs: 64},
		"empty strings":      {Start: at},
		"nanoseconds":        {Kind: "spot", Pool: "p", Start: at.Add(1500 * time.Microsecond), GPUs: -3},
		"trailing zeros cut": {Kind: "k", Pool: "p", Start: at.Add(120 * time.Millisecond)},
		"zone kept":          {Kind: "k", Pool: "p", Start: at.In(time.FixedZone("x", -5*3600-30*60))},
		"quotes and escapes": {Kind: `a"b\c`, Pool: "tab\there\nnew", Start: at},
		"html characters":    {Kind: "<script>&", Pool: "a>b", Start: at},
		"unicode":            {Kind: "héllo ✓", Pool: "line\u2028sep\u2029", Start: at},
		"invalid utf-8":      {Kind: "bad\xff\xfe", Pool: "\x00\x1f\x7f", Start: at},
		"year zero":          {Start: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)},
		"year 9999":          {Start: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
		"int extremes":       {GPUs: -1 << 63, Start: at},
	}
	for name, p := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			o := p.object()
			if diff := cmp.Diff(string(want), string(o.JSON())); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestObjectEmptyAndEvent(t *testing.T) {
	t.Parallel()
	var o Object
	if got := string(o.JSON()); got != "{}" {
		t.Errorf("empty object: got %s, want {}", got)
	}
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.FixedZone("x", 3600))
	o = NewObject(64)
	o.Int("n", 1)
	want := New(at, LeaseCreated, "t1", "l1", struct {
		N int `json:"n"`
	}{1})
	if diff := cmp.Diff(want, o.Event(at, LeaseCreated, "t1", "l1")); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestObjectYearOutOfRangePanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("no panic for year 10000")
		}
	}()
	var o Object
	o.Time("t", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
}

func TestObjectMatchesMarshalRapid(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		p := payload{
			Kind:  rapid.String().Draw(t, "kind"),
			Pool:  string(rapid.SliceOf(rapid.Byte()).Draw(t, "pool")), // any bytes, valid UTF-8 or not
			Start: time.Unix(rapid.Int64Range(-62167219200, 253402300799).Draw(t, "sec"), rapid.Int64Range(0, 999999999).Draw(t, "nsec")).UTC(),
			GPUs:  rapid.Int64().Draw(t, "gpus"),
		}
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		o := p.object()
		if got := string(o.JSON()); got != string(want) {
			t.Fatalf("got %s, want %s", got, want)
		}
	})
}
