// Package stream is portalmail's Kafka plumbing (franz-go): the process stage
// (CDC topics → engine → email jobs, exactly once through Kafka transactions),
// the send stage (email jobs → Mailgun → delivery records) and the DLQ record
// shape. It holds no email logic: that is package processor.
package stream
