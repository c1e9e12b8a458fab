package cdc

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/linkedin/goavro/v2"
)

// avroSchema is one compiled writer schema from the registry.
type avroSchema struct {
	id    int
	codec *goavro.Codec
	root  any                       // the schema as parsed JSON
	names map[string]map[string]any // named types by full name
	sem   map[string]string         // semantic names of the envelope's image columns
}

// avroEnvelope decodes a Confluent wire-format Avro envelope.
func (d *Decoder) avroEnvelope(ctx context.Context, value []byte) (envelope, error) {
	v, s, err := d.decodeAvro(ctx, value)
	if err != nil {
		return envelope{}, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return envelope{}, fmt.Errorf("schema id %d: Avro datum is %s, not a record", s.id, describe(v))
	}
	return newEnvelope(obj, s.sem)
}

// decodeAvro decodes a Confluent wire-format datum (0x00, 4-byte big-endian
// schema id, Avro binary) to plain Go values: unions unwrapped, records as
// map[string]any, arrays as []any.
func (d *Decoder) decodeAvro(ctx context.Context, b []byte) (any, *avroSchema, error) {
	if len(b) < 5 || b[0] != 0 {
		return nil, nil, fmt.Errorf("truncated Confluent wire-format header (%d bytes)", len(b))
	}
	id := int(binary.BigEndian.Uint32(b[1:5]))
	s, err := d.avroSchema(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if err := s.precheck(b[5:]); err != nil {
		return nil, nil, fmt.Errorf("schema id %d: invalid Avro binary: %v", id, err)
	}
	native, rest, err := s.codec.NativeFromBinary(b[5:])
	if err != nil {
		return nil, nil, fmt.Errorf("schema id %d: invalid Avro binary: %v", id, err)
	}
	if len(rest) != 0 {
		return nil, nil, fmt.Errorf("schema id %d: %d trailing bytes after the Avro datum", id, len(rest))
	}
	return s.plain(native, s.root, "", 0), s, nil
}

// avroSchema returns the compiled schema for id, resolving it on a cache miss.
func (d *Decoder) avroSchema(ctx context.Context, id int) (*avroSchema, error) {
	if s, ok := d.codecs.Load(id); ok {
		return s.(*avroSchema), nil
	}
	if d.schemas == nil {
		return nil, fmt.Errorf("Avro record with schema id %d but no schema registry configured", id)
	}
	d.fetch.Lock()
	defer d.fetch.Unlock()
	if s, ok := d.codecs.Load(id); ok {
		return s.(*avroSchema), nil
	}
	text, err := d.schemas.SchemaByID(ctx, id)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, &abortError{err: fmt.Errorf("resolving schema id %d: %w", id, ctx.Err())}
		case errors.Is(err, ErrSchemaNotFound):
			return nil, fmt.Errorf("unknown schema id %d: %w", id, err)
		}
		return nil, &abortError{err: fmt.Errorf("resolving schema id %d: %w: %w", id, ErrRegistryUnavailable, err)}
	}
	s, err := compileAvro(id, text)
	if err != nil {
		return nil, err
	}
	d.codecs.Store(id, s)
	return s, nil
}

// compileAvro compiles a schema text and indexes its named types.
func compileAvro(id int, text string) (*avroSchema, error) {
	codec, err := goavro.NewCodec(text)
	if err != nil {
		return nil, fmt.Errorf("schema id %d: invalid Avro schema: %v", id, err)
	}
	var root any
	if err := json.Unmarshal([]byte(text), &root); err != nil {
		root = strings.TrimSpace(text) // a bare primitive type name
	}
	s := &avroSchema{id: id, codec: codec, root: root, names: map[string]map[string]any{}}
	s.collectNames(root, "", 0)
	s.sem = s.envelopeSemantics()
	return s, nil
}

// maxSchemaDepth bounds the walks over a schema's JSON.
const maxSchemaDepth = 64

var avroPrimitives = map[string]bool{
	"null": true, "boolean": true, "int": true, "long": true,
	"float": true, "double": true, "bytes": true, "string": true,
}

// fullName is the full name of a named type node in the enclosing namespace.
func fullName(node map[string]any, enclosing string) string {
	name, _ := node["name"].(string)
	if strings.Contains(name, ".") {
		return name
	}
	ns, hasNS := node["namespace"].(string)
	if !hasNS {
		ns = enclosing
	}
	if ns == "" {
		return name
	}
	return ns + "." + name
}

