package cdc

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
)

// ms is a Debezium ts_ms as the decoder reports it.
func ms(n int64) time.Time { return time.UnixMilli(n).UTC() }

// msTime is ms under another name, for tests that shadow ms.
func msTime(n int64) time.Time { return ms(n) }

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mapSchemas is a SchemaSource backed by a map, counting look-ups.
type mapSchemas struct {
	byID  map[int]string
	calls atomic.Int64
	down  bool // unreachable: every look-up fails
}

func (m *mapSchemas) SchemaByID(ctx context.Context, id int) (string, error) {
	m.calls.Add(1)
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if m.down {
		return "", errors.New("dial tcp 127.0.0.1:8081: connect: connection refused")
	}
	s, ok := m.byID[id]
	if !ok {
		return "", fmt.Errorf("subject not found for id %d: %w", id, ErrSchemaNotFound)
	}
	return s, nil
}

// ---- Avro fixtures, shaped like Debezium's AvroConverter output ----

// avroEnvelopeSchema is the Avro schema the AvroConverter registers for a
// Debezium Postgres table topic: Envelope{before, after: Value, source,
// transaction, op, ts_*} with connect.name annotations.
func avroEnvelopeSchema(src, table, valueFields string) string {
	ns := src + ".public." + table
	return `{
  "type": "record", "name": "Envelope", "namespace": "` + ns + `",
  "fields": [
    {"name": "before", "type": ["null", {
      "type": "record", "name": "Value",
      "fields": [` + valueFields + `],
      "connect.name": "` + ns + `.Value"}], "default": null},
    {"name": "after", "type": ["null", "Value"], "default": null},
    {"name": "source", "type": {
      "type": "record", "name": "Source", "namespace": "io.debezium.connector.postgresql",
      "fields": [
        {"name": "version", "type": "string"},
        {"name": "connector", "type": "string"},
        {"name": "name", "type": "string"},
        {"name": "ts_ms", "type": "long"},
        {"name": "snapshot", "type": [{"type": "string", "connect.version": 1,
          "connect.parameters": {"allowed": "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},
          "connect.default": "false", "connect.name": "io.debezium.data.Enum"}, "null"], "default": "false"},
        {"name": "db", "type": "string"},
        {"name": "sequence", "type": ["null", "string"], "default": null},
        {"name": "ts_us", "type": ["null", "long"], "default": null},
        {"name": "ts_ns", "type": ["null", "long"], "default": null},
        {"name": "schema", "type": "string"},
        {"name": "table", "type": "string"},
        {"name": "txId", "type": ["null", "long"], "default": null},
        {"name": "lsn", "type": ["null", "long"], "default": null},
        {"name": "xmin", "type": ["null", "long"], "default": null}
      ],
      "connect.name": "io.debezium.connector.postgresql.Source"}},
    {"name": "transaction", "type": ["null", {
      "type": "record", "name": "block", "namespace": "event",
      "fields": [
        {"name": "id", "type": "string"},
        {"name": "total_order", "type": "long"},
        {"name": "data_collection_order", "type": "long"}],
      "connect.version": 1, "connect.name": "event.block"}], "default": null},
    {"name": "op", "type": "string"},
    {"name": "ts_ms", "type": ["null", "long"], "default": null},
    {"name": "ts_us", "type": ["null", "long"], "default": null},
    {"name": "ts_ns", "type": ["null", "long"], "default": null}
  ],
  "connect.version": 2,
  "connect.name": "` + ns + `.Envelope"
}`
}

func avroKeySchema(src, table string) string {
	ns := src + ".public." + table
	return `{"type": "record", "name": "Key", "namespace": "` + ns + `",
  "fields": [{"name": "id", "type": "string"}], "connect.name": "` + ns + `.Key"}`
}

const (
	optString   = `["null", "string"]`
	zonedTS     = `["null", {"type": "string", "connect.version": 1, "connect.name": "io.debezium.time.ZonedTimestamp"}]`
	microTS     = `["null", {"type": "long", "connect.version": 1, "connect.name": "io.debezium.time.MicroTimestamp"}]`
	nanoTS      = `["null", {"type": "long", "connect.version": 1, "connect.name": "io.debezium.time.NanoTimestamp"}]`
	connectTS   = `["null", {"type": "long", "connect.version": 1, "connect.name": "org.apache.kafka.connect.data.Timestamp", "logicalType": "timestamp-millis"}]`
	debeziumDay = `["null", {"type": "int", "connect.version": 1, "connect.name": "io.debezium.time.Date"}]`
	textArray   = `["null", {"type": "array", "items": ["null", "string"]}]`
	decimal102  = `["null", {"type": "bytes", "scale": 2, "precision": 10, "connect.version": 1,
	  "connect.parameters": {"scale": "2", "connect.decimal.precision": "10"},
	  "connect.name": "org.apache.kafka.connect.data.Decimal", "logicalType": "decimal"}]`
)

func field(name, typ string) string {
	if strings.HasPrefix(typ, "[") {
		return `{"name": "` + name + `", "type": ` + typ + `, "default": null}`
	}
	return `{"name": "` + name + `", "type": ` + typ + `}`
}

func fields(fs ...string) string { return strings.Join(fs, ",\n") }

var (
	licensePlanValue = fields(
		field("id", `"string"`),
		field("company_id", optString),
		field("product", optString),
		field("billing_period", optString),
		field("quantity", `["null", "int"]`),
		field("end_date", debeziumDay),
		field("renewal", optString),
		field("status", optString),
		field("includes_otj", `["null", "boolean"]`),
		`{"name": "invoiced", "type": {"type": "boolean", "connect.default": false}, "default": false}`,
		field("updated_by_user_id", optString),
		field("price", decimal102),
		field("created_at", zonedTS),
	)
	endUserValue = fields(
		field("id", `"string"`),
		field("company_id", optString),
		field("email", optString),
		field("display_name", optString),
		field("status", optString),
		field("classic", `["null", "boolean"]`),
		field("password_set_at", connectTS),
		field("recovery_requested_at", microTS),
		field("twofa_reset_at", nanoTS),
		field("trial_expires_at", zonedTS),
		field("activation_token", optString),
	)
	partnerValue = fields(
		field("id", `"string"`),
		field("name", optString),
		field("type", optString),
		field("optional_notifications", textArray),
		field("order_recipients", textArray),
		field("trial_activity_recipients", textArray),
	)
	// licensePlanStringQuantity is a writer schema whose quantity is text.
	licensePlanStringQuantity = fields(
		field("id", `"string"`),
		field("company_id", optString),
		field("quantity", optString),
	)
)

// Schema ids of the test registry.
const (
	idLicensePlanValue = 101
	idLicensePlanKey   = 102
	idEndUserValue     = 103
	idPartnerValue     = 104
	idStringQuantity   = 105
)

func testRegistry() *mapSchemas {
	return &mapSchemas{byID: map[int]string{
		idLicensePlanValue: avroEnvelopeSchema("portal", "license_plans", licensePlanValue),
		idLicensePlanKey:   avroKeySchema("portal", "license_plans"),
		idEndUserValue:     avroEnvelopeSchema("service", "end_users", endUserValue),
		idPartnerValue:     avroEnvelopeSchema("portal", "partners", partnerValue),
		idStringQuantity:   avroEnvelopeSchema("portal", "license_plans", licensePlanStringQuantity),
	}}
}

