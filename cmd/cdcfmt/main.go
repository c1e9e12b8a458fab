// Command cdcfmt rewrites CDC records written by hand in the short form (a
// bare Debezium envelope with a small LSN) into what Debezium 3.6's
// PostgreSQL connector really writes through the JsonConverter with
// schemas.enable=true, so that the bundled sample and the scenario files look
// like production input (docs/debezium.md describes the real output):
//
//   - keys and values in the schema/payload wrapper, the schemas built from
//     the source contract (schemas/cdc) plus a NOT NULL updated_at column;
//   - the 3.x source block: version, sequence, ts_us, ts_ns, txId, xmin,
//     origin, snapshot (first_in_data_collection ... last for snapshot reads);
//     the transaction block; the envelope's ts_us and ts_ns;
//   - realistic LSNs (23,000,000 + 1,000 × the hand-written one, so the order
//     is kept), sub-millisecond times, ZonedTimestamp strings with six
//     fraction digits (microseconds derived from the value, so equal values
//     stay equal), dates as days since the epoch, MicroTimestamp integers;
//   - key-only deletes whose NOT NULL columns hold schema defaults.
//
// Times that drive the simulated clock (the envelope's ts_ms) are kept to the
// millisecond, so the emails' times do not move. Records already in the
// wrapper are left as they are. Usage:
//
//	go run ./cmd/cdcfmt FILE...    rewrites each file in place
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/portalmail/portalmail/schemas/cdc"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cdcfmt FILE...")
		os.Exit(2)
	}
	for _, f := range os.Args[1:] {
		if err := rewrite(f); err != nil {
			fmt.Fprintf(os.Stderr, "cdcfmt: %s: %v\n", f, err)
			os.Exit(1)
		}
	}
}

type record struct {
	Topic string          `json:"topic"`
	Key   json.RawMessage `json:"key"`
	Value json.RawMessage `json:"value"`
}

func rewrite(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var recs []map[string]any
	var raws [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			// Not a record (a poison line): kept as it is.
			raws = append(raws, append([]byte(nil), line...))
			recs = append(recs, nil)
			continue
		}
		raws = append(raws, nil)
		recs = append(recs, m)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	snapshot := snapshotMarks(recs)
	var out bytes.Buffer
	prevLSN := map[string]int64{} // per source
	for i, m := range recs {
		if m == nil {
			out.Write(raws[i])
			out.WriteByte('\n')
			continue
		}
		c, err := convert(m, snapshot[i], prevLSN)
		if err != nil {
			return fmt.Errorf("record %d: %w", i+1, err)
		}
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		out.Write(b)
		out.WriteByte('\n')
	}
	return os.WriteFile(path, out.Bytes(), 0o644)
}

// snapshotMarks gives each snapshot read its source.snapshot value: within a
// run of reads, first_in_data_collection / true / last_in_data_collection per
// table, and last for the run's very last read.
func snapshotMarks(recs []map[string]any) []string {
	marks := make([]string, len(recs))
	var run []int
	flush := func() {
		byTable := map[string][]int{}
		var order []string
		for _, i := range run {
			t := recs[i]["topic"].(string)
			if _, ok := byTable[t]; !ok {
				order = append(order, t)
			}
			byTable[t] = append(byTable[t], i)
		}
		for _, t := range order {
			is := byTable[t]
			for k, i := range is {
				switch {
				case k == 0:
					marks[i] = "first_in_data_collection"
				case k == len(is)-1:
					marks[i] = "last_in_data_collection"
				default:
					marks[i] = "true"
				}
			}
		}
		if len(run) > 0 {
			marks[run[len(run)-1]] = "last"
		}
		run = nil
	}
	for i, m := range recs {
		if m != nil && isRead(m) {
			run = append(run, i)
			continue
		}
		flush()
	}
	flush()
	return marks
}

func isRead(m map[string]any) bool {
	v, _ := m["value"].(map[string]any)
	if _, wrapped := v["payload"]; wrapped {
		return false
	}
	return v != nil && v["op"] == "r"
}

func tableOf(topic string) (canonical, schema, table string) {
	parts := strings.Split(topic, ".")
	if len(parts) != 3 {
		return "", "", ""
	}
	return topic, parts[1], parts[2]
}