// namespaceOf is the namespace part of a full name.
func namespaceOf(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[:i]
	}
	return ""
}

func isNamedKind(t string) bool { return t == "record" || t == "error" || t == "enum" || t == "fixed" }

// collectNames indexes every named type (record, enum, fixed) by full name.
func (s *avroSchema) collectNames(node any, ns string, depth int) {
	if depth > maxSchemaDepth {
		return
	}
	switch n := node.(type) {
	case []any:
		for _, b := range n {
			s.collectNames(b, ns, depth+1)
		}
	case map[string]any:
		switch t := n["type"].(type) {
		case string:
			switch {
			case isNamedKind(t):
				full := fullName(n, ns)
				s.names[full] = n
				fields, _ := n["fields"].([]any)
				for _, f := range fields {
					if fm, ok := f.(map[string]any); ok {
						s.collectNames(fm["type"], namespaceOf(full), depth+1)
					}
				}
			case t == "array":
				s.collectNames(n["items"], ns, depth+1)
			case t == "map":
				s.collectNames(n["values"], ns, depth+1)
			}
		case map[string]any, []any:
			s.collectNames(t, ns, depth+1)
		}
	}
}

// lookup resolves a type name reference in namespace ns.
func (s *avroSchema) lookup(ref, ns string) (map[string]any, string, bool) {
	if ns != "" && !strings.Contains(ref, ".") {
		if n, ok := s.names[ns+"."+ref]; ok {
			return n, ns + "." + ref, true
		}
	}
	n, ok := s.names[ref]
	return n, ref, ok
}

// typeName is the name goavro gives a union branch: the full name of a named
// type, "array"/"map", the primitive name, or "<primitive>.<logicalType>".
func (s *avroSchema) typeName(node any, ns string, depth int) string {
	if depth > maxSchemaDepth {
		return ""
	}
	switch n := node.(type) {
	case string:
		if avroPrimitives[n] {
			return n
		}
		if _, full, ok := s.lookup(n, ns); ok {
			return full
		}
		return n
	case map[string]any:
		switch t := n["type"].(type) {
		case string:
			if isNamedKind(t) {
				return fullName(n, ns)
			}
			if lt, ok := n["logicalType"].(string); ok && avroPrimitives[t] {
				return t + "." + lt
			}
			return t
		default:
			return s.typeName(t, ns, depth+1)
		}
	}
	return ""
}

func isNullType(node any) bool {
	if s, ok := node.(string); ok {
		return s == "null"
	}
	if m, ok := node.(map[string]any); ok {
		return m["type"] == "null"
	}
	return false
}

// branch picks the union branch goavro named key; failing an exact match, the
// only non-null branch (Debezium's unions are ["null", T]).
func (s *avroSchema) branch(union []any, key, ns string) (any, bool) {
	var nonNull []any
	for _, b := range union {
		if s.typeName(b, ns, 0) == key {
			return b, true
		}
		if !isNullType(b) {
			nonNull = append(nonNull, b)
		}
	}
	if len(nonNull) == 1 {
		return nonNull[0], true
	}
	return nil, false
}

// plain converts a goavro native value of schema to plain Go values: union
// wrappers removed, recursively. Values that do not match the schema are
// returned as they are (normalisation then reports their kind).
func (s *avroSchema) plain(v any, schema any, ns string, depth int) any {
	if v == nil || depth > maxSchemaDepth {
		return v
	}
	switch sc := schema.(type) {
	case string:
		if avroPrimitives[sc] {
			return v
		}
		if n, full, ok := s.lookup(sc, ns); ok {
			return s.plain(v, n, namespaceOf(full), depth+1)
		}
	case []any:
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			return v
		}
		for k, inner := range m {
			if b, ok := s.branch(sc, k, ns); ok {
				return s.plain(inner, b, ns, depth+1)
			}
			return inner
		}
	case map[string]any:
		switch t := sc["type"].(type) {
		case string:
			switch {
			case t == "record" || t == "error":
				m, ok := v.(map[string]any)
				if !ok {
					return v
				}
				inner := namespaceOf(fullName(sc, ns))
				out := make(map[string]any, len(m))
				for k, val := range m {
					out[k] = val
				}
				fields, _ := sc["fields"].([]any)
				for _, f := range fields {
					fm, _ := f.(map[string]any)
					name, _ := fm["name"].(string)
					if val, ok := m[name]; ok {
						out[name] = s.plain(val, fm["type"], inner, depth+1)
					}
				}
				return out
			case t == "array":
				a, ok := v.([]any)
				if !ok {
					return v
				}
				out := make([]any, len(a))
				for i, e := range a {
					out[i] = s.plain(e, sc["items"], ns, depth+1)
				}
				return out
			case t == "map":
				m, ok := v.(map[string]any)
				if !ok {
					return v
				}
				out := make(map[string]any, len(m))
				for k, e := range m {
					out[k] = s.plain(e, sc["values"], ns, depth+1)
				}
				return out
			case isNamedKind(t) || avroPrimitives[t]:
				return v
			default:
				return s.plain(v, t, ns, depth+1) // {"type": "SomeNamedType"}
			}
		default:
			return s.plain(v, t, ns, depth+1) // {"type": {...}} or {"type": [...]}
		}
	}
	return v
}

