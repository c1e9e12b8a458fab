package templates

import (
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
	if len(cache.m) != 3 {
		t.Fatalf("cache holds %d rows, want 3 (partner, company, other)", len(cache.m))
	}
}
