package cdc

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/linkedin/goavro/v2"
)

// Default Debezium topic prefixes (topic.prefix of the two connectors), also
// the source part of the canonical table names.
const (
	defaultPortalPrefix  = "portal"
	defaultServicePrefix = "service"
)

// SchemaSource resolves a Confluent schema-registry id to the Avro schema text.
// It must be safe for concurrent use. The Decoder calls it at most once per
// successfully resolved id and caches the compiled schema; failures are not
// cached, so a later record with the same id asks again.
type SchemaSource interface {
	SchemaByID(ctx context.Context, id int) (string, error)
}

// DecoderConfig configures a Decoder.
type DecoderConfig struct {
	// PortalPrefix is the topic prefix of the Partner Portal connector: its
	// topics are "<PortalPrefix>.public.<table>". Default "portal".
	PortalPrefix string
	// ServicePrefix is the topic prefix of the Pexip Service connector.
	// Default "service".
	ServicePrefix string
	// Schemas resolves the schema ids of Avro (Confluent wire format) records
	// and keys. When nil, every Avro record fails with ErrUndecodable.
	Schemas SchemaSource
}

// Decoder turns Debezium change records (JSON, JSON with the Kafka Connect
// schema/payload wrapper, or Avro in the Confluent wire format, told apart per
// record) into Changes whose contract columns are normalised (see ColumnType).
//
// A Decoder is safe for concurrent use. Create it with NewDecoder.
type Decoder struct {
	schemas SchemaSource
	topics  map[string]string   // topic → canonical table
	columns map[string][]string // canonical table → contract columns, sorted

	codecs sync.Map   // schema id (int) → *avroSchema
	fetch  sync.Mutex // serialises registry look-ups on cache misses
}

// NewDecoder returns a Decoder for the tables of Contract under the configured
// topic prefixes (empty prefixes take the defaults).
func NewDecoder(cfg DecoderConfig) *Decoder {
	if cfg.PortalPrefix == "" {
		cfg.PortalPrefix = defaultPortalPrefix
	}
	if cfg.ServicePrefix == "" {
		cfg.ServicePrefix = defaultServicePrefix
	}
	d := &Decoder{
		schemas: cfg.Schemas,
		topics:  make(map[string]string, len(Contract)),
		columns: make(map[string][]string, len(Contract)),
	}
	for table, cols := range Contract {
		source, rest, _ := strings.Cut(table, ".")
		prefix := cfg.ServicePrefix
		if source == defaultPortalPrefix {
			prefix = cfg.PortalPrefix
		}
		d.topics[prefix+"."+rest] = table
		names := make([]string, 0, len(cols))
		for c := range cols {
			names = append(names, c)
		}
		sort.Strings(names)
		d.columns[table] = names
	}
	return d
}

// Table maps a topic "<prefix>.<schema>.<table>" to the canonical table name of
// the contract ("portal.public.license_plans"). ok is false for a table not in
// Contract or an unknown prefix.
func (d *Decoder) Table(topic string) (string, bool) {
	t, ok := d.topics[topic]
	return t, ok
}

