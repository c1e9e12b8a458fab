package cdc

import (
	"encoding/json"
	"fmt"
	"unsafe"

	"github.com/valyala/fastjson"
)

// DecodeRow decodes what Row.AppendJSON wrote: an object of strings,
// integers, booleans, nulls and arrays of strings, to string, int64, bool,
// nil and []string (a number beyond int64 stays a json.Number). "null"
// decodes to a nil Row. Both state stores keep row images this way, and
// return them decoded so.
//
// An image exactly as AppendJSON writes it is decoded by a scanner of that
// form alone (decodeWritten); anything else (whitespace, escapes, numbers
// that are not int64, other values) by a JSON parser, to the same result.
func DecodeRow(b []byte) (Row, error) {
	if r, ok := decodeWritten(b); ok {
		return r, nil
	}
	return parseRow(b)
}

// parseRow is DecodeRow by the JSON parser alone.
func parseRow(b []byte) (Row, error) {
	p := rowParsers.Get()
	defer rowParsers.Put(p)
	return rowOf(p.ParseBytes(b))
}

// DecodeRowString is DecodeRow of a string (a Redis reply), without a copy
// of it to bytes.
func DecodeRowString(s string) (Row, error) {
	// decodeWritten only reads the bytes, and copies what it keeps.
	if r, ok := decodeWritten(unsafe.Slice(unsafe.StringData(s), len(s))); ok {
		return r, nil
	}
	p := rowParsers.Get()
	defer rowParsers.Put(p)
	return rowOf(p.Parse(s))
}

// decodeWritten decodes b when it is in the form Row.AppendJSON writes for
// the values stores keep: "null", or an object without whitespace whose
// strings hold no escape and no control character and whose values are
// strings, integers of at most 18 digits, true, false, null or arrays of
// strings. ok is false for anything else, which rowOf then decodes: the
// two agree on every input decodeWritten takes (FuzzDecodeRow).
//
// A row decoded here skips the parser's tree of values: its fields are
// scanned into spans, then copied into one arena.
func decodeWritten(b []byte) (_ Row, ok bool) {
	if string(b) == "null" {
		return nil, true
	}
	if len(b) < 2 || b[0] != '{' {
		return nil, false
	}
	var fieldStack [32]writtenField
	var elemStack [16]span
	fields, elems := fieldStack[:0], elemStack[:0]
	size := 0 // bytes of the strings made
	i := 1
	if b[i] == '}' {
		i++
	} else {
		for {
			var f writtenField
			if f.key, i, ok = scanPlainString(b, i); !ok || i >= len(b) || b[i] != ':' {
				return nil, false
			}
			if i++; i >= len(b) {
				return nil, false
			}
			switch c := b[i]; {
			case c == '"':
				f.kind = valueString
				if f.str, i, ok = scanPlainString(b, i); !ok {
					return nil, false
				}
				size += f.str.len()
			case c == '[':
				f.kind, f.first = valueStrings, len(elems)
				if i++; i < len(b) && b[i] == ']' {
					i++
					break
				}
				for more := true; more; {
					var e span
					if e, i, ok = scanPlainString(b, i); !ok {
						return nil, false
					}
					elems = append(elems, e)
					size += e.len()
					if i, more, ok = nextItem(b, i, ']'); !ok {
						return nil, false
					}
				}
				f.count = len(elems) - f.first
			case c == '-' || c >= '0' && c <= '9':
				f.kind = valueInt
				if f.n, i, ok = scanInt(b, i); !ok {
					return nil, false
				}
			case hasWord(b, i, "true"):
				f.kind, i = valueTrue, i+4
			case hasWord(b, i, "false"):
				f.kind, i = valueFalse, i+5
			case hasWord(b, i, "null"):
				f.kind, i = valueNull, i+4
			default:
				return nil, false
			}
			fields = append(fields, f)
			var more bool
			if i, more, ok = nextItem(b, i, '}'); !ok {
				return nil, false
			}
			if !more {
				break
			}
		}
	}
	if i != len(b) {
		return nil, false
	}
	var kinds [valueNull + 1]int
	for _, f := range fields {
		kinds[f.kind]++
	}
	row := make(Row, len(fields))
	a := arena(make([]byte, 0, size))
	box := newBoxer(kinds[valueString], kinds[valueInt], kinds[valueStrings])
	for _, f := range fields {
		name := columnName(b[f.key.from:f.key.to])
		switch f.kind {
		case valueString:
			row[name] = box.str(a.string(b[f.str.from:f.str.to]))
		case valueStrings:
			out := make([]string, f.count)
			for j, e := range elems[f.first : f.first+f.count] {
				out[j] = a.string(b[e.from:e.to])
			}
			row[name] = box.strings(out)
		case valueInt:
			row[name] = box.int(f.n)
		case valueTrue:
			row[name] = true
		case valueFalse:
			row[name] = false
		case valueNull:
			row[name] = nil
		}
	}
	return row, true
}

// writtenField is one field scanned by decodeWritten: its key, and its value
// by kind (a string's span, an integer, or elems[first:first+count]).
type writtenField struct {
	key, str     span
	kind         valueKind
	n            int64
	first, count int
}