// resolveRecord follows unions (their non-null branch), nesting and name
// references to a record node; ok is false when node is not a record.
func (s *avroSchema) resolveRecord(node any, ns string, depth int) (rec map[string]any, recNS string, ok bool) {
	if depth > maxSchemaDepth {
		return nil, "", false
	}
	switch n := node.(type) {
	case string:
		if m, full, found := s.lookup(n, ns); found {
			return s.resolveRecord(m, namespaceOf(full), depth+1)
		}
	case []any:
		for _, b := range n {
			if !isNullType(b) {
				return s.resolveRecord(b, ns, depth+1)
			}
		}
	case map[string]any:
		switch t := n["type"].(type) {
		case string:
			if t == "record" || t == "error" {
				return n, namespaceOf(fullName(n, ns)), true
			}
			if !avroPrimitives[t] && !isNamedKind(t) && t != "array" && t != "map" {
				return s.resolveRecord(t, ns, depth+1)
			}
		default:
			return s.resolveRecord(t, ns, depth+1)
		}
	}
	return nil, "", false
}

// envelopeSemantics reads the semantic type names of the before/after image
// columns: "connect.name" (the AvroConverter's annotation), else the Avro
// logicalType mapped to its Kafka Connect equivalent.
func (s *avroSchema) envelopeSemantics() map[string]string {
	sem := map[string]string{}
	root, ns, ok := s.resolveRecord(s.root, "", 0)
	if !ok {
		return sem
	}
	fields, _ := root["fields"].([]any)
	for _, f := range fields {
		fm, _ := f.(map[string]any)
		if name, _ := fm["name"].(string); name != "before" && name != "after" {
			continue
		}
		rec, recNS, ok := s.resolveRecord(fm["type"], ns, 0)
		if !ok {
			continue
		}
		cols, _ := rec["fields"].([]any)
		for _, c := range cols {
			cm, _ := c.(map[string]any)
			col, _ := cm["name"].(string)
			if n := s.semanticOf(cm["type"], recNS, 0); col != "" && n != "" {
				sem[col] = n
			}
		}
	}
	return sem
}

// semanticOf is the semantic type name of one column type.
func (s *avroSchema) semanticOf(node any, ns string, depth int) string {
	if depth > maxSchemaDepth {
		return ""
	}
	switch n := node.(type) {
	case string:
		if m, full, ok := s.lookup(n, ns); ok {
			return s.semanticOf(m, namespaceOf(full), depth+1)
		}
	case []any:
		for _, b := range n {
			if !isNullType(b) {
				return s.semanticOf(b, ns, depth+1)
			}
		}
	case map[string]any:
		if cn, ok := n["connect.name"].(string); ok {
			return cn
		}
		switch n["logicalType"] {
		case "timestamp-millis":
			return semConnectTimestamp
		case "timestamp-micros":
			return semMicroTimestamp
		case "date":
			return semConnectDate
		}
		switch t := n["type"].(type) {
		case map[string]any, []any:
			return s.semanticOf(t, ns, depth+1)
		}
	}
	return ""
}

// ---- Avro pre-check ----

// goavro sizes its array and map allocations by the block count read from the
// data (up to 2^31 items), so a few corrupt bytes can make it allocate tens of
// gigabytes. precheck walks the datum against the schema first and rejects
// block counts the remaining bytes cannot hold, and nesting deeper than
// maxDataDepth. It fails open (returns nil) where it does not understand the
// schema, leaving the verdict to goavro.

// maxDataDepth bounds the nesting of one datum (Debezium's is about 4).
const maxDataDepth = 256

// zeroSizeAllowance is how many zero-byte items (null, empty records) one datum
// may hold beyond its byte length.
const zeroSizeAllowance = 1 << 16