func convert(m map[string]any, snap string, prevLSN map[string]int64) (map[string]any, error) {
	topic, _ := m["topic"].(string)
	canonical, schemaName, table := tableOf(topic)
	cols, known := cdc.Contract[canonical]
	if !known {
		return m, nil // not a contract topic: as it is
	}
	out := map[string]any{"topic": topic}
	v, _ := m["value"].(map[string]any)
	if k, ok := m["key"].(map[string]any); ok {
		if _, wrapped := k["payload"]; wrapped {
			return m, nil // already converted
		}
	}
	id := idOf(m["key"], v)
	out["key"] = map[string]any{"schema": keySchema(topic), "payload": map[string]any{"id": id}}
	if v == nil {
		out["value"] = nil // tombstone
		return out, nil
	}
	if _, wrapped := v["payload"]; wrapped {
		out["value"] = v
		return out, nil
	}
	src, _ := v["source"].(map[string]any)
	prefix := strings.SplitN(topic, ".", 2)[0]
	lsnIn, _ := asInt(src["lsn"])
	lsn := 23_000_000 + lsnIn*1000
	srcMs, _ := asInt(src["ts_ms"])
	envMs, ok := asInt(v["ts_ms"])
	if !ok {
		envMs = srcMs
	}
	jitter := int64(hash(fmt.Sprint(lsn)) % 1000)
	op, _ := v["op"].(string)
	source := map[string]any{
		"version": "3.6.1.Final", "connector": "postgresql", "name": prefix, "ts_ms": srcMs,
		"snapshot": "false", "db": prefix, "sequence": fmt.Sprintf(`["%d","%d"]`, prevLSN[prefix], lsn),
		"ts_us": srcMs*1000 + jitter, "ts_ns": (srcMs*1000+jitter)*1000 + 417,
		"schema": schemaName, "table": table, "txId": 700 + lsnIn, "lsn": lsn, "xmin": nil, "origin": nil, "origin_lsn": nil,
	}
	if op == "r" {
		source["snapshot"], source["sequence"], source["txId"] = snap, fmt.Sprintf(`[null,"%d"]`, lsn), 700
	}
	prevLSN[prefix] = lsn
	var tx any
	if op != "r" {
		tx = map[string]any{"id": fmt.Sprintf("%d:%d", 700+lsnIn, lsn), "total_order": 1, "data_collection_order": 1}
	}
	payload := map[string]any{
		"before": image(v["before"], cols, op == "d", id, envMs), "after": image(v["after"], cols, false, id, envMs),
		"source": source, "transaction": tx, "op": op, "ts_ms": envMs,
		"ts_us": envMs*1000 + (jitter+311)%1000, "ts_ns": (envMs*1000+(jitter+311)%1000)*1000 + 88,
	}
	out["value"] = map[string]any{"schema": envelopeSchema(topic, cols), "payload": payload}
	return out, nil
}

// image renders a row image as Debezium does: contract columns in their
// Connect encodings, plus updated_at; keyOnly gives a default-replica-identity
// delete's before image (the id, schema defaults elsewhere).
func image(raw any, cols map[string]cdc.ColumnType, keyOnly bool, id string, ms int64) any {
	r, _ := raw.(map[string]any)
	if r == nil {
		return nil
	}
	out := map[string]any{}
	for _, col := range sortedCols(cols) {
		typ := cols[col]
		v, present := r[col]
		if keyOnly {
			if col == "id" {
				out[col] = id
				continue
			}
			out[col] = defaultOf(col, typ, cols)
			continue
		}
		if !present {
			v = nil
		}
		out[col] = encode(v, typ)
	}
	if keyOnly {
		out["updated_at"] = 0
	} else {
		out["updated_at"] = ms*1000 + int64(hash(id)%1000)
	}
	return out
}

// required reports whether a column is NOT NULL in the generated schema.
func required(table string, col string, typ cdc.ColumnType) bool {
	if typ == cdc.Boolean {
		return true
	}
	for _, c := range cdc.Required[table] {
		if c == col {
			return true
		}
	}
	return false
}

func defaultOf(col string, typ cdc.ColumnType, _ map[string]cdc.ColumnType) any {
	switch typ {
	case cdc.Boolean:
		return false
	case cdc.Integer:
		return 0
	}
	return nil
}

