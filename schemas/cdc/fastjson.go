package cdc

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/valyala/fastjson"
)

// This file is the JSON side of the decoder, built for throughput: Debezium's
// JsonConverter with schemas.enable=true wraps every record in a schema of a
// few kilobytes that is the same for every record of a table. The decoder
// skips that schema by scanning (no parse), reads the semantic type names
// out of it once per distinct schema (cached by its exact bytes), and parses
// only the payload, with valyala/fastjson, reading nothing but the contract
// columns.

var parsers fastjson.ParserPool

// image is a row image still raw: a parsed JSON object or a plain Avro record.
type image interface {
	// field returns a column's raw value (nil for JSON null) and whether the
	// column is present.
	field(col string) (any, bool)
}

// mapImage is an image decoded to Go maps (Avro, encoding/json).
type mapImage map[string]any

func (m mapImage) field(col string) (any, bool) { v, ok := m[col]; return v, ok }

// jsonImage is an image parsed by fastjson; valid until its parser is reused.
type jsonImage struct {
	o *fastjson.Object
}

func (j jsonImage) field(col string) (any, bool) {
	v := j.o.Get(col)
	if v == nil {
		return nil, false
	}
	return plainJSON(v), true
}

// collect sets vals[i] to the value of the column index names i, in one
// pass over the image's fields (the first of a key that occurs twice, as
// fastjson.Object.Get finds it; nil for a column the image does not have),
// and returns an arena and a boxer sized for their strings: the row made of
// them holds one allocation for its strings' bytes and one for their
// interfaces' copies instead of two per column. One pass, not a
// Get per column (each a scan of the fields).
func (j jsonImage) collect(index map[string]int, vals []*fastjson.Value) (arena, boxer) {
	n, strs, nums := 0, 0, 0
	j.o.Visit(func(k []byte, v *fastjson.Value) {
		i, ok := index[string(k)]
		if !ok || vals[i] != nil {
			return
		}
		vals[i] = v
		switch v.Type() {
		case fastjson.TypeString:
			n += len(v.GetStringBytes())
			strs++
		case fastjson.TypeNumber:
			nums++
		}
	})
	return arena(make([]byte, 0, n)), newBoxer(strs, nums, 0)
}

// json is plainJSON(v), its string or integer boxed by b.
func (b *boxer) json(v *fastjson.Value) any {
	switch v.Type() {
	case fastjson.TypeString:
		return b.str(string(v.GetStringBytes()))
	case fastjson.TypeNumber:
		if n, err := v.Int64(); err == nil {
			return b.int(n)
		}
	}
	return plainJSON(v)
}

// plainJSON converts a fastjson value to the Go values encoding/json would
// give (numbers as int64 when integral, else float64).
func plainJSON(v *fastjson.Value) any {
	switch v.Type() {
	case fastjson.TypeNull:
		return nil
	case fastjson.TypeTrue:
		return true
	case fastjson.TypeFalse:
		return false
	case fastjson.TypeString:
		return string(v.GetStringBytes())
	case fastjson.TypeNumber:
		if n, err := v.Int64(); err == nil {
			return n
		}
		f, _ := v.Float64()
		return f
	case fastjson.TypeArray:
		a, _ := v.Array()
		out := make([]any, len(a))
		for i, e := range a {
			out[i] = plainJSON(e)
		}
		return out
	case fastjson.TypeObject:
		o, _ := v.Object()
		out := make(map[string]any, o.Len())
		o.Visit(func(k []byte, e *fastjson.Value) { out[string(k)] = plainJSON(e) })
		return out
	}
	return nil
}

// schemaCache remembers, per topic, the last Connect wrapper prefix seen (the
// bytes from the start of the record through `"payload":`) with the semantic
// names of its schema. Debezium writes the same schema, byte for byte, on
// every record of a table, so a record that starts with the cached prefix
// needs neither a scan nor a parse of its schema.
type schemaCache struct {
	mu sync.RWMutex
	m  map[string]cachedSchema
}

type cachedSchema struct {
	prefix []byte
	sem    map[string]string
}

// split returns the semantic names and the payload of a Connect-wrapped
// record; ok is false when value is not one.
func (c *schemaCache) split(topic string, value []byte) (sem map[string]string, payload []byte, ok bool) {
	c.mu.RLock()
	cs, cached := c.m[topic]
	c.mu.RUnlock()
	if cached && bytes.HasPrefix(value, cs.prefix) {
		if end := lastBrace(value); end > len(cs.prefix) {
			return cs.sem, value[len(cs.prefix):end], true
		}
	}
	schema, start, end, ok := splitConnect(value)
	if !ok {
		return nil, nil, false
	}
	if v, err := parseJSON(schema); err == nil {
		sem = connectSemantics(v)
	} else {
		sem = map[string]string{}
	}
	if skipSpace(value, end) == lastBrace(value) {
		// The payload is the wrapper's last member: cache the prefix.
		c.mu.Lock()
		if c.m == nil {
			c.m = map[string]cachedSchema{}
		}
		c.m[topic] = cachedSchema{prefix: bytes.Clone(value[:start]), sem: sem}
		c.mu.Unlock()
	}
	return sem, value[start:end], true
}

// lastBrace is the index of the closing '}' of value (trailing whitespace
// ignored), or -1.
func lastBrace(value []byte) int {
	i := len(value) - 1
	for i >= 0 && (value[i] == ' ' || value[i] == '\n' || value[i] == '\t' || value[i] == '\r') {
		i--
	}
	if i < 0 || value[i] != '}' {
		return -1
	}
	return i
}

