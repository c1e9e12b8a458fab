package cdc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// envelope is a Debezium change event with its images still raw (JSON values
// or plain Avro values), plus the semantic type names of the image columns
// when the record carried a schema.
type envelope struct {
	before, after image // nil when null or absent
	// beforeBad and afterBad describe an image that is present but not an
	// object (an error when the image is needed).
	beforeBad, afterBad string
	source              sourceFields
	op                  any
	hasOp               bool
	tsMs                any
	sem                 map[string]string // column → semantic type name ("io.debezium.time.Date")
}

// newEnvelope reads the envelope fields of a decoded JSON object or Avro record.
func newEnvelope(obj map[string]any, sem map[string]string) (envelope, error) {
	env := envelope{tsMs: obj["ts_ms"], sem: sem}
	env.before, env.beforeBad = mapImageOf(obj["before"])
	env.after, env.afterBad = mapImageOf(obj["after"])
	env.op, env.hasOp = obj["op"]
	if src := obj["source"]; src != nil {
		m, ok := src.(map[string]any)
		if !ok {
			return envelope{}, fmt.Errorf("source is %s, not an object", describe(src))
		}
		env.source = sourceFields{lsn: m["lsn"], tsMs: m["ts_ms"], tsUs: m["ts_us"], sequence: m["sequence"]}
	}
	return env, nil
}

// sourceFields are the fields of an envelope's source block that position
// a change, as plain values (nil when absent or null).
type sourceFields struct {
	lsn, tsMs, tsUs, sequence any
}

// mapImageOf wraps a decoded image; bad describes one that is not an object.
func mapImageOf(v any) (img image, bad string) {
	switch m := v.(type) {
	case nil:
		return nil, ""
	case map[string]any:
		return mapImage(m), ""
	}
	return nil, describe(v)
}

// rowID returns the normalised id column of r ("" when absent).
func rowID(r Row) string {
	s, _ := r["id"].(string)
	return s
}

// jsonEnvelope decodes a JSON envelope, plain or inside the Kafka Connect
// {"schema": ..., "payload": ...} wrapper, with encoding/json (the slow path
// of Decoder.jsonEnvelope).
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
