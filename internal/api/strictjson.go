package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"
)

// strictJSON returns the API's JSON format. Requests are decoded by
// strictDecoder.unmarshal; responses are encoded as huma does by default.
func strictJSON() huma.Format {
	d := &strictDecoder{}
	return huma.Format{
		Marshal:   huma.DefaultJSONFormat.Marshal,
		Unmarshal: d.unmarshal,
	}
}

// strictDecoder is json.Unmarshal that also refuses what encoding/json
// (and huma's validator, which follows it) forgive: an object key that
// matches a field only when case is ignored ({"ID": ...} for "id"), and a
// key given twice. Either would let a request say one thing to the schema
// check and another to the handler. It keeps the JSON names of the struct
// types it has decoded.
type strictDecoder struct {
	fields sync.Map // reflect.Type → map[string]reflect.Type (jsonFields)
}

func (d *strictDecoder) unmarshal(data []byte, v any) error {
	k := keyCheck{d: d, data: data}
	err := k.document(reflect.TypeOf(v))
	if errors.Is(err, errSyntax) {
		if err := json.Unmarshal(data, v); err != nil {
			return err // its syntax error says where
		}
		// json.Unmarshal took what keyCheck could not read: refuse
		// rather than leave the keys unchecked.
		return errors.New("body: not read as JSON")
	}
	if err != nil {
		if !json.Valid(data) {
			return json.Unmarshal(data, v) // a syntax error comes first
		}
		return err
	}
	return json.Unmarshal(data, v)
}

// jsonFields returns the JSON names of t's fields (embedded structs
// flattened) with their types.
func (d *strictDecoder) jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := d.fields.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := jsonFields(t)
	d.fields.Store(t, m)
	return m
}

// errSyntax is keyCheck's answer to what is not JSON: json.Unmarshal then
// says what is wrong.
var errSyntax = errors.New("JSON syntax")

// keyCheck walks one JSON document, checking the keys of its objects
// against the types they decode into. It reads only what it must of the
// text, so that checking costs a fraction of decoding.
type keyCheck struct {
	d    *strictDecoder
	data []byte
	i    int
}

// document checks the one JSON value of the text against t.
func (k *keyCheck) document(t reflect.Type) error {
	if err := k.value(t, "body"); err != nil {
		return err
	}
	k.space()
	if k.i != len(k.data) {
		return errSyntax
	}
	return nil
}

// value checks one JSON value against type t (nil: any type, only
// duplicate keys are checked); path names it in errors.
func (k *keyCheck) value(t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	k.space()
	if k.i >= len(k.data) {
		return errSyntax
	}
	switch c := k.data[k.i]; {
	case c == '{':
		k.i++
		return k.object(t, path)
	case c == '[':
		k.i++
		return k.array(t, path)
	case c == '"':
		_, _, err := k.str()
		return err
	case c == 't':
		return k.literal("true")
	case c == 'f':
		return k.literal("false")
	case c == 'n':
		return k.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return k.number()
	}
	return errSyntax
}

// object checks the members of an object whose '{' was read.
func (k *keyCheck) object(t reflect.Type, path string) error {
	var fields map[string]reflect.Type
	var elem reflect.Type
	if t != nil {
		switch t.Kind() {
		case reflect.Struct:
			fields = k.d.jsonFields(t)
		case reflect.Map:
			elem = t.Elem()
		}
	}
	var seen keySet
	k.space()
	if k.i < len(k.data) && k.data[k.i] == '}' {
		k.i++
		return nil
	}
	for {
		k.space()
		raw, escaped, err := k.str()
		if err != nil {
			return err
		}
		key := raw
		if escaped {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return errSyntax
			}
			key = []byte(s)
		} else {
			key = raw[1 : len(raw)-1]
		}
		if seen.add(key) {
			return fmt.Errorf("%s.%s: the key appears twice", path, key)
		}
		next := elem
		if fields != nil {
			ft, ok := fields[string(key)]
			if !ok {
				return fmt.Errorf("%s.%s: unexpected property (names are case-sensitive)", path, key)
			}
			next = ft
		}
		k.space()
		if k.i >= len(k.data) || k.data[k.i] != ':' {
			return errSyntax
		}
		k.i++
		sub := ""
		if k.opens() {
			sub = path + "." + string(key)
		}
		if err := k.value(next, sub); err != nil {
			return err
		}
		if done, err := k.after('}'); done || err != nil {
			return err
		}
	}
}

