package schemas

import (
	_ "embed"
	"fmt"
	"sync"
	"time"

	"github.com/linkedin/goavro/v2"
)

//go:embed email_job.avsc
var jobSchema string

//go:embed email_delivery.avsc
var deliverySchema string

// JobSchema returns the Avro schema of EmailJob (schemas/email_job.avsc), the
// value schema of the portalmail.email-jobs topic, exactly as registered.
func JobSchema() string { return jobSchema }

// DeliverySchema returns the Avro schema of EmailDelivery
// (schemas/email_delivery.avsc), the value schema of the
// portalmail.email-deliveries topic, exactly as registered.
func DeliverySchema() string { return deliverySchema }

// OutcomeUnknown is the default symbol of the Avro Outcome enum. portalmail
// never writes it (EncodeDelivery refuses it). It exists for evolution: Avro
// readers resolve an enum symbol they do not know to the enum's default, so
// with it a consumer holding an older EmailDelivery schema can still read
// records carrying an outcome added later, instead of failing. Without a
// default an enum can never gain a symbol under FORWARD/FULL compatibility,
// which is why Outcome is an enum with a default rather than either a bare
// enum or a string (a string would be as evolvable, but loses the list of
// values from the contract and lets a typo through the writer).
const OutcomeUnknown = "unknown"

// Codec encodes and decodes one record type (EmailJob or EmailDelivery) as raw
// Avro binary: the record alone, without the schema registry's 5-byte header
// (see Serde for that). A Codec is built once and safe for concurrent use.
type Codec[T any] struct {
	avro       *goavro.Codec
	name       string
	toNative   func(*T) (map[string]any, error)
	fromNative func(map[string]any, *T) error
	// appendBinary, if set, encodes without goavro (same bytes).
	appendBinary func([]byte, *T) []byte
}

func newCodec[T any](schema, name string, to func(*T) (map[string]any, error), from func(map[string]any, *T) error) (*Codec[T], error) {
	c, err := goavro.NewCodec(schema)
	if err != nil {
		return nil, fmt.Errorf("schemas: compiling %s schema: %w", name, err)
	}
	return &Codec[T]{avro: c, name: name, toNative: to, fromNative: from}, nil
}

var (
	jobCodec = sync.OnceValues(func() (*Codec[EmailJob], error) {
		c, err := newCodec(jobSchema, "EmailJob", jobToNative, jobFromNative)
		if c != nil {
			c.appendBinary = appendJobBinary
		}
		return c, err
	})
	deliveryCodec = sync.OnceValues(func() (*Codec[EmailDelivery], error) {
		return newCodec(deliverySchema, "EmailDelivery", deliveryToNative, deliveryFromNative)
	})
)

// JobCodec returns the shared codec for EmailJob, compiled once from
// JobSchema.
func JobCodec() (*Codec[EmailJob], error) { return jobCodec() }

// DeliveryCodec returns the shared codec for EmailDelivery, compiled once from
// DeliverySchema.
func DeliveryCodec() (*Codec[EmailDelivery], error) { return deliveryCodec() }

// Schema returns the Avro schema text the codec was compiled from.
func (c *Codec[T]) Schema() string { return c.avro.Schema() }

// Encode returns v as Avro binary.
func (c *Codec[T]) Encode(v T) ([]byte, error) { return c.AppendEncode(nil, v) }

// AppendEncode appends v as Avro binary to dst and returns the extended
// slice. On error dst is returned unchanged.
func (c *Codec[T]) AppendEncode(dst []byte, v T) ([]byte, error) {
	return c.appendEncode(dst, &v)
}

func (c *Codec[T]) appendEncode(dst []byte, v *T) ([]byte, error) {
	if c.appendBinary != nil {
		return c.appendBinary(dst, v), nil
	}
	native, err := c.toNative(v)
	if err != nil {
		return dst, err
	}
	out, err := c.avro.BinaryFromNative(dst, native)
	if err != nil {
		return dst, fmt.Errorf("schemas: encoding %s: %w", c.name, err)
	}
	return out, nil
}

// Decode reads one record from Avro binary written with this codec's schema.
// Bytes left over after the record are an error: they mean the data was
// written with another schema. Timestamps come back in UTC at millisecond
// precision; null optional strings come back as "".
func (c *Codec[T]) Decode(b []byte) (T, error) {
	var v T
	err := c.DecodeInto(b, &v)
	return v, err
}

