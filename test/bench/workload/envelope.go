package workload

import (
	"strconv"
	"strings"
	"time"
)

// debeziumVersion is what source.version says: the PostgreSQL connector of
// Debezium 3.x.
const debeziumVersion = "3.0.8.Final"

// source is the position part of one change: what Debezium's PostgreSQL
// connector writes into the envelope's source block.
type source struct {
	at       time.Time // commit time (source.ts_ms / ts_us / ts_ns)
	emitted  time.Time // when the connector wrote the event (envelope ts_ms / ts_us / ts_ns)
	snapshot string    // "first", "true", "last", "first_in_data_collection", "last_in_data_collection" or "false"
	txID     int64
	lsn      int64
	lastLSN  int64 // the LSN of the last commit before this change (source.sequence[0]; 0: null)
}

// envelope writes Debezium change events (and their keys) for one table,
// optionally inside the JsonConverter's {"schema", "payload"} wrapper
// (schemas.enable=true), the schema built once per table.
type envelope struct {
	t         *table
	connector string // topic prefix of the connector: "portal" or "service"
	db        string // database name
	tableName string
	wrap      bool
	valueHead []byte // `{"schema":...,"payload":` for the value, when wrapping
	keyHead   []byte // the same for the key
}

func newEnvelope(t *table, wrap bool) *envelope {
	parts := strings.Split(t.topic, ".")
	e := &envelope{t: t, connector: parts[0], tableName: parts[2], wrap: wrap}
	e.db = map[string]string{"portal": "partner_portal", "service": "pexip_service"}[e.connector]
	if wrap {
		e.valueHead = append(append([]byte(`{"schema":`), valueSchema(t)...), `,"payload":`...)
		e.keyHead = append(append([]byte(`{"schema":`), keySchema(t)...), `,"payload":`...)
	}
	return e
}

// key is the record key: {"id": ...}, or the table's key column (wrapped
// when wrapping).
func (e *envelope) key(id string) []byte {
	b := make([]byte, 0, 24+len(id)+len(e.keyHead))
	b = append(b, e.keyHead...)
	b = append(b, `{"`...)
	b = append(b, e.t.key()...)
	b = append(b, `":`...)
	b = appendString(b, id)
	b = append(b, '}')
	if e.wrap {
		b = append(b, '}')
	}
	return b
}

// value is the change event. before is nil under PostgreSQL's default replica
// identity (no before image on updates), as Debezium sends it.
func (e *envelope) value(op string, before, after row, src source) []byte {
	b := make([]byte, 0, 1024+len(e.valueHead))
	b = append(b, e.valueHead...)
	b = append(b, `{"before":`...)
	if before == nil {
		b = append(b, "null"...)
	} else {
		b = appendRow(b, e.t, before)
	}
	b = append(b, `,"after":`...)
	if after == nil {
		b = append(b, "null"...)
	} else {
		b = appendRow(b, e.t, after)
	}
	b = append(b, `,"source":{"version":"`+debeziumVersion+`","connector":"postgresql","name":`...)
	b = appendString(b, e.connector)
	b = append(b, `,"ts_ms":`...)
	b = strconv.AppendInt(b, src.at.UnixMilli(), 10)
	b = append(b, `,"snapshot":`...)
	b = appendString(b, src.snapshot)
	b = append(b, `,"db":`...)
	b = appendString(b, e.db)
	b = append(b, `,"sequence":`...)
	last := "null"
	if src.lastLSN > 0 {
		last = `"` + strconv.FormatInt(src.lastLSN, 10) + `"`
	}
	b = appendString(b, `[`+last+`,"`+strconv.FormatInt(src.lsn, 10)+`"]`)
	b = append(b, `,"ts_us":`...)
	b = strconv.AppendInt(b, src.at.UnixMicro(), 10)
	b = append(b, `,"ts_ns":`...)
	b = strconv.AppendInt(b, src.at.UnixNano(), 10)
	b = append(b, `,"schema":"public","table":`...)
	b = appendString(b, e.tableName)
	b = append(b, `,"txId":`...)
	b = strconv.AppendInt(b, src.txID, 10)
	b = append(b, `,"lsn":`...)
	b = strconv.AppendInt(b, src.lsn, 10)
	b = append(b, `,"xmin":null},"transaction":null,"op":"`...)
	b = append(b, op...)
	b = append(b, `","ts_ms":`...)
	b = strconv.AppendInt(b, src.emitted.UnixMilli(), 10)
	b = append(b, `,"ts_us":`...)
	b = strconv.AppendInt(b, src.emitted.UnixMicro(), 10)
	b = append(b, `,"ts_ns":`...)
	b = strconv.AppendInt(b, src.emitted.UnixNano(), 10)
	b = append(b, '}')
	if e.wrap {
		b = append(b, '}')
	}
	return b
}

