// Package cdc holds portalmail's view of a Debezium change record: the decoded
// envelope (Change), the row images (Row) and the source contract (which tables
// and columns portalmail reads, and in which types).
//
// A Change is independent of the wire encoding (JSON with or without the
// schema/payload wrapper, or Avro in the Confluent wire format): the decoder
// normalises every column named in the contract to one Go type per column kind
// (see ColumnType), so the rest of portalmail never sees Debezium's encodings.
package cdc

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Op is Debezium's operation code.
type Op string

// Debezium operation codes, plus OpTombstone for the null-valued record that
// follows a delete.
const (
	OpCreate    Op = "c"
	OpUpdate    Op = "u"
	OpDelete    Op = "d"
	OpRead      Op = "r" // snapshot read: updates state, never mails
	OpTombstone Op = "tombstone"
	// OpTruncate is a TRUNCATE of the table (Debezium op "t", no key, no
	// images): every row of the table stored before it is forgotten.
	OpTruncate Op = "t"
	// OpIgnore is a record that carries nothing for portalmail: a logical
	// decoding message (op "m"), a heartbeat or a transaction-metadata
	// record; Change.Ignored says which.
	OpIgnore Op = "ignore"
)

// ErrUndecodable classifies every decoding failure; the wrapped message says why.
// Callers route such records to the DLQ: errors.Is(err, cdc.ErrUndecodable).
var ErrUndecodable = errors.New("undecodable change")

// Cause locates the Kafka record a change (or an email) came from.
type Cause struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Change is one decoded CDC record.
type Change struct {
	// Table is the canonical table name, "<source>.<schema>.<table>" with the
	// default source prefixes ("portal.public.license_plans"), whatever prefix
	// the topic carried.
	Table string
	Op    Op
	// ID is the row's primary key ("id" column, from after, before, or the record key).
	ID     string
	Before Row // nil when Debezium gives no before image
	After  Row // nil on delete and tombstone
	// Position orders changes of one row: Debezium's source.lsn, else a
	// source time (see Position). It is stable across redeliveries at new
	// offsets.
	Position Position
	// SourceTime is source.ts_ms; TsMs is the envelope's ts_ms (when Debezium
	// processed the change), which drives the simulated clock.
	SourceTime time.Time
	TsMs       time.Time
	Cause      Cause
	// Ignored names the kind of an OpIgnore record (IgnoredHeartbeat, ...).
	Ignored string
	// Image is After encoded as Row.AppendJSON writes it, which is how the
	// state stores keep images, when the Decoder was configured with Images
	// (else nil). Whoever replaces After sets Image to nil; a store may keep
	// Image as it is.
	Image []byte
}

// Row is one row image, column name to normalised value. Values are one of:
// nil, string, int64, bool, []string (as decoded), or json.Number, float64 and
// []any (after a JSON round trip through state). Use the accessors, which accept
// every one of those forms.
type Row map[string]any

// Str returns the column as a string: "" for nil or absent, "true"/"false" for
// booleans, decimal for numbers.
func (r Row) Str(col string) string {
	switch v := r[col].(type) {
	case nil, unavailable:
		return ""
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case int:
		return strconv.Itoa(v)
	case int32:
		return strconv.FormatInt(int64(v), 10)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case json.Number:
		return v.String()
	default:
		return fmt.Sprint(v)
	}
}

// Int returns the column as an integer; ok is false when absent, null or not a number.
func (r Row) Int(col string) (int64, bool) {
	switch v := r[col].(type) {
	case int64:
		return v, true
	case int:
		return int64(v), true
	case int32:
		return int64(v), true
	case float64:
		return int64(v), true
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n, true
		}
		f, err := v.Float64()
		return int64(f), err == nil
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// Bool returns the column as a boolean (false when absent or null).
func (r Row) Bool(col string) bool {
	switch v := r[col].(type) {
	case bool:
		return v
	case string:
		b, _ := strconv.ParseBool(v)
		return b
	}
	return false
}

// Time returns a timestamp or date column as a time in UTC. Dates ("2006-01-02")
// are midnight UTC of that day; "infinity" and "-infinity" are Forever and
// LongAgo. ok is false when absent, null, Unavailable or unparsable.
func (r Row) Time(col string) (time.Time, bool) {
	s, isStr := r[col].(string)
	if !isStr || s == "" {
		return time.Time{}, false
	}
	return ParseTime(s)
}

// Strings returns an array column (nil when absent or null).
func (r Row) Strings(col string) []string {
	switch v := r[col].(type) {
	case []string:
		return v
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// Has reports whether the column is present, not null and not Unavailable.
func (r Row) Has(col string) bool { return r != nil && r[col] != nil && !IsUnavailable(r[col]) }

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"}

// dateLayout is a date column's (and --until's short form).
const dateLayout = "2006-01-02"

// ParseTime parses the ISO-8601 forms Debezium and the normaliser produce,
// and "infinity" / "-infinity" as Forever / LongAgo.
func ParseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	switch s {
	case infinityText:
		return Forever, true
	case negInfinityText:
		return LongAgo, true
	}
	// A date has one layout; trying the others first would cost an error
	// (an allocation) each, on every date column of every change.
	if len(s) == len(dateLayout) {
		t, err := time.Parse(dateLayout, s)
		if err != nil {
			return time.Time{}, false
		}
		return t.UTC(), true
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