// DecodeInto is Decode into an existing value, which is overwritten.
func (c *Codec[T]) DecodeInto(b []byte, v *T) error {
	native, rest, err := c.avro.NativeFromBinary(b)
	if err != nil {
		return fmt.Errorf("schemas: decoding %s: %w", c.name, err)
	}
	if len(rest) != 0 {
		return fmt.Errorf("schemas: decoding %s: %d bytes left after the record (written with another schema?)", c.name, len(rest))
	}
	m, ok := native.(map[string]any)
	if !ok {
		return fmt.Errorf("schemas: decoding %s: got %T, want a record", c.name, native)
	}
	var zero T
	*v = zero
	return c.fromNative(m, v)
}

// EncodeJob returns j as raw Avro binary (no registry header) using the
// shared JobCodec.
func EncodeJob(j EmailJob) ([]byte, error) {
	c, err := JobCodec()
	if err != nil {
		return nil, err
	}
	return c.appendEncode(nil, &j)
}

// DecodeJob reads an EmailJob from raw Avro binary written with JobSchema.
func DecodeJob(b []byte) (EmailJob, error) {
	var j EmailJob
	c, err := JobCodec()
	if err != nil {
		return j, err
	}
	err = c.DecodeInto(b, &j)
	return j, err
}

// EncodeDelivery returns d as raw Avro binary (no registry header) using the
// shared DeliveryCodec.
func EncodeDelivery(d EmailDelivery) ([]byte, error) {
	c, err := DeliveryCodec()
	if err != nil {
		return nil, err
	}
	return c.appendEncode(nil, &d)
}

// DecodeDelivery reads an EmailDelivery from raw Avro binary written with
// DeliverySchema.
func DecodeDelivery(b []byte) (EmailDelivery, error) {
	var d EmailDelivery
	c, err := DeliveryCodec()
	if err != nil {
		return d, err
	}
	err = c.DecodeInto(b, &d)
	return d, err
}

// ---- Go -> goavro native ----

// Union branch names as goavro spells them.
const (
	branchString    = "string"
	branchTimestamp = "long.timestamp-millis"
)

// optString maps "" to Avro null.
func optString(s string) any {
	if s == "" {
		return nil
	}
	return map[string]any{branchString: s}
}

// millis is t as epoch milliseconds, truncated (floored) to the millisecond.
func millis(t time.Time) int64 { return t.UnixMilli() }

// optMillis maps the zero time to Avro null.
func optMillis(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return map[string]any{branchTimestamp: t.UnixMilli()}
}

func jobToNative(j *EmailJob) (map[string]any, error) {
	tags := make([]any, len(j.Tags))
	for i, t := range j.Tags {
		tags[i] = t
	}
	return map[string]any{
		"key":        j.Key,
		"type":       j.Type,
		"section":    j.Section,
		"company_id": optString(j.CompanyID),
		"to": map[string]any{
			"address": j.To.Address,
			"name":    j.To.Name,
			"role":    j.To.Role,
		},
		"from":     j.From,
		"reply_to": optString(j.ReplyTo),
		"subject":  j.Subject,
		"html":     optString(j.HTML),
		"text":     optString(j.Text),
		"tags":     tags,
		"cause": map[string]any{
			"topic":       j.Cause.Topic,
			"partition":   j.Cause.Partition,
			"offset":      j.Cause.Offset,
			"op":          j.Cause.Op,
			"source_time": millis(j.Cause.SourceTime),
			"table":       j.Cause.Table,
			"entity_id":   j.Cause.EntityID,
		},
		"created_at": millis(j.CreatedAt),
		"data":       optString(j.Data),
	}, nil
}

func deliveryToNative(d *EmailDelivery) (map[string]any, error) {
	switch d.Outcome {
	case OutcomeSent, OutcomeDuplicateSuppressed, OutcomeFailedPermanent, OutcomeDeadLettered:
	default:
		return nil, fmt.Errorf("schemas: encoding EmailDelivery: outcome %q is not one of %s, %s, %s, %s",
			d.Outcome, OutcomeSent, OutcomeDuplicateSuppressed, OutcomeFailedPermanent, OutcomeDeadLettered)
	}
	return map[string]any{
		"key":         d.Key,
		"type":        d.Type,
		"outcome":     d.Outcome,
		"provider_id": optString(d.ProviderID),
		"attempts":    d.Attempts, // goavro rejects values outside int32
		"last_error":  optString(d.LastError),
		"first_try":   optMillis(d.FirstTry),
		"at":          millis(d.At),
		"event":       optString(d.Event),
		"body_sha256": optString(d.BodySHA256),
	}, nil
}