var errUnsupported = errors.New("schema not understood by the pre-check")

type avroWalk struct {
	s      *avroSchema
	budget int64 // items the datum may still declare
}

func (s *avroSchema) precheck(buf []byte) error {
	w := &avroWalk{s: s, budget: int64(len(buf)) + zeroSizeAllowance}
	_, err := w.skip(s.root, "", buf, 0)
	if errors.Is(err, errUnsupported) {
		return nil
	}
	return err
}

func readVarint(buf []byte) (int64, []byte, error) {
	v, n := binary.Varint(buf)
	if n <= 0 {
		return 0, nil, errors.New("short buffer or malformed varint")
	}
	return v, buf[n:], nil
}

func need(buf []byte, n int64) ([]byte, error) {
	if n < 0 || n > int64(len(buf)) {
		return nil, fmt.Errorf("length %d exceeds the %d bytes left", n, len(buf))
	}
	return buf[n:], nil
}

// skip consumes one datum of type node from buf.
func (w *avroWalk) skip(node any, ns string, buf []byte, depth int) ([]byte, error) {
	if depth > maxDataDepth {
		return nil, fmt.Errorf("datum nested deeper than %d", maxDataDepth)
	}
	switch n := node.(type) {
	case string:
		switch n {
		case "null":
			return buf, nil
		case "boolean":
			return need(buf, 1)
		case "int", "long":
			_, rest, err := readVarint(buf)
			return rest, err
		case "float":
			return need(buf, 4)
		case "double":
			return need(buf, 8)
		case "bytes", "string":
			size, rest, err := readVarint(buf)
			if err != nil {
				return nil, err
			}
			return need(rest, size)
		}
		if m, full, ok := w.s.lookup(n, ns); ok {
			return w.skip(m, namespaceOf(full), buf, depth+1)
		}
		return nil, errUnsupported
	case []any:
		idx, rest, err := readVarint(buf)
		if err != nil {
			return nil, err
		}
		if idx < 0 || idx >= int64(len(n)) {
			return nil, fmt.Errorf("union index %d out of range", idx)
		}
		return w.skip(n[idx], ns, rest, depth+1)
	case map[string]any:
		t, isName := n["type"].(string)
		if !isName {
			return w.skip(n["type"], ns, buf, depth+1)
		}
		switch t {
		case "record", "error":
			inner := namespaceOf(fullName(n, ns))
			fields, _ := n["fields"].([]any)
			for _, f := range fields {
				fm, ok := f.(map[string]any)
				if !ok {
					return nil, errUnsupported
				}
				var err error
				if buf, err = w.skip(fm["type"], inner, buf, depth+1); err != nil {
					return nil, err
				}
			}
			return buf, nil
		case "enum":
			_, rest, err := readVarint(buf)
			return rest, err
		case "fixed":
			size, ok := n["size"].(float64)
			if !ok {
				return nil, errUnsupported
			}
			return need(buf, int64(size))
		case "array":
			return w.blocks(buf, func(b []byte) ([]byte, error) {
				return w.skip(n["items"], ns, b, depth+1)
			})
		case "map":
			return w.blocks(buf, func(b []byte) ([]byte, error) {
				b, err := w.skip("string", ns, b, depth+1)
				if err != nil {
					return nil, err
				}
				return w.skip(n["values"], ns, b, depth+1)
			})
		}
		return w.skip(t, ns, buf, depth+1) // primitive with attributes, or a name
	}
	return nil, errUnsupported
}

// blocks consumes the blocks of an array or map, charging every declared item
// to the datum's budget before any is read.
func (w *avroWalk) blocks(buf []byte, item func([]byte) ([]byte, error)) ([]byte, error) {
	for {
		count, rest, err := readVarint(buf)
		if err != nil {
			return nil, err
		}
		buf = rest
		if count == 0 {
			return buf, nil
		}
		if count < 0 {
			if count == math.MinInt64 {
				return nil, fmt.Errorf("block count %d", count)
			}
			count = -count
			if _, buf, err = readVarint(buf); err != nil { // block size in bytes
				return nil, err
			}
		}
		if w.budget -= count; w.budget < 0 || count > int64(len(buf))+zeroSizeAllowance {
			return nil, fmt.Errorf("block of %d items cannot fit in %d bytes", count, len(buf))
		}
		for range count {
			if buf, err = item(buf); err != nil {
				return nil, err
			}
		}
	}
}
