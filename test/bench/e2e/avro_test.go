package e2e

import (
	"testing"
	"time"

	"github.com/portalmail/portalmail/schemas"
)

// TestPickerReadsWhatSerdeWrites: the picker reads the key, type and cause
// of a job encoded with the project's codec, HTML, tags and all.
func TestPickerReadsWhatSerdeWrites(t *testing.T) {
	p, err := newPicker(schemas.JobSchema())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, j := range []schemas.EmailJob{
		{Key: "service.endpoint_enabled|x|ep-1|lsn:1|a@b.example", Type: "service.endpoint_enabled", Section: "service",
			CompanyID: "c-1", To: schemas.Recipient{Address: "a@b.example", Name: "A", Role: "customer"}, From: "P <p@x.example>",
			ReplyTo: "r@x.example", Subject: "s", HTML: "<p>hello</p>", Text: "hello", Tags: []string{"a", "b", "c"},
			Cause: schemas.Cause{Topic: "bportal.public.endpoints", Partition: 5, Offset: 123456789, Op: "u", SourceTime: at,
				Table: "service.public.endpoints", EntityID: "ep-1"}, CreatedAt: at},
		{Key: "k", Type: "renewal.expires_in", Section: "renewal", To: schemas.Recipient{Address: "a@b.example", Role: "pexip_am"},
			Cause: schemas.Cause{Topic: "portal.public.license_plans/3", Partition: -1, Offset: -1, Op: "timer", SourceTime: at}, CreatedAt: at},
	} {
		b, err := schemas.EncodeJob(j)
		if err != nil {
			t.Fatal(err)
		}
		f, err := p.pick(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := serdeCheck(b, f); err != nil {
			t.Fatal(err)
		}
		if f.SourceMillis != at.UnixMilli() || f.CreatedMillis != at.UnixMilli() {
			t.Fatalf("times %d %d", f.SourceMillis, f.CreatedMillis)
		}
	}
}