// ---- goavro native -> Go ----

// fields reads typed values out of a decoded record, keeping the first error
// (so callers read every field and check once).
type fields struct {
	path string
	m    map[string]any
	err  *error
}

func (f fields) fail(name, want string, got any) {
	if *f.err == nil {
		*f.err = fmt.Errorf("schemas: decoding %s.%s: got %T, want %s", f.path, name, got, want)
	}
}

func (f fields) str(name string) string {
	v := f.m[name]
	s, ok := v.(string)
	if !ok {
		f.fail(name, "string", v)
	}
	return s
}

// optStr reads a ["null","string"] union; null is "".
func (f fields) optStr(name string) string {
	v := f.m[name]
	switch u := v.(type) {
	case nil:
		return ""
	case map[string]any:
		if s, ok := u[branchString].(string); ok && len(u) == 1 {
			return s
		}
	}
	f.fail(name, "null or string", v)
	return ""
}

func (f fields) int32(name string) int32 {
	v := f.m[name]
	i, ok := v.(int32)
	if !ok {
		f.fail(name, "int", v)
	}
	return i
}

func (f fields) int64(name string) int64 {
	v := f.m[name]
	i, ok := v.(int64)
	if !ok {
		f.fail(name, "long", v)
	}
	return i
}

func (f fields) time(name string) time.Time {
	v := f.m[name]
	t, ok := v.(time.Time)
	if !ok {
		f.fail(name, "timestamp-millis", v)
	}
	return t
}

// optTime reads a ["null", timestamp-millis] union; null is the zero time.
func (f fields) optTime(name string) time.Time {
	v := f.m[name]
	switch u := v.(type) {
	case nil:
		return time.Time{}
	case map[string]any:
		if t, ok := u[branchTimestamp].(time.Time); ok && len(u) == 1 {
			return t
		}
	}
	f.fail(name, "null or timestamp-millis", v)
	return time.Time{}
}

// strs reads an array of strings; an empty array is nil.
func (f fields) strs(name string) []string {
	v := f.m[name]
	a, ok := v.([]any)
	if !ok {
		f.fail(name, "array", v)
		return nil
	}
	if len(a) == 0 {
		return nil
	}
	out := make([]string, len(a))
	for i, e := range a {
		s, ok := e.(string)
		if !ok {
			f.fail(fmt.Sprintf("%s[%d]", name, i), "string", e)
			return nil
		}
		out[i] = s
	}
	return out
}

func (f fields) record(name string) fields {
	v := f.m[name]
	m, ok := v.(map[string]any)
	if !ok {
		f.fail(name, "record", v)
	}
	return fields{path: f.path + "." + name, m: m, err: f.err}
}

func jobFromNative(m map[string]any, j *EmailJob) error {
	var err error
	f := fields{path: "EmailJob", m: m, err: &err}
	to := f.record("to")
	cause := f.record("cause")
	*j = EmailJob{
		Key:       f.str("key"),
		Type:      f.str("type"),
		Section:   f.str("section"),
		CompanyID: f.optStr("company_id"),
		To: Recipient{
			Address: to.str("address"),
			Name:    to.str("name"),
			Role:    to.str("role"),
		},
		From:    f.str("from"),
		ReplyTo: f.optStr("reply_to"),
		Subject: f.str("subject"),
		HTML:    f.optStr("html"),
		Text:    f.optStr("text"),
		Tags:    f.strs("tags"),
		Cause: Cause{
			Topic:      cause.str("topic"),
			Partition:  cause.int32("partition"),
			Offset:     cause.int64("offset"),
			Op:         cause.str("op"),
			SourceTime: cause.time("source_time"),
			Table:      cause.str("table"),
			EntityID:   cause.str("entity_id"),
		},
		CreatedAt: f.time("created_at"),
		Data:      f.optStr("data"),
	}
	return err
}

func deliveryFromNative(m map[string]any, d *EmailDelivery) error {
	var err error
	f := fields{path: "EmailDelivery", m: m, err: &err}
	*d = EmailDelivery{
		Key:        f.str("key"),
		Type:       f.str("type"),
		Outcome:    f.str("outcome"),
		ProviderID: f.optStr("provider_id"),
		Attempts:   int(f.int32("attempts")),
		LastError:  f.optStr("last_error"),
		FirstTry:   f.optTime("first_try"),
		At:         f.time("at"),
		Event:      f.optStr("event"),
		BodySHA256: f.optStr("body_sha256"),
	}
	return err
}
