package stream

import (
	"strconv"

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
