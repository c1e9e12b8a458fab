package cdc

import (
	"context"
	"errors"
	"unicode/utf8"
)

// keyID extracts the id from a record key: Avro (Confluent wire format), JSON
// ({"id": ..}, the schema/payload wrapper, or a bare string or number), or a
// plain UTF-8 string. It returns "" when the key holds no id.
//
// An Avro key whose schema cannot be resolved because the registry is
// unavailable is an error (retry), not a missing id.
func (d *Decoder) keyID(ctx context.Context, key []byte) (string, error) {
	if len(key) == 0 {
		return "", nil
	}
	if key[0] == 0 {
		v, _, err := d.decodeAvro(ctx, key)
		var ae *abortError
		if errors.As(err, &ae) {
			return "", err
		}
		if err != nil {
			return "", nil
		}
		return idOf(v, 0), nil
	}
	if v, err := parseJSON(key); err == nil {
		return idOf(v, 0), nil
	}
	if utf8.Valid(key) {
		return string(key), nil
	}
	return "", nil
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
