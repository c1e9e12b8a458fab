package cdc

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// normRow keeps the contract columns of an image, normalised. A nil image
// (JSON null or absent, Avro null) is a nil Row. A column carrying Debezium's
// unavailable-value placeholder holds Unavailable (see debezium.go): the
// value did not change and Debezium does not know it; the engine takes it
// from the before image or the stored one. With idOnly, only the id column is
// read: a delete's before image under the default replica identity holds the
// key and schema defaults in the NOT NULL columns, which are not data.
func (d *Decoder) normRow(table, which string, img image, bad string, sem map[string]string, idOnly bool) (Row, error) {
	if bad != "" {
		return nil, fmt.Errorf("%s image is %s, not an object", which, bad)
	}
	if img == nil {
		return nil, nil
	}
	types := Contract[table]
	if idOnly {
		id, _ := img.field("id")
		v, err := normValue(id, Text, "")
		if err != nil {
			return nil, fmt.Errorf("%s column %s.id: %w", which, table, err)
		}
		return Row{"id": v}, nil
	}
	cols := d.columns[table]
	if j, ok := img.(jsonImage); ok && len(cols) <= maxCollected {
		var vals [maxCollected]*fastjson.Value
		a, box := j.collect(d.colIndex[table], vals[:len(cols)])
		return d.normColumns(table, which, cols, types, sem, func(i int) (any, bool) {
			v := vals[i]
			if v == nil {
				return nil, false
			}
			if v.Type() == fastjson.TypeString {
				return box.str(a.string(v.GetStringBytes())), true
			}
			return box.json(v), true
		})
	}
	return d.normColumns(table, which, cols, types, sem, func(i int) (any, bool) { return img.field(cols[i]) })
}

// maxCollected is how many contract columns a table may have for its JSON
// images to be read in one pass (jsonImage.collect); every table of the
// contract has fewer.
const maxCollected = 32

// normColumns makes the row of the contract columns cols of table, the
// value of column i given by field.
func (d *Decoder) normColumns(table, which string, cols []string, types map[string]ColumnType, sem map[string]string, field func(i int) (any, bool)) (Row, error) {
	row := make(Row, len(types))
	for i, col := range cols {
		v, present := field(i)
		if !present {
			continue
		}
		if isUnavailable(v) {
			row[col] = Unavailable
			continue
		}
		nv, err := normValue(v, types[col], sem[col])
		if err != nil {
			return nil, fmt.Errorf("%s column %s.%s: %w", which, table, col, err)
		}
		row[col] = nv
	}
	return row, nil
}

// normValue normalises one non-image column value to the Go type of typ; nil
// stays nil.
func normValue(v any, typ ColumnType, sem string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case Text:
		if _, ok := v.(string); ok {
			return v, nil // as it is: converting it back to any would copy it
		}
		return normText(v)
	case Integer:
		if _, ok := v.(int64); ok {
			return v, nil // as it is, not boxed again
		}
		if n, ok := asInt64(v); ok {
			return n, nil
		}
		if s, ok := v.(string); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
				return n, nil
			}
		}
		return nil, fmt.Errorf("cannot use %s as integer", describe(v))
	case Boolean:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
				return b, nil
			}
		default:
			if n, ok := asInt64(v); ok && (n == 0 || n == 1) {
				return n == 1, nil
			}
		}
		return nil, fmt.Errorf("cannot use %s as boolean", describe(v))
	case Timestamp, Date:
		// Most values are written as they normalise: those are kept as
		// they are, not copied.
		var buf [48]byte
		var b []byte
		var err error
		if typ == Timestamp {
			b, err = appendTimestamp(buf[:0], v, sem)
		} else {
			b, err = appendDate(buf[:0], v, sem)
		}
		if err != nil {
			return nil, err
		}
		if s, ok := v.(string); ok && s == string(b) {
			return v, nil
		}
		return string(b), nil
	case TextArray:
		return normArray(v)
	}
	return nil, fmt.Errorf("unknown column type %d", typ)
}

// normText renders scalars as text: strings as they are, numbers in decimal,
// booleans as "true"/"false", times as RFC 3339 UTC. Objects, arrays and bytes
// are errors.
func normText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	case int:
		return strconv.Itoa(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), nil
	case bool:
		return strconv.FormatBool(x), nil
	case *big.Rat:
		if x != nil {
			if x.IsInt() {
				return x.Num().String(), nil
			}
			return strings.TrimRight(x.FloatString(30), "0"), nil
		}
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	}
	return "", fmt.Errorf("cannot use %s as text", describe(v))
}

// normArray normalises a text[] value; null elements are dropped.
func normArray(v any) ([]string, error) {
	switch x := v.(type) {
	case []string:
		return append([]string{}, x...), nil
	case []any:
		out := make([]string, 0, len(x))
		for i, e := range x {
			if e == nil {
				continue
			}
			s, err := normText(e)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("cannot use %s as text array", describe(v))
}

// describe names the kind of a decoded value for error messages, with the
// value itself for scalars.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("string %q", truncate(x))
	case json.Number:
		return "number " + truncate(x.String())
	case int64, int32, int, float64, float32:
		return fmt.Sprintf("number %v", x)
	case *big.Rat:
		return "decimal"
	case bool:
		return fmt.Sprintf("boolean %t", x)
	case map[string]any:
		return "object"
	case []any, []string:
		return "array"
	case []byte:
		return "bytes"
	case time.Time:
		return "time " + x.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("%T", v)
}

// truncate shortens s for error messages.
func truncate(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