// Topics returns every topic the decoder accepts, one per Contract table with
// the configured prefixes, sorted.
func (d *Decoder) Topics() []string {
	out := make([]string, 0, len(d.topics))
	for t := range d.topics {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// abortError marks a failure that is not the record's fault (the context was
// cancelled while resolving a schema): Decode returns it without
// ErrUndecodable so that callers do not dead-letter the record.
type abortError struct{ err error }

func (e *abortError) Error() string { return e.err.Error() }
func (e *abortError) Unwrap() error { return e.err }

// Decode decodes one Kafka record of topic.
//
// An empty value is a tombstone: Op OpTombstone, ID from the key (JSON, JSON
// with the schema/payload wrapper, Avro or a plain string; "" when none).
// Otherwise the value is a Debezium envelope with op c, u, d or r; its before
// and after images keep only the contract columns, normalised. Every failure
// wraps ErrUndecodable with a reason naming the record ("decode
// <topic>/<partition>@<offset>: <reason>"), except a cancelled ctx while
// resolving an Avro schema, which returns ctx's error instead.
//
// Decode is safe for concurrent use and never panics on malformed input.
func (d *Decoder) Decode(ctx context.Context, topic string, partition int32, offset int64, key, value []byte) (Change, error) {
	ch, err := d.decode(ctx, topic, key, value)
	if err != nil {
		var ae *abortError
		if errors.As(err, &ae) {
			return Change{}, fmt.Errorf("decode %s/%d@%d: %w", topic, partition, offset, ae.err)
		}
		return Change{}, fmt.Errorf("decode %s/%d@%d: %w: %w", topic, partition, offset, err, ErrUndecodable)
	}
	ch.Cause = Cause{Topic: topic, Partition: partition, Offset: offset}
	return ch, nil
}

// decode does the work of Decode; its errors are bare reasons.
func (d *Decoder) decode(ctx context.Context, topic string, key, value []byte) (Change, error) {
	table, ok := d.Table(topic)
	if !ok {
		return Change{}, errors.New("unknown topic")
	}
	if len(value) == 0 {
		return Change{Table: table, Op: OpTombstone, ID: d.keyID(ctx, key)}, nil
	}

	var env envelope
	var err error
	if value[0] == 0 {
		env, err = d.avroEnvelope(ctx, value)
	} else {
		env, err = jsonEnvelope(value)
	}
	if err != nil {
		return Change{}, err
	}

	op, err := env.operation()
	if err != nil {
		return Change{}, err
	}
	ch := Change{Table: table, Op: op}
	if ch.Before, err = d.normRow(table, "before", env.before, env.sem); err != nil {
		return Change{}, err
	}
	if ch.After, err = d.normRow(table, "after", env.after, env.sem); err != nil {
		return Change{}, err
	}

	ch.ID = rowID(ch.After)
	if ch.ID == "" {
		ch.ID = rowID(ch.Before)
	}
	if ch.ID == "" {
		ch.ID = d.keyID(ctx, key)
	}
	if ch.ID == "" {
		return Change{}, fmt.Errorf("no id: neither the images nor the key carry one (op %s)", op)
	}

	if op != OpDelete {
		if ch.After == nil {
			return Change{}, fmt.Errorf("op %s without after image", op)
		}
		for _, col := range Required[table] {
			if ch.After[col] == nil {
				return Change{}, fmt.Errorf("missing required column %s", col)
			}
		}
	}

	env.stamp(&ch)
	return ch, nil
}

// envelope is a Debezium change event with its images still raw (JSON values
// or plain Avro values), plus the semantic type names of the image columns
// when the record carried a schema.
type envelope struct {
	before, after any
	source        map[string]any
	op            any
	hasOp         bool
	tsMs          any
	sem           map[string]string // column → semantic type name ("io.debezium.time.Date")
}

// newEnvelope reads the envelope fields of a decoded JSON object or Avro record.
func newEnvelope(obj map[string]any, sem map[string]string) (envelope, error) {
	env := envelope{before: obj["before"], after: obj["after"], tsMs: obj["ts_ms"], sem: sem}
	env.op, env.hasOp = obj["op"]
	if src := obj["source"]; src != nil {
		m, ok := src.(map[string]any)
		if !ok {
			return envelope{}, fmt.Errorf("source is %s, not an object", describe(src))
		}
		env.source = m
	}
	return env, nil
}

// operation validates op.
func (e envelope) operation() (Op, error) {
	if !e.hasOp || e.op == nil {
		return "", errors.New("missing op")
	}
	s, ok := e.op.(string)
	if !ok {
		return "", fmt.Errorf("op is %s, not a string", describe(e.op))
	}
	switch op := Op(s); op {
	case OpCreate, OpUpdate, OpDelete, OpRead:
		return op, nil
	}
	return "", fmt.Errorf("unknown op %q", truncate(s))
}

// stamp sets Position, SourceTime and TsMs: Position is source.lsn, else
// source.ts_ms, else ts_ms; each time falls back to the other.
func (e envelope) stamp(ch *Change) {
	srcTs, hasSrcTs := asInt64(e.source["ts_ms"])
	envTs, hasEnvTs := asInt64(e.tsMs)
	switch lsn, hasLSN := asInt64(e.source["lsn"]); {
	case hasLSN:
		ch.Position = lsn
	case hasSrcTs:
		ch.Position = srcTs
	case hasEnvTs:
		ch.Position = envTs
	}
	switch {
	case hasSrcTs:
		ch.SourceTime = time.UnixMilli(srcTs).UTC()
	case hasEnvTs:
		ch.SourceTime = time.UnixMilli(envTs).UTC()
	}
	if hasEnvTs {
		ch.TsMs = time.UnixMilli(envTs).UTC()
	} else {
		ch.TsMs = ch.SourceTime
	}
}

// rowID returns the normalised id column of r ("" when absent).
func rowID(r Row) string {
	s, _ := r["id"].(string)
	return s
}

// ---- JSON ----

// jsonEnvelope decodes a JSON envelope, plain or inside the Kafka Connect
// {"schema": ..., "payload": ...} wrapper.
func jsonEnvelope(value []byte) (envelope, error) {
	v, err := parseJSON(value)
	if err != nil {
		return envelope{}, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return envelope{}, fmt.Errorf("JSON value is %s, not an object", describe(v))
	}
	var sem map[string]string
	if payload, wrapped := obj["payload"]; wrapped {
		if _, hasOp := obj["op"]; !hasOp {
			p, ok := payload.(map[string]any)
			if !ok {
				return envelope{}, fmt.Errorf("JSON payload is %s, not an object", describe(payload))
			}
			sem = connectSemantics(obj["schema"])
			obj = p
		}
	}
	return newEnvelope(obj, sem)
}

// parseJSON decodes exactly one JSON value, numbers as json.Number.
func parseJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not JSON: trailing data after the JSON value")
	}
	return v, nil
}