// jsonEnvelope decodes a JSON envelope, plain or inside the Kafka Connect
// {"schema": ..., "payload": ...} wrapper. The envelope's images point into
// the parser's memory: put p back into parsers once they are normalised
// (p is nil when there is none to put back).
func (d *Decoder) jsonEnvelope(topic string, value []byte) (env envelope, p *fastjson.Parser, err error) {
	body, what := value, "JSON value"
	var sem map[string]string
	if s, payload, ok := d.connect.split(topic, value); ok {
		sem, body, what = s, payload, "JSON payload"
	}
	p = parsers.Get()
	release := func() { parsers.Put(p) }
	v, err := p.ParseBytes(body)
	if err != nil {
		release()
		return envelope{}, nil, fmt.Errorf("not JSON: %v", err)
	}
	obj, err := v.Object()
	if err != nil {
		release()
		return envelope{}, nil, fmt.Errorf("%s is %s, not an object", what, describeJSON(v))
	}
	if sem == nil && obj.Get("op") == nil && obj.Get("payload") != nil {
		// A wrapper splitConnect did not recognise (odd spacing, escapes):
		// the slow path reads it.
		release()
		env, err := jsonEnvelope(value)
		return env, nil, err
	}
	env = envelope{sem: sem}
	if b := obj.Get("before"); b != nil && b.Type() != fastjson.TypeNull {
		if o, err := b.Object(); err == nil {
			env.before = jsonImage{o: o}
		} else {
			env.beforeBad = describeJSON(b)
		}
	}
	if a := obj.Get("after"); a != nil && a.Type() != fastjson.TypeNull {
		if o, err := a.Object(); err == nil {
			env.after = jsonImage{o: o}
		} else {
			env.afterBad = describeJSON(a)
		}
	}
	if op := obj.Get("op"); op != nil {
		env.op, env.hasOp = opValue(op), true
	}
	box := newBoxer(1, 4, 0) // ts_ms, and the source's lsn, ts_ms, ts_us, sequence
	if ts := obj.Get("ts_ms"); ts != nil {
		env.tsMs = box.json(ts)
	}
	if src := obj.Get("source"); src != nil && src.Type() != fastjson.TypeNull {
		o, err := src.Object()
		if err != nil {
			release()
			return envelope{}, nil, fmt.Errorf("source is %s, not an object", describeJSON(src))
		}
		field := func(name string) any {
			if fv := o.Get(name); fv != nil {
				return box.json(fv)
			}
			return nil
		}
		env.source = sourceFields{lsn: field("lsn"), tsMs: field("ts_ms"), tsUs: field("ts_us"), sequence: field("sequence")}
	}
	return env, p, nil
}

// opValue is plainJSON of an envelope's op, without an allocation for the
// ops Debezium writes.
func opValue(v *fastjson.Value) any {
	if v.Type() == fastjson.TypeString {
		switch string(v.GetStringBytes()) {
		case "c":
			return "c"
		case "u":
			return "u"
		case "d":
			return "d"
		case "r":
			return "r"
		case "t":
			return "t"
		case "m":
			return "m"
		}
	}
	return plainJSON(v)
}

// describeJSON names the kind of a parsed value for error messages.
func describeJSON(v *fastjson.Value) string {
	return describe(plainJSON(v))
}

// splitConnect finds the schema and payload of a Kafka Connect JSON wrapper,
// {"schema": ..., "payload": ...}, by scanning: no value is parsed. It
// returns the schema's bytes and the payload's span [start, end) in value;
// ok is false when value is not such an object (a plain envelope has "op",
// "before", "after" or "source"),
// or the scan meets anything it does not expect (the parser then reads the
// value and reports what is wrong).
func splitConnect(value []byte) (schema []byte, start, end int, ok bool) {
	i := skipSpace(value, 0)
	if i >= len(value) || value[i] != '{' {
		return nil, 0, 0, false
	}
	i++
	start = -1
	for {
		i = skipSpace(value, i)
		if i >= len(value) {
			return nil, 0, 0, false
		}
		if value[i] == '}' {
			break
		}
		if value[i] != '"' {
			return nil, 0, 0, false
		}
		kEnd := skipString(value, i)
		if kEnd < 0 {
			return nil, 0, 0, false
		}
		key := value[i+1 : kEnd-1]
		switch string(key) {
		case "op", "before", "after", "source":
			// A plain envelope (Debezium writes before and after first):
			// its images need not be skipped to reach the op. One that
			// also has a payload reaches the slow path (jsonEnvelope).
			return nil, 0, 0, false
		}
		i = skipSpace(value, kEnd)
		if i >= len(value) || value[i] != ':' {
			return nil, 0, 0, false
		}
		i = skipSpace(value, i+1)
		vEnd := skipValue(value, i)
		if vEnd < 0 {
			return nil, 0, 0, false
		}
		switch string(key) {
		case "schema":
			schema = value[i:vEnd]
		case "payload":
			start, end = i, vEnd
		}
		i = skipSpace(value, vEnd)
		if i >= len(value) {
			return nil, 0, 0, false
		}
		if value[i] == ',' {
			i++
			continue
		}
		if value[i] != '}' {
			return nil, 0, 0, false
		}
		break
	}
	if start < 0 || skipSpace(value, i+1) != len(value) {
		return nil, 0, 0, false
	}
	return schema, start, end, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] ('"'), or -1.
// It jumps from quote to quote (bytes.IndexByte), so long strings cost little.
func skipString(b []byte, i int) int {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1
		}
		j += k
		// The quote ends the string unless an odd number of backslashes
		// precede it.
		n := 0
		for p := j - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return j + 1
		}
		j++
	}
}

// skipValue returns the index after the JSON value starting at b[i], or -1.
// Objects and arrays are skipped by nesting depth, strings honoured.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end := skipString(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}
