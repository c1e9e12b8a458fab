package schemas

// Schema evolution: the current schemas must read data written with every
// earlier version kept in testdata/history/<record>/vN.avsc (BACKWARD_TRANSITIVE
// in schema registry terms), and the newest history version must be the
// current schema, so every released version stays in the history.
//
// How this is checked, and why this way:
//   - srfake's compatibility endpoint is a stub that always answers
//     is_compatible=true, and its CreateSchema does not check compatibility
//     either, so registering the history in srfake would prove nothing.
//   - goavro has no reader/writer schema resolution.
//
// So the test carries its own small implementation of the Avro schema
// resolution rules (https://avro.apache.org/docs/1.11.1/specification/#schema-resolution):
//  1. a structural checker (checkCompat) applies them to (reader, writer)
//     schema pairs: records match by name or reader alias, a reader field the
//     writer lacks needs a default, common fields must resolve (equal type or
//     int->long->float->double / string<->bytes promotion), writer enum
//     symbols must exist in the reader unless the reader enum has a default,
//     every writer union branch must resolve to the reader. It is stricter
//     than Avro in one point: a logicalType may not change.
//  2. an actual data read: data is generated for each writer schema, written
//     and read back with a goavro codec of that writer schema, resolved to
//     the current reader schema by resolveNative (same rules: fill reader
//     defaults, drop writer-only fields, re-wrap unions, map enums, promote
//     numbers), then encoded with the current codec and decoded by
//     DecodeJob/DecodeDelivery into the Go struct. The struct must encode back
//     to the very same bytes, and fields missing in the writer must come out
//     as their defaults.
// TestCheckerRejects proves the checker catches the usual mistakes (a new
// field without a default first of all).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
)

// ---- schema model ----

type avroType struct {
	kind        string // primitive name, or record, enum, array, map, union, fixed
	logical     string
	name        string   // full name of a named type
	aliases     []string // full names
	fields      []*avroField
	symbols     []string
	enumDefault *string
	items       *avroType // array
	values      *avroType // map
	branches    []*avroType
	size        int
}

type avroField struct {
	name       string
	aliases    []string
	typ        *avroType
	def        any
	hasDefault bool
}

var avroPrimitives = map[string]bool{
	"null": true, "boolean": true, "int": true, "long": true,
	"float": true, "double": true, "bytes": true, "string": true,
}

func parseSchema(text string) (*avroType, error) {
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return nil, err
	}
	return parseType(v, "", map[string]*avroType{})
}

func fullName(name, ns string) string {
	if strings.Contains(name, ".") || ns == "" {
		return name
	}
	return ns + "." + name
}

func parseType(v any, ns string, named map[string]*avroType) (*avroType, error) {
	switch s := v.(type) {
	case string:
		if avroPrimitives[s] {
			return &avroType{kind: s}, nil
		}
		if t, ok := named[fullName(s, ns)]; ok {
			return t, nil
		}
		if t, ok := named[s]; ok {
			return t, nil
		}
		return nil, fmt.Errorf("unknown type %q", s)
	case []any:
		u := &avroType{kind: "union"}
		for _, b := range s {
			bt, err := parseType(b, ns, named)
			if err != nil {
				return nil, err
			}
			u.branches = append(u.branches, bt)
		}
		return u, nil
	case map[string]any:
		typ, ok := s["type"].(string)
		if !ok { // {"type": {...}} or {"type": [...]}
			return parseType(s["type"], ns, named)
		}
		logical, _ := s["logicalType"].(string)
		if avroPrimitives[typ] {
			return &avroType{kind: typ, logical: logical}, nil
		}
		t := &avroType{kind: typ, logical: logical}
		switch typ {
		case "record", "error", "enum", "fixed":
			t.kind = typ
			if typ == "error" {
				t.kind = "record"
			}
			name, _ := s["name"].(string)
			if n, ok := s["namespace"].(string); ok && !strings.Contains(name, ".") {
				ns = n
			} else if i := strings.LastIndex(name, "."); i >= 0 {
				ns = name[:i]
			}
			t.name = fullName(name, ns)
			if as, ok := s["aliases"].([]any); ok {
				for _, a := range as {
					t.aliases = append(t.aliases, fullName(a.(string), ns))
				}
			}
			named[t.name] = t
		}
		switch t.kind {
		case "record":
			fs, _ := s["fields"].([]any)
			for _, f := range fs {
				fm := f.(map[string]any)
				ft, err := parseType(fm["type"], ns, named)
				if err != nil {
					return nil, fmt.Errorf("%s.%v: %w", t.name, fm["name"], err)
				}
				field := &avroField{name: fm["name"].(string), typ: ft}
				field.def, field.hasDefault = fm["default"]
				if as, ok := fm["aliases"].([]any); ok {
					for _, a := range as {
						field.aliases = append(field.aliases, a.(string))
					}
				}
				t.fields = append(t.fields, field)
			}
		case "enum":
			for _, sym := range s["symbols"].([]any) {
				t.symbols = append(t.symbols, sym.(string))
			}
			if d, ok := s["default"].(string); ok {
				t.enumDefault = &d
			}
		case "array":
			it, err := parseType(s["items"], ns, named)
			if err != nil {
				return nil, err
			}
			t.items = it
		case "map":
			vt, err := parseType(s["values"], ns, named)
			if err != nil {
				return nil, err
			}
			t.values = vt
		case "fixed":
			t.size = int(s["size"].(float64))
		default:
			return nil, fmt.Errorf("unknown type %q", typ)
		}
		return t, nil
	}
	return nil, fmt.Errorf("bad schema node %T", v)
}

