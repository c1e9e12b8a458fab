package schemas

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleJob() EmailJob {
	return EmailJob{
		Key:       "trial.company_created/companies/c-42/9f2c/partner@example.com",
		Type:      "trial.company_created",
		Section:   "trial",
		CompanyID: "c-42",
		To:        Recipient{Address: "partner@example.com", Name: "Pat Partner", Role: "partner"},
		From:      "Acme Video <noreply@acme.example>",
		ReplyTo:   "support@acme.example",
		Subject:   "New company created (in trial mode)",
		HTML:      "<p>Hello ✓</p>",
		Text:      "Hello ✓",
		Tags:      []string{"trial.company_created", "trial"},
		Cause: Cause{
			Topic:      "portal.public.companies",
			Partition:  3,
			Offset:     1 << 40,
			Op:         "c",
			SourceTime: time.Date(2025, 3, 1, 12, 30, 45, 123_000_000, time.UTC),
			Table:      "portal.public.companies",
			EntityID:   "c-42",
		},
		CreatedAt: time.Date(2025, 3, 1, 12, 30, 46, 7_000_000, time.UTC),
	}
}

func sampleDelivery() EmailDelivery {
	return EmailDelivery{
		Key:        "trial.company_created/companies/c-42/9f2c/partner@example.com",
		Type:       "trial.company_created",
		Outcome:    OutcomeFailedPermanent,
		ProviderID: "<20250301123046.1.ABC@mg.example>",
		Attempts:   3,
		LastError:  "400 Bad Request: to parameter is not a valid address",
		FirstTry:   time.Date(2025, 3, 1, 12, 30, 47, 1_000_000, time.UTC),
		At:         time.Date(2025, 3, 1, 12, 31, 2, 999_000_000, time.UTC),
		Event:      "failed_permanent",
	}
}

func TestJobRoundTrip(t *testing.T) {
	want := sampleJob()
	b, err := EncodeJob(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeJob(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

func TestJobRoundTripOptionalsEmpty(t *testing.T) {
	// Timer job without company: null company_id / reply_to, no tags, no
	// recipient name, negative offset.
	want := sampleJob()
	want.CompanyID, want.ReplyTo, want.To.Name, want.Tags = "", "", "", nil
	want.Cause.Offset, want.Cause.Op = -1, "timer"
	b, err := EncodeJob(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeJob(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	// The empty strings travel as Avro null, not "".
	native, _, err := mustCodec(JobCodec()).avro.NativeFromBinary(b)
	if err != nil {
		t.Fatal(err)
	}
	m := native.(map[string]any)
	if m["company_id"] != nil || m["reply_to"] != nil {
		t.Fatalf("want null company_id and reply_to, got %#v / %#v", m["company_id"], m["reply_to"])
	}
}

func TestDeliveryRoundTrip(t *testing.T) {
	for _, outcome := range []string{OutcomeSent, OutcomeDuplicateSuppressed, OutcomeFailedPermanent, OutcomeDeadLettered} {
		want := sampleDelivery()
		want.Outcome = outcome
		b, err := EncodeDelivery(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeDelivery(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
		}
	}
	// Nothing tried: null provider_id, last_error and first_try.
	want := EmailDelivery{Key: "k", Type: "t", Outcome: OutcomeDuplicateSuppressed, At: time.UnixMilli(1_700_000_000_000).UTC()}
	b, err := EncodeDelivery(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeDelivery(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

func TestTimesMillisecondUTC(t *testing.T) {
	zone := time.FixedZone("CET", 3600)
	j := sampleJob()
	j.CreatedAt = time.Date(2025, 3, 1, 13, 30, 46, 7_654_321, zone)
	j.Cause.SourceTime = time.Date(1969, 12, 31, 23, 59, 59, 999_999_999, time.UTC) // before the epoch
	b, err := EncodeJob(j)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeJob(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want time.Time
	}{
		{"created_at", got.CreatedAt, time.Date(2025, 3, 1, 12, 30, 46, 7_000_000, time.UTC)},
		{"source_time", got.Cause.SourceTime, time.Date(1969, 12, 31, 23, 59, 59, 999_000_000, time.UTC)},
	} {
		if c.got != c.want { // == also compares the location: must be UTC
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestEncodeDeliveryRejectsBadOutcome(t *testing.T) {
	for _, outcome := range []string{"", OutcomeUnknown, "bounced"} {
		d := sampleDelivery()
		d.Outcome = outcome
		if _, err := EncodeDelivery(d); err == nil || !strings.Contains(err.Error(), "outcome") {
			t.Errorf("outcome %q: got error %v, want an outcome error", outcome, err)
		}
	}
}

func TestEncodeDeliveryRejectsAttemptsOverflow(t *testing.T) {
	d := sampleDelivery()
	d.Attempts = 1 << 40
	if _, err := EncodeDelivery(d); err == nil {
		t.Fatal("want an error for attempts beyond an Avro int")
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	b, err := EncodeJob(sampleJob())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeJob(b[:len(b)-3]); err == nil {
		t.Error("truncated record: want error")
	}
	if _, err := DecodeJob(append(b[:len(b):len(b)], 0, 0)); err == nil || !strings.Contains(err.Error(), "left after the record") {
		t.Errorf("trailing bytes: got %v, want error", err)
	}
	d, err := EncodeDelivery(sampleDelivery())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeJob(d); err == nil {
		t.Error("delivery bytes decoded as a job: want error")
	}
}

func TestSchemasAreDocumentedJSON(t *testing.T) {
	for name, text := range map[string]string{"EmailJob": JobSchema(), "EmailDelivery": DeliverySchema()} {
		var s map[string]any
		if err := json.Unmarshal([]byte(text), &s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s["name"] != name || s["namespace"] != "io.portalmail" {
			t.Errorf("%s: name %v namespace %v", name, s["name"], s["namespace"])
		}
		var walk func(path string, v any)
		walk = func(path string, v any) {
			m, ok := v.(map[string]any)
			if !ok {
				if a, ok := v.([]any); ok {
					for _, e := range a {
						walk(path, e)
					}
				}
				return
			}
			if m["type"] == "record" || m["type"] == "enum" {
				if d, _ := m["doc"].(string); d == "" {
					t.Errorf("%s: %v %v has no doc", name, m["type"], m["name"])
				}
			}
			if fs, ok := m["fields"].([]any); ok {
				for _, f := range fs {
					fm := f.(map[string]any)
					if d, _ := fm["doc"].(string); d == "" {
						t.Errorf("%s: field %s.%v has no doc", name, path, fm["name"])
					}
					walk(path+"."+fm["name"].(string), fm["type"])
				}
			}
			walk(path, m["type"])
			walk(path, m["items"])
		}
		walk(name, s)
	}
}

func mustCodec[T any](c *Codec[T], err error) *Codec[T] {
	if err != nil {
		panic(err)
	}
	return c
}

func BenchmarkEncodeJob(b *testing.B) {
	c := mustCodec(JobCodec())
	j := sampleJob()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = c.AppendEncode(buf[:0], j); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeJob(b *testing.B) {
	c := mustCodec(JobCodec())
	data, err := c.Encode(sampleJob())
	if err != nil {
		b.Fatal(err)
	}
	var j EmailJob
	b.ReportAllocs()
	for b.Loop() {
		if err := c.DecodeInto(data, &j); err != nil {
			b.Fatal(err)
		}
	}
}
