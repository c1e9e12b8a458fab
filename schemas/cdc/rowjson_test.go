package cdc

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// TestDecodeRowRoundTrip decodes what AppendJSON wrote, from bytes and from
// a string, and checks that the rows stay as they were while their parser
// decodes other rows: their strings share one copy per row (an arena), never
// the parser's buffer.
func TestDecodeRowRoundTrip(t *testing.T) {
	rows := []Row{
		{"id": "co-1", "name": "Acme \"Ltd\" \\ <b>é</b>\u2028", "quantity": int64(12), "big": json.Number("123456789012345678901234"),
			"enabled": true, "classic": false, "notes": nil, "emails": []string{"a@x.example", "", "b@y.example"}, "empty": ""},
		{"id": "co-2", "name": "Other", "emails": []string{}},
		{},
		nil,
	}
	for _, from := range []string{"bytes", "string"} {
		t.Run(from, func(t *testing.T) {
			var got []Row
			for _, r := range rows {
				b, err := r.AppendJSON(nil)
				if err != nil {
					t.Fatal(err)
				}
				var d Row
				if from == "bytes" {
					d, err = DecodeRow(b)
				} else {
					d, err = DecodeRowString(string(b))
				}
				if err != nil {
					t.Fatalf("decode %s: %v", b, err)
				}
				got = append(got, d)
			}
			// Decode more rows through the same parsers before comparing.
			for i := range 50 {
				if _, err := DecodeRowString(fmt.Sprintf(`{"id":"zz-%d","name":"%080d"}`, i, i)); err != nil {
					t.Fatal(err)
				}
			}
			for i, r := range rows {
				if !reflect.DeepEqual(got[i], r) {
					t.Errorf("row %d: got %#v, want %#v", i, got[i], r)
				}
			}
		})
	}
}

// TestDecodedStringsOutliveTheParser decodes a record, then others through
// the same parsers, and checks the first change's strings are unchanged.
func TestDecodedStringsOutliveTheParser(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	decode := func(offset int64, id, name string) Change {
		t.Helper()
		ch, err := d.Decode(context.Background(), "portal.public.companies", 0, offset, []byte(`"`+id+`"`),
			fmt.Appendf(nil, `{"op": "u", "before": {"id": %q, "name": %q}, "after": {"id": %q, "name": %q, "partner_id": "p-1"}, "source": {"ts_ms": 1772360130123, "lsn": %d}}`,
				id, "before "+name, id, name, 100+offset))
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	first := decode(1, "co-1", "Acme é \\\" Ltd")
	for i := range 50 {
		decode(int64(2+i), fmt.Sprintf("co-x%d", i), fmt.Sprintf("%090d", i))
	}
	if want := (Row{"id": "co-1", "name": "Acme é \\\" Ltd", "partner_id": "p-1"}); !reflect.DeepEqual(first.After, want) {
		t.Errorf("After = %#v, want %#v", first.After, want)
	}
	if got := first.Before.Str("name"); got != "before Acme é \\\" Ltd" {
		t.Errorf("Before name = %q", got)
	}
}

// TestDecodeWrittenTakesWhatAppendJSONWrites checks that the images stores
// keep are decoded by the scanner, and that what it declines is still
// decoded (by the parser) to the same row.
func TestDecodeWrittenTakesWhatAppendJSONWrites(t *testing.T) {
	for _, tt := range []struct {
		in    string
		taken bool
	}{
		{`null`, true},
		{`{}`, true},
		{`{"id":"co-1","n":-12,"z":0,"on":true,"off":false,"x":null,"e":[],"l":["a","","é"]}`, true},
		{`{"n":123456789012345678}`, true},
		{`{"n":1234567890123456789}`, false}, // 19 digits: the parser's int64 or json.Number
		{`{"n":12345678901234567890123}`, false},
		{`{"n":-0}`, false},
		{`{"n":012}`, false},
		{`{"n":1.5}`, false},
		{`{"n":1e3}`, false},
		{`{"s":"a\"b"}`, false},
		{`{"s":"\u2028"}`, false},
		{`{"s":"a"} `, false},
		{`{ "s":"a"}`, false},
		{`{"s":"a",}`, false},
		{`{"s":"a"`, false},
		{`{"s":["a",1]}`, false},
		{`{"s":{"a":1}}`, false},
		{`{"s":"a","s":"b"}`, true},
		{`[]`, false},
		{``, false},
	} {
		_, taken := decodeWritten([]byte(tt.in))
		if taken != tt.taken {
			t.Errorf("decodeWritten(%s) took it: %v, want %v", tt.in, taken, tt.taken)
		}
		got, gotErr := DecodeRow([]byte(tt.in))
		want, wantErr := parseRow([]byte(tt.in))
		if (gotErr == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("DecodeRow(%s) = %#v, %v; the parser: %#v, %v", tt.in, got, gotErr, want, wantErr)
		}
	}
	r := Row{"id": "co-1", "name": "Acme é", "quantity": int64(-7), "on": true, "notes": nil, "emails": []string{"a@x.example"}}
	b, err := r.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := decodeWritten(b); !ok || !reflect.DeepEqual(got, r) {
		t.Errorf("decodeWritten(%s) = %#v, %v; want %#v", b, got, ok, r)
	}
}

// FuzzDecodeRow checks that DecodeRow, whichever way it decodes, returns
// what the JSON parser alone returns, from bytes and from a string.
func FuzzDecodeRow(f *testing.F) {
	for _, s := range []string{`null`, `{}`, `{"id":"co-1","n":-12,"on":true,"x":null,"l":["a",""]}`,
		`{"n":123456789012345678}`, `{"s":"a\"b"}`, `{"a":[],"b":"é"}`, `{"n":-0}`, `{"n":1.5}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, wantErr := parseRow(b)
		for _, from := range []string{"bytes", "string"} {
			var got Row
			var err error
			if from == "bytes" {
				got, err = DecodeRow(b)
			} else {
				got, err = DecodeRowString(string(b))
			}
			if (err == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
				t.Fatalf("DecodeRow from %s (%q) = %#v, %v; the parser: %#v, %v", from, b, got, err, want, wantErr)
			}
		}
	})
}

// companyRow is a company row as the benchmark workload has them.
func companyRow() Row {
	return Row{"id": "c-00000", "partner_id": "p-00", "name": "Company 00000", "status": "active", "trial_expires_at": nil,
		"contact_email": "it@c-00000.example", "optional_notifications": []string{"trial", "service"},
		"partner_account_manager_email": "am0@p-00.example", "pexip_account_manager_email": "pam0@pexip.example",
		"created_at": "2025-03-01T00:00:00Z", "updated_at": "2025-03-01T00:00:00Z"}
}

func BenchmarkDecodeRow(b *testing.B) {
	img, err := companyRow().AppendJSON(nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		decode func([]byte) (Row, error)
	}{{"DecodeRow", DecodeRow}, {"parser", parseRow}} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(img)))
			for b.Loop() {
				if _, err := tt.decode(img); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
