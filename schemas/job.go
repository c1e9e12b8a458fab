// Package schemas holds portalmail's output contracts: the EmailJob and
// EmailDelivery records written to Kafka, their Avro schemas (schemas/*.avsc)
// and codecs.
package schemas

import "time"

// Recipient is one addressee of an email job.
type Recipient struct {
	Address string `json:"address"`
	Name    string `json:"name,omitempty"`
	Role    string `json:"role"`
}

// Cause says what produced a job: the CDC record (topic, partition, offset, op,
// source timestamp) or, for timers, the timer set with Offset -1 and Op "timer".
type Cause struct {
	Topic      string    `json:"topic"`
	Partition  int32     `json:"partition"`
	Offset     int64     `json:"offset"`
	Op         string    `json:"op"`
	SourceTime time.Time `json:"source_time"`
	Table      string    `json:"table"`
	EntityID   string    `json:"entity_id"`
}

// EmailJob is one email to one recipient (topic portalmail.email-jobs).
type EmailJob struct {
	// Key is the idempotency key: deterministic from the cause and the recipient.
	Key       string    `json:"key"`
	Type      string    `json:"type"`
	Section   string    `json:"section"`
	CompanyID string    `json:"company_id,omitempty"`
	To        Recipient `json:"to"`
	From      string    `json:"from"`
	ReplyTo   string    `json:"reply_to,omitempty"`
	Subject   string    `json:"subject"`
	// HTML and Text are the rendered bodies: empty in a job that carries
	// Data until the send stage renders it.
	HTML      string    `json:"html,omitempty"`
	Text      string    `json:"text,omitempty"`
	Tags      []string  `json:"tags"`
	Cause     Cause     `json:"cause"`
	CreatedAt time.Time `json:"created_at"`
	// Data is the template data (JSON) the send stage renders the bodies
	// from (package templates); empty in a job with rendered bodies.
	Data string `json:"data,omitempty"`
}

// PartitionKey is the Kafka record key of the job: the company id, or the
// entity id where no company applies.
func (j EmailJob) PartitionKey() string {
	if j.CompanyID != "" {
		return j.CompanyID
	}
	return j.Cause.EntityID
}

// Delivery outcomes (EmailDelivery.Outcome).
const (
	OutcomeSent                = "sent"
	OutcomeDuplicateSuppressed = "duplicate_suppressed"
	OutcomeFailedPermanent     = "failed_permanent"
	OutcomeDeadLettered        = "dead_lettered"
)

// EmailDelivery records what happened to one job (topic portalmail.email-deliveries).
type EmailDelivery struct {
	Key        string    `json:"key"`
	Type       string    `json:"type"`
	Outcome    string    `json:"outcome"`
	ProviderID string    `json:"provider_id,omitempty"`
	Attempts   int       `json:"attempts"`
	LastError  string    `json:"last_error,omitempty"`
	FirstTry   time.Time `json:"first_try"`
	At         time.Time `json:"at"`
	// Event is the provider event a webhook reported ("delivered",
	// "opened", ...); empty for the sender's own records.
	Event string `json:"event,omitempty"`
	// BodySHA256 is the hex SHA-256 of the bodies the sender rendered and
	// sent (HTML, a zero byte, text); empty when it did not render them.
	BodySHA256 string `json:"body_sha256,omitempty"`
}
