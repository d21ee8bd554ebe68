package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// FuzzStrictJSON checks strictDecoder against a reference built on
// json.Decoder's tokens: the same bodies are refused with the same
// errors, and the same are decoded alike.
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{
		`{"kind":"reservation","pool":"a/B","gpus":8,"start":"2026-01-01T00:00:00Z","end":"2026-01-01T01:00:00Z"}`,
		`{"kind":"contract","schedule":[{"from":"2026-01-01T00:00:00Z","gpus":8},{"from":"x","mw":1.5e0}]}`,
		`{"Kind":"spot"}`, `{"kind":"a","kind":"b"}`, `{"schedule":[{"gpus":1,"gpus":2}]}`, `{"k\u0069nd":"x","kind":"y"}`,
		`{"x":1}`, `[1,{"a":{"b":[true,false,null,-1.5e-3,"\"\\\/\b\f\n\r\t\u00e9"]}}]`, `{"a":1,"a":2}`, ``, ` `, `{`, `{"a"`,
		`{"a":}`, `{"a":1,}`, `[1,]`, `{} {}`, `"x`, "\"\x01\"", `tru`, `nul`, `-`, `01`, `1.`, `{"a":1}x`, "\xff",
		`{"schedule":{"a":1}}`, `{"tenant":{"a":1,"a":2}}`, `{"a":{"b":1,"b":2}`,
	} {
		f.Add([]byte(s))
	}
	// Objects of more keys than keySet lists.
	var many []string
	for i := range 20 {
		many = append(many, fmt.Sprintf(`"k%d":%d`, i, i))
	}
	f.Add([]byte("{" + strings.Join(many, ",") + "}"))
	f.Add([]byte("{" + strings.Join(many, ",") + `,"k3":0}`))
	f.Add([]byte("{" + strings.Join(many[:16], ",") + `,"k15":0}`))
	d := &strictDecoder{}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mk := range []func() any{
			func() any { return new(LeaseRequest) },
			func() any { return new(any) },
			func() any { return new(map[string][]Step) },
		} {
			got, want := mk(), mk()
			gerr, werr := d.unmarshal(data, got), referenceStrictUnmarshal(data, want)
			if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
				t.Fatalf("%T of %q: error %v, reference %v", got, data, gerr, werr)
			}
			if gerr == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("%T of %q: %+v, reference %+v", got, data, got, want)
			}
		}
	})
}

// referenceStrictUnmarshal is strictDecoder.unmarshal as it was first
// written, on json.Decoder's tokens.
func referenceStrictUnmarshal(data []byte, v any) error {
	if !json.Valid(data) {
		return json.Unmarshal(data, v)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := referenceCheckKeys(dec, reflect.TypeOf(v), "body"); err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func referenceCheckKeys(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch delim {
	case '{':
		var fields map[string]reflect.Type
		var elem reflect.Type
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				fields = jsonFields(t)
			case reflect.Map:
				elem = t.Elem()
			}
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			at := path + "." + key
			if seen[key] {
				return fmt.Errorf("%s: the key appears twice", at)
			}
			seen[key] = true
			next := elem
			if fields != nil {
				ft, ok := fields[key]
				if !ok {
					return fmt.Errorf("%s: unexpected property (names are case-sensitive)", at)
				}
				next = ft
			}
			if err := referenceCheckKeys(dec, next, at); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := referenceCheckKeys(dec, elem, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	}
	return nil
}

func BenchmarkStrictJSON(b *testing.B) {
	body := []byte(`{"end":"2026-10-03T05:00:00Z","gpus":48,"kind":"reservation","pool":"ref-300mw/H100-SXM","start":"2026-10-01T03:00:00Z"}`)
	d := &strictDecoder{}
	b.ReportAllocs()
	for b.Loop() {
		var v LeaseRequest
		if err := d.unmarshal(body, &v); err != nil {
			b.Fatal(err)
		}
	}
}