// connectSemantics reads the semantic type names ("name") of the columns of the
// before and after structs of a Kafka Connect JSON schema. Malformed schemas
// yield what could be read.
func connectSemantics(schema any) map[string]string {
	s, _ := schema.(map[string]any)
	fields, _ := s["fields"].([]any)
	sem := map[string]string{}
	for _, f := range fields {
		fm, _ := f.(map[string]any)
		if name, _ := fm["field"].(string); name != "before" && name != "after" {
			continue
		}
		cols, _ := fm["fields"].([]any)
		for _, c := range cols {
			cm, _ := c.(map[string]any)
			col, _ := cm["field"].(string)
			if n, _ := cm["name"].(string); col != "" && n != "" {
				sem[col] = n
			}
		}
	}
	return sem
}

// ---- Avro ----

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
		if ctx.Err() != nil {
			return nil, &abortError{err: fmt.Errorf("resolving schema id %d: %w", id, ctx.Err())}
		}
		return nil, fmt.Errorf("unknown schema id %d: %w", id, err)
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

// ---- keys ----

// keyID extracts the id from a record key: Avro (Confluent wire format), JSON
// ({"id": ..}, the schema/payload wrapper, or a bare string or number), or a
// plain UTF-8 string. It returns "" when the key holds no id.
func (d *Decoder) keyID(ctx context.Context, key []byte) string {
	if len(key) == 0 {
		return ""
	}
	if key[0] == 0 {
		v, _, err := d.decodeAvro(ctx, key)
		if err != nil {
			return ""
		}
		return idOf(v, 0)
	}
	if v, err := parseJSON(key); err == nil {
		return idOf(v, 0)
	}
	if utf8.Valid(key) {
		return string(key)
	}
	return ""
}

// idOf finds the id in a decoded key.
func idOf(v any, depth int) string {
	if depth > 4 {
		return ""
	}
	switch k := v.(type) {
	case map[string]any:
		if id, ok := k["id"]; ok {
			s, err := normText(id)
			if err != nil {
				return ""
			}
			return s
		}
		if p, ok := k["payload"]; ok {
			return idOf(p, depth+1)
		}
		return ""
	case nil:
		return ""
	}
	s, err := normText(v)
	if err != nil {
		return ""
	}
	return s
}

// ---- normalisation ----

// unavailableValue is Debezium's default unavailable.value.placeholder: the
// value of an unchanged TOASTed column in an update under REPLICA IDENTITY
// DEFAULT (inside a one-element list for arrays).
const unavailableValue = "__debezium_unavailable_value"

// isUnavailable reports whether v is Debezium's unavailable-value placeholder.
func isUnavailable(v any) bool {
	switch x := v.(type) {
	case string:
		return x == unavailableValue
	case []any:
		return len(x) == 1 && x[0] == unavailableValue
	case []string:
		return len(x) == 1 && x[0] == unavailableValue
	}
	return false
}

// normRow keeps the contract columns of an image, normalised. A nil image
// (JSON null or absent, Avro null) is a nil Row. Columns carrying Debezium's
// unavailable-value placeholder are left out, as if absent: the value did not
// change and Debezium does not know it.
func (d *Decoder) normRow(table, which string, img any, sem map[string]string) (Row, error) {
	if img == nil {
		return nil, nil
	}
	m, ok := img.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s image is %s, not an object", which, describe(img))
	}
	types := Contract[table]
	row := make(Row, len(types))
	for _, col := range d.columns[table] {
		v, present := m[col]
		if !present || isUnavailable(v) {
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
		return normText(v)
	case Integer:
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
	case Timestamp:
		return normTimestamp(v, sem)
	case Date:
		return normDate(v, sem)
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