func (t *avroType) String() string {
	switch {
	case t.name != "":
		return t.kind + " " + t.name
	case t.logical != "":
		return t.kind + "/" + t.logical
	case t.kind == "union":
		parts := make([]string, len(t.branches))
		for i, b := range t.branches {
			parts[i] = b.String()
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return t.kind
}

// branchName is how goavro names a union branch in native data.
func (t *avroType) branchName() string {
	switch {
	case t.name != "":
		return t.name
	case t.logical != "" && avroPrimitives[t.kind]:
		return t.kind + "." + t.logical
	}
	return t.kind
}

func (t *avroType) field(name string, aliases []string) *avroField {
	for _, f := range t.fields {
		if f.name == name {
			return f
		}
	}
	for _, a := range aliases {
		for _, f := range t.fields {
			if f.name == a {
				return f
			}
		}
	}
	return nil
}

// ---- structural checker ----

var promotions = map[[2]string]bool{ // {writer, reader}
	{"int", "long"}: true, {"int", "float"}: true, {"int", "double"}: true,
	{"long", "float"}: true, {"long", "double"}: true,
	{"float", "double"}: true,
	{"string", "bytes"}: true, {"bytes", "string"}: true,
}

// checkCompat lists why data written with w cannot be read with r (nil: it can).
func checkCompat(r, w *avroType) []string {
	return checkAt(r, w, "", map[[2]*avroType]bool{})
}

func checkAt(r, w *avroType, path string, seen map[[2]*avroType]bool) []string {
	at := func(format string, args ...any) []string {
		p := path
		if p == "" {
			p = "(root)"
		}
		return []string{p + ": " + fmt.Sprintf(format, args...)}
	}
	if w.kind == "union" {
		var out []string
		for _, wb := range w.branches {
			if r.kind == "union" {
				if firstMatch(r, wb) == nil {
					out = append(out, at("writer union branch %s matches no reader branch of %s", wb, r)...)
				}
				continue
			}
			if p := checkAt(r, wb, path, seen); p != nil {
				out = append(out, at("writer union branch %s cannot be read as %s", wb, r)...)
				out = append(out, p...)
			}
		}
		return out
	}
	if r.kind == "union" {
		if firstMatch(r, w) == nil {
			return at("writer %s matches no branch of reader union %s", w, r)
		}
		return nil
	}
	if r.kind != w.kind {
		if avroPrimitives[r.kind] && avroPrimitives[w.kind] && promotions[[2]string{w.kind, r.kind}] && r.logical == "" && w.logical == "" {
			return nil
		}
		return at("writer type %s cannot be read as %s", w, r)
	}
	if r.logical != w.logical { // stricter than Avro: the meaning would change
		return at("logical type changed from %q to %q", w.logical, r.logical)
	}
	switch r.kind {
	case "record", "enum", "fixed":
		if r.name != w.name && !contains(r.aliases, w.name) {
			return at("writer %s is read as %s (no alias)", w, r)
		}
	}
	switch r.kind {
	case "record":
		key := [2]*avroType{r, w}
		if seen[key] {
			return nil
		}
		seen[key] = true
		var out []string
		for _, rf := range r.fields {
			wf := w.field(rf.name, rf.aliases)
			if wf == nil {
				if !rf.hasDefault {
					out = append(out, at("field %q is not in the writer schema and has no default", rf.name)...)
				}
				continue
			}
			out = append(out, checkAt(rf.typ, wf.typ, joinPath(path, rf.name), seen)...)
		}
		return out
	case "enum":
		var out []string
		for _, s := range w.symbols {
			if !contains(r.symbols, s) && r.enumDefault == nil {
				out = append(out, at("writer enum symbol %q is not in the reader and the reader enum has no default", s)...)
			}
		}
		if r.enumDefault != nil && !contains(r.symbols, *r.enumDefault) {
			out = append(out, at("enum default %q is not a symbol", *r.enumDefault)...)
		}
		return out
	case "array":
		return checkAt(r.items, w.items, path+"[]", seen)
	case "map":
		return checkAt(r.values, w.values, path+"{}", seen)
	case "fixed":
		if r.size != w.size {
			return at("fixed size changed from %d to %d", w.size, r.size)
		}
	}
	return nil
}

// firstMatch is the reader union branch Avro resolves writer type w to.
func firstMatch(r, w *avroType) *avroType {
	for _, rb := range r.branches { // an exact kind (and name) first
		if rb.kind == w.kind && rb.name == w.name && checkCompat(rb, w) == nil {
			return rb
		}
	}
	for _, rb := range r.branches {
		if checkCompat(rb, w) == nil {
			return rb
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// ---- data: generate, resolve ----

var genEpoch = time.Date(2024, 6, 1, 9, 0, 0, 0, time.UTC)

// generate makes a deterministic native datum for t, with every optional
// value present so that nothing hides behind a null.
func generate(t *avroType, path string) any {
	n := len(path)
	switch t.kind {
	case "null":
		return nil
	case "boolean":
		return n%2 == 0
	case "int":
		return int32(n)
	case "long":
		if t.logical == "timestamp-millis" {
			return genEpoch.Add(time.Duration(n)*time.Hour + time.Duration(n)*time.Millisecond)
		}
		return int64(n) * 1000
	case "float":
		return float32(n) / 2
	case "double":
		return float64(n) / 4
	case "string":
		return "v:" + path
	case "bytes":
		return []byte(path)
	case "fixed":
		return bytes.Repeat([]byte{byte(n)}, t.size)
	case "enum":
		return t.symbols[n%len(t.symbols)]
	case "array":
		return []any{generate(t.items, path+"[0]"), generate(t.items, path+"[1]")}
	case "map":
		return map[string]any{"k": generate(t.values, path+"{k}")}
	case "union":
		for _, b := range t.branches {
			if b.kind != "null" {
				return map[string]any{b.branchName(): generate(b, path)}
			}
		}
		return nil
	case "record":
		m := make(map[string]any, len(t.fields))
		for _, f := range t.fields {
			m[f.name] = generate(f.typ, joinPath(path, f.name))
		}
		return m
	}
	panic("generate: " + t.kind)
}

// resolveNative turns native data written with w into native data of r.
func resolveNative(r, w *avroType, v any) (any, error) {
	if w.kind == "union" {
		if v == nil {
			for _, wb := range w.branches {
				if wb.kind == "null" {
					return resolveNative(r, wb, nil)
				}
			}
			return nil, fmt.Errorf("null for union %s without null", w)
		}
		u := v.(map[string]any)
		for _, wb := range w.branches {
			if inner, ok := u[wb.branchName()]; ok {
				return resolveNative(r, wb, inner)
			}
		}
		return nil, fmt.Errorf("union value %v has no branch of %s", v, w)
	}
	if r.kind == "union" {
		rb := firstMatch(r, w)
		if rb == nil {
			return nil, fmt.Errorf("%s matches no branch of %s", w, r)
		}
		inner, err := resolveNative(rb, w, v)
		if err != nil || rb.kind == "null" {
			return nil, err
		}
		return map[string]any{rb.branchName(): inner}, nil
	}
	switch r.kind {
	case "record":
		wm := v.(map[string]any)
		out := make(map[string]any, len(r.fields))
		for _, rf := range r.fields {
			wf := w.field(rf.name, rf.aliases)
			if wf == nil {
				if !rf.hasDefault {
					return nil, fmt.Errorf("field %q: no writer value and no default", rf.name)
				}
				d, err := defaultNative(rf.typ, rf.def)
				if err != nil {
					return nil, fmt.Errorf("field %q default: %w", rf.name, err)
				}
				out[rf.name] = d
				continue
			}
			rv, err := resolveNative(rf.typ, wf.typ, wm[wf.name])
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", rf.name, err)
			}
			out[rf.name] = rv
		}
		return out, nil
	case "enum":
		s := v.(string)
		if contains(r.symbols, s) {
			return s, nil
		}
		if r.enumDefault != nil {
			return *r.enumDefault, nil
		}
		return nil, fmt.Errorf("enum symbol %q unknown to the reader", s)
	case "array":
		a := v.([]any)
		out := make([]any, len(a))
		for i, e := range a {
			var err error
			if out[i], err = resolveNative(r.items, w.items, e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case "map":
		m := v.(map[string]any)
		out := make(map[string]any, len(m))
		for k, e := range m {
			var err error
			if out[k], err = resolveNative(r.values, w.values, e); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	switch x := v.(type) { // promotions
	case int32:
		switch r.kind {
		case "long":
			return int64(x), nil
		case "float":
			return float32(x), nil
		case "double":
			return float64(x), nil
		}
	case int64:
		switch r.kind {
		case "float":
			return float32(x), nil
		case "double":
			return float64(x), nil
		}
	case float32:
		if r.kind == "double" {
			return float64(x), nil
		}
	case string:
		if r.kind == "bytes" {
			return []byte(x), nil
		}
	case []byte:
		if r.kind == "string" {
			return string(x), nil
		}
	}
	return v, nil
}

// defaultNative converts a JSON default value of type t to goavro native data.
func defaultNative(t *avroType, def any) (any, error) {
	switch t.kind {
	case "union": // the default belongs to the first branch
		b := t.branches[0]
		if b.kind == "null" {
			if def != nil {
				return nil, fmt.Errorf("default %v for a null-first union", def)
			}
			return nil, nil
		}
		v, err := defaultNative(b, def)
		if err != nil {
			return nil, err
		}
		return map[string]any{b.branchName(): v}, nil
	case "null":
		return nil, nil
	case "boolean":
		return def.(bool), nil
	case "int":
		return int32(def.(float64)), nil
	case "long":
		if t.logical == "timestamp-millis" {
			return time.UnixMilli(int64(def.(float64))).UTC(), nil
		}
		return int64(def.(float64)), nil
	case "float":
		return float32(def.(float64)), nil
	case "double":
		return def.(float64), nil
	case "string", "enum":
		return def.(string), nil
	case "bytes", "fixed":
		return []byte(def.(string)), nil
	case "array":
		a := def.([]any)
		out := make([]any, len(a))
		for i, e := range a {
			var err error
			if out[i], err = defaultNative(t.items, e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case "map":
		m := def.(map[string]any)
		out := make(map[string]any, len(m))
		for k, e := range m {
			var err error
			if out[k], err = defaultNative(t.values, e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case "record":
		m := def.(map[string]any)
		out := make(map[string]any, len(t.fields))
		for _, f := range t.fields {
			fv, ok := m[f.name]
			if !ok {
				if !f.hasDefault {
					return nil, fmt.Errorf("record default lacks %q", f.name)
				}
				fv = f.def
			}
			var err error
			if out[f.name], err = defaultNative(f.typ, fv); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("default for %s", t)
}

// ---- history ----

type historyVersion struct {
	version int
	path    string
	text    string
}

var versionFile = regexp.MustCompile(`^v(\d+)\.avsc$`)

func loadHistory(t *testing.T, record string) []historyVersion {
	t.Helper()
	dir := filepath.Join("testdata", "history", record)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []historyVersion
	for _, e := range entries {
		m := versionFile.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, historyVersion{n, filepath.Join(dir, e.Name()), string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, h := range out {
		if h.version != i {
			t.Fatalf("%s: versions must be v0..vN without gaps, found %s", dir, filepath.Base(h.path))
		}
	}
	if len(out) < 2 {
		t.Fatalf("%s: want at least two versions", dir)
	}
	return out
}

type evolutionCase struct {
	record  string // history directory
	current string // current schema text
	// readBack writes resolved native data with the current codec and
	// decodes it through the package API; it returns the Go value and the
	// package's own encoding of it.
	readBack func(t *testing.T, native any) (any, []byte)
	// checkDefaults asserts what a field missing in writer version v reads as.
	checkDefaults func(t *testing.T, version int, v any)
}

func evolutionCases() []evolutionCase {
	return []evolutionCase{
		{
			record:  "email_job",
			current: JobSchema(),
			readBack: func(t *testing.T, native any) (any, []byte) {
				c := mustCodec(JobCodec())
				bin, err := c.avro.BinaryFromNative(nil, native)
				if err != nil {
					t.Fatal(err)
				}
				j, err := DecodeJob(bin)
				if err != nil {
					t.Fatal(err)
				}
				again, err := EncodeJob(j)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(again, bin) {
					t.Fatalf("decoded job does not encode back to the resolved data (a schema field the Go struct or codec does not carry?): %+v", j)
				}
				return j, bin
			},
			checkDefaults: func(t *testing.T, version int, v any) {
				j := v.(EmailJob)
				if j.Key != "v:key" || j.To.Address != "v:to.address" || j.Cause.Partition != int32(len("cause.partition")) ||
					!j.CreatedAt.Equal(generate(&avroType{kind: "long", logical: "timestamp-millis"}, "created_at").(time.Time)) {
					t.Errorf("v%d: common fields not carried over: %+v", version, j)
				}
				if version == 0 && (j.Tags != nil || j.ReplyTo != "") {
					t.Errorf("v0: want default tags and reply_to, got %q %q", j.Tags, j.ReplyTo)
				}
			},
		},
		{
			record:  "email_delivery",
			current: DeliverySchema(),
			readBack: func(t *testing.T, native any) (any, []byte) {
				c := mustCodec(DeliveryCodec())
				bin, err := c.avro.BinaryFromNative(nil, native)
				if err != nil {
					t.Fatal(err)
				}
				d, err := DecodeDelivery(bin)
				if err != nil {
					t.Fatal(err)
				}
				again, err := EncodeDelivery(d)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(again, bin) {
					t.Fatalf("decoded delivery does not encode back to the resolved data (a schema field the Go struct or codec does not carry?): %+v", d)
				}
				return d, bin
			},
			checkDefaults: func(t *testing.T, version int, v any) {
				d := v.(EmailDelivery)
				if d.Key != "v:key" || d.Attempts != len("attempts") || d.ProviderID != "v:provider_id" {
					t.Errorf("v%d: common fields not carried over: %+v", version, d)
				}
				if version == 0 && !d.FirstTry.IsZero() {
					t.Errorf("v0: want zero first_try, got %v", d.FirstTry)
				}
			},
		},
	}
}

// TestHistoryHoldsCurrentSchema makes every schema change leave a trace: the
// newest testdata/history version must equal the current .avsc.
func TestHistoryHoldsCurrentSchema(t *testing.T) {
	for _, c := range evolutionCases() {
		hist := loadHistory(t, c.record)
		latest := hist[len(hist)-1]
		if !jsonEqual(t, latest.text, c.current) {
			t.Errorf("%s: the current schema differs from %s; when changing it, copy the new schema to testdata/history/%s/v%d.avsc (and keep it backward compatible)",
				c.record, latest.path, c.record, latest.version+1)
		}
	}
}

// TestBackwardCompatible checks that the current schema (and every history
// version) reads data written with every earlier version, structurally and
// with real data.
func TestBackwardCompatible(t *testing.T) {
	for _, c := range evolutionCases() {
		hist := loadHistory(t, c.record)
		reader, err := parseSchema(c.current)
		if err != nil {
			t.Fatal(err)
		}
		// Transitive: each version against all before it.
		for i, newer := range hist {
			nt, err := parseSchema(newer.text)
			if err != nil {
				t.Fatalf("%s: %v", newer.path, err)
			}
			for _, older := range hist[:i] {
				ot, _ := parseSchema(older.text)
				if p := checkCompat(nt, ot); p != nil {
					t.Errorf("%s cannot read %s:\n  %s", newer.path, older.path, strings.Join(p, "\n  "))
				}
			}
		}
		for _, h := range hist {
			t.Run(fmt.Sprintf("%s/v%d", c.record, h.version), func(t *testing.T) {
				writer, err := parseSchema(h.text)
				if err != nil {
					t.Fatal(err)
				}
				if p := checkCompat(reader, writer); p != nil {
					t.Fatalf("current %s schema cannot read v%d data:\n  %s", c.record, h.version, strings.Join(p, "\n  "))
				}

				wc, err := goavro.NewCodec(h.text)
				if err != nil {
					t.Fatal(err)
				}
				bin, err := wc.BinaryFromNative(nil, generate(writer, ""))
				if err != nil {
					t.Fatal(err)
				}
				written, rest, err := wc.NativeFromBinary(bin)
				if err != nil || len(rest) != 0 {
					t.Fatalf("reading v%d data with its own schema: %v (%d bytes left)", h.version, err, len(rest))
				}
				resolved, err := resolveNative(reader, writer, written)
				if err != nil {
					t.Fatal(err)
				}
				v, _ := c.readBack(t, resolved)
				c.checkDefaults(t, h.version, v)
			})
		}
	}
}

// TestEnumDefaultResolvesNewSymbols: a reader with the current Outcome enum
// reads a symbol added by a later writer as OutcomeUnknown.
func TestEnumDefaultResolvesNewSymbols(t *testing.T) {
	var future map[string]any
	if err := json.Unmarshal([]byte(DeliverySchema()), &future); err != nil {
		t.Fatal(err)
	}
	outcome := fieldOf(future, "outcome")["type"].(map[string]any)
	outcome["symbols"] = append(outcome["symbols"].([]any), "bounced")
	futureText := marshal(t, future)

	reader, _ := parseSchema(DeliverySchema())
	writer, err := parseSchema(futureText)
	if err != nil {
		t.Fatal(err)
	}
	if p := checkCompat(reader, writer); p != nil {
		t.Fatalf("current schema should read a future outcome: %v", p)
	}
	wc, err := goavro.NewCodec(futureText)
	if err != nil {
		t.Fatal(err)
	}
	datum := generate(writer, "").(map[string]any)
	datum["outcome"] = "bounced"
	bin, err := wc.BinaryFromNative(nil, datum)
	if err != nil {
		t.Fatal(err)
	}
	written, _, err := wc.NativeFromBinary(bin)
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := resolveNative(reader, writer, written)
	if err != nil {
		t.Fatal(err)
	}
	c := mustCodec(DeliveryCodec())
	rb, err := c.avro.BinaryFromNative(nil, resolved)
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeDelivery(rb)
	if err != nil {
		t.Fatal(err)
	}
	if d.Outcome != OutcomeUnknown {
		t.Fatalf("outcome %q, want %q", d.Outcome, OutcomeUnknown)
	}
}

// TestCheckerRejects: schema changes that break readers of old data are
// caught, compatible ones pass.
func TestCheckerRejects(t *testing.T) {
	type mutation struct {
		name   string
		schema string // current schema to mutate
		mutate func(s map[string]any)
		want   string // "" = compatible; else a substring of the problem
	}
	cases := []mutation{
		{"job: new field without default", JobSchema(), func(s map[string]any) {
			addField(s, map[string]any{"name": "added_required", "type": "int"})
		}, `field "added_required" is not in the writer schema and has no default`},
		{"job: new field with default", JobSchema(), func(s map[string]any) {
			addField(s, map[string]any{"name": "added_with_default", "type": "int", "default": 0})
		}, ""},
		{"job: new nullable field with null default", JobSchema(), func(s map[string]any) {
			addField(s, map[string]any{"name": "added_nullable", "type": []any{"null", "string"}, "default": nil})
		}, ""},
		{"job: nested new field without default", JobSchema(), func(s map[string]any) {
			cause := fieldOf(s, "cause")["type"].(map[string]any)
			addField(cause, map[string]any{"name": "added_required", "type": "long"})
		}, `cause: field "added_required"`},
		{"job: default dropped from a field v0 lacks", JobSchema(), func(s map[string]any) {
			delete(fieldOf(s, "tags"), "default")
		}, `field "tags" is not in the writer schema`},
		{"job: type changed", JobSchema(), func(s map[string]any) {
			cause := fieldOf(s, "cause")["type"].(map[string]any)
			fieldOf(cause, "partition")["type"] = "string"
		}, "cause.partition: writer type int cannot be read as string"},
		{"job: nullable made required", JobSchema(), func(s map[string]any) {
			f := fieldOf(s, "company_id")
			f["type"], f["default"] = "string", ""
		}, "writer union branch null cannot be read as string"},
		{"job: logical type dropped", JobSchema(), func(s map[string]any) {
			fieldOf(s, "created_at")["type"] = "long"
		}, "logical type changed"},
		{"job: record renamed", JobSchema(), func(s map[string]any) {
			s["name"] = "Job"
		}, "is read as record io.portalmail.Job"},
		{"job: record renamed with alias", JobSchema(), func(s map[string]any) {
			s["name"], s["aliases"] = "Job", []any{"EmailJob"}
		}, ""},
		{"job: field renamed with alias", JobSchema(), func(s map[string]any) {
			f := fieldOf(s, "subject")
			f["name"], f["aliases"] = "title", []any{"subject"}
		}, ""},
		{"delivery: int promoted to long", DeliverySchema(), func(s map[string]any) {
			fieldOf(s, "attempts")["type"] = "long"
		}, ""},
		{"delivery: long demoted to int", DeliverySchema(), func(s map[string]any) {
			fieldOf(s, "at")["type"] = "int"
		}, "writer type long/timestamp-millis cannot be read as int"},
		{"delivery: enum symbol removed, no default", DeliverySchema(), func(s map[string]any) {
			e := fieldOf(s, "outcome")["type"].(map[string]any)
			e["symbols"] = []any{"sent", "failed_permanent", "dead_lettered"}
			delete(e, "default")
		}, `writer enum symbol "duplicate_suppressed"`},
		{"delivery: enum symbol removed, with default", DeliverySchema(), func(s map[string]any) {
			e := fieldOf(s, "outcome")["type"].(map[string]any)
			e["symbols"] = []any{"sent", "failed_permanent", "dead_lettered", "unknown"}
		}, ""},
		{"delivery: first_try default removed", DeliverySchema(), func(s map[string]any) {
			delete(fieldOf(s, "first_try"), "default")
		}, `field "first_try" is not in the writer schema and has no default`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s map[string]any
			if err := json.Unmarshal([]byte(c.schema), &s); err != nil {
				t.Fatal(err)
			}
			c.mutate(s)
			mutated := marshal(t, s)
			if _, err := goavro.NewCodec(mutated); err != nil {
				t.Fatalf("mutated schema is not valid Avro: %v", err)
			}
			reader, err := parseSchema(mutated)
			if err != nil {
				t.Fatal(err)
			}
			record := "email_job"
			if c.schema == DeliverySchema() {
				record = "email_delivery"
			}
			var problems []string
			for _, h := range loadHistory(t, record) {
				writer, err := parseSchema(h.text)
				if err != nil {
					t.Fatal(err)
				}
				problems = append(problems, checkCompat(reader, writer)...)
			}
			all := strings.Join(problems, "\n")
			switch {
			case c.want == "" && len(problems) > 0:
				t.Fatalf("want compatible, got:\n%s", all)
			case c.want != "" && !strings.Contains(all, c.want):
				t.Fatalf("want a problem containing %q, got:\n%s", c.want, all)
			}
		})
	}
}

func fieldOf(record map[string]any, name string) map[string]any {
	for _, f := range record["fields"].([]any) {
		if fm := f.(map[string]any); fm["name"] == name {
			return fm
		}
	}
	panic("no field " + name)
}

func addField(record map[string]any, f map[string]any) {
	record["fields"] = append(record["fields"].([]any), f)
}

func marshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
