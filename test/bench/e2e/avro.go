package e2e

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// jobFields are the parts of an EmailJob the driver reads: the idempotency
// key, the type and the cause (which CDC record produced it).
type jobFields struct {
	Key, Type      string
	Topic, Op      string
	Partition      int32
	Offset         int64
	SourceMillis   int64
	CreatedMillis  int64
	hasCause, hasK bool
}

// picker reads jobFields from Avro binary data of a given writer schema
// without decoding the rest (the HTML and text bodies are skipped, not
// copied): the driver reads every job while the stage runs beside it on the
// same cores, so reading must cost next to nothing. Fields are found by
// name in the schema the job was written with, so the picker follows
// schema evolution; the driver checks it against schemas.Serde on the first
// job of every run.
type picker struct{ root *avroType }

type avroType struct {
	kind     string // null boolean int long float double bytes string record enum array map fixed union
	fields   []avroField
	items    *avroType   // array items, map values
	branches []*avroType // union
	size     int         // fixed
}

type avroField struct {
	name string
	t    *avroType
	set  func(*jobFields, []byte, int64) // nil: skip
}

// newPicker compiles the EmailJob writer schema.
func newPicker(schema string) (*picker, error) {
	var raw any
	if err := json.Unmarshal([]byte(schema), &raw); err != nil {
		return nil, fmt.Errorf("job schema: %w", err)
	}
	named := map[string]*avroType{}
	root, err := compile(raw, named, "")
	if err != nil {
		return nil, fmt.Errorf("job schema: %w", err)
	}
	if root.kind != "record" {
		return nil, errors.New("job schema: not a record")
	}
	setters := map[string]func(*jobFields, []byte, int64){
		"key":               func(j *jobFields, b []byte, _ int64) { j.Key, j.hasK = string(b), true },
		"type":              func(j *jobFields, b []byte, _ int64) { j.Type = string(b) },
		"cause.topic":       func(j *jobFields, b []byte, _ int64) { j.Topic, j.hasCause = string(b), true },
		"cause.op":          func(j *jobFields, b []byte, _ int64) { j.Op = string(b) },
		"cause.partition":   func(j *jobFields, _ []byte, n int64) { j.Partition = int32(n) },
		"cause.offset":      func(j *jobFields, _ []byte, n int64) { j.Offset = n },
		"cause.source_time": func(j *jobFields, _ []byte, n int64) { j.SourceMillis = n },
		"created_at":        func(j *jobFields, _ []byte, n int64) { j.CreatedMillis = n },
	}
	// Attach the setters to a private copy of the paths they name.
	for path, set := range setters {
		t := root
		parts := strings.Split(path, ".")
		for i, p := range parts {
			found := false
			for fi := range t.fields {
				if t.fields[fi].name != p {
					continue
				}
				found = true
				if i == len(parts)-1 {
					t.fields[fi].set = set
				} else {
					cp := *t.fields[fi].t
					cp.fields = append([]avroField(nil), cp.fields...)
					t.fields[fi].t = &cp
					t = &cp
				}
				break
			}
			if !found {
				return nil, fmt.Errorf("job schema: no field %s", path)
			}
		}
	}
	return &picker{root: root}, nil
}

