package cdc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/valyala/fastjson"
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
//
// An error wrapping ErrSchemaNotFound means the registry answered that the
// id does not exist: the record is undecodable. Any other error (the registry
// unreachable, a 5xx, a timeout) is an outage: Decode returns it wrapping
// ErrRegistryUnavailable, not ErrUndecodable, and the caller retries later.
type SchemaSource interface {
	SchemaByID(ctx context.Context, id int) (string, error)
}

// ErrSchemaNotFound is what a SchemaSource wraps when the registry says an id
// does not exist.
var ErrSchemaNotFound = errors.New("no such schema id in the registry")

// ErrRegistryUnavailable classifies decoding failures caused by the schema
// registry being unavailable: not the record's fault, retry later.
var ErrRegistryUnavailable = errors.New("schema registry unavailable")

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
	// Images makes Decode also encode each change's after image as the state
	// stores keep it (Change.Image): decoding runs beside the engine, which
	// then does not encode it on its own path.
	Images bool
}

// Decoder turns Debezium change records (JSON, JSON with the Kafka Connect
// schema/payload wrapper, or Avro in the Confluent wire format, told apart per
// record) into Changes whose contract columns are normalised (see ColumnType).
//
// A Decoder is safe for concurrent use. Create it with NewDecoder.
type Decoder struct {
	schemas SchemaSource
	topics  map[string]string   // topic → canonical table
	ignored map[string]string   // Debezium side topic → Ignored kind
	columns map[string][]string // canonical table → contract columns, sorted
	// colIndex is, per canonical table, each contract column's index in
	// columns: a JSON image's fields are matched to columns in one pass.
	colIndex map[string]map[string]int

	codecs  sync.Map    // schema id (int) → *avroSchema
	fetch   sync.Mutex  // serialises registry look-ups on cache misses
	connect schemaCache // semantic names of JSON Connect schemas, per topic
	images  bool
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
		schemas:  cfg.Schemas,
		topics:   make(map[string]string, len(Contract)),
		columns:  make(map[string][]string, len(Contract)),
		colIndex: make(map[string]map[string]int, len(Contract)),
		ignored:  ignoredTopics(cfg.PortalPrefix, cfg.ServicePrefix),
		images:   cfg.Images,
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
		index := make(map[string]int, len(names))
		for i, c := range names {
			index[c] = i
		}
		d.colIndex[table] = index
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

// Topic is the topic of a canonical table under the configured prefixes
// ("" for a table not in Contract).
func (d *Decoder) Topic(table string) string {
	for t, tb := range d.topics {
		if tb == table {
			return t
		}
	}
	return ""
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
// cancelled while resolving a schema, or the registry is unavailable): Decode
// returns it without ErrUndecodable so that callers do not dead-letter the
// record.
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
		if kind, side := d.ignored[topic]; side {
			return Change{Op: OpIgnore, Ignored: kind}, nil
		}
		return Change{}, errors.New("unknown topic")
	}
	if len(value) == 0 {
		id, err := d.keyID(ctx, key)
		if err != nil {
			return Change{}, err
		}
		return Change{Table: table, Op: OpTombstone, ID: id}, nil
	}

	var env envelope
	var err error
	if value[0] == 0 {
		env, err = d.avroEnvelope(ctx, value)
	} else {
		var p *fastjson.Parser
		env, p, err = d.jsonEnvelope(topic, value)
		if p != nil {
			defer parsers.Put(p)
		}
	}
	if err != nil {
		return Change{}, err
	}

	op, err := env.operation()
	if err != nil {
		return Change{}, err
	}
	ch := Change{Table: table, Op: op}
	switch op {
	case OpIgnore:
		ch.Table, ch.Ignored = "", IgnoredMessage
		return ch, nil
	case OpTruncate:
		if err := env.stamp(&ch); err != nil {
			return Change{}, err
		}
		return ch, nil
	}
	if ch.Before, err = d.normRow(table, "before", env.before, env.beforeBad, env.sem, op == OpDelete); err != nil {
		return Change{}, err
	}
	if op != OpDelete {
		if ch.After, err = d.normRow(table, "after", env.after, env.afterBad, env.sem, false); err != nil {
			return Change{}, err
		}
	}

	ch.ID = rowID(ch.After)
	if ch.ID == "" {
		ch.ID = rowID(ch.Before)
	}
	if ch.ID == "" {
		if ch.ID, err = d.keyID(ctx, key); err != nil {
			return Change{}, err
		}
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

	if err := env.stamp(&ch); err != nil {
		return Change{}, err
	}
	if d.images && ch.After != nil && len(ch.After.UnavailableColumns()) == 0 {
		// An image with an unchanged TOASTed value is completed by the
		// engine first, and encoded by the store then.
		buf := imageBufs.Get().(*[]byte)
		img, err := ch.After.AppendJSON((*buf)[:0])
		*buf = img[:0]
		if err != nil {
			imageBufs.Put(buf)
			return Change{}, fmt.Errorf("encode after image: %w", err)
		}
		ch.Image = bytes.Clone(img) // exactly its size: a store keeps it
		imageBufs.Put(buf)
	}
	return ch, nil
}

// imageBufs are the buffers Decode encodes images in before copying them out.
var imageBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