// frame encodes native with schema id's schema and prepends the Confluent
// wire-format header.
func frame(t testing.TB, reg *mapSchemas, id int, native any) []byte {
	t.Helper()
	codec, err := goavro.NewCodec(reg.byID[id])
	if err != nil {
		t.Fatal(err)
	}
	buf := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(buf[1:], uint32(id))
	buf, err = codec.BinaryFromNative(buf, native)
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

func avroSource(src, table string, tsMs int64, lsn any) map[string]any {
	return map[string]any{
		"version": "2.7.3.Final", "connector": "postgresql", "name": src, "ts_ms": tsMs,
		"snapshot": goavro.Union("string", "false"), "db": src, "sequence": nil,
		"ts_us": goavro.Union("long", tsMs*1000), "ts_ns": goavro.Union("long", tsMs*1000000),
		"schema": "public", "table": table, "txId": goavro.Union("long", int64(4711)),
		"lsn": lsn, "xmin": nil,
	}
}

func avroEnvelope(ns string, before, after map[string]any, source map[string]any, op string, tsMs int64) map[string]any {
	u := func(r map[string]any) any {
		if r == nil {
			return nil
		}
		return goavro.Union(ns+".Value", r)
	}
	return map[string]any{
		"before": u(before), "after": u(after), "source": source, "transaction": nil,
		"op": op, "ts_ms": goavro.Union("long", tsMs), "ts_us": nil, "ts_ns": nil,
	}
}

func str(s string) any { return goavro.Union("string", s) }

var avroLicensePlan = map[string]any{
	"id": "lp-3003", "company_id": str("co-44"), "product": str("pexip_enterprise"),
	"billing_period": str("annual"), "quantity": goavro.Union("int", int32(50)),
	"end_date": goavro.Union("int", int32(20513)), "renewal": str("expire"), "status": str("active"),
	"includes_otj": goavro.Union("boolean", true), "invoiced": false,
	"updated_by_user_id": nil, "price": goavro.Union("bytes.decimal", big.NewRat(129900, 100)),
	"created_at": str("2026-03-01T10:15:30.123456Z"),
}

// ---- tests ----

func TestDecodeFixtures(t *testing.T) {
	licensePlan := Row{
		"id": "lp-1001", "company_id": "co-42", "product": "pexip_enterprise", "billing_period": "monthly",
		"quantity": int64(25), "end_date": "2027-02-28", "renewal": "unset", "status": "active",
		"includes_otj": true, "invoiced": false, "updated_by_user_id": "pu-7",
	}
	licensePlanUpdated := Row{
		"id": "lp-1001", "company_id": "co-42", "product": "pexip_enterprise", "billing_period": "annual",
		"quantity": int64(30), "end_date": "2027-02-28", "renewal": "unset", "status": "active",
		"includes_otj": true, "invoiced": false, "updated_by_user_id": "pu-9",
	}
	tests := []struct {
		file, topic string
		key         string
		want        Change
	}{{
		file: "license_plans_create.json", topic: "portal.public.license_plans", key: `{"id":"lp-1001"}`,
		want: Change{
			Table: LicensePlans, Op: OpCreate, ID: "lp-1001", After: licensePlan,
			Position: lsn(24023976), SourceTime: ms(1772360130123), TsMs: ms(1772360130456),
		},
	}, {
		file: "license_plans_update.json", topic: "portal.public.license_plans",
		want: Change{
			Table: LicensePlans, Op: OpUpdate, ID: "lp-1001", Before: licensePlan, After: licensePlanUpdated,
			Position: lsn(24024100), SourceTime: ms(1772360200000), TsMs: ms(1772360200321),
		},
	}, {
		// REPLICA IDENTITY DEFAULT: the before image carries the key, other
		// columns null (except NOT NULL ones with their value).
		file: "license_plans_delete.json", topic: "portal.public.license_plans", key: `{"id":"lp-1001"}`,
		want: Change{
			Table: LicensePlans, Op: OpDelete, ID: "lp-1001",
			// Only the id: the other columns are nulls and schema defaults.
			Before:   Row{"id": "lp-1001"},
			Position: lsn(24024500), SourceTime: ms(1772360300000), TsMs: ms(1772360300100),
		},
	}, {
		file: "companies_read.json", topic: "portal.public.companies",
		want: Change{
			Table: Companies, Op: OpRead, ID: "co-42",
			After: Row{
				"id": "co-42", "partner_id": "pa-3", "name": "Acme AS", "status": "trial",
				"trial_expires_at": "2026-03-15T10:00:00Z", "contact_email": "it@acme.example",
				"optional_notifications":        []string{"renewals", "usage"},
				"partner_account_manager_email": "am@partner.example", "pexip_account_manager_email": nil,
			},
			Position: lsn(23990000), SourceTime: ms(1772300000000), TsMs: ms(1772300000999),
		},
	}, {
		file: "partners_create.json", topic: "portal.public.partners",
		want: Change{
			Table: Partners, Op: OpCreate, ID: "pa-3",
			After: Row{
				"id": "pa-3", "name": "Partner Three", "type": "reseller", "distributor_id": "pa-1",
				"contact_email": "ops@partner.example", "optional_notifications": []string{},
				"order_recipients":          []string{"orders@partner.example", "boss@partner.example"},
				"trial_activity_recipients": []string{"trials@partner.example"}, "otj_distribution_list": nil,
				"brand_name": "Partner Three Video", "logo_url": "https://cdn.partner.example/logo.png",
				"primary_color": "#0055ff", "from_name": "Partner Three", "reply_to": "support@partner.example",
			},
			Position: lsn(24020000), SourceTime: ms(1772360000000), TsMs: ms(1772360000050),
		},
	}, {
		file: "branding_orders_create.json", topic: "portal.public.branding_orders",
		want: Change{
			Table: BrandingOrders, Op: OpCreate, ID: "bo-5",
			After: Row{
				"id": "bo-5", "company_id": "co-42", "status": "placed",
				"notify_emails": []string{"brand@acme.example", "ceo@acme.example"},
			},
			Position: lsn(24020100), SourceTime: ms(1772360010000), TsMs: ms(1772360010020),
		},
	}, {
		// No schema: an integer timestamp is read by magnitude (µs here).
		file: "cvi_usage_schemaless_micros.json", topic: "service.public.cvi_usage",
		want: Change{
			Table: CVIUsage, Op: OpCreate, ID: "cu-77",
			After: Row{
				"id": "cu-77", "company_id": "co-42", "subscription_id": "is-9", "concurrent_calls": int64(12),
				"sampled_at": "2026-03-01T10:15:30.123456Z",
			},
			Position: lsn(5550000), SourceTime: ms(1772360130200), TsMs: ms(1772360130300),
		},
	}, {
		// Connect wrapper, io.debezium.time.Date; source.lsn null → Position is source.ts_ms.
		file: "license_plans_connect.json", topic: "portal.public.license_plans",
		want: Change{
			Table: LicensePlans, Op: OpCreate, ID: "lp-2002",
			After: Row{
				"id": "lp-2002", "company_id": "co-43", "product": "pexip_teams_connector", "billing_period": "annual",
				"quantity": int64(10), "end_date": "2026-03-01", "renewal": "renew", "status": "active",
				"includes_otj": false, "invoiced": true, "updated_by_user_id": "pu-8",
			},
			Position: Position{Kind: SourceMicros, N: 1772360400000000}, SourceTime: ms(1772360400000), TsMs: ms(1772360400500),
		},
	}, {
		// Connect wrapper with MicroTimestamp, ZonedTimestamp, NanoTimestamp and Timestamp.
		file: "end_users_connect.json", topic: "service.public.end_users",
		want: Change{
			Table: EndUsers, Op: OpUpdate, ID: "eu-501",
			After: Row{
				"id": "eu-501", "company_id": "co-42", "email": "kari@acme.example", "display_name": "Kari Nordmann",
				"status": "active", "classic": false,
				"password_set_at":       "2026-03-01T10:15:30.123456Z",
				"recovery_requested_at": "2026-03-01T10:15:30.123456Z",
				"twofa_reset_at":        "2026-03-01T10:15:30.123456789Z",
				"trial_expires_at":      "2026-03-15T10:15:30Z",
				"activation_token":      nil,
			},
			Position: lsn(7770000), SourceTime: ms(1772360130500), TsMs: ms(1772360130600),
		},
	}}
	d := NewDecoder(DecoderConfig{})
	for i, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".json"), func(t *testing.T) {
			var key []byte
			if tt.key != "" {
				key = []byte(tt.key)
			}
			got, err := d.Decode(context.Background(), tt.topic, 3, int64(1000+i), key, fixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.Cause = Cause{Topic: tt.topic, Partition: 3, Offset: int64(1000 + i)}
			assertChange(t, got, want)
		})
	}
}

// lsn is an LSN position.
func lsn(n int64) Position { return Position{Kind: LSN, N: n} }

