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
