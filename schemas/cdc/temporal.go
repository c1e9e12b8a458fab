package cdc

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Semantic type names Debezium and Kafka Connect attach to temporal fields: the
// "name" of a field in a JsonConverter schema, the "connect.name" of an Avro
// type written by the AvroConverter.
const (
	semDate             = "io.debezium.time.Date"                   // int32 days since the epoch
	semTimestamp        = "io.debezium.time.Timestamp"              // int64 milliseconds since the epoch, no zone (UTC)
	semMicroTimestamp   = "io.debezium.time.MicroTimestamp"         // int64 microseconds since the epoch
	semNanoTimestamp    = "io.debezium.time.NanoTimestamp"          // int64 nanoseconds since the epoch
	semZonedTimestamp   = "io.debezium.time.ZonedTimestamp"         // ISO-8601 string with offset
	semConnectTimestamp = "org.apache.kafka.connect.data.Timestamp" // int64 milliseconds (Avro timestamp-millis)
	semConnectDate      = "org.apache.kafka.connect.data.Date"      // int32 days (Avro date)
)

// Bounds of what a normalised temporal value may hold: RFC 3339 years.
const (
	minYear = 1
	maxYear = 9999
	// maxDays bounds a days-since-epoch value well outside minYear..maxYear
	// while keeping days*86400 far from int64 overflow.
	maxDays = 10_000_000
)

// isoLayouts are the ISO-8601 shapes accepted for timestamp and date strings,
// tried in order. Layouts without an offset are read as UTC.
var isoLayouts = []string{
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999Z07",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

// parseISO parses an ISO-8601 timestamp or date, keeping the offset it was
// written with (callers convert to UTC or take the calendar date as written).
func parseISO(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, l := range isoLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// timestampFromInteger interprets an integer temporal by its semantic type, or,
// without one, by magnitude: above 1e17 nanoseconds, above 1e14 microseconds,
// otherwise milliseconds.
func timestampFromInteger(n int64, sem string) (time.Time, error) {
	switch sem {
	case semDate, semConnectDate:
		return dayToTime(n)
	case semTimestamp, semConnectTimestamp:
		return time.UnixMilli(n).UTC(), nil
	case semMicroTimestamp:
		return time.UnixMicro(n).UTC(), nil
	case semNanoTimestamp:
		return time.Unix(0, n).UTC(), nil
	}
	switch {
	case n > 1e17 || n < -1e17:
		return time.Unix(0, n).UTC(), nil
	case n > 1e14 || n < -1e14:
		return time.UnixMicro(n).UTC(), nil
	default:
		return time.UnixMilli(n).UTC(), nil
	}
}

// dayToTime converts days since 1970-01-01 to midnight UTC of that day.
func dayToTime(days int64) (time.Time, error) {
	if days > maxDays || days < -maxDays {
		return time.Time{}, fmt.Errorf("date %d days since epoch out of range", days)
	}
	return time.Unix(days*86400, 0).UTC(), nil
}

// checkYear rejects times that RFC 3339 cannot represent.
func checkYear(t time.Time) error {
	if y := t.Year(); y < minYear || y > maxYear {
		return fmt.Errorf("year %d out of range", y)
	}
	return nil
}

// appendTimestamp appends a timestamp column value normalised to RFC 3339
// (nanosecond precision, UTC) to dst. Strings are ISO-8601 (or, leniently,
// an integer in decimal); integers are read by sem (see
// timestampFromInteger); time.Time values come from Avro logical types.
//
// PostgreSQL's 'infinity' and '-infinity' normalise to "infinity" and
// "-infinity". A timestamp is range-checked after conversion to UTC:
// 9999-12-31T23:00:00-05:00 is in year 10000 and refused.
func appendTimestamp(dst []byte, v any, sem string) ([]byte, error) {
	if s, ok := infinity(v, false); ok {
		return append(dst, s...), nil
	}
	t, err := temporal(v, sem, "timestamp", timestampFromInteger)
	if err != nil {
		return dst, err
	}
	t = t.UTC()
	if err := checkYear(t); err != nil {
		return dst, fmt.Errorf("%w (in UTC)", err)
	}
	return t.AppendFormat(dst, time.RFC3339Nano), nil
}

// appendDate appends a date column value normalised to "2006-01-02" to
// dst. Integers are days since the epoch unless sem names a timestamp
// encoding; strings are ISO dates (a full timestamp contributes the
// calendar date it was written with).
func appendDate(dst []byte, v any, sem string) ([]byte, error) {
	if s, ok := infinity(v, true); ok {
		return append(dst, s...), nil
	}
	t, err := temporal(v, sem, "date", dateFromInteger)
	if err != nil {
		return dst, err
	}
	return t.AppendFormat(dst, "2006-01-02"), nil
}

// temporal reads a temporal column value: a time.Time (in UTC), an ISO-8601
// string (as written), or an integer, also in a string, converted by fromInt.
func temporal(v any, sem, what string, fromInt func(int64, string) (time.Time, error)) (time.Time, error) {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x.UTC()
	case string:
		if p, ok := parseISO(x); ok {
			t = p
			break
		}
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return t, fmt.Errorf("unparsable %s %s", what, describe(v))
		}
		if t, err = fromInt(n, sem); err != nil {
			return t, err
		}
	default:
		n, ok := asInt64(v)
		if !ok {
			return t, fmt.Errorf("cannot use %s as %s", describe(v), what)
		}
		var err error
		if t, err = fromInt(n, sem); err != nil {
			return t, err
		}
	}
	return t, checkYear(t)
}

// dateFromInteger reads an integer date column: days since the epoch, unless
// sem names a timestamp encoding (then the UTC date of that instant).
func dateFromInteger(n int64, sem string) (time.Time, error) {
	switch sem {
	case "", semDate, semConnectDate:
		return dayToTime(n)
	}
	return timestampFromInteger(n, sem)
}

// asInt64 returns v as an int64 if it is an integral number of any of the Go
// types JSON (json.Number) or goavro (int32, int64, float32, float64,
// *big.Rat) decode to. Non-integral or out-of-range numbers are rejected.
func asInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case int:
		return int64(x), true
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, true
		}
		f, err := x.Float64()
		if err != nil {
			return 0, false
		}
		return floatToInt64(f)
	case float64:
		return floatToInt64(x)
	case float32:
		return floatToInt64(float64(x))
	case *big.Rat:
		if x == nil || !x.IsInt() || !x.Num().IsInt64() {
			return 0, false
		}
		return x.Num().Int64(), true
	}
	return 0, false
}

// floatToInt64 accepts integral floats inside the int64 range.
func floatToInt64(f float64) (int64, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
		return 0, false
	}
	return int64(f), true
}