// assertChange compares a decoded change with the wanted one. A wanted time
// position without Image gets the digest of the wanted image (the after
// image, the before image for deletes).
func assertChange(t *testing.T, got, want Change) {
	t.Helper()
	if want.Position.Kind != LSN && want.Position.Image == "" {
		img := want.After
		if img == nil {
			img = want.Before
		}
		want.Position.Image = imageDigest(want.Op, img)
	}
	if !reflect.DeepEqual(got.Before, want.Before) {
		t.Errorf("Before:\n got %#v\nwant %#v", got.Before, want.Before)
	}
	if !reflect.DeepEqual(got.After, want.After) {
		t.Errorf("After:\n got %#v\nwant %#v", got.After, want.After)
	}
	got.Before, got.After, want.Before, want.After = nil, nil, nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Change:\n got %+v\nwant %+v", got, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, topic string
		value       []byte
		reason      string
	}{
		{"unknown topic", "portal.public.invoices", fixture(t, "license_plans_create.json"), "unknown topic"},
		{"unknown topic prefix", "crm.public.companies", fixture(t, "companies_read.json"), "unknown topic"},
		{"table of the other source", "service.public.companies", fixture(t, "companies_read.json"), "unknown topic"},
		{"not JSON", "portal.public.companies", []byte("this is not json"), "not JSON: cannot parse JSON: unexpected value found"},
		{"truncated JSON", "portal.public.companies", []byte(`{"op": "c", "after": {`), "not JSON: cannot parse JSON: cannot parse object"},
		{"trailing data", "portal.public.companies", []byte(`{"op": "c"} {}`), "not JSON: unexpected tail"},
		{"JSON array", "portal.public.companies", []byte(`[1, 2]`), "JSON value is array, not an object"},
		{"JSON null", "portal.public.companies", []byte(`null`), "JSON value is null, not an object"},
		{"JSON string", "portal.public.companies", []byte(`"c"`), `JSON value is string "c", not an object`},
		{"payload not object", "portal.public.companies", []byte(`{"schema": null, "payload": 5}`), "JSON payload is number 5, not an object"},
		{"missing op", "portal.public.license_plans", fixture(t, "bad_missing_op.json"), "missing op"},
		{"null op", "portal.public.companies", []byte(`{"op": null, "after": {"id": "co-1"}}`), "missing op"},
		{"op not string", "portal.public.companies", []byte(`{"op": 1, "after": {"id": "co-1"}}`), "op is number 1, not a string"},
		{"source not object", "portal.public.companies", []byte(`{"op": "c", "after": {"id": "co-1"}, "source": "pg"}`), `source is string "pg", not an object`},
		{"after not object", "portal.public.companies", []byte(`{"op": "c", "after": ["co-1"]}`), "after image is array, not an object"},
		{"wrong integer", "portal.public.license_plans", fixture(t, "bad_wrong_integer.json"),
			`after column portal.public.license_plans.quantity: cannot use string "abc" as integer`},
		{"fractional integer", "portal.public.interop_subscriptions", []byte(`{"op": "c", "after": {"id": "is-1", "company_id": "co-1", "kind": "teams_cvi", "concurrent_call_licenses": 2.5}}`),
			"after column portal.public.interop_subscriptions.concurrent_call_licenses: cannot use number 2.5 as integer"},
		{"object for text", "portal.public.companies", fixture(t, "bad_text_object.json"),
			"after column portal.public.companies.name: cannot use object as text"},
		{"string for boolean", "service.public.endpoints", []byte(`{"op": "c", "after": {"id": "ep-1", "company_id": "co-1", "enabled": "yes"}}`),
			`after column service.public.endpoints.enabled: cannot use string "yes" as boolean`},
		{"string for array", "portal.public.branding_orders", []byte(`{"op": "c", "after": {"id": "bo-1", "company_id": "co-1", "notify_emails": "{a,b}"}}`),
			`after column portal.public.branding_orders.notify_emails: cannot use string "{a,b}" as text array`},
		{"object in array", "portal.public.branding_orders", []byte(`{"op": "c", "after": {"id": "bo-1", "company_id": "co-1", "notify_emails": ["a", {}]}}`),
			`after column portal.public.branding_orders.notify_emails: element 1: cannot use object as text`},
		{"bad timestamp", "portal.public.companies", []byte(`{"op": "c", "after": {"id": "co-1", "trial_expires_at": "next tuesday"}}`),
			`after column portal.public.companies.trial_expires_at: unparsable timestamp string "next tuesday"`},
		{"boolean timestamp", "portal.public.companies", []byte(`{"op": "c", "after": {"id": "co-1", "trial_expires_at": true}}`),
			`after column portal.public.companies.trial_expires_at: cannot use boolean true as timestamp`},
		{"bad date", "portal.public.license_plans", []byte(`{"op": "c", "after": {"id": "lp-1", "company_id": "co-1", "end_date": "31/12/2026"}}`),
			`after column portal.public.license_plans.end_date: unparsable date string "31/12/2026"`},
		{"date out of range", "portal.public.license_plans", []byte(`{"op": "c", "after": {"id": "lp-1", "company_id": "co-1", "end_date": 99999999999}}`),
			`after column portal.public.license_plans.end_date: date 99999999999 days since epoch out of range`},
		{"wrong type in before", "portal.public.license_plans", []byte(`{"op": "u", "before": {"id": "lp-1", "quantity": "many"}, "after": {"id": "lp-1", "company_id": "co-1"}}`),
			`before column portal.public.license_plans.quantity: cannot use string "many" as integer`},
		{"missing required column", "portal.public.license_plans", fixture(t, "bad_missing_required.json"), "missing required column company_id"},
		{"missing required absent", "service.public.cvi_usage", []byte(`{"op": "u", "after": {"id": "cu-1", "subscription_id": "is-1"}}`), "missing required column concurrent_calls"},
		{"create without after", "portal.public.companies", []byte(`{"op": "c", "before": {"id": "co-1"}, "after": null}`), "op c without after image"},
		{"no id", "portal.public.license_plans", fixture(t, "bad_no_id.json"), "no id"},
		{"delete without id", "portal.public.companies", []byte(`{"op": "d", "before": {"name": "x"}, "after": null}`), "no id"},
		{"avro without registry", "portal.public.companies", []byte{0, 0, 0, 0, 7, 2, 'x'}, "Avro record with schema id 7 but no schema registry configured"},
		{"short avro header", "portal.public.companies", []byte{0, 0, 1}, "truncated Confluent wire-format header (3 bytes)"},
	}
	d := NewDecoder(DecoderConfig{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, err := d.Decode(context.Background(), tt.topic, 1, 42, nil, tt.value)
			if err == nil {
				t.Fatalf("no error; got %+v", ch)
			}
			if !errors.Is(err, ErrUndecodable) {
				t.Errorf("error %q does not wrap ErrUndecodable", err)
			}
			prefix := "decode " + tt.topic + "/1@42: " + tt.reason
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error\n got %q\nwant prefix %q", err, prefix)
			}
			if !reflect.DeepEqual(ch, Change{}) {
				t.Errorf("non-zero Change with error: %+v", ch)
			}
		})
	}
}

func TestDecodeKeyIDFallback(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	// A delete whose before image lacks the id takes it from the key.
	ch, err := d.Decode(context.Background(), "portal.public.companies", 0, 1,
		[]byte(`{"schema": {"type": "struct"}, "payload": {"id": "co-9"}}`),
		[]byte(`{"op": "d", "before": {"name": null}, "after": null, "source": {"ts_ms": 1772360130123, "lsn": 77}}`))
	if err != nil {
		t.Fatal(err)
	}
	if ch.ID != "co-9" || ch.Op != OpDelete || ch.Position != lsn(77) {
		t.Errorf("got %+v", ch)
	}
	// Only the id is read from a delete; it is null here.
	if want := (Row{"id": nil}); !reflect.DeepEqual(ch.Before, want) {
		t.Errorf("Before = %#v, want %#v", ch.Before, want)
	}
}

// TestDecodeImages: a Decoder configured with Images encodes each after
// image as the stores keep it, except one holding an unchanged TOASTed
// value (the engine merges it first); without Images it encodes none.
func TestDecodeImages(t *testing.T) {
	ctx := context.Background()
	update := []byte(`{"before": null, "after": {"id": "pa-3", "name": "Partner Three", "order_recipients": ["a@x.example"]},
		"source": {"connector": "postgresql", "ts_ms": 1772360130123, "lsn": 99}, "op": "u", "ts_ms": 1772360130456}`)
	toasted := []byte(`{"before": null, "after": {"id": "pa-3", "name": "Partner Three", "logo_url": "__debezium_unavailable_value"},
		"source": {"connector": "postgresql", "ts_ms": 1772360130123, "lsn": 100}, "op": "u", "ts_ms": 1772360130456}`)
	deleted := []byte(`{"before": {"id": "pa-3", "name": "Partner Three"}, "after": null,
		"source": {"connector": "postgresql", "ts_ms": 1772360130123, "lsn": 101}, "op": "d", "ts_ms": 1772360130456}`)
	images := NewDecoder(DecoderConfig{Images: true})
	ch, err := images.Decode(ctx, "portal.public.partners", 0, 0, nil, update)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ch.After.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(ch.Image) != string(want) {
		t.Errorf("Image = %q, want %q", ch.Image, want)
	}
	for name, value := range map[string][]byte{"toasted": toasted, "deleted": deleted} {
		if ch, err := images.Decode(ctx, "portal.public.partners", 0, 0, nil, value); err != nil || ch.Image != nil {
			t.Errorf("%s: Image = %q, err %v; want none", name, ch.Image, err)
		}
	}
	if ch, err := NewDecoder(DecoderConfig{}).Decode(ctx, "portal.public.partners", 0, 0, nil, update); err != nil || ch.Image != nil {
		t.Errorf("without Images: Image = %q, err %v; want none", ch.Image, err)
	}
}

