package schemas

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

const (
	testJobsTopic       = "portalmail.email-jobs"
	testDeliveriesTopic = "portalmail.email-deliveries"
)

// newRegistry starts an srfake registry on a real HTTP listener and returns
// a client for it.
func newRegistry(t *testing.T) (*srfake.Registry, *sr.Client) {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	return reg, cl
}

func TestRegisterEncodeDecode(t *testing.T) {
	ctx := context.Background()
	_, cl := newRegistry(t)

	// Something else in the registry first, so ids are not trivially 1 and 2.
	if _, err := cl.CreateSchema(ctx, "other-value", sr.Schema{Schema: `{"type":"string"}`}); err != nil {
		t.Fatal(err)
	}

	s, err := Register(ctx, cl, testJobsTopic, testDeliveriesTopic)
	if err != nil {
		t.Fatal(err)
	}

	// The ids are what the registry holds for "<topic>-value", and the
	// registered text is our schema.
	for _, c := range []struct {
		subject, schema string
		id              int
	}{
		{testJobsTopic + "-value", JobSchema(), s.JobSchemaID()},
		{testDeliveriesTopic + "-value", DeliverySchema(), s.DeliverySchemaID()},
	} {
		ss, err := cl.SchemaByVersion(ctx, c.subject, -1)
		if err != nil {
			t.Fatalf("%s: %v", c.subject, err)
		}
		if ss.ID != c.id {
			t.Errorf("%s: registry id %d, Serde id %d", c.subject, ss.ID, c.id)
		}
		if !jsonEqual(t, ss.Schema.Schema, c.schema) {
			t.Errorf("%s: registered schema differs from the embedded one", c.subject)
		}
	}
	if s.JobSchemaID() == s.DeliverySchemaID() {
		t.Fatalf("job and delivery share id %d", s.JobSchemaID())
	}

	// Registering again is idempotent.
	s2, err := Register(ctx, cl, testJobsTopic, testDeliveriesTopic)
	if err != nil {
		t.Fatal(err)
	}
	if s2.JobSchemaID() != s.JobSchemaID() || s2.DeliverySchemaID() != s.DeliverySchemaID() {
		t.Errorf("re-register: ids %d/%d, first %d/%d", s2.JobSchemaID(), s2.DeliverySchemaID(), s.JobSchemaID(), s.DeliverySchemaID())
	}

	// Jobs: wire format header + the raw Avro body.
	job := sampleJob()
	b, err := s.EncodeJob(job)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := EncodeJob(job)
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, b, s.JobSchemaID(), raw)
	gotJob, err := s.DecodeJob(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotJob, job) {
		t.Fatalf("job round trip:\n got %+v\nwant %+v", gotJob, job)
	}

	// Deliveries.
	d := sampleDelivery()
	b, err = s.EncodeDelivery(d)
	if err != nil {
		t.Fatal(err)
	}
	raw, err = EncodeDelivery(d)
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, b, s.DeliverySchemaID(), raw)
	gotD, err := s.DecodeDelivery(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotD, d) {
		t.Fatalf("delivery round trip:\n got %+v\nwant %+v", gotD, d)
	}

	// A delivery is not a job, and vice versa.
	if _, err := s.DecodeJob(b); err == nil || !strings.Contains(err.Error(), "EmailDelivery") {
		t.Errorf("delivery decoded as job: got %v, want a type error", err)
	}

	// Append variant keeps the prefix, and writes what sr.Serde's dispatch
	// by type writes, within the size EncodedJobSize promises.
	out, err := s.AppendEncodeJob([]byte("prefix"), &job)
	if err != nil || !strings.HasPrefix(string(out), "prefix\x00") {
		t.Errorf("AppendEncodeJob: %q, %v", out, err)
	}
	generic, err := s.serde.AppendEncode(nil, job)
	if err != nil {
		t.Fatal(err)
	}
	if got := out[len("prefix"):]; !bytes.Equal(got, generic) {
		t.Errorf("AppendEncodeJob wrote %x, sr.Serde %x", got, generic)
	}
	if n := s.EncodedJobSize(&job); n < len(generic) {
		t.Errorf("EncodedJobSize = %d, the encoding is %d bytes", n, len(generic))
	}
}

func TestSerdeRejectsUnknownIDAndBadHeader(t *testing.T) {
	ctx := context.Background()
	_, cl := newRegistry(t)
	s, err := Register(ctx, cl, testJobsTopic, testDeliveriesTopic)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.EncodeJob(sampleJob())
	if err != nil {
		t.Fatal(err)
	}

	unknown := append([]byte(nil), b...)
	binary.BigEndian.PutUint32(unknown[1:5], 4242)
	_, err = s.DecodeJob(unknown)
	if !errors.Is(err, ErrUnknownSchemaID) || !strings.Contains(err.Error(), "4242") {
		t.Errorf("unknown id: got %v, want ErrUnknownSchemaID naming 4242", err)
	}
	_, err = s.DecodeDelivery(unknown)
	if !errors.Is(err, ErrUnknownSchemaID) {
		t.Errorf("unknown id (delivery): got %v, want ErrUnknownSchemaID", err)
	}

	badMagic := append([]byte(nil), b...)
	badMagic[0] = 1
	for _, in := range [][]byte{badMagic, b[:4], nil} {
		if _, err := s.DecodeJob(in); err == nil || !errors.Is(err, sr.ErrBadHeader) {
			t.Errorf("bad header %x: got %v, want sr.ErrBadHeader", in, err)
		}
	}

	// Raw Avro without the header is refused, not misread.
	raw, _ := EncodeJob(sampleJob())
	if _, err := s.DecodeJob(raw); err == nil {
		t.Error("headerless record: want error")
	}
}

func TestRegisterReportsRegistryErrors(t *testing.T) {
	reg, cl := newRegistry(t)
	reg.Close() // nothing listening any more
	if _, err := Register(context.Background(), cl, testJobsTopic, testDeliveriesTopic); err == nil ||
		!strings.Contains(err.Error(), testJobsTopic+"-value") {
		t.Fatalf("got %v, want an error naming the subject", err)
	}
}

func TestNewSerdeRejectsSharedID(t *testing.T) {
	if _, err := NewSerde(7, 7); err == nil {
		t.Fatal("want error")
	}
}

func checkHeader(t *testing.T, b []byte, id int, body []byte) {
	t.Helper()
	if len(b) < 5 || b[0] != 0 {
		t.Fatalf("no magic byte: %x", b)
	}
	if got := int(binary.BigEndian.Uint32(b[1:5])); got != id {
		t.Fatalf("header id %d, want %d", got, id)
	}
	if string(b[5:]) != string(body) {
		t.Fatal("body after the header differs from the raw Avro encoding")
	}
}

func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal([]byte(a), &va); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(b), &vb); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(va, vb)
}
