package stream

import (
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// DLQ header keys: why a record was dead-lettered and where it came from.
const (
	HeaderReason    = "portalmail.reason"
	HeaderStage     = "portalmail.stage"
	HeaderTopic     = "portalmail.source_topic"
	HeaderPartition = "portalmail.source_partition"
	HeaderOffset    = "portalmail.source_offset"
)

// DeadLetterRecord builds the DLQ record for a record (or, with src nil, for
// a timer or parked intent) with the reason in the headers.
func DeadLetterRecord(dlqTopic, stage, reason, topic string, partition int32, offset int64, key, value []byte) *kgo.Record {
	return &kgo.Record{
		Topic: dlqTopic,
		Key:   key,
		Value: value,
		Headers: []kgo.RecordHeader{
			{Key: HeaderReason, Value: []byte(reason)},
			{Key: HeaderStage, Value: []byte(stage)},
			{Key: HeaderTopic, Value: []byte(topic)},
			{Key: HeaderPartition, Value: []byte(strconv.FormatInt(int64(partition), 10))},
			{Key: HeaderOffset, Value: []byte(strconv.FormatInt(offset, 10))},
		},
	}
}

// Header returns the value of a record header, "" if absent.
func Header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Reason classes: the short, bounded names of why a record was dead-lettered
// (metric labels; the free-text reason stays in the HeaderReason header).
const (
	ClassUndecodable      = "undecodable"         // a CDC record that does not decode
	ClassUnknownTable     = "unknown_table"       // a topic outside the source contract
	ClassMissingReference = "missing_reference"   // a referenced row did not arrive within --park-for
	ClassRender           = "render"              // a subject or body failed to render
	ClassPark             = "park"                // an intent could not be parked
	ClassBadTimer         = "bad_timer"           // a malformed timer or one of an unknown type
	ClassBadParked        = "bad_parked"          // a parked intent that no longer decodes
	ClassNoRecipient      = "no_recipient"        // an email left with no valid recipient address
	ClassTooMany          = "too_many_recipients" // an email with more than --max-recipients recipients
	ClassOutputCap        = "output_cap"          // one change's emails pass --max-change-output
	ClassUndecodableJob   = "undecodable_job"     // a job the send stage cannot decode
	ClassPermanentFailure = "permanent_failure"   // Mailgun refused the email for good
	ClassOther            = "other"
)

// ReasonClasses lists every class ReasonClass returns.
var ReasonClasses = []string{ClassUndecodable, ClassUnknownTable, ClassMissingReference, ClassRender,
	ClassPark, ClassBadTimer, ClassBadParked, ClassNoRecipient, ClassTooMany, ClassOutputCap,
	ClassUndecodableJob, ClassPermanentFailure, ClassOther}

// ReasonClass maps a free-text dead-letter reason to its class.
func ReasonClass(reason string) string {
	for _, c := range []struct{ prefix, class string }{
		{"unknown table ", ClassUnknownTable},
		{"referenced row ", ClassMissingReference},
		{"render ", ClassRender},
		{"park ", ClassPark},
		{"parked intent ", ClassBadParked},
		{"timer of unknown type", ClassBadTimer},
		{"malformed timer member", ClassBadTimer},
		{"unknown timer kind", ClassBadTimer},
		{"no valid recipient ", ClassNoRecipient},
		{"too many recipients ", ClassTooMany},
		{"output cap: ", ClassOutputCap},
		{"undecodable job", ClassUndecodableJob},
		{"permanent delivery failure", ClassPermanentFailure},
	} {
		if strings.HasPrefix(reason, c.prefix) {
			return c.class
		}
	}
	return ClassOther
}