func TestDecodeUnavailableValuePlaceholder(t *testing.T) {
	// An update under REPLICA IDENTITY DEFAULT whose unchanged TOASTed columns
	// Debezium could not read: they decode to Unavailable ("unchanged"), in
	// every encoding Debezium uses for the placeholder.
	value := []byte(`{"before": null, "after": {"id": "pa-3", "name": "Partner Three",
		"logo_url": "__debezium_unavailable_value", "order_recipients": ["__debezium_unavailable_value"],
		"reply_to": "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ=="},
		"source": {"connector": "postgresql", "ts_ms": 1772360130123, "lsn": 99}, "op": "u", "ts_ms": 1772360130456}`)
	ch, err := NewDecoder(DecoderConfig{}).Decode(context.Background(), "portal.public.partners", 0, 0, nil, value)
	if err != nil {
		t.Fatal(err)
	}
	want := Row{"id": "pa-3", "name": "Partner Three", "logo_url": Unavailable, "order_recipients": Unavailable, "reply_to": Unavailable}
	if !reflect.DeepEqual(ch.After, want) {
		t.Errorf("After = %#v, want %#v", ch.After, want)
	}
	cols := ch.After.UnavailableColumns()
	sort.Strings(cols)
	if got := strings.Join(cols, ","); got != "logo_url,order_recipients,reply_to" {
		t.Errorf("UnavailableColumns = %s", got)
	}
	if ch.After.Has("logo_url") || ch.After.Str("logo_url") != "" || ch.After.Strings("order_recipients") != nil {
		t.Errorf("accessors read Unavailable as a value")
	}
	if _, err := ch.After.AppendJSON(nil); err == nil {
		t.Errorf("an unmerged Unavailable encoded without error")
	}
}

func TestMergeUnavailable(t *testing.T) {
	after := Row{"id": "pa-3", "logo_url": Unavailable, "otj_distribution_list": Unavailable, "name": "New"}
	before := Row{"id": "pa-3", "logo_url": "https://cdn/logo.png", "otj_distribution_list": Unavailable}
	stored := Row{"id": "pa-3", "logo_url": "https://cdn/old.png", "otj_distribution_list": []string{"a@x.example"}, "name": "Old"}
	got, unresolved := after.MergeUnavailable(before, stored)
	want := Row{"id": "pa-3", "logo_url": "https://cdn/logo.png", "otj_distribution_list": []string{"a@x.example"}, "name": "New"}
	if !reflect.DeepEqual(got, want) || len(unresolved) != 0 {
		t.Fatalf("got %#v unresolved %v", got, unresolved)
	}
	if !IsUnavailable(after["logo_url"]) {
		t.Fatal("MergeUnavailable modified its receiver")
	}
	got, unresolved = after.MergeUnavailable(nil)
	if _, has := got["logo_url"]; has || len(unresolved) != 2 {
		t.Fatalf("nothing to merge from: got %#v unresolved %v", got, unresolved)
	}
	plain := Row{"id": "x"}
	if got, _ := plain.MergeUnavailable(stored); !reflect.DeepEqual(got, plain) {
		t.Fatalf("a row without Unavailable changed: %#v", got)
	}
}

func TestDecodePositionAndTimes(t *testing.T) {
	img := Row{"id": "co-1"}
	ms := func(n int64) Position { return Position{Kind: SourceMillis, N: n, Image: imageDigest(OpCreate, img)} }
	tests := []struct {
		name       string
		value      string
		position   Position
		sourceTime time.Time
		tsMs       time.Time
	}{
		{"lsn", `{"op": "c", "after": {"id": "co-1"}, "source": {"ts_ms": 1000, "lsn": 5}, "ts_ms": 2000}`, lsn(5), msTime(1000), msTime(2000)},
		{"lsn as a string", `{"op": "c", "after": {"id": "co-1"}, "source": {"ts_ms": 1000, "lsn": "123"}, "ts_ms": 2000}`, lsn(123), msTime(1000), msTime(2000)},
		{"lsn from sequence", `{"op": "c", "after": {"id": "co-1"}, "source": {"ts_ms": 1000, "sequence": "[\"100\",\"124\"]"}, "ts_ms": 2000}`, lsn(124), msTime(1000), msTime(2000)},
		{"null lsn, ts_us", `{"op": "c", "after": {"id": "co-1"}, "source": {"ts_ms": 1000, "ts_us": 1000123, "lsn": null}, "ts_ms": 2000}`,
			Position{Kind: SourceMicros, N: 1000123, Image: imageDigest(OpCreate, img)}, msTime(1000), msTime(2000)},
		{"null lsn", `{"op": "c", "after": {"id": "co-1"}, "source": {"ts_ms": 1000, "lsn": null}, "ts_ms": 2000}`, ms(1000), msTime(1000), msTime(2000)},
		{"no source", `{"op": "c", "after": {"id": "co-1"}, "ts_ms": 2000}`, ms(2000), msTime(2000), msTime(2000)},
		{"no envelope ts", `{"op": "c", "after": {"id": "co-1"}, "source": {"ts_ms": 1000}}`, ms(1000), msTime(1000), msTime(1000)},
		{"nothing", `{"op": "c", "after": {"id": "co-1"}}`, Position{Image: imageDigest(OpCreate, img)}, time.Time{}, time.Time{}},
	}
	d := NewDecoder(DecoderConfig{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, err := d.Decode(context.Background(), "portal.public.companies", 0, 0, nil, []byte(tt.value))
			if err != nil {
				t.Fatal(err)
			}
			if ch.Position != tt.position || !ch.SourceTime.Equal(tt.sourceTime) || !ch.TsMs.Equal(tt.tsMs) {
				t.Errorf("got Position %v SourceTime %v TsMs %v, want %v %v %v",
					ch.Position, ch.SourceTime, ch.TsMs, tt.position, tt.sourceTime, tt.tsMs)
			}
		})
	}
}

// TestSameMillisecondChangesAreTwoChanges: without an LSN, two different
// changes of a row in one millisecond get different positions (a replay of
// one of them gets its position again).
func TestSameMillisecondChangesAreTwoChanges(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	decode := func(enabled string) Position {
		ch, err := d.Decode(context.Background(), "service.public.endpoints", 0, 0, nil,
			[]byte(`{"op": "u", "after": {"id": "ep-1", "company_id": "c", "enabled": `+enabled+`}, "source": {"ts_ms": 1772360130123}, "ts_ms": 1772360130124}`))
		if err != nil {
			t.Fatal(err)
		}
		return ch.Position
	}
	off, on, offAgain := decode("false"), decode("true"), decode("false")
	if off == on {
		t.Fatalf("disable and re-enable in one millisecond share position %v", off)
	}
	if off != offAgain {
		t.Fatalf("the same change decoded twice got %v and %v", off, offAgain)
	}
	if c, ok := off.Compare(on); !ok || c != 0 {
		t.Fatalf("Compare = %d, %v; want same instant", c, ok)
	}
}

func TestPositionText(t *testing.T) {
	for _, p := range []Position{lsn(1), lsn(MaxLSN), {Kind: SourceMicros, N: 1772360130123456, Image: "9f86d081884c7d65"},
		{Kind: SourceMillis, N: 1772360130123, Image: "1"}, {Image: "ab"}} {
		back, err := ParsePosition(p.String())
		if err != nil || back != p {
			t.Errorf("%v: round trip gave %v, %v", p, back, err)
		}
	}
	for p, want := range map[Position]string{lsn(24024100): "lsn:24024100", {}: "", {Image: "ab"}: "none~ab",
		{Kind: SourceMicros, N: 1772360200000000, Image: "9f86d081884c7d65"}: "us:1772360200000000~9f86d081884c7d65"} {
		if got := p.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", p, got, want)
		}
		if got := string(p.Append([]byte("@"))); got != "@"+want {
			t.Errorf("%#v.Append = %q, want %q", p, got, "@"+want)
		}
	}
	for _, bad := range []string{"", "lsn", "lsn:", "lsn:007", "lsn:1e3", "ts:5", "none", "none~", "ms:5~", "lsn:99999999999999999999"} {
		if p, err := ParsePosition(bad); err == nil {
			t.Errorf("ParsePosition(%q) = %v, want an error", bad, p)
		}
	}
	if _, ok := lsn(5).Compare(Position{Kind: SourceMillis, N: 5}); ok {
		t.Error("an LSN and a millisecond were compared")
	}
}

