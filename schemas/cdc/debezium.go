package cdc

// This file holds the rules portalmail follows for what real Debezium
// (PostgreSQL connector, pgoutput) sends, in one place:
//
//   - ops: c, u, d, r as changes; t (TRUNCATE) as OpTruncate; m (a logical
//     decoding message) ignored;
//   - topics next to the table topics: heartbeats (__debezium-heartbeat.<prefix>),
//     transaction metadata (<prefix>.transaction) and logical decoding
//     messages (<prefix>.message) are ignored, never dead-lettered;
//   - positions: source.lsn (a number or a numeric string), else the second
//     element of source.sequence, else source.ts_us, else source.ts_ms, else
//     the envelope's ts_ms (see Position);
//   - unavailable values: an unchanged TOASTed column under REPLICA IDENTITY
//     DEFAULT arrives as the placeholder __debezium_unavailable_value (inside a
//     one-element array for arrays, base64 of it for bytes) and decodes to
//     Unavailable, meaning "unchanged";
//   - 'infinity' and '-infinity' in timestamptz and date columns decode to
//     "infinity" and "-infinity" (Row.Time reads them as Forever and LongAgo);
//   - deletes under the default replica identity carry only the key in their
//     before image (the other NOT NULL columns hold schema defaults): only the
//     id is read from a delete.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// unavailableValue is Debezium's default unavailable.value.placeholder.
const unavailableValue = "__debezium_unavailable_value"

// unavailableBase64 is the placeholder in a bytes column (base64 of its UTF-8).
const unavailableBase64 = "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ=="

// unavailable is the type of Unavailable.
type unavailable struct{}

// Unavailable is the value of a column whose value Debezium did not have: an
// unchanged TOASTed column of an update under REPLICA IDENTITY DEFAULT. It
// means "unchanged": before a change is stored, the engine replaces it by the
// value of the before image or of the stored image (see MergeUnavailable).
// Row accessors read it as absent.
var Unavailable any = unavailable{}

// IsUnavailable reports whether v is Unavailable.
func IsUnavailable(v any) bool { _, ok := v.(unavailable); return ok }

// isUnavailable reports whether a raw decoded value is Debezium's placeholder.
func isUnavailable(v any) bool {
	switch x := v.(type) {
	case string:
		return x == unavailableValue || x == unavailableBase64
	case []byte:
		return string(x) == unavailableValue
	case []any:
		return len(x) == 1 && isUnavailable(x[0])
	case []string:
		return len(x) == 1 && x[0] == unavailableValue
	}
	return false
}

// UnavailableColumns lists the columns of r holding Unavailable.
func (r Row) UnavailableColumns() []string {
	var cols []string
	for c, v := range r {
		if IsUnavailable(v) {
			cols = append(cols, c)
		}
	}
	return cols
}

// MergeUnavailable returns r with every Unavailable column replaced by the
// value the column has in the first of from (a before image, the stored
// image, ...) that holds a real value for it, and the columns no source could
// fill (left out of the result). r itself is not modified; r is returned as
// it is when it holds no Unavailable.
func (r Row) MergeUnavailable(from ...Row) (Row, []string) {
	if r == nil {
		return nil, nil
	}
	var out Row
	var unresolved []string
	for c, v := range r {
		if !IsUnavailable(v) {
			continue
		}
		if out == nil {
			out = make(Row, len(r))
			for k, x := range r {
				out[k] = x
			}
		}
		delete(out, c)
		for _, src := range from {
			if fv, ok := src[c]; ok && !IsUnavailable(fv) {
				out[c] = fv
				break
			}
		}
		if _, ok := out[c]; !ok {
			unresolved = append(unresolved, c)
		}
	}
	if out == nil {
		return r, nil
	}
	return out, unresolved
}

// Kinds of records that carry nothing for portalmail (Change.Ignored).
const (
	IgnoredHeartbeat   = "heartbeat"
	IgnoredTransaction = "transaction"
	IgnoredMessage     = "message"
)