type valueKind uint8

const (
	valueString valueKind = iota
	valueStrings
	valueInt
	valueTrue
	valueFalse
	valueNull
)

// span is b[from:to] of the input being scanned.
type span struct{ from, to int }

func (s span) len() int { return s.to - s.from }

// scanPlainString scans the string starting at b[i] (its opening quote) and
// returns its contents' span and the index after its closing quote; ok is
// false when there is none, or it holds an escape or a control character.
func scanPlainString(b []byte, i int) (s span, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return span{}, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return span{i + 1, j}, j + 1, true
		case c == '\\' || c < 0x20:
			return span{}, 0, false
		}
	}
	return span{}, 0, false
}

// scanInt scans the integer starting at b[i]: an optional minus, then 0 or
// 1 to 18 digits not starting with 0 (so it fits an int64), followed by a
// comma or the object's end; ok is false for anything else.
func scanInt(b []byte, i int) (n int64, next int, ok bool) {
	neg := b[i] == '-'
	if neg {
		i++
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + int64(b[i]-'0')
		if i++; i-start > 18 {
			return 0, 0, false
		}
	}
	switch {
	case i == start, b[start] == '0' && (i-start > 1 || neg), i >= len(b), b[i] != ',' && b[i] != '}':
		return 0, 0, false
	}
	if neg {
		n = -n
	}
	return n, i, true
}

// nextItem reads what follows an item of a list closed by close: a comma
// (more items follow) or close itself; next is the index after it, and ok is
// false for anything else.
func nextItem(b []byte, i int, close byte) (next int, more, ok bool) {
	if i >= len(b) {
		return 0, false, false
	}
	switch b[i] {
	case ',':
		return i + 1, true, true
	case close:
		return i + 1, false, true
	}
	return 0, false, false
}

// hasWord reports whether b holds w at i.
func hasWord(b []byte, i int, w string) bool {
	return len(b)-i >= len(w) && string(b[i:i+len(w)]) == w
}

// rowOf is the row of a parsed stored image.
func rowOf(v *fastjson.Value, err error) (Row, error) {
	if err != nil {
		return nil, fmt.Errorf("decode stored row: %w", err)
	}
	if v.Type() == fastjson.TypeNull {
		return nil, nil
	}
	o, err := v.Object()
	if err != nil {
		return nil, fmt.Errorf("decode stored row: %w", err)
	}
	row := make(Row, o.Len())
	// The row's strings are copied into one allocation, sized first.
	n := 0
	o.Visit(func(_ []byte, v *fastjson.Value) { n += stringBytes(v) })
	a := arena(make([]byte, 0, n))
	o.Visit(func(k []byte, v *fastjson.Value) {
		if err == nil {
			row[columnName(k)], err = storedValue(v, &a)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("decode stored row: %w", err)
	}
	return row, nil
}

var rowParsers fastjson.ParserPool

// columnName is k as a row's key: the contract's own string for a column it
// names (no copy per row), else a copy.
func columnName(k []byte) string {
	if name, ok := columnNames[string(k)]; ok {
		return name
	}
	return string(k)
}

// columnNames holds every column name of Contract, each as itself: DecodeRow
// keys its rows with these strings instead of a copy per row.
var columnNames = func() map[string]string {
	m := map[string]string{}
	for _, cols := range Contract {
		for c := range cols {
			m[c] = c
		}
	}
	return m
}()

// arena holds the bytes of one row's strings: a row decoded from JSON
// makes one allocation for all its strings instead of one per value. The
// strings share the arena's array, which nothing writes to again: bytes
// are only appended past the strings already made.
type arena []byte

// string copies b into the arena and returns it as a string.
func (a *arena) string(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	start := len(*a)
	*a = append(*a, b...) // sized in advance: a new array only if it was not
	return unsafe.String(&(*a)[start], len(b))
}

// stringBytes is how many bytes of strings storedValue makes of v.
func stringBytes(v *fastjson.Value) int {
	switch v.Type() {
	case fastjson.TypeString:
		return len(v.GetStringBytes())
	case fastjson.TypeArray:
		a, _ := v.Array()
		n := 0
		for _, e := range a {
			n += len(e.GetStringBytes())
		}
		return n
	}
	return 0
}

func storedValue(v *fastjson.Value, a *arena) (any, error) {
	switch v.Type() {
	case fastjson.TypeNull:
		return nil, nil
	case fastjson.TypeString:
		return a.string(v.GetStringBytes()), nil
	case fastjson.TypeTrue:
		return true, nil
	case fastjson.TypeFalse:
		return false, nil
	case fastjson.TypeNumber:
		if n, err := v.Int64(); err == nil {
			return n, nil
		}
		return json.Number(v.String()), nil
	case fastjson.TypeArray:
		elems, _ := v.Array()
		out := make([]string, 0, len(elems))
		for _, e := range elems {
			if e.Type() != fastjson.TypeString {
				return nil, fmt.Errorf("array element of type %s", e.Type())
			}
			out = append(out, a.string(e.GetStringBytes()))
		}
		return out, nil
	}
	return nil, fmt.Errorf("value of type %s", v.Type())
}