func TestDecodeTombstone(t *testing.T) {
	reg := testRegistry()
	avroKey := frame(t, reg, idLicensePlanKey, map[string]any{"id": "lp-3003"})
	tests := []struct {
		name  string
		key   []byte
		value []byte
		id    string
	}{
		{"JSON key", []byte(`{"id":"lp-1001"}`), nil, "lp-1001"},
		{"JSON key, empty value", []byte(`{"id":"lp-1001"}`), []byte{}, "lp-1001"},
		{"connect wrapped key", []byte(`{"schema":{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"}],"optional":false,"name":"portal.public.license_plans.Key"},"payload":{"id":"lp-1002"}}`), nil, "lp-1002"},
		{"numeric JSON id", []byte(`{"id": 42}`), nil, "42"},
		{"plain string key", []byte("lp-1003"), nil, "lp-1003"},
		{"JSON string key", []byte(`"lp-1004"`), nil, "lp-1004"},
		{"Avro key", avroKey, nil, "lp-3003"},
		{"no key", nil, nil, ""},
		{"key without id", []byte(`{"uuid": "x"}`), nil, ""},
		{"binary key", []byte{0xff, 0xfe, 0x01}, nil, ""},
		{"Avro key with unknown schema", []byte{0, 0, 0, 9, 9, 2, 'x'}, nil, ""},
	}
	d := NewDecoder(DecoderConfig{Schemas: reg})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Decode(context.Background(), "portal.public.license_plans", 2, 9, tt.key, tt.value)
			if err != nil {
				t.Fatal(err)
			}
			want := Change{Table: LicensePlans, Op: OpTombstone, ID: tt.id,
				Cause: Cause{Topic: "portal.public.license_plans", Partition: 2, Offset: 9}}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestDecodeAvro(t *testing.T) {
	reg := testRegistry()
	lpNS := "portal.public.license_plans"
	euNS := "service.public.end_users"
	paNS := "portal.public.partners"
	lpKey := frame(t, reg, idLicensePlanKey, map[string]any{"id": "lp-3003"})

	lpAfter := Row{
		"id": "lp-3003", "company_id": "co-44", "product": "pexip_enterprise", "billing_period": "annual",
		"quantity": int64(50), "end_date": "2026-03-01", "renewal": "expire", "status": "active",
		"includes_otj": true, "invoiced": false, "updated_by_user_id": nil,
	}
	euBefore := map[string]any{
		"id": "eu-9", "company_id": str("co-44"), "email": str("ola@acme.example"), "display_name": nil,
		"status": str("invited"), "classic": goavro.Union("boolean", true), "password_set_at": nil,
		"recovery_requested_at": nil, "twofa_reset_at": nil,
		"trial_expires_at": str("2026-03-15T12:00:00+02:00"), "activation_token": str("tok-1"),
	}
	euAfter := map[string]any{
		"id": "eu-9", "company_id": str("co-44"), "email": str("ola@acme.example"), "display_name": str("Ola"),
		"status": str("active"), "classic": goavro.Union("boolean", false),
		"password_set_at":       goavro.Union("long.timestamp-millis", time.UnixMilli(1772360130123)),
		"recovery_requested_at": goavro.Union("long", int64(1772360130123456)),
		"twofa_reset_at":        goavro.Union("long", int64(1772360130123456789)),
		"trial_expires_at":      str("2026-03-15T12:00:00+02:00"), "activation_token": nil,
	}
	partner := map[string]any{
		"id": "pa-8", "name": str("Distri"), "type": str("distributor"),
		"optional_notifications":    goavro.Union("array", []any{str("orders"), nil, str("renewals")}),
		"order_recipients":          goavro.Union("array", []any{}),
		"trial_activity_recipients": nil,
	}

	tests := []struct {
		name  string
		topic string
		key   []byte
		value []byte
		want  Change
	}{{
		name: "create", topic: "portal.public.license_plans", key: lpKey,
		value: frame(t, reg, idLicensePlanValue, avroEnvelope(lpNS, nil, avroLicensePlan,
			avroSource("portal", "license_plans", 1772360130123, goavro.Union("long", int64(24023976))), "c", 1772360130456)),
		want: Change{Table: LicensePlans, Op: OpCreate, ID: "lp-3003", After: lpAfter,
			Position: lsn(24023976), SourceTime: ms(1772360130123), TsMs: ms(1772360130456)},
	}, {
		name: "delete, id from before", topic: "portal.public.license_plans", key: lpKey,
		value: frame(t, reg, idLicensePlanValue, avroEnvelope(lpNS, map[string]any{
			"id": "lp-3003", "company_id": nil, "product": nil, "billing_period": nil, "quantity": nil,
			"end_date": nil, "renewal": nil, "status": nil, "includes_otj": nil, "invoiced": false,
			"updated_by_user_id": nil, "price": nil, "created_at": nil,
		}, nil, avroSource("portal", "license_plans", 1772360200000, nil), "d", 1772360200001)),
		want: Change{Table: LicensePlans, Op: OpDelete, ID: "lp-3003",
			Before:   Row{"id": "lp-3003"},
			Position: Position{Kind: SourceMicros, N: 1772360200000000}, SourceTime: ms(1772360200000), TsMs: ms(1772360200001)},
	}, {
		name: "update with temporals", topic: "service.public.end_users",
		value: frame(t, reg, idEndUserValue, avroEnvelope(euNS, euBefore, euAfter,
			avroSource("service", "end_users", 1772360130500, goavro.Union("long", int64(7770000))), "u", 1772360130600)),
		want: Change{Table: EndUsers, Op: OpUpdate, ID: "eu-9",
			Before: Row{
				"id": "eu-9", "company_id": "co-44", "email": "ola@acme.example", "display_name": nil,
				"status": "invited", "classic": true, "password_set_at": nil, "recovery_requested_at": nil,
				"twofa_reset_at": nil, "trial_expires_at": "2026-03-15T10:00:00Z", "activation_token": "tok-1",
			},
			After: Row{
				"id": "eu-9", "company_id": "co-44", "email": "ola@acme.example", "display_name": "Ola",
				"status": "active", "classic": false,
				"password_set_at":       "2026-03-01T10:15:30.123Z",
				"recovery_requested_at": "2026-03-01T10:15:30.123456Z",
				"twofa_reset_at":        "2026-03-01T10:15:30.123456789Z",
				"trial_expires_at":      "2026-03-15T10:00:00Z", "activation_token": nil,
			},
			Position: lsn(7770000), SourceTime: ms(1772360130500), TsMs: ms(1772360130600)},
	}, {
		name: "snapshot read with arrays", topic: "portal.public.partners",
		value: frame(t, reg, idPartnerValue, avroEnvelope(paNS, nil, partner,
			avroSource("portal", "partners", 1772300000000, goavro.Union("long", int64(23990000))), "r", 1772300000001)),
		want: Change{Table: Partners, Op: OpRead, ID: "pa-8",
			After: Row{
				"id": "pa-8", "name": "Distri", "type": "distributor",
				"optional_notifications": []string{"orders", "renewals"}, "order_recipients": []string{},
				"trial_activity_recipients": nil,
			},
			Position: lsn(23990000), SourceTime: ms(1772300000000), TsMs: ms(1772300000001)},
	}}
	d := NewDecoder(DecoderConfig{Schemas: reg})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Decode(context.Background(), tt.topic, 0, 5, tt.key, tt.value)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.Cause = Cause{Topic: tt.topic, Partition: 0, Offset: 5}
			assertChange(t, got, want)
		})
	}
}

