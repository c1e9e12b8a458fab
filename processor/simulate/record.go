package simulate

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// splitRecord reads one input line, a JSON object {"topic": string, "key":
// any, "value": any}, without decoding key and value: it returns them as
// the spans of the line that hold them (nil for null or absent), validated
// as JSON. The line must be one well-formed JSON object, as encoding/json
// would accept it; unknown members are skipped; a member given twice takes
// its last value. key and value alias line.
func splitRecord(line []byte) (topic string, key, value []byte, err error) {
	return (&splitter{}).split(line)
}

// splitter is splitRecord for the lines of one input: each topic name is
// made once (a file holds a few topics, each on many lines), and the member
// names are not made at all.
type splitter struct {
	topics map[string]string // a topic's JSON string -> its name
}

// maxTopicNames bounds how many topic names a splitter keeps.
const maxTopicNames = 1024

// topic is the name of the topic span (a JSON string).
func (sp *splitter) topic(span []byte) string {
	if t, ok := sp.topics[string(span)]; ok {
		return t
	}
	t := unquoteJSON(span)
	if len(sp.topics) < maxTopicNames {
		if sp.topics == nil {
			sp.topics = map[string]string{}
		}
		sp.topics[string(span)] = t
	}
	return t
}

// split is splitRecord.
func (sp *splitter) split(line []byte) (topic string, key, value []byte, err error) {
	s := scanner{b: line}
	s.space()
	if !s.eat('{') {
		return "", nil, nil, s.fail("want an object")
	}
	s.space()
	if s.eat('}') {
		return "", nil, nil, s.end()
	}
	for {
		s.space()
		name, err := s.name()
		if err != nil {
			return "", nil, nil, err
		}
		s.space()
		if !s.eat(':') {
			return "", nil, nil, s.fail("want ':'")
		}
		s.space()
		start := s.i
		if err := s.value(0); err != nil {
			return "", nil, nil, err
		}
		span := line[start:s.i]
		switch name {
		case "topic":
			switch {
			case string(span) == "null":
				topic = ""
			case span[0] == '"':
				topic = sp.topic(span)
			default:
				return "", nil, nil, fmt.Errorf("topic is not a string")
			}
		case "key":
			key = nullable(span)
		case "value":
			value = nullable(span)
		}
		s.space()
		if s.eat(',') {
			continue
		}
		if s.eat('}') {
			return topic, key, value, s.end()
		}
		return "", nil, nil, s.fail("want ',' or '}'")
	}
}

func nullable(span []byte) []byte {
	if string(span) == "null" {
		return nil
	}
	return span
}

// maxDepth bounds nesting, as encoding/json does (10000).
const maxDepth = 10000

type scanner struct {
	b []byte
	i int
}

func (s *scanner) fail(what string) error {
	if s.i >= len(s.b) {
		return fmt.Errorf("unexpected end of JSON input (%s)", what)
	}
	return fmt.Errorf("invalid character %q at offset %d (%s)", s.b[s.i], s.i, what)
}

func (s *scanner) end() error {
	s.space()
	if s.i != len(s.b) {
		return s.fail("after the top-level object")
	}
	return nil
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// value skips one JSON value.
func (s *scanner) value(depth int) error {
	if depth > maxDepth {
		return errors.New("exceeded max depth")
	}
	if s.i >= len(s.b) {
		return s.fail("want a value")
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.skipString()
	case c == '{':
		s.i++
		s.space()
		if s.eat('}') {
			return nil
		}
		for {
			s.space()
			if err := s.skipString(); err != nil {
				return err
			}
			s.space()
			if !s.eat(':') {
				return s.fail("want ':'")
			}
			s.space()
			if err := s.value(depth + 1); err != nil {
				return err
			}
			s.space()
			if s.eat(',') {
				continue
			}
			if s.eat('}') {
				return nil
			}
			return s.fail("want ',' or '}'")
		}
	case c == '[':
		s.i++
		s.space()
		if s.eat(']') {
			return nil
		}
		for {
			s.space()
			if err := s.value(depth + 1); err != nil {
				return err
			}
			s.space()
			if s.eat(',') {
				continue
			}
			if s.eat(']') {
				return nil
			}
			return s.fail("want ',' or ']'")
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	}
	return s.fail("want a value")
}

func (s *scanner) literal(w string) error {
	if len(s.b)-s.i < len(w) || string(s.b[s.i:s.i+len(w)]) != w {
		return s.fail("want " + w)
	}
	s.i += len(w)
	return nil
}

func (s *scanner) number() error {
	s.eat('-')
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.eat('0') {
		// no further integer digits
	} else if digits() == 0 {
		return s.fail("want a digit")
	}
	if s.eat('.') && digits() == 0 {
		return s.fail("want a digit after '.'")
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if digits() == 0 {
			return s.fail("want an exponent")
		}
	}
	return nil
}

// skipString skips a string, checking its escapes, that it holds no control
// character and is valid UTF-8 (encoding/json replaces invalid bytes rather
// than refusing them; so does this: they are let through).
func (s *scanner) skipString() error {
	if !s.eat('"') {
		return s.fail("want a string")
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return nil
		case c == '\\':
			s.i++
			if s.i >= len(s.b) {
				return s.fail("in an escape")
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				s.i++
				for range 4 {
					if s.i >= len(s.b) || !isHex(s.b[s.i]) {
						return s.fail("in a \\u escape")
					}
					s.i++
				}
			default:
				return s.fail("in an escape")
			}
		case c < 0x20:
			return s.fail("in a string")
		default:
			s.i++
		}
	}
	return s.fail("in a string")
}

// name reads a member name: the record's own names without making a
// string of them.
func (s *scanner) name() (string, error) {
	start := s.i
	if err := s.skipString(); err != nil {
		return "", err
	}
	switch raw := s.b[start:s.i]; string(raw) {
	case `"topic"`:
		return "topic", nil
	case `"key"`:
		return "key", nil
	case `"value"`:
		return "value", nil
	default:
		return unquoteJSON(raw), nil
	}
}

// unquoteJSON decodes a JSON string literal already validated by
// skipString, as encoding/json does: invalid UTF-8 and lone surrogates
// become U+FFFD.
func unquoteJSON(q []byte) string {
	inner := q[1 : len(q)-1]
	plain := true
	for _, c := range inner {
		if c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		return string(inner)
	}
	out := make([]byte, 0, len(inner))
	hex4 := func(b []byte) rune {
		n, _ := strconv.ParseUint(string(b), 16, 32)
		return rune(n)
	}
	for i := 0; i < len(inner); {
		c := inner[i]
		if c != '\\' {
			r, n := utf8.DecodeRune(inner[i:])
			out = utf8.AppendRune(out, r)
			i += n
			continue
		}
		switch inner[i+1] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(inner[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(inner) && inner[i] == '\\' && inner[i+1] == 'u' {
					if pair := utf16.DecodeRune(r, hex4(inner[i+2:i+6])); pair != utf8.RuneError {
						out = utf8.AppendRune(out, pair)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // " \ /
			out = append(out, inner[i+1])
		}
		i += 2
	}
	return string(out)
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
