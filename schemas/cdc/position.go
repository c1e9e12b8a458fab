package cdc

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// PositionKind says what a Position counts. Positions of different kinds are
// never compared: a PostgreSQL LSN says nothing about a millisecond.
type PositionKind uint8

// Position kinds, strongest first: the decoder takes the first one a record
// carries.
const (
	// NoPosition: the record carries neither an LSN nor a time. Such a change
	// cannot be ordered; it is told apart from others by its image alone.
	NoPosition PositionKind = iota
	// LSN is PostgreSQL's WAL position of the change (source.lsn, else the
	// second element of source.sequence): unique per change of a row and
	// increasing in commit order for any one row.
	LSN
	// SourceMicros is source.ts_us, the source database's commit time in
	// microseconds. All changes of one transaction share it.
	SourceMicros
	// SourceMillis is source.ts_ms (else the envelope's ts_ms), in milliseconds.
	SourceMillis
)

// positionPrefix is the text form of each kind (Position.String).
var positionPrefix = [...]string{NoPosition: "none", LSN: "lsn", SourceMicros: "us", SourceMillis: "ms"}

// MaxLSN bounds a plausible PostgreSQL LSN: 2^60 bytes (an exabyte) of WAL.
// A larger one is a corrupt or hostile record; accepting it would freeze the
// row (every later change would look older), so the decoder refuses it.
const MaxLSN = 1 << 60

// Position orders the changes of one row. It is Debezium's own position of
// the change, stable across redeliveries at new Kafka offsets.
//
// Ordering: two positions of the same kind compare by N. Positions of the
// time kinds (and NoPosition) also carry Image, a digest of the change's row
// image: one millisecond (or one transaction's commit time) can hold several
// changes of a row, so equal N with different Image is a different change
// (taken in arrival order), and equal N with equal Image is the same change
// again (a replay). LSN positions leave Image empty: the LSN is unique.
type Position struct {
	Kind  PositionKind
	N     int64
	Image string
}

// IsZero reports whether p is the zero Position.
func (p Position) IsZero() bool { return p == Position{} }

// String is the canonical text form, used in state and in idempotency keys:
// "lsn:24024100", "us:1772360200000000~9f86d081884c7d65", "ms:…~…",
// "none~…"; "" for the zero Position. Decimal numbers are exact beyond 2^53 (state compares them as
// strings, never as floating point).
func (p Position) String() string {
	if p.IsZero() {
		return ""
	}
	var buf [64]byte
	return string(p.Append(buf[:0]))
}

// Append appends String's form to dst.
func (p Position) Append(dst []byte) []byte {
	if p.IsZero() {
		return dst
	}
	dst = append(dst, positionPrefix[p.Kind]...)
	if p.Kind != NoPosition {
		dst = append(dst, ':')
		dst = strconv.AppendInt(dst, p.N, 10)
	}
	if p.Image != "" {
		dst = append(dst, '~')
		dst = append(dst, p.Image...)
	}
	return dst
}

// ParsePosition parses Position.String's form.
func ParsePosition(s string) (Position, error) {
	var p Position
	rest, img, hasImg := strings.Cut(s, "~")
	if hasImg {
		if img == "" {
			return Position{}, fmt.Errorf("position %q: empty image digest", s)
		}
		p.Image = img
	}
	kind, num, hasNum := strings.Cut(rest, ":")
	switch kind {
	case "none":
		if hasNum || !hasImg {
			return Position{}, fmt.Errorf("position %q: malformed", s)
		}
		return p, nil
	case "lsn":
		p.Kind = LSN
	case "us":
		p.Kind = SourceMicros
	case "ms":
		p.Kind = SourceMillis
	default:
		return Position{}, fmt.Errorf("position %q: unknown kind", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if !hasNum || err != nil || strconv.FormatInt(n, 10) != num {
		return Position{}, fmt.Errorf("position %q: not a canonical decimal", s)
	}
	p.N = n
	return p, nil
}

// Compare orders p against q: -1, 0 or +1 by N, and ok false when they are of
// different kinds (or either is NoPosition), i.e. cannot be ordered. A 0
// with ok true is the same instant, not necessarily the same change: see
// Position.
func (p Position) Compare(q Position) (c int, ok bool) {
	if p.Kind != q.Kind || p.Kind == NoPosition {
		return 0, false
	}
	switch {
	case p.N < q.N:
		return -1, true
	case p.N > q.N:
		return 1, true
	}
	return 0, true
}

// imageDigest is the Image of a time-kind position: 64 bits of FNV-1a over the
// op and the row image as state stores it (sorted keys), in hex.
func imageDigest(op Op, img Row) string {
	h := fnv.New64a()
	h.Write([]byte(op))
	b, err := img.AppendJSON(make([]byte, 0, 256))
	if err != nil {
		b = fmt.Append(nil, img) // unreachable for decoded rows; still deterministic
	}
	h.Write(b)
	return strconv.FormatUint(h.Sum64(), 16)
}

// errPosition classifies implausible positions.
var errPosition = errors.New("implausible source position")

// MarshalText encodes p as String does (JSON encodes it as that string).
func (p Position) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText decodes String's form; empty text is the zero Position.
func (p *Position) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*p = Position{}
		return nil
	}
	q, err := ParsePosition(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}
