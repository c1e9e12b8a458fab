package cdc

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// AppendJSON appends the row as a JSON object (keys sorted) to dst. It
// handles the value types a Row holds (see Row) without reflection, and
// falls back to encoding/json for anything else. It is the encoding state
// stores rows in: decode it with json.Decoder.UseNumber.
func (r Row) AppendJSON(dst []byte) ([]byte, error) { return r.AppendJSONColumns(dst, nil) }

// AppendJSONColumns is AppendJSON of the columns keep accepts (all when keep
// is nil).
func (r Row) AppendJSONColumns(dst []byte, keep func(col string, v any) bool) ([]byte, error) {
	if r == nil {
		return append(dst, "null"...), nil
	}
	// Columns in sorted order, so that equal rows encode to equal bytes.
	var stack [32]column
	cols := stack[:0]
	for k, v := range r {
		if keep == nil || keep(k, v) {
			cols = append(cols, column{k, v})
		}
	}
	slices.SortFunc(cols, func(a, b column) int { return strings.Compare(a.name, b.name) })
	dst = append(dst, '{')
	for i, c := range cols {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSONString(dst, c.name)
		dst = append(dst, ':')
		var err error
		if dst, err = appendJSONValue(dst, c.value); err != nil {
			return nil, fmt.Errorf("column %s: %w", c.name, err)
		}
	}
	return append(dst, '}'), nil
}

// AppendJSONOf is AppendJSONColumns of the columns named in cols (sorted,
// each once) that keep accepts (all when keep is nil): a row of which few
// columns are wanted is encoded without a walk over all of its columns.
func (r Row) AppendJSONOf(dst []byte, cols []string, keep func(col string, v any) bool) ([]byte, error) {
	if r == nil {
		return append(dst, "null"...), nil
	}
	dst = append(dst, '{')
	first := true
	for _, c := range cols {
		v, ok := r[c]
		if !ok || keep != nil && !keep(c, v) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = AppendJSONString(dst, c)
		dst = append(dst, ':')
		var err error
		if dst, err = appendJSONValue(dst, v); err != nil {
			return nil, fmt.Errorf("column %s: %w", c, err)
		}
	}
	return append(dst, '}'), nil
}

// column is one column of a row being encoded.
type column struct {
	name  string
	value any
}

func appendJSONValue(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case unavailable:
		return nil, errors.New("unavailable value not merged (see Row.MergeUnavailable)")
	case string:
		return AppendJSONString(dst, v), nil
	case bool:
		return strconv.AppendBool(dst, v), nil
	case int64:
		return strconv.AppendInt(dst, v, 10), nil
	case int:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case json.Number:
		return append(dst, v...), nil
	case []string:
		dst = append(dst, '[')
		for i, s := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendJSONString(dst, s)
		}
		return append(dst, ']'), nil
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		return append(dst, b...), nil
	}
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string, escaping as encoding/json does
// for quotes, backslashes, control characters, invalid UTF-8 and U+2028/9,
// except that \b and \f are written \u0008 and \u000c (the same string
// decoded; stored images keep this form) and HTML characters are not escaped.
func AppendJSONString(dst []byte, s string) []byte { return appendQuoted(dst, s, false) }

// AppendJSONStringHTML appends s as a JSON string exactly as encoding/json's
// Encoder writes it by default: also \b and \f in short form, and <, > and &
// as \u003c, \u003e and \u0026.
func AppendJSONStringHTML(dst []byte, s string) []byte { return appendQuoted(dst, s, true) }

// plainSafe and htmlSafe are the ASCII bytes AppendJSONString and
// AppendJSONStringHTML copy as they are.
var plainSafe, htmlSafe = func() (plain, html [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		plain[b] = b != '"' && b != '\\'
		html[b] = plain[b] && b != '<' && b != '>' && b != '&'
	}
	return plain, html
}()

func appendQuoted(dst []byte, s string, asEncoder bool) []byte {
	safe := &plainSafe
	if asEncoder {
		safe = &htmlSafe
	}
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if safe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch {
			case b == '"' || b == '\\':
				dst = append(dst, '\\', b)
			case b == '\n':
				dst = append(dst, '\\', 'n')
			case b == '\r':
				dst = append(dst, '\\', 'r')
			case b == '\t':
				dst = append(dst, '\\', 't')
			case b == '\b' && asEncoder:
				dst = append(dst, '\\', 'b')
			case b == '\f' && asEncoder:
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(append(dst, s[start:]...), '"')
}
