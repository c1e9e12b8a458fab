package templates

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/portalmail/portalmail/schemas/cdc"
)

// TestJobDataRowCache: jobs built with a shared RowJSON come out byte for
// byte as without it, however the rows are shared between them, and a
// different row with the same content or id is encoded on its own.
func TestJobDataRowCache(t *testing.T) {
	partner := cdc.Row{"id": "p1", "brand_name": "B", "order_recipients": []any{"x@y.example"}}
	company := cdc.Row{"id": "c1", "name": "Acme", "partner_id": "p1"}
	other := cdc.Row{"id": "c1", "name": "Acme renamed", "partner_id": "p1"}
	var cache RowJSON
	for i, d := range []Data{
		{Type: "a", Entity: company, Company: company, Partner: partner},
		{Type: "b", Entity: cdc.Row{"id": "e"}, Company: company, Partner: partner, User: company},
		{Type: "c", Company: other, Partner: partner, Subscription: other},
		{Type: "d", Company: company},
	} {
		want, err := JobData{Template: "t", Data: d}.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := JobData{Template: "t", Data: d}.AppendJSONCached(nil, &cache)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("job %d: cached\n%s\nwant\n%s", i, got, want)
		}
	}
	if len(cache.m) != 5 {
		t.Fatalf("cache holds %d rows, want 5 (partner; company as the company and as the user; other as the company and the subscription)", len(cache.m))
	}
	// A row that cannot be encoded fails the job and is not remembered.
	bad := cdc.Row{"id": "c2", "name": cdc.Unavailable}
	if _, err := (JobData{Template: "t", Data: Data{Type: "e", Company: bad}}).AppendJSONCached(nil, &cache); err == nil {
		t.Fatal("a row with an unmerged unavailable value encoded")
	}
	if len(cache.m) != 5 {
		t.Fatalf("cache holds %d rows after a failed one, want 5", len(cache.m))
	}
}

// TestJobDataKeep: with RowJSON.Keep, every row of the data (the entity and
// previous too) keeps only those columns, array columns still left out, and
// what it keeps reads back as it was.
func TestJobDataKeep(t *testing.T) {
	company := cdc.Row{"id": "c1", "name": "Acme", "phone": "+47 555", "partner_id": "p1"}
	entity := cdc.Row{"id": "e1", "name": "Room", "secret": "s", "aliases": []string{"a"}}
	d := Data{Type: "a", Entity: entity, Previous: entity, Company: company, Partner: cdc.Row{"id": "p1", "name": "P", "logo_url": "x"}}
	keep := ColumnSet{"id": true, "name": true, "aliases": true}
	cache := RowJSON{Keep: Columns{"Entity": keep, "Previous": keep, "Company": keep, "Partner": keep, "User": ColumnSet{"email": true}}}
	raw, err := JobData{Template: "t", Data: d}.AppendJSONCached(nil, &cache)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseJobData(raw)
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]cdc.Row{"entity": got.Entity, "previous": got.Previous, "company": got.Company, "partner": got.Partner} {
		if len(r) != 2 || r.Str("name") == "" || r.Str("id") == "" {
			t.Errorf("%s: %v, want only id and name", name, r)
		}
	}
	// A row none of whose columns is kept is left out; one map shared as two
	// rows keeps each row's columns.
	d.User, d.Subscription = company, company
	raw, err = JobData{Template: "t", Data: d}.AppendJSONCached(nil, &cache)
	if err != nil {
		t.Fatal(err)
	}
	if got, err = ParseJobData(raw); err != nil {
		t.Fatal(err)
	}
	if got.Subscription != nil || len(got.User) != 0 || len(got.Company) != 2 {
		t.Fatalf("user %v, subscription %v, company %v: want no user columns, no subscription, company id and name", got.User, got.Subscription, got.Company)
	}
	// The cached rows come out the same the second time.
	again, err := JobData{Template: "t", Data: d}.AppendJSONCached(nil, &cache)
	if err != nil || string(again) != string(raw) {
		t.Fatalf("second encoding %s (%v), want %s", again, err, raw)
	}
}