// array checks the elements of an array whose '[' was read.
func (k *keyCheck) array(t reflect.Type, path string) error {
	var elem reflect.Type
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	k.space()
	if k.i < len(k.data) && k.data[k.i] == ']' {
		k.i++
		return nil
	}
	for n := 0; ; n++ {
		sub := ""
		if k.opens() {
			sub = path + "[" + strconv.Itoa(n) + "]"
		}
		if err := k.value(elem, sub); err != nil {
			return err
		}
		if done, err := k.after(']'); done || err != nil {
			return err
		}
	}
}

// after reads what follows a member or element: ',' (another follows) or
// closer (the object or array ends: done).
func (k *keyCheck) after(closer byte) (done bool, err error) {
	k.space()
	if k.i >= len(k.data) {
		return false, errSyntax
	}
	switch k.data[k.i] {
	case ',':
		k.i++
		return false, nil
	case closer:
		k.i++
		return true, nil
	}
	return false, errSyntax
}

// opens reports whether the next value is an object or an array, whose
// keys an error may have to name by path.
func (k *keyCheck) opens() bool {
	k.space()
	return k.i < len(k.data) && (k.data[k.i] == '{' || k.data[k.i] == '[')
}

func (k *keyCheck) space() {
	for k.i < len(k.data) {
		switch k.data[k.i] {
		case ' ', '\t', '\n', '\r':
			k.i++
		default:
			return
		}
	}
}

// str reads a string and returns it with its quotes, and whether it must
// be decoded to be compared: it has escapes, or bytes beyond ASCII (which
// decode to themselves or, when not UTF-8, to U+FFFD). Control characters
// are refused, as JSON does; the escapes themselves are json.Unmarshal's
// to judge.
func (k *keyCheck) str() (raw []byte, escaped bool, err error) {
	if k.i >= len(k.data) || k.data[k.i] != '"' {
		return nil, false, errSyntax
	}
	start := k.i
	for k.i++; k.i < len(k.data); k.i++ {
		switch c := k.data[k.i]; {
		case c == '"':
			k.i++
			return k.data[start:k.i], escaped, nil
		case c == '\\':
			escaped = true
			k.i++ // the escaped character: '"' does not end the string
		case c < 0x20:
			return nil, false, errSyntax
		case c >= 0x80:
			escaped = true
		}
	}
	return nil, false, errSyntax
}

func (k *keyCheck) literal(word string) error {
	if !bytes.HasPrefix(k.data[k.i:], []byte(word)) {
		return errSyntax
	}
	k.i += len(word)
	return nil
}

// number skips a number; json.Unmarshal checks its form.
func (k *keyCheck) number() error {
	start := k.i
	for k.i < len(k.data) {
		switch c := k.data[k.i]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			k.i++
		default:
			return nil
		}
	}
	if k.i == start {
		return errSyntax
	}
	return nil
}

// keySet is the keys of one object: a list while it is short, a map
// beyond, so that an object of many keys costs linear time.
type keySet struct {
	list [16][]byte
	n    int
	set  map[string]struct{}
}

// add adds key and reports whether it was there already.
func (s *keySet) add(key []byte) bool {
	if s.set != nil {
		if _, ok := s.set[string(key)]; ok {
			return true
		}
		s.set[string(key)] = struct{}{}
		return false
	}
	for _, k := range s.list[:s.n] {
		if bytes.Equal(k, key) {
			return true
		}
	}
	if s.n < len(s.list) {
		s.list[s.n] = key
		s.n++
		return false
	}
	s.set = make(map[string]struct{}, 2*len(s.list))
	for _, k := range s.list {
		s.set[string(k)] = struct{}{}
	}
	s.set[string(key)] = struct{}{}
	return false
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