// ignoredTopics maps the Debezium side topics of both connectors to their kind.
func ignoredTopics(prefixes ...string) map[string]string {
	m := map[string]string{}
	for _, p := range prefixes {
		m["__debezium-heartbeat."+p] = IgnoredHeartbeat
		m[p+".transaction"] = IgnoredTransaction
		m[p+".message"] = IgnoredMessage
	}
	return m
}

// operation validates op: the data ops, t (truncate) and m (message).
func (e envelope) operation() (Op, error) {
	if !e.hasOp || e.op == nil {
		return "", errors.New("missing op")
	}
	s, ok := e.op.(string)
	if !ok {
		return "", fmt.Errorf("op is %s, not a string", describe(e.op))
	}
	switch op := Op(s); op {
	case OpCreate, OpUpdate, OpDelete, OpRead, OpTruncate:
		return op, nil
	case "m":
		return OpIgnore, nil
	}
	return "", fmt.Errorf("unknown op %q", truncate(s))
}

// maxMillis is the last millisecond of year 9999: times past it cannot be
// written in RFC 3339 (and no database change happens there).
var maxMillis = time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC).UnixMilli()

// stamp sets Position, SourceTime and TsMs (see the rules above); each time
// falls back to the other. Times must lie in years 1970..9999 and an LSN in
// 1..MaxLSN: anything else is refused (errPosition), since one absurd
// position would freeze its row or break the clock.
func (e envelope) stamp(ch *Change) error {
	srcMs, hasSrcMs, err := sourceInt(e.source.tsMs, "ts_ms")
	if err != nil {
		return err
	}
	envMs, hasEnvMs := asInt64(e.tsMs)
	if !hasEnvMs && e.tsMs != nil {
		if envMs, hasEnvMs = numericString(e.tsMs); !hasEnvMs {
			return fmt.Errorf("%w: ts_ms is %s", errPosition, describe(e.tsMs))
		}
	}
	for _, t := range []struct {
		name string
		ms   int64
		has  bool
	}{{"source.ts_ms", srcMs, hasSrcMs}, {"ts_ms", envMs, hasEnvMs}} {
		if t.has && (t.ms < 0 || t.ms > maxMillis) {
			return fmt.Errorf("%w: %s %d is outside years 1970..9999", errPosition, t.name, t.ms)
		}
	}
	lsn, hasLSN, err := sourceInt(e.source.lsn, "lsn")
	if err != nil {
		return err
	}
	if !hasLSN {
		lsn, hasLSN = sequenceLSN(e.source.sequence)
	}
	us, hasUs, err := sourceInt(e.source.tsUs, "ts_us")
	if err != nil {
		return err
	}
	switch {
	case hasLSN:
		if lsn <= 0 || lsn > MaxLSN {
			return fmt.Errorf("%w: lsn %d is outside 1..2^60", errPosition, lsn)
		}
		ch.Position = Position{Kind: LSN, N: lsn}
	case hasUs && us >= 0 && us/1000 <= maxMillis:
		ch.Position = Position{Kind: SourceMicros, N: us}
	case hasSrcMs:
		ch.Position = Position{Kind: SourceMillis, N: srcMs}
	case hasEnvMs:
		ch.Position = Position{Kind: SourceMillis, N: envMs}
	}
	if ch.Position.Kind != LSN {
		img := ch.After
		if img == nil {
			img = ch.Before
		}
		ch.Position.Image = imageDigest(ch.Op, img)
	}
	switch {
	case hasSrcMs:
		ch.SourceTime = time.UnixMilli(srcMs).UTC()
	case hasEnvMs:
		ch.SourceTime = time.UnixMilli(envMs).UTC()
	}
	if hasEnvMs {
		ch.TsMs = time.UnixMilli(envMs).UTC()
	} else {
		ch.TsMs = ch.SourceTime
	}
	return nil
}