// columnSchema is the JsonConverter schema of one column.
func columnSchema(c column) string {
	opt := strconv.FormatBool(!c.required)
	f := `"optional":` + opt + `,"field":"` + c.name + `"}`
	switch c.kind {
	case integer:
		return `{"type":"int32",` + f
	case boolean:
		return `{"type":"boolean",` + f
	case timestamp:
		return `{"type":"string","name":"io.debezium.time.ZonedTimestamp","version":1,` + f
	case date:
		return `{"type":"int32","name":"io.debezium.time.Date","version":1,` + f
	case textArray:
		return `{"type":"array","items":{"type":"string","optional":true},` + f
	}
	return `{"type":"string",` + f
}

// valueSchema is the JsonConverter schema of t's change events (the
// envelope Debezium 3.x writes for PostgreSQL).
func valueSchema(t *table) string {
	var cols []string
	for _, c := range t.columns {
		cols = append(cols, columnSchema(c))
	}
	image := func(field string) string {
		return `{"type":"struct","fields":[` + strings.Join(cols, ",") + `],"optional":true,"name":"` +
			t.topic + `.Value","field":"` + field + `"}`
	}
	src := `{"type":"struct","fields":[` +
		`{"type":"string","optional":false,"field":"version"},` +
		`{"type":"string","optional":false,"field":"connector"},` +
		`{"type":"string","optional":false,"field":"name"},` +
		`{"type":"int64","optional":false,"field":"ts_ms"},` +
		`{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},"default":"false","field":"snapshot"},` +
		`{"type":"string","optional":false,"field":"db"},` +
		`{"type":"string","optional":true,"field":"sequence"},` +
		`{"type":"int64","optional":true,"field":"ts_us"},` +
		`{"type":"int64","optional":true,"field":"ts_ns"},` +
		`{"type":"string","optional":false,"field":"schema"},` +
		`{"type":"string","optional":false,"field":"table"},` +
		`{"type":"int64","optional":true,"field":"txId"},` +
		`{"type":"int64","optional":true,"field":"lsn"},` +
		`{"type":"int64","optional":true,"field":"xmin"}` +
		`],"optional":false,"name":"io.debezium.connector.postgresql.Source","version":1,"field":"source"}`
	tx := `{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},` +
		`{"type":"int64","optional":false,"field":"total_order"},{"type":"int64","optional":false,"field":"data_collection_order"}],` +
		`"optional":true,"name":"event.block","version":1,"field":"transaction"}`
	return `{"type":"struct","fields":[` + image("before") + `,` + image("after") + `,` + src + `,` + tx + `,` +
		`{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"},` +
		`{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"}` +
		`],"optional":false,"name":"` + t.topic + `.Envelope","version":2}`
}

// keySchema is the JsonConverter schema of t's record keys.
func keySchema(t *table) string {
	return `{"type":"struct","fields":[{"type":"string","optional":false,"field":"` + t.key() + `"}],"optional":false,"name":"` +
		t.topic + `.Key"}`
}