func compile(raw any, named map[string]*avroType, ns string) (*avroType, error) {
	switch v := raw.(type) {
	case string:
		switch v {
		case "null", "boolean", "int", "long", "float", "double", "bytes", "string":
			return &avroType{kind: v}, nil
		}
		if t, ok := named[v]; ok {
			return t, nil
		}
		if t, ok := named[ns+"."+v]; ok {
			return t, nil
		}
		return nil, fmt.Errorf("unknown type %q", v)
	case []any:
		u := &avroType{kind: "union"}
		for _, b := range v {
			t, err := compile(b, named, ns)
			if err != nil {
				return nil, err
			}
			u.branches = append(u.branches, t)
		}
		return u, nil
	case map[string]any:
		typ, _ := v["type"].(string)
		name, _ := v["name"].(string)
		if n, ok := v["namespace"].(string); ok {
			ns = n
		}
		register := func(t *avroType) {
			if name != "" {
				named[name] = t
				if ns != "" && !strings.Contains(name, ".") {
					named[ns+"."+name] = t
				}
			}
		}
		switch typ {
		case "record", "error":
			t := &avroType{kind: "record"}
			register(t)
			fields, _ := v["fields"].([]any)
			for _, f := range fields {
				fm, _ := f.(map[string]any)
				fname, _ := fm["name"].(string)
				ft, err := compile(fm["type"], named, ns)
				if err != nil {
					return nil, fmt.Errorf("field %s: %w", fname, err)
				}
				t.fields = append(t.fields, avroField{name: fname, t: ft})
			}
			return t, nil
		case "enum":
			t := &avroType{kind: "enum"}
			register(t)
			return t, nil
		case "fixed":
			size, _ := v["size"].(float64)
			t := &avroType{kind: "fixed", size: int(size)}
			register(t)
			return t, nil
		case "array", "map":
			key := "items"
			if typ == "map" {
				key = "values"
			}
			it, err := compile(v[key], named, ns)
			if err != nil {
				return nil, err
			}
			return &avroType{kind: typ, items: it}, nil
		default:
			// {"type": "long", "logicalType": ...} and the like
			return compile(v["type"], named, ns)
		}
	}
	return nil, fmt.Errorf("unsupported schema %v", raw)
}

var errShort = errors.New("avro: data too short")

func readLong(b []byte) (int64, []byte, error) {
	u, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, errShort
	}
	return int64(u>>1) ^ -int64(u&1), b[n:], nil
}

// pick reads the job fields from b, Avro binary without the Confluent header.
func (p *picker) pick(b []byte) (jobFields, error) {
	var j jobFields
	if _, err := p.walk(p.root, b, &j, nil); err != nil {
		return j, err
	}
	if !j.hasK || !j.hasCause {
		return j, errors.New("avro: job without key or cause")
	}
	return j, nil
}

func (p *picker) walk(t *avroType, b []byte, j *jobFields, set func(*jobFields, []byte, int64)) ([]byte, error) {
	switch t.kind {
	case "null":
		return b, nil
	case "boolean":
		if len(b) < 1 {
			return nil, errShort
		}
		return b[1:], nil
	case "int", "long", "enum":
		n, rest, err := readLong(b)
		if err == nil && set != nil {
			set(j, nil, n)
		}
		return rest, err
	case "float", "double", "fixed":
		size := map[string]int{"float": 4, "double": 8}[t.kind]
		if t.kind == "fixed" {
			size = t.size
		}
		if len(b) < size {
			return nil, errShort
		}
		return b[size:], nil
	case "bytes", "string":
		n, rest, err := readLong(b)
		if err != nil || n < 0 || int64(len(rest)) < n {
			return nil, errShort
		}
		if set != nil {
			set(j, rest[:n], 0)
		}
		return rest[n:], nil
	case "record":
		var err error
		for i := range t.fields {
			if b, err = p.walk(t.fields[i].t, b, j, t.fields[i].set); err != nil {
				return nil, err
			}
		}
		return b, nil
	case "union":
		i, rest, err := readLong(b)
		if err != nil || i < 0 || int(i) >= len(t.branches) {
			return nil, errShort
		}
		return p.walk(t.branches[i], rest, j, set)
	case "array", "map":
		for {
			n, rest, err := readLong(b)
			if err != nil {
				return nil, err
			}
			b = rest
			if n == 0 {
				return b, nil
			}
			if n < 0 { // a block with its byte size: skip it whole
				size, rest, err := readLong(b)
				if err != nil || size < 0 || int64(len(rest)) < size {
					return nil, errShort
				}
				b = rest[size:]
				continue
			}
			for range n {
				if t.kind == "map" {
					if b, err = p.walk(&avroType{kind: "string"}, b, j, nil); err != nil {
						return nil, err
					}
				}
				if b, err = p.walk(t.items, b, j, nil); err != nil {
					return nil, err
				}
			}
		}
	}
	return nil, fmt.Errorf("avro: kind %s", t.kind)
}