func TestDecodeAvroErrors(t *testing.T) {
	reg := testRegistry()
	lpNS := "portal.public.license_plans"
	good := frame(t, reg, idLicensePlanValue, avroEnvelope(lpNS, nil, avroLicensePlan,
		avroSource("portal", "license_plans", 1772360130123, nil), "c", 1772360130456))
	unknownID := bytes.Clone(good)
	binary.BigEndian.PutUint32(unknownID[1:5], 999)

	stringQuantity := frame(t, reg, idStringQuantity, avroEnvelope(lpNS, nil, map[string]any{
		"id": "lp-1", "company_id": str("co-1"), "quantity": str("abc"),
	}, avroSource("portal", "license_plans", 1, nil), "c", 2))
	badOp := frame(t, reg, idLicensePlanValue, avroEnvelope(lpNS, nil, avroLicensePlan,
		avroSource("portal", "license_plans", 1, nil), "x", 2))

	// A partner whose optional_notifications array declares 2^31-1 items in a
	// handful of bytes: rejected before goavro sizes an allocation by it.
	hugeArray := []byte{0, 0, 0, 0, idPartnerValue,
		0x00,      // before: null
		0x02,      // after: Value
		0x02, 'x', // id "x"
		0x00, 0x00, // name, type: null
		0x02,                         // optional_notifications: array
		0xfe, 0xff, 0xff, 0xff, 0x0f, // block count 2147483647
		0x00}
	tests := []struct {
		name   string
		value  []byte
		reason string
	}{
		{"huge array block", hugeArray, "schema id 104: invalid Avro binary: block of 2147483647 items cannot fit in 1 bytes"},
		{"bad union index", []byte{0, 0, 0, 0, idLicensePlanValue, 0x04}, "schema id 101: invalid Avro binary: union index 2 out of range"},
		{"unknown schema id", unknownID, "unknown schema id 999: subject not found for id 999: no such schema id in the registry"},
		{"trailing bytes", append(bytes.Clone(good), 0, 0), "schema id 101: 2 trailing bytes after the Avro datum"},
		{"truncated datum", good[:len(good)-3], "schema id 101: invalid Avro binary"},
		{"key schema for a value", frame(t, reg, idLicensePlanKey, map[string]any{"id": "lp-1"}), "missing op"},
		{"wrong column type", stringQuantity, `after column portal.public.license_plans.quantity: cannot use string "abc" as integer`},
		{"unknown op", badOp, `unknown op "x"`},
	}
	d := NewDecoder(DecoderConfig{Schemas: reg})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.Decode(context.Background(), "portal.public.license_plans", 4, 8, nil, tt.value)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrUndecodable) {
				t.Errorf("error %q does not wrap ErrUndecodable", err)
			}
			if prefix := "decode portal.public.license_plans/4@8: " + tt.reason; !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error\n got %q\nwant prefix %q", err, prefix)
			}
		})
	}
}

func TestDecodeAvroCancelledContextIsNotUndecodable(t *testing.T) {
	reg := testRegistry()
	value := frame(t, reg, idLicensePlanValue, avroEnvelope("portal.public.license_plans", nil, avroLicensePlan,
		avroSource("portal", "license_plans", 1, nil), "c", 2))
	d := NewDecoder(DecoderConfig{Schemas: reg})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := d.Decode(ctx, "portal.public.license_plans", 0, 0, nil, value)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUndecodable) {
		t.Fatalf("err = %v; want context.Canceled and not ErrUndecodable", err)
	}
	// The failure is not cached: a live context decodes the same record.
	if _, err := d.Decode(context.Background(), "portal.public.license_plans", 0, 0, nil, value); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeAvroCachesSchemasConcurrently(t *testing.T) {
	reg := testRegistry()
	lp := frame(t, reg, idLicensePlanValue, avroEnvelope("portal.public.license_plans", nil, avroLicensePlan,
		avroSource("portal", "license_plans", 1, goavro.Union("long", int64(3))), "c", 2))
	key := frame(t, reg, idLicensePlanKey, map[string]any{"id": "lp-3003"})
	d := NewDecoder(DecoderConfig{Schemas: reg})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				ch, err := d.Decode(context.Background(), "portal.public.license_plans", int32(g), int64(i), key, lp)
				if err != nil {
					errs <- err
					return
				}
				if ch.ID != "lp-3003" || ch.After.Str("end_date") != "2026-03-01" {
					errs <- fmt.Errorf("got %+v", ch)
					return
				}
				if _, err := d.Decode(context.Background(), "portal.public.license_plans", int32(g), int64(i), key, nil); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := reg.calls.Load(); n != 2 {
		t.Errorf("SchemaByID called %d times, want 2 (once per schema id)", n)
	}
}

func TestTableAndTopics(t *testing.T) {
	def := NewDecoder(DecoderConfig{})
	custom := NewDecoder(DecoderConfig{PortalPrefix: "pp", ServicePrefix: "svc"})
	dotted := NewDecoder(DecoderConfig{PortalPrefix: "prod.portal", ServicePrefix: "prod.service"})
	tests := []struct {
		d     *Decoder
		topic string
		table string
	}{
		{def, "portal.public.license_plans", LicensePlans},
		{def, "service.public.cvi_usage", CVIUsage},
		{def, "portal.public.end_users", ""},
		{def, "portal.public.invoices", ""},
		{def, "portal.audit.companies", ""},
		{def, "portal.public", ""},
		{def, "", ""},
		{custom, "pp.public.companies", Companies},
		{custom, "svc.public.end_users", EndUsers},
		{custom, "portal.public.companies", ""},
		{custom, "service.public.end_users", ""},
		{dotted, "prod.portal.public.partners", Partners},
		{dotted, "prod.service.public.domains", Domains},
	}
	for _, tt := range tests {
		got, ok := tt.d.Table(tt.topic)
		if got != tt.table || ok != (tt.table != "") {
			t.Errorf("Table(%q) = %q, %v; want %q", tt.topic, got, ok, tt.table)
		}
	}

	topics := custom.Topics()
	if len(topics) != len(Contract) {
		t.Fatalf("Topics() has %d topics, want %d: %v", len(topics), len(Contract), topics)
	}
	if !sort.StringsAreSorted(topics) {
		t.Errorf("Topics() not sorted: %v", topics)
	}
	for _, topic := range topics {
		if _, ok := custom.Table(topic); !ok {
			t.Errorf("Topics() lists %q, which Table rejects", topic)
		}
		if !strings.HasPrefix(topic, "pp.public.") && !strings.HasPrefix(topic, "svc.public.") {
			t.Errorf("topic %q lacks a configured prefix", topic)
		}
	}
	if topics[0] != "pp.public.branding_orders" || topics[len(topics)-1] != "svc.public.team_vmrs" {
		t.Errorf("Topics() = %v", topics)
	}
}

func TestDecodeCustomPrefix(t *testing.T) {
	d := NewDecoder(DecoderConfig{PortalPrefix: "pp"})
	ch, err := d.Decode(context.Background(), "pp.public.companies", 0, 7, nil, fixture(t, "companies_read.json"))
	if err != nil {
		t.Fatal(err)
	}
	if ch.Table != Companies || ch.ID != "co-42" || ch.Cause.Topic != "pp.public.companies" {
		t.Errorf("got %+v", ch)
	}
	_, err = d.Decode(context.Background(), "portal.public.companies", 0, 7, nil, fixture(t, "companies_read.json"))
	if !errors.Is(err, ErrUndecodable) || !strings.Contains(err.Error(), "unknown topic") {
		t.Errorf("default prefix with PortalPrefix pp: err = %v", err)
	}
}

// FuzzDecode checks that Decode never panics, that every failure is
// ErrUndecodable, and that every success holds only normalised values.
func FuzzDecode(f *testing.F) {
	reg := testRegistry()
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			f.Add(uint8(0), []byte(`{"id":"x"}`), fixture(f, e.Name()))
		}
	}
	lpNS := "portal.public.license_plans"
	f.Add(uint8(1), frame(f, reg, idLicensePlanKey, map[string]any{"id": "lp-1"}),
		frame(f, reg, idLicensePlanValue, avroEnvelope(lpNS, nil, avroLicensePlan,
			avroSource("portal", "license_plans", 1, goavro.Union("long", int64(3))), "c", 2)))
	f.Add(uint8(2), []byte("k"), frame(f, reg, idPartnerValue, avroEnvelope("portal.public.partners", nil, map[string]any{
		"id": "pa-8", "name": nil, "type": nil,
		"optional_notifications":    goavro.Union("array", []any{str("orders"), nil}),
		"order_recipients":          nil,
		"trial_activity_recipients": nil,
	}, avroSource("portal", "partners", 1, nil), "r", 2)))
	f.Add(uint8(3), []byte(nil), []byte(nil))
	f.Add(uint8(4), []byte{0, 0, 0, 0, 102, 2, 'x'}, []byte{0, 0, 0, 0, 101, 0})

	d := NewDecoder(DecoderConfig{Schemas: reg})
	topics := append(d.Topics(), "portal.public.nope")
	f.Fuzz(func(t *testing.T, sel uint8, key, value []byte) {
		topic := topics[int(sel)%len(topics)]
		ch, err := d.Decode(context.Background(), topic, 0, 0, key, value)
		if err != nil {
			if !errors.Is(err, ErrUndecodable) {
				t.Fatalf("error %v does not wrap ErrUndecodable", err)
			}
			return
		}
		table, _ := d.Table(topic)
		if ch.Table != table {
			t.Fatalf("Table = %q, want %q", ch.Table, table)
		}
		switch ch.Op {
		case OpTombstone, OpTruncate, OpIgnore:
			return
		case OpCreate, OpUpdate, OpDelete, OpRead:
		default:
			t.Fatalf("bad op %q", ch.Op)
		}
		if ch.ID == "" {
			t.Fatal("empty ID")
		}
		for _, r := range []Row{ch.Before, ch.After} {
			for col, v := range r {
				typ, ok := Contract[table][col]
				if !ok {
					t.Fatalf("column %s not in contract", col)
				}
				checkNormalised(t, col, typ, v)
			}
		}
	})
}