// FuzzParseJobData: ParseJobData (fastjson where it is sure) reads every
// input as encoding/json does, the same value or an error both ways.
func FuzzParseJobData(f *testing.F) {
	row := cdc.Row{"id": "c1", "name": "Acme \"quoted\" \\ <b>&</b>\n\t\x01 ü 😀", "seats": json.Number("20"),
		"ratio": json.Number("-1.5e3"), "on": true, "off": false, "none": nil,
		"nested": map[string]any{"a": []any{json.Number("1"), "x", nil, map[string]any{}}}}
	for _, d := range []Data{
		{Type: "order.new", Subject: "New order", Brand: Branding{BrandName: "B", LogoURL: "https://x.test/l.png", PrimaryColor: "#123456", FromName: "F", ReplyTo: "r@x.test"},
			Entity: row, Previous: cdc.Row{}, Company: row, Partner: row, User: row, Subscription: row, Days: 45, Percent: -80, Link: "https://portal.test/x"},
		{Type: "t"},
	} {
		b, err := JobData{Template: "order_new", Data: d}.AppendJSON(nil)
		if err != nil {
			f.Fatal(err)
		}
		if _, ok := parseFast(b); !ok { // what AppendJSON writes takes the fast path
			f.Fatalf("parseFast refused AppendJSON's %s", b)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"template":"t","Type":"x"}`,                        // another spelling
		`{"template":"t","type":"a","type":"b"}`,             // a key twice
		`{"template":"t","entity":{"a":1},"entity":{"b":2}}`, // encoding/json merges
		`{"template":"t","entity":null,"days":null}`,
		`{"template":null}`, `{"template":""}`, `{}`, `[]`, `null`, ``,
		`{"template":"t","days":1e2}`, `{"template":"t","days":"3"}`, `{"template":"t","days":99999999999999999999}`,
		`{"template":"t","subject":"\q"}`, "{\"template\":\"t\",\"subject\":\"a\x01b\"}",
		`{"template":"t","subject":"\ud800"}`, `{"template":"t","subject":"\ud83d\ude00"}`,
		"{\"template\":\"t\",\"subject\":\"\xff\"}",
		`{"template":"t","brand":{"brandname":"x"}}`, `{"template":"t","brand":{"BrandName":1}}`, `{"template":"t","brand":null}`,
		`{"template":"t","entity":{"a":{"b":[1,2,{"c":null}]},"a":"again"}}`,
		`{"template":"t"} trailing`, ` {"template":"t"} `, `{"template":"t","unknown":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gerr := ParseJobData(b)
		want, werr := parseStd(b)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("%q: ParseJobData error %v, encoding/json %v", b, gerr, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\nParseJobData %#v\nencoding/json %#v", b, got, want)
		}
	})
}

// BenchmarkParseJobData: a job's data as the process stage writes it, read
// by ParseJobData and by encoding/json alone.
func BenchmarkParseJobData(b *testing.B) {
	company := cdc.Row{"id": "3f1c2a4e-0000-4000-8000-000000000001", "name": "Acme Corporation", "partner_id": "p-direct",
		"status": "active", "contact_email": "ops@acme.example", "seats": json.Number("250"), "classic": false}
	data, err := JobData{Template: "order_new", Data: Data{Type: "order.new", Subject: "New order for Acme Corporation",
		Brand:   Branding{BrandName: "Pexip", LogoURL: "https://cdn.example/logo.png", PrimaryColor: "#0a2240", FromName: "Pexip", ReplyTo: "support@pexip.example"},
		Entity:  cdc.Row{"id": "o-1", "company_id": company["id"], "product": "Teams CVI", "quantity": json.Number("20"), "status": "new", "created_at": "2026-11-30T10:11:12.123456Z"},
		Company: company, Partner: cdc.Row{"id": "p-direct", "name": "Direct", "brand_name": "Pexip"}, Link: "https://portal.example/orders/o-1"}}.AppendJSON(nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		parse func([]byte) (JobData, error)
	}{{"ParseJobData", ParseJobData}, {"encoding-json", parseStd}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.parse(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