// sourceInt reads an integer field of the source block: a number or a
// numeric string ("lsn": "123"). Absent or null is (0, false, nil); anything
// else is an error.
func sourceInt(v any, field string) (int64, bool, error) {
	if v == nil {
		return 0, false, nil
	}
	if n, ok := asInt64(v); ok {
		return n, true, nil
	}
	if n, ok := numericString(v); ok {
		return n, true, nil
	}
	return 0, false, fmt.Errorf("%w: source.%s is %s", errPosition, field, describe(v))
}

// numericString parses a decimal integer held in a string.
func numericString(v any) (int64, bool) {
	s, ok := v.(string)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n, err == nil
}

// sequenceLSN reads the LSN from source.sequence, a JSON array held in a
// string: ["<last commit lsn>","<lsn>"].
func sequenceLSN(v any) (int64, bool) {
	s, ok := v.(string)
	if !ok || s == "" {
		return 0, false
	}
	var seq []*string
	if err := json.Unmarshal([]byte(s), &seq); err != nil || len(seq) != 2 || seq[1] == nil {
		return 0, false
	}
	return numericString(*seq[1])
}

// Normalised forms of PostgreSQL's infinite timestamps and dates.
const (
	infinityText    = "infinity"
	negInfinityText = "-infinity"
)

// Forever and LongAgo are what Row.Time returns for 'infinity' and
// '-infinity': later and earlier than any time a column really holds. A date
// of Forever schedules no timer ("never"); LongAgo is in the past.
var (
	Forever = time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC)
	LongAgo = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
)

// infinity recognises the encodings of an infinite temporal value: the strings
// Debezium passes through for ZonedTimestamp and dates ("infinity",
// "-infinity", "+infinity"), the sentinels the PostgreSQL JDBC driver uses
// for timestamp columns (PGStatement.DATE_POSITIVE_INFINITY and
// DATE_NEGATIVE_INFINITY) and the int64 extremes, and, for a date column,
// the int32 extremes and the values Debezium 3.6.1 actually writes for
// PostgreSQL's infinite dates (captured, docs/debezium.md): its conversion of
// the driver's sentinels to days overflows int32, to -622191234 /
// -625821272 in a snapshot read and -2147472692 / -2147472691 when streamed
// (for 'infinity' / '-infinity'). It returns the normalised text and whether
// v is one.
func infinity(v any, date bool) (string, bool) {
	if s, ok := v.(string); ok {
		// Compared without case, and without a lowered copy of every
		// timestamp read.
		switch s = strings.TrimSpace(s); {
		case strings.EqualFold(s, "infinity"), strings.EqualFold(s, "+infinity"):
			return infinityText, true
		case strings.EqualFold(s, "-infinity"):
			return negInfinityText, true
		}
		return "", false
	}
	n, ok := asInt64(v)
	if !ok {
		return "", false
	}
	switch {
	case n == pgPosInfinityMillis || n == math.MaxInt64:
		return infinityText, true
	case n == pgNegInfinityMillis || n == math.MinInt64:
		return negInfinityText, true
	}
	if date {
		switch n {
		case math.MaxInt32, debeziumDateInfinitySnapshot, debeziumDateInfinityStreamed:
			return infinityText, true
		case math.MinInt32, debeziumDateNegInfinitySnapshot, debeziumDateNegInfinityStreamed:
			return negInfinityText, true
		}
	}
	return "", false
}

// What Debezium 3.6.1's PostgreSQL connector writes for infinite dates
// (io.debezium.time.Date), captured from PostgreSQL 15.
const (
	debeziumDateInfinitySnapshot    = -622191234
	debeziumDateNegInfinitySnapshot = -625821272
	debeziumDateInfinityStreamed    = -2147472692
	debeziumDateNegInfinityStreamed = -2147472691
)

// The PostgreSQL JDBC driver's infinity sentinels (org.postgresql.PGStatement),
// which Debezium emits as MicroTimestamp/Timestamp values of infinite
// timestamp columns.
const (
	pgPosInfinityMillis = 9223372036825200000
	pgNegInfinityMillis = -9223372036832400000
)