func checkNormalised(t *testing.T, col string, typ ColumnType, v any) {
	t.Helper()
	if v == nil {
		return
	}
	ok := false
	switch typ {
	case Text:
		_, ok = v.(string)
	case Integer:
		_, ok = v.(int64)
	case Boolean:
		_, ok = v.(bool)
	case Timestamp:
		s, isStr := v.(string)
		if isStr {
			tm, err := time.Parse(time.RFC3339Nano, s)
			ok = err == nil && tm.Location() == time.UTC && tm.Format(time.RFC3339Nano) == s
		}
	case Date:
		s, isStr := v.(string)
		if isStr {
			tm, err := time.Parse("2006-01-02", s)
			ok = err == nil && tm.Format("2006-01-02") == s
		}
	case TextArray:
		_, ok = v.([]string)
	}
	if !ok {
		t.Fatalf("column %s: %#v (%T) is not normalised for type %d", col, v, v, typ)
	}
}

// TestDecodeDebeziumSideRecords: a truncate is a change of its table; a
// logical decoding message, a heartbeat and a transaction-metadata record
// are ignored, never errors.
func TestDecodeDebeziumSideRecords(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	ctx := context.Background()
	ch, err := d.Decode(ctx, "portal.public.license_plans", 1, 42, nil, fixture(t, "license_plans_truncate.json"))
	if err != nil {
		t.Fatal(err)
	}
	if ch.Op != OpTruncate || ch.Table != LicensePlans || ch.ID != "" || ch.Position != lsn(24023976) || ch.After != nil {
		t.Fatalf("truncate: %+v", ch)
	}
	tests := []struct {
		name, topic, value, kind string
	}{
		{"message op in a table topic", "portal.public.companies", `{"op": "m", "source": {"lsn": 5}, "message": {"prefix": "x", "content": "eA=="}}`, IgnoredMessage},
		{"message topic", "portal.message", `{"op": "m", "source": {"lsn": 5}, "message": {"prefix": "x", "content": "eA=="}}`, IgnoredMessage},
		{"heartbeat", "__debezium-heartbeat.service", `{"schema": {"type": "struct"}, "payload": {"ts_ms": 1772360130456}}`, IgnoredHeartbeat},
		{"transaction", "service.transaction", `{"status": "BEGIN", "id": "571:24023976", "event_count": null, "data_collections": null, "ts_ms": 1772360130456}`, IgnoredTransaction},
		{"heartbeat, not even JSON", "__debezium-heartbeat.portal", `\x00\x01`, IgnoredHeartbeat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, err := d.Decode(ctx, tt.topic, 0, 1, []byte(`{"serverName": "portal"}`), []byte(tt.value))
			if err != nil {
				t.Fatal(err)
			}
			if ch.Op != OpIgnore || ch.Ignored != tt.kind || ch.Table != "" {
				t.Fatalf("got %+v, want ignored %s", ch, tt.kind)
			}
		})
	}
	if _, err := d.Decode(ctx, "__debezium-heartbeat.crm", 0, 1, nil, []byte(`{}`)); !errors.Is(err, ErrUndecodable) {
		t.Fatalf("heartbeat of an unknown prefix: %v", err)
	}
}

// TestDecodeInfinity: 'infinity' and '-infinity' keep the row; they read as
// Forever and LongAgo.
func TestDecodeInfinity(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	tests := []struct {
		name, col, raw, sem string
		want                string
		at                  time.Time
	}{
		{"timestamptz infinity", "trial_expires_at", `"infinity"`, "io.debezium.time.ZonedTimestamp", "infinity", Forever},
		{"timestamptz -infinity", "trial_expires_at", `"-infinity"`, "io.debezium.time.ZonedTimestamp", "-infinity", LongAgo},
		{"micro timestamp +inf sentinel", "trial_expires_at", `9223372036825200000`, "io.debezium.time.MicroTimestamp", "infinity", Forever},
		{"micro timestamp -inf sentinel", "trial_expires_at", `-9223372036832400000`, "io.debezium.time.MicroTimestamp", "-infinity", LongAgo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := `{"schema": {"type": "struct", "fields": [{"field": "after", "type": "struct", "fields": [{"field": "` + tt.col + `", "type": "string", "name": "` + tt.sem + `"}]}]},
				"payload": {"op": "u", "after": {"id": "co-1", "` + tt.col + `": ` + tt.raw + `}, "source": {"lsn": 9}}}`
			ch, err := d.Decode(context.Background(), "portal.public.companies", 0, 0, nil, []byte(v))
			if err != nil {
				t.Fatal(err)
			}
			if got := ch.After[tt.col]; got != tt.want {
				t.Fatalf("normalised %v, want %s", got, tt.want)
			}
			if at, ok := ch.After.Time(tt.col); !ok || !at.Equal(tt.at) {
				t.Fatalf("Time = %v, %v", at, ok)
			}
		})
	}
	// The strings, the int32 extremes, and what Debezium 3.6.1 really writes
	// for infinite dates (snapshot and streamed, docs/debezium.md).
	for _, raw := range []string{`"infinity"`, `"-infinity"`, `2147483647`, `-622191234`, `-625821272`, `-2147472692`, `-2147472691`} {
		v := `{"op": "u", "after": {"id": "lp-1", "company_id": "c", "end_date": ` + raw + `}, "source": {"lsn": 9}}`
		ch, err := d.Decode(context.Background(), "portal.public.license_plans", 0, 0, nil, []byte(v))
		if err != nil {
			t.Fatalf("date %s: %v", raw, err)
		}
		if s := ch.After.Str("end_date"); s != "infinity" && s != "-infinity" {
			t.Fatalf("date %s normalised to %q", raw, s)
		}
	}
}

// TestDecodeRangeChecks: values that cannot be ordered or rendered are
// refused with the field named.
func TestDecodeRangeChecks(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	tests := []struct {
		name, value, reason string
	}{
		{"lsn 2^63-1", `{"op": "c", "after": {"id": "co-1"}, "source": {"lsn": 9223372036854775807}}`, "lsn 9223372036854775807 is outside"},
		{"lsn 0", `{"op": "c", "after": {"id": "co-1"}, "source": {"lsn": 0}}`, "lsn 0 is outside"},
		{"lsn not a number", `{"op": "c", "after": {"id": "co-1"}, "source": {"lsn": "abc"}}`, `source.lsn is string "abc"`},
		{"ts_ms beyond 9999", `{"op": "c", "after": {"id": "co-1"}, "source": {"ts_ms": 253402300800000}}`, "source.ts_ms 253402300800000 is outside"},
		{"envelope ts_ms beyond 9999", `{"op": "c", "after": {"id": "co-1"}, "ts_ms": 999999999999999}`, "ts_ms 999999999999999 is outside"},
		{"negative ts_ms", `{"op": "c", "after": {"id": "co-1"}, "source": {"ts_ms": -5}}`, "source.ts_ms -5 is outside"},
		{"timestamp in year 10000 in UTC", `{"op": "c", "after": {"id": "co-1", "trial_expires_at": "9999-12-31T23:00:00-05:00"}, "source": {"lsn": 5}}`, "after column portal.public.companies.trial_expires_at: year 10000 out of range (in UTC)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.Decode(context.Background(), "portal.public.companies", 0, 0, nil, []byte(tt.value))
			if !errors.Is(err, ErrUndecodable) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("err = %v, want %q", err, tt.reason)
			}
		})
	}
}