func encode(v any, typ cdc.ColumnType) any {
	if v == nil {
		return nil
	}
	switch typ {
	case cdc.Timestamp:
		s, ok := v.(string)
		if !ok || s == "infinity" || s == "-infinity" {
			return v
		}
		t, ok := cdc.ParseTime(s)
		if !ok {
			return v
		}
		if t.Nanosecond() == 0 {
			t = t.Add(time.Duration(hash(s)%1_000_000) * time.Microsecond)
		}
		return t.UTC().Format("2006-01-02T15:04:05.000000Z")
	case cdc.Date:
		if s, ok := v.(string); ok {
			if t, err := time.Parse(time.DateOnly, s); err == nil {
				return t.Unix() / 86400
			}
		}
		return v
	}
	return v
}

func idOf(key any, v map[string]any) string {
	if k, ok := key.(map[string]any); ok {
		if s, ok := k["id"].(string); ok {
			return s
		}
	}
	for _, f := range []string{"after", "before"} {
		if img, ok := v[f].(map[string]any); ok {
			if s, ok := img["id"].(string); ok {
				return s
			}
		}
	}
	return ""
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	case float64:
		return int64(x), true
	}
	return 0, false
}

func hash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

func sortedCols(cols map[string]cdc.ColumnType) []string {
	out := make([]string, 0, len(cols))
	for c := range cols {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i] == "id" || out[j] == "id" {
			return out[i] == "id"
		}
		return out[i] < out[j]
	})
	return out
}

func keySchema(topic string) map[string]any {
	return map[string]any{"type": "struct", "optional": false, "name": topic + ".Key",
		"fields": []any{map[string]any{"type": "string", "optional": false, "field": "id"}}}
}

func field(typ cdc.ColumnType, col string, req bool) map[string]any {
	f := map[string]any{"optional": !req, "field": col}
	switch typ {
	case cdc.Text:
		f["type"] = "string"
	case cdc.Integer:
		f["type"] = "int32"
	case cdc.Boolean:
		f["type"], f["default"] = "boolean", false
	case cdc.Timestamp:
		f["type"], f["name"], f["version"] = "string", "io.debezium.time.ZonedTimestamp", 1
	case cdc.Date:
		f["type"], f["name"], f["version"] = "int32", "io.debezium.time.Date", 1
	case cdc.TextArray:
		f["type"], f["items"] = "array", map[string]any{"type": "string", "optional": true}
	}
	return f
}

func envelopeSchema(topic string, cols map[string]cdc.ColumnType) map[string]any {
	var fields []any
	for _, c := range sortedCols(cols) {
		fields = append(fields, field(cols[c], c, required(topic, c, cols[c])))
	}
	fields = append(fields, map[string]any{"type": "int64", "optional": false, "name": "io.debezium.time.MicroTimestamp",
		"version": 1, "default": 0, "field": "updated_at"})
	value := func(name string) map[string]any {
		return map[string]any{"type": "struct", "fields": fields, "optional": true, "name": topic + ".Value", "field": name}
	}
	str := func(name string, opt bool) map[string]any {
		return map[string]any{"type": "string", "optional": opt, "field": name}
	}
	i64 := func(name string, opt bool) map[string]any {
		return map[string]any{"type": "int64", "optional": opt, "field": name}
	}
	source := map[string]any{"type": "struct", "optional": false, "name": "io.debezium.connector.postgresql.Source", "version": 1, "field": "source",
		"fields": []any{str("version", false), str("connector", false), str("name", false), i64("ts_ms", false),
			map[string]any{"type": "string", "optional": true, "name": "io.debezium.data.Enum", "version": 1,
				"parameters": map[string]any{"allowed": "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},
				"default":    "false", "field": "snapshot"},
			str("db", false), str("sequence", true), i64("ts_us", true), i64("ts_ns", true), str("schema", false), str("table", false),
			i64("txId", true), i64("lsn", true), i64("xmin", true), str("origin", true), i64("origin_lsn", true)}}
	tx := map[string]any{"type": "struct", "optional": true, "name": "event.block", "version": 1, "field": "transaction",
		"fields": []any{str("id", false), i64("total_order", false), i64("data_collection_order", false)}}
	return map[string]any{"type": "struct", "optional": false, "name": topic + ".Envelope", "version": 2,
		"fields": []any{value("before"), value("after"), source, tx, str("op", false), i64("ts_ms", true), i64("ts_us", true), i64("ts_ns", true)}}
}
