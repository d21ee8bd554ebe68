package event

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Object builds an event's payload, a JSON object, field by field, with
// the bytes json.Marshal gives a struct of those fields in that order (no
// omitempty): the events of every admission are built this way, without
// reflection. The zero Object is an empty object.
type Object struct{ b []byte }

// NewObject returns an Object with room for size bytes.
func NewObject(size int) Object { return Object{b: make([]byte, 0, size)} }

func (o *Object) key(k string) {
	if len(o.b) == 0 {
		o.b = append(o.b, '{')
	} else {
		o.b = append(o.b, ',')
	}
	o.b = appendString(o.b, k)
	o.b = append(o.b, ':')
}

// String adds the field k with the string v.
func (o *Object) String(k, v string) {
	o.key(k)
	o.b = appendString(o.b, v)
}

// Int adds the field k with the integer v.
func (o *Object) Int(k string, v int64) {
	o.key(k)
	o.b = strconv.AppendInt(o.b, v, 10)
}

// Time adds the field k with the instant t, as time.Time's MarshalJSON
// renders it (RFC 3339 with the nanoseconds that are not zero). A year
// outside [0, 9999], which JSON cannot carry, panics as New does.
func (o *Object) Time(k string, t time.Time) {
	o.key(k)
	if y := t.Year(); y < 0 || y > 9999 {
		panic(fmt.Sprintf("event field %s: year %d outside [0, 9999]", k, y))
	}
	o.b = append(o.b, '"')
	o.b = t.AppendFormat(o.b, time.RFC3339Nano)
	o.b = append(o.b, '"')
}

// JSON returns the object's bytes; the Object must not be used after.
func (o *Object) JSON() json.RawMessage {
	if len(o.b) == 0 {
		return json.RawMessage("{}")
	}
	return append(o.b, '}')
}

// Event returns the event of the object as its data, as New would.
func (o *Object) Event(at time.Time, t Type, tenantID, leaseID string) Event {
	return Event{At: at.UTC(), Type: t, TenantID: tenantID, LeaseID: leaseID, Data: o.JSON()}
}

// appendString appends s as json.Marshal renders a string: plain
// printable ASCII as is, anything else (quotes, backslashes, control
// characters, the HTML characters <, > and &, invalid UTF-8, U+2028 and
// U+2029) through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, err := json.Marshal(s)
			if err != nil { // a string always marshals
				panic(fmt.Sprintf("event: marshal string: %v", err))
			}
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
