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

	"github.com/danielgtaylor/huma/v2"
)

// strictJSON is the API's JSON format. Requests are decoded by
// strictUnmarshal; responses are encoded as huma does by default.
var strictJSON = huma.Format{
	Marshal:   huma.DefaultJSONFormat.Marshal,
	Unmarshal: strictUnmarshal,
}

// strictUnmarshal is json.Unmarshal that also refuses what encoding/json
// (and huma's validator, which follows it) forgive: an object key that
// matches a field only when case is ignored ({"ID": ...} for "id"), and a
// key given twice. Either would let a request say one thing to the schema
// check and another to the handler.
func strictUnmarshal(data []byte, v any) error {
	if !json.Valid(data) {
		return json.Unmarshal(data, v) // its syntax error says where
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := checkKeys(dec, reflect.TypeOf(v), "body"); err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// checkKeys walks one JSON value from dec against type t (nil: any type,
// only duplicate keys are checked).
func checkKeys(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty body is huma's to judge
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
			if err := checkKeys(dec, next, at); err != nil {
				return err
			}
		}
		_, err = dec.Token() // '}'
		return err
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := checkKeys(dec, elem, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
		return err
	}
	return nil
}

// jsonFields maps the JSON names of t's fields (embedded structs
// flattened) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					if _, dup := out[k]; !dup {
						out[k] = v
					}
				}
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
