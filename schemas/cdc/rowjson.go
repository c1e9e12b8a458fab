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
func DecodeRow(b []byte) (Row, error) {
	p := rowParsers.Get()
	defer rowParsers.Put(p)
	return rowOf(p.ParseBytes(b))
}

// DecodeRowString is DecodeRow of a string (a Redis reply), without a copy
// of it to bytes.
func DecodeRowString(s string) (Row, error) {
	p := rowParsers.Get()
	defer rowParsers.Put(p)
	return rowOf(p.Parse(s))
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
			name, ok := columnNames[string(k)] // the contract's own string: no copy per row
			if !ok {
				name = string(k)
			}
			row[name], err = storedValue(v, &a)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("decode stored row: %w", err)
	}
	return row, nil
}

var rowParsers fastjson.ParserPool

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
