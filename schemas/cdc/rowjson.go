package cdc

import (
	"encoding/json"
	"fmt"

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
	v, err := p.ParseBytes(b)
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
	o.Visit(func(k []byte, v *fastjson.Value) {
		if err == nil {
			name, ok := columnNames[string(k)] // the contract's own string: no copy per row
			if !ok {
				name = string(k)
			}
			row[name], err = storedValue(v)
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

func storedValue(v *fastjson.Value) (any, error) {
	switch v.Type() {
	case fastjson.TypeNull:
		return nil, nil
	case fastjson.TypeString:
		return string(v.GetStringBytes()), nil
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
		a, _ := v.Array()
		out := make([]string, 0, len(a))
		for _, e := range a {
			if e.Type() != fastjson.TypeString {
				return nil, fmt.Errorf("array element of type %s", e.Type())
			}
			out = append(out, string(e.GetStringBytes()))
		}
		return out, nil
	}
	return nil, fmt.Errorf("value of type %s", v.Type())
}