// TestDecodeAvroRegistryOutageIsNotUndecodable: while the registry is
// unreachable, an Avro record (value or key) whose schema is not cached
// fails with ErrRegistryUnavailable, to be retried, not dead-lettered; once
// it is back the same record decodes. Only "no such id" is undecodable.
func TestDecodeAvroRegistryOutageIsNotUndecodable(t *testing.T) {
	reg := testRegistry()
	value := frame(t, reg, idLicensePlanValue, avroEnvelope("portal.public.license_plans", nil, avroLicensePlan,
		avroSource("portal", "license_plans", 1, goavro.Union("long", int64(77))), "c", 2))
	key := frame(t, reg, idLicensePlanKey, map[string]any{"id": "lp-1"})
	d := NewDecoder(DecoderConfig{Schemas: reg})
	reg.down = true
	for name, rec := range map[string][2][]byte{"value": {nil, value}, "key of a tombstone": {key, nil}} {
		_, err := d.Decode(context.Background(), "portal.public.license_plans", 0, 0, rec[0], rec[1])
		if !errors.Is(err, ErrRegistryUnavailable) || errors.Is(err, ErrUndecodable) {
			t.Errorf("%s while the registry is down: %v", name, err)
		}
	}
	reg.down = false
	if ch, err := d.Decode(context.Background(), "portal.public.license_plans", 0, 0, nil, value); err != nil || ch.ID != "lp-3003" {
		t.Fatalf("after the outage: %+v %v", ch, err)
	}
	if ch, err := d.Decode(context.Background(), "portal.public.license_plans", 0, 0, key, nil); err != nil || ch.ID != "lp-1" {
		t.Fatalf("tombstone after the outage: %+v %v", ch, err)
	}
}

func BenchmarkDecodeConnectJSON(b *testing.B) {
	d := NewDecoder(DecoderConfig{})
	v := fixture(b, "end_users_connect.json")
	b.SetBytes(int64(len(v)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Decode(context.Background(), "service.public.end_users", 0, 0, nil, v); err != nil {
			b.Fatal(err)
		}
	}
}

// TestConnectSchemaCache: the semantic names of a Connect wrapper's schema
// are cached per topic by the schema's exact bytes: the same record decodes
// the same twice, and a changed schema (a column's encoding) is read anew.
func TestConnectSchemaCache(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	rec := func(sem string) []byte {
		return []byte(`{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"id","type":"string"},{"field":"trial_expires_at","type":"int64","name":"` + sem + `"}]}]},` +
			`"payload":{"op":"u","after":{"id":"co-1","trial_expires_at":1772360130123},"source":{"lsn":9}}}`)
	}
	get := func(v []byte) string {
		ch, err := d.Decode(context.Background(), "portal.public.companies", 0, 0, nil, v)
		if err != nil {
			t.Fatal(err)
		}
		return ch.After.Str("trial_expires_at")
	}
	millis, micros := rec("io.debezium.time.Timestamp"), rec("io.debezium.time.MicroTimestamp")
	for range 2 {
		if got := get(millis); got != "2026-03-01T10:15:30.123Z" {
			t.Fatalf("millis: %s", got)
		}
	}
	if got := get(micros); got != "1970-01-21T12:19:20.130123Z" {
		t.Fatalf("micros after millis: %s", got)
	}
	// Pretty-printed, payload first, and with a member after the payload.
	for _, v := range []string{
		"{\n  \"schema\": {\"type\": \"struct\"},\n  \"payload\": {\"op\": \"c\", \"after\": {\"id\": \"co-2\"}, \"source\": {\"lsn\": 10}}\n}\n",
		`{"payload":{"op":"c","after":{"id":"co-2"},"source":{"lsn":10}},"schema":{"type":"struct"}}`,
		`{"schema":null,"payload":{"op":"c","after":{"id":"co-2"},"source":{"lsn":10}}}`,
	} {
		ch, err := d.Decode(context.Background(), "portal.public.companies", 0, 0, nil, []byte(v))
		if err != nil || ch.ID != "co-2" {
			t.Fatalf("%s: %+v %v", v, ch, err)
		}
	}
}

// TestRealDebeziumOutput decodes every record PostgreSQL 15 and the Debezium
// 3.6.1 connector really wrote (testdata/debezium, captured by
// `go test ./test/debezium -run TestCapture -capture`, docs/debezium.md):
// nothing is undecodable, side records are ignored, truncates are changes,
// unchanged TOASTed columns are Unavailable, infinite dates and timestamps
// read as such, every position is an LSN.
func TestRealDebeziumOutput(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	counts := map[string]int{}
	for _, file := range []string{"portal.jsonl", "service.jsonl"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "debezium", file))
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
			var rec struct {
				Topic     string          `json:"topic"`
				Partition int32           `json:"partition"`
				Offset    int64           `json:"offset"`
				Key       json.RawMessage `json:"key"`
				Value     json.RawMessage `json:"value"`
			}
			if err := json.Unmarshal(line, &rec); err != nil {
				t.Fatalf("%s:%d: %v", file, n+1, err)
			}
			var value []byte
			if string(rec.Value) != "null" {
				value = rec.Value
			}
			ch, err := d.Decode(context.Background(), rec.Topic, rec.Partition, rec.Offset, rec.Key, value)
			if err != nil {
				t.Errorf("%s:%d: %v", file, n+1, err)
				continue
			}
			counts[string(ch.Op)]++
			if ch.Op == OpIgnore {
				counts["ignored "+ch.Ignored]++
				continue
			}
			if ch.Op != OpTombstone && ch.Position.Kind != LSN {
				t.Errorf("%s:%d: position %v is not an LSN", file, n+1, ch.Position)
			}
			for _, c := range ch.After.UnavailableColumns() {
				counts["unavailable "+ch.Table+"."+c]++
			}
			for col, v := range ch.After {
				if s, ok := v.(string); ok && (s == "infinity" || s == "-infinity") {
					counts["infinite "+col]++
				}
			}
		}
	}
	t.Logf("%v", counts)
	for _, want := range []string{"t", "ignored heartbeat", "ignored transaction", "ignored message",
		"unavailable portal.public.partners.otj_distribution_list", "infinite end_date", "infinite trial_expires_at"} {
		if counts[want] == 0 {
			t.Errorf("no %q in the captured output", want)
		}
	}
}

// TestDecodeJSONImageFields: a plain JSON envelope's image is read in one
// pass over its fields, and decodes as a column-by-column lookup would: in
// any key order, escaped keys unescaped, the first of a key that occurs
// twice, columns outside the contract left out, absent ones absent; and a
// Connect wrapper is still found behind a member the scan stops at.
func TestDecodeJSONImageFields(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	decode := func(t *testing.T, v string) Row {
		t.Helper()
		ch, err := d.Decode(context.Background(), "portal.public.companies", 0, 0, nil, []byte(v))
		if err != nil {
			t.Fatal(err)
		}
		return ch.After
	}
	want := decode(t, `{"op":"u","after":{"id":"co-1","name":"Acme","partner_id":"p-1","status":"active"},"source":{"lsn":9}}`)
	if want.Str("name") != "Acme" || want.Str("partner_id") != "p-1" || len(want) != 4 {
		t.Fatalf("canonical row %v", want)
	}
	for name, v := range map[string]string{
		"reordered":     `{"source":{"lsn":9},"after":{"status":"active","partner_id":"p-1","name":"Acme","id":"co-1"},"op":"u"}`,
		"escaped key":   `{"op":"u","after":{"id":"co-1","n\u0061me":"Acme","partner_id":"p-1","status":"active"},"source":{"lsn":9}}`,
		"first of two":  `{"op":"u","after":{"id":"co-1","name":"Acme","partner_id":"p-1","name":"Other","status":"active"},"source":{"lsn":9}}`,
		"not contract":  `{"op":"u","after":{"id":"co-1","name":"Acme","x_extra":{"deep":[1,2]},"partner_id":"p-1","status":"active"},"source":{"lsn":9}}`,
		"spaced":        "{ \"op\" : \"u\" , \"after\" : { \"id\" : \"co-1\" , \"name\" : \"Acme\" , \"partner_id\" : \"p-1\" , \"status\" : \"active\" } , \"source\" : { \"lsn\" : 9 } }",
		"wrapper after": `{"before":null,"schema":{"type":"struct"},"payload":{"op":"u","after":{"id":"co-1","name":"Acme","partner_id":"p-1","status":"active"},"source":{"lsn":9}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if got := decode(t, v); !reflect.DeepEqual(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
	if got := decode(t, `{"op":"u","after":{"id":"co-1","name":null},"source":{"lsn":9}}`); len(got) != 2 || got["name"] != nil || got.Has("status") {
		t.Fatalf("null and absent columns: %#v", got)
	}
	for table, cols := range Contract {
		if len(cols) > maxCollected {
			t.Errorf("%s has %d contract columns: its JSON images are read column by column (maxCollected %d)", table, len(cols), maxCollected)
		}
	}
}
