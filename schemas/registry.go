package schemas

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/sr"
)

// ErrUnknownSchemaID is returned (wrapped) by Serde's decoders for a record
// whose schema id is not one this Serde knows. goavro cannot resolve one
// schema against another, so a Serde only reads data written with the exact
// schemas it was built with; a record written with another version of the
// schema fails with this error rather than being misread.
var ErrUnknownSchemaID = errors.New("unknown schema id")

// Subject returns the schema registry subject of a topic's record values
// ("<topic>-value", Confluent's TopicNameStrategy).
func Subject(topic string) string { return topic + "-value" }

// Serde writes and reads EmailJob and EmailDelivery records in the Confluent
// wire format: a 0 magic byte, the 4-byte big-endian schema id, then the Avro
// binary record. It is safe for concurrent use.
type Serde struct {
	serde      sr.Serde
	jobs       *Codec[EmailJob]
	jobID      int
	deliveryID int
}

// Register registers JobSchema under Subject(jobsTopic) and DeliverySchema
// under Subject(deliveriesTopic) (registering an identical schema again is a
// no-op that returns the existing id) and returns a Serde that writes and
// reads with the ids the registry assigned. A registry configured for
// backward compatibility rejects a schema that breaks it; that error is
// returned as is.
func Register(ctx context.Context, cl *sr.Client, jobsTopic, deliveriesTopic string) (*Serde, error) {
	job, err := cl.CreateSchema(ctx, Subject(jobsTopic), sr.Schema{Schema: jobSchema, Type: sr.TypeAvro})
	if err != nil {
		return nil, fmt.Errorf("schemas: registering EmailJob under %s: %w", Subject(jobsTopic), err)
	}
	delivery, err := cl.CreateSchema(ctx, Subject(deliveriesTopic), sr.Schema{Schema: deliverySchema, Type: sr.TypeAvro})
	if err != nil {
		return nil, fmt.Errorf("schemas: registering EmailDelivery under %s: %w", Subject(deliveriesTopic), err)
	}
	return NewSerde(job.ID, delivery.ID)
}

// NewSerde returns a Serde for schema ids already known to the caller (for
// example looked up with sr.Client.LookupSchema by a reader that may not
// register). jobID must identify JobSchema and deliveryID DeliverySchema;
// they must differ.
func NewSerde(jobID, deliveryID int) (*Serde, error) {
	if jobID == deliveryID {
		return nil, fmt.Errorf("schemas: EmailJob and EmailDelivery share schema id %d", jobID)
	}
	jc, err := JobCodec()
	if err != nil {
		return nil, err
	}
	dc, err := DeliveryCodec()
	if err != nil {
		return nil, err
	}
	s := &Serde{jobs: jc, jobID: jobID, deliveryID: deliveryID}
	s.serde.Register(jobID, EmailJob{},
		sr.AppendEncodeFn(func(b []byte, v any) ([]byte, error) {
			j := v.(EmailJob) // sr.Serde dispatches on the value's type
			return jc.appendEncode(b, &j)
		}),
		sr.DecodeFn(func(b []byte, v any) error {
			j, ok := v.(*EmailJob)
			if !ok {
				return fmt.Errorf("schemas: schema id %d is EmailJob, cannot decode into %T", jobID, v)
			}
			return jc.DecodeInto(b, j)
		}),
	)
	s.serde.Register(deliveryID, EmailDelivery{},
		sr.AppendEncodeFn(func(b []byte, v any) ([]byte, error) {
			d := v.(EmailDelivery)
			return dc.appendEncode(b, &d)
		}),
		sr.DecodeFn(func(b []byte, v any) error {
			d, ok := v.(*EmailDelivery)
			if !ok {
				return fmt.Errorf("schemas: schema id %d is EmailDelivery, cannot decode into %T", deliveryID, v)
			}
			return dc.DecodeInto(b, d)
		}),
	)
	return s, nil
}

// JobSchemaID returns the registry id EmailJob records are written with.
func (s *Serde) JobSchemaID() int { return s.jobID }

// DeliverySchemaID returns the registry id EmailDelivery records are written
// with.
func (s *Serde) DeliverySchemaID() int { return s.deliveryID }

// EncodeJob returns j in the Confluent wire format with the EmailJob id.
func (s *Serde) EncodeJob(j EmailJob) ([]byte, error) { return s.AppendEncodeJob(nil, &j) }

// AppendEncodeJob appends j in the Confluent wire format to dst. It takes
// the header and codec sr.Serde would dispatch to by the value's type, without
// passing j through an interface (a copy of the job on the heap per call).
func (s *Serde) AppendEncodeJob(dst []byte, j *EmailJob) ([]byte, error) {
	dst, err := (&sr.ConfluentHeader{}).AppendEncode(dst, s.jobID, nil)
	if err != nil {
		return nil, err
	}
	return s.jobs.appendEncode(dst, j)
}

// EncodedJobSize is at least the length of j in the wire format (its exact
// length, as long as the job's numbers need their longest varints): a caller
// encoding many jobs into one buffer sizes it with their sum.
func (s *Serde) EncodedJobSize(j *EmailJob) int { return 5 + jobBinarySize(j) }

// DecodeJob reads an EmailJob in the Confluent wire format. It fails on a
// missing or wrong magic byte, on a schema id other than the EmailJob id
// (ErrUnknownSchemaID for an id this Serde does not know), and on malformed
// Avro.
func (s *Serde) DecodeJob(b []byte) (EmailJob, error) {
	var j EmailJob
	err := s.decode(b, &j, "EmailJob")
	return j, err
}

// EncodeDelivery returns d in the Confluent wire format with the
// EmailDelivery id.
func (s *Serde) EncodeDelivery(d EmailDelivery) ([]byte, error) {
	return s.AppendEncodeDelivery(nil, d)
}

// AppendEncodeDelivery appends d in the Confluent wire format to dst.
func (s *Serde) AppendEncodeDelivery(dst []byte, d EmailDelivery) ([]byte, error) {
	return s.serde.AppendEncode(dst, d)
}

// DecodeDelivery reads an EmailDelivery in the Confluent wire format, with
// the same checks as DecodeJob.
func (s *Serde) DecodeDelivery(b []byte) (EmailDelivery, error) {
	var d EmailDelivery
	err := s.decode(b, &d, "EmailDelivery")
	return d, err
}

func (s *Serde) decode(b []byte, v any, what string) error {
	err := s.serde.Decode(b, v)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sr.ErrBadHeader):
		return fmt.Errorf("schemas: decoding %s: not in the schema registry wire format (want magic byte 0 and a 4-byte schema id): %w", what, err)
	case errors.Is(err, sr.ErrNotRegistered):
		id, _, _ := s.serde.DecodeID(b)
		return fmt.Errorf("schemas: decoding %s: %w %d (known: EmailJob %d, EmailDelivery %d)", what, ErrUnknownSchemaID, id, s.jobID, s.deliveryID)
	}
	return err
}
