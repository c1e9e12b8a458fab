package e2e

import (
	"sort"
	"strings"
	"time"

	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/processor/send"
	"github.com/portalmail/portalmail/processor/send/mailgunfake"
)

// timerTypes are the catalog's email types with a Timer trigger.
func timerTypes() map[string]bool {
	out := map[string]bool{}
	for _, t := range catalog.Default() {
		if _, ok := t.Trigger.(catalog.Timer); ok {
			out[string(t.ID)] = true
		}
	}
	return out
}

// thresholdTypes are the catalog's email types with a Threshold trigger.
func thresholdTypes() map[string]bool {
	out := map[string]bool{}
	for _, t := range catalog.Default() {
		if _, ok := t.Trigger.(catalog.Threshold); ok {
			out[string(t.ID)] = true
		}
	}
	return out
}

// expected is what simulate emitted for the workload: the reference every
// process run is checked against.
type expected struct {
	// keys are the transition emails (not timers) by idempotency key → type.
	keys map[string]string
	// byType counts every email by type; timers the timer emails, timerKeys
	// them by key → type.
	byType    map[string]int
	timers    int
	timerKeys map[string]string
	total     int
	// intents are the distinct transitions behind the transition emails
	// (a key without its recipient part): what the Kafka Streams peer,
	// which resolves no recipients, writes one job for.
	intents map[string]bool
}

func newExpected() *expected {
	return &expected{keys: map[string]string{}, byType: map[string]int{}, timerKeys: map[string]string{}, intents: map[string]bool{}}
}

func (e *expected) add(key, typ string, timer bool) {
	e.total++
	e.byType[typ]++
	if timer {
		e.timers++
		e.timerKeys[key] = typ
		return
	}
	e.keys[key] = typ
	if i := strings.LastIndexByte(key, '|'); i > 0 {
		e.intents[key[:i]] = true
	}
}

// WorkloadEmails summarises simulate's emails for the workload.
type WorkloadEmails struct {
	Emails      int                       `json:"emails"`
	Transition  int                       `json:"transition_emails"`
	Intents     int                       `json:"transitions"`
	Timer       int                       `json:"timer_emails"`
	PerChange   float64                   `json:"transition_emails_per_change"`
	ByType      map[string]int            `json:"by_type"`
	Changes     int                       `json:"changes"`
	Snapshot    int                       `json:"snapshot_records"`
	SHA256      string                    `json:"sha256"`
	RecordsByOp map[string]map[string]int `json:"records_by_topic_op"`
	Kinds       map[string]int            `json:"changes_by_kind"`
}

func (e *expected) summary() WorkloadEmails {
	return WorkloadEmails{Emails: e.total, Transition: len(e.keys), Intents: len(e.intents), Timer: e.timers, ByType: e.byType}
}

// JobCheck compares the jobs a process run committed with simulate's
// transition emails: every key once, none missing, none extra.
//
// Usage-threshold emails are also counted apart: the state evaluates the
// samples of one subscription in source-position order and skips a sample
// older than one already evaluated (state/bands.go). The workload keys
// cvi_usage by subscription_id (message.key.columns, as the shipped
// connector configurations do), so a subscription's samples share a
// partition and arrive in order, and none may be missing; keyed by their
// own ids they would not, and the count says how many a run lost.
type JobCheck struct {
	Records int `json:"records"`
	// Bytes is the records' values summed (uncompressed, header and Avro).
	Bytes      int `json:"value_bytes"`
	Distinct   int `json:"distinct_keys"`
	Duplicates int `json:"duplicate_records"`
	Timer      int `json:"timer_jobs"`
	Missing    int `json:"missing"`
	Extra      int `json:"extra"`
	// ThresholdMissing are the missing usage-threshold emails (in Missing
	// too); ThresholdExpected how many simulate emitted.
	ThresholdMissing  int `json:"threshold_missing"`
	ThresholdExpected int `json:"threshold_expected"`
	// MissingByType and ExtraByType name where the differences are.
	MissingByType map[string]int `json:"missing_by_type,omitempty"`
	ExtraByType   map[string]int `json:"extra_by_type,omitempty"`
}

// OK reports exactly simulate's transition emails, each once.
func (c JobCheck) OK() bool {
	return c.Duplicates == 0 && c.Missing == 0 && c.Extra == 0 && c.Timer == 0
}

func (e *expected) check(jobs []jobRead) *JobCheck {
	c := &JobCheck{Records: len(jobs), MissingByType: map[string]int{}, ExtraByType: map[string]int{}}
	seen := make(map[string]bool, len(jobs))
	for _, j := range jobs {
		c.Bytes += j.size
		if seen[j.f.Key] {
			c.Duplicates++
			continue
		}
		seen[j.f.Key] = true
		if j.f.Op == "timer" {
			c.Timer++
			continue
		}
		if _, ok := e.keys[j.f.Key]; !ok {
			c.Extra++
			c.ExtraByType[j.f.Type]++
		}
	}
	c.Distinct = len(seen)
	th := thresholdTypes()
	for k, typ := range e.keys {
		if th[typ] {
			c.ThresholdExpected++
		}
		if !seen[k] {
			c.Missing++
			c.MissingByType[typ]++
			if th[typ] {
				c.ThresholdMissing++
			}
		}
	}
	return c
}

// Latency is the change → job latency of a run: when the read_committed
// reader received a job, less when the CDC record that caused it (the job's
// cause: topic, partition, offset) was produced. Timer jobs are left out.
type Latency struct {
	N         int           `json:"n"`
	Unmatched int           `json:"unmatched"`
	P50       time.Duration `json:"p50"`
	P90       time.Duration `json:"p90"`
	P99       time.Duration `json:"p99"`
	Max       time.Duration `json:"max"`
}

func latencies(jobs []jobRead, at map[tpo]time.Time) *Latency {
	l := &Latency{}
	var ds []time.Duration
	for _, j := range jobs {
		if j.f.Op == "timer" {
			continue
		}
		t, ok := at[tpo{j.f.Topic, j.f.Partition, j.f.Offset}]
		if !ok {
			l.Unmatched++
			continue
		}
		ds = append(ds, j.at.Sub(t))
	}
	if len(ds) == 0 {
		return l
	}
	sort.Slice(ds, func(i, k int) bool { return ds[i] < ds[k] })
	q := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
	l.N, l.P50, l.P90, l.P99, l.Max = len(ds), q(0.50), q(0.90), q(0.99), ds[len(ds)-1]
	return l
}

// mailgun is the Mailgun fake of a send run.
type mailgun struct{ *mailgunfake.Server }

func newMailgun() mailgun { return mailgun{mailgunfake.New()} }

// SendCheck is what the Mailgun fake accepted in a send run.
type SendCheck struct {
	Requests   int `json:"requests"`
	Messages   int `json:"messages"`
	Distinct   int `json:"distinct_keys"`
	Duplicates int `json:"duplicates"`
	Jobs       int `json:"jobs"`
}

// OK reports every job sent exactly once.
func (c SendCheck) OK() bool { return c.Duplicates == 0 && c.Distinct == c.Jobs }

func (m mailgun) check(jobs int) *SendCheck {
	c := &SendCheck{Requests: m.Requests(), Jobs: jobs}
	seen := map[string]bool{}
	for _, msg := range m.Messages() {
		c.Messages++
		k := msg.Vars[send.VarKey]
		if seen[k] {
			c.Duplicates++
		}
		seen[k] = true
	}
	c.Distinct = len(seen)
	return c
}
