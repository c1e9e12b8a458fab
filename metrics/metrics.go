// Package metrics is portalmail's Prometheus instrumentation: one registry per
// process holding the stage's own collectors (Process or Send, implementing
// stream.ProcessMetrics / stream.SendMetrics), franz-go's client metrics
// (kprom, through Registry.KafkaHooks) and the consumer lag of the stage's
// group (RunLag); the webhooks command's event counts (Webhooks). Every metric is listed, with what to alert on, in
// docs/operations.md.
package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/portalmail/portalmail/processor/send"
	"github.com/portalmail/portalmail/processor/stream"
	"github.com/portalmail/portalmail/processor/webhooks"
)

// Namespace prefixes every metric name.
const Namespace = "portalmail"

// Registry is the metrics registry of one process.
type Registry struct {
	reg *prometheus.Registry
	lag *prometheus.GaugeVec
}

// NewRegistry returns a registry with the Go runtime and process collectors
// and the consumer-lag gauge.
func NewRegistry() *Registry {
	r := &Registry{reg: prometheus.NewRegistry()}
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r.lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "consumer_lag",
		Help: "Records the consumer group has not committed yet, per partition (computed every lag interval by this instance).",
	}, []string{"group", "topic", "partition"})
	r.reg.MustRegister(r.lag)
	return r
}

// Prometheus returns the underlying registry.
func (r *Registry) Prometheus() *prometheus.Registry { return r.reg }

// Handler serves the registry in the Prometheus exposition format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg})
}

// KafkaHooks returns the franz-go option registering kprom's client metrics
// (portalmail_kafka_*) on this registry. Use it for one client per registry.
func (r *Registry) KafkaHooks() kgo.Opt {
	return kgo.WithHooks(kprom.NewMetrics(Namespace, kprom.Registry(r.reg), kprom.Subsystem("kafka")))
}

// RunLag computes the lag of group every interval until ctx ends and
// publishes it as portalmail_consumer_lag. Every instance of a stage publishes
// the whole group's lag; aggregate with max by (group, topic, partition).
func (r *Registry) RunLag(ctx context.Context, adm *kadm.Client, group string, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := r.updateLag(ctx, adm, group); err != nil && ctx.Err() == nil {
			log.Debug("computing consumer lag failed", "group", group, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Registry) updateLag(ctx context.Context, adm *kadm.Client, group string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		return err
	}
	l, ok := lags[group]
	if !ok {
		return errors.New("group not described")
	}
	if err := l.Error(); err != nil {
		return err
	}
	r.lag.DeletePartialMatch(prometheus.Labels{"group": group})
	for _, m := range l.Lag.Sorted() {
		if m.Err != nil || m.Lag < 0 {
			continue
		}
		r.lag.WithLabelValues(group, m.Topic, strconv.Itoa(int(m.Partition))).Set(float64(m.Lag))
	}
	return nil
}

// Process are the process stage's collectors; it implements
// stream.ProcessMetrics.
type Process struct {
	changes      *prometheus.CounterVec
	records      prometheus.Counter
	jobs         *prometheus.CounterVec
	dlq          *prometheus.CounterVec
	transactions *prometheus.CounterVec
	batch        prometheus.Histogram
	phases       *prometheus.CounterVec
	timers       *prometheus.CounterVec
	parked       *prometheus.CounterVec
	cdc          *prometheus.CounterVec
	refused      *prometheus.CounterVec
}

var _ stream.ProcessMetrics = (*Process)(nil)

// NewProcess registers the process stage's collectors on r.
func NewProcess(r *Registry) *Process {
	p := &Process{
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "changes_consumed_total",
			Help: "Decoded CDC changes in committed batches, by source table and Debezium op (c, u, d, r, tombstone)."}, []string{"table", "op"}),
		records: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "records_consumed_total",
			Help: "CDC records in committed batches, undecodable ones included."}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "jobs_emitted_total",
			Help: "Email jobs committed to the jobs topic, by email type."}, []string{"email_type"}),
		dlq: dlqCounter(r),
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "transactions_total",
			Help: "Process-stage batches by result: committed (a Kafka transaction committed), aborted (Kafka aborted it: rebalance or produce failure), failed (engine or Redis failure; retried after a pause)."}, []string{"result"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "batch_duration_seconds",
			Help:    "Time from poll to commit of a batch that committed a transaction.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}),
		phases: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "batch_phase_seconds_total",
			Help: "Seconds committed batches spent in each phase: poll (waiting for records), decode, wait (for the previous batch's state record), apply (the engine), fire (timers), encode, produce (and flush), end (the transaction commit), record (writing the committed output to Redis, overlapping the next poll)."}, []string{"phase"}),
		timers: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "timers_total",
			Help: "Timer events in committed batches: scheduled (added or moved), due (taken by the firing loop), fired (passed the re-check), dropped (failed the re-check or superseded)."}, []string{"event"}),
		parked: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "parked_total",
			Help: "Changes parked to wait for a referenced row (parked), and parked ones whose row never came (expired, dead-lettered)."}, []string{"event"}),
		cdc: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "cdc_events_total",
			Help: "What the source positions and Debezium's side records did in committed batches: stale (a change older than its row's stored history: skipped), unordered (applied in arrival order: its position could not be compared with the row's newest), truncate (a TRUNCATE forgot a table's older rows), ignored (heartbeats, transaction metadata, logical decoding messages), unavailable_unresolved (an unchanged TOASTed value no stored image held: the column was left out)."}, []string{"event"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "addresses_refused_total",
			Help: "Addresses from the data refused by the address rule, in committed batches, by field: recipient (not mailed; an email left with none is dead-lettered as no_recipient) or reply_to (the email goes without a Reply-To)."}, []string{"field"}),
	}
	r.reg.MustRegister(p.changes, p.records, p.jobs, p.transactions, p.batch, p.phases, p.timers, p.parked, p.cdc, p.refused)
	for _, res := range []string{"committed", "aborted", "failed"} {
		p.transactions.WithLabelValues(res)
	}
	for _, ph := range stream.PhaseNames {
		p.phases.WithLabelValues(ph)
	}
	for _, e := range []string{"scheduled", "due", "fired", "dropped"} {
		p.timers.WithLabelValues(e)
	}
	for _, e := range []string{"parked", "expired"} {
		p.parked.WithLabelValues(e)
	}
	for _, e := range []string{"stale", "unordered", "truncate", "ignored", "unavailable_unresolved"} {
		p.cdc.WithLabelValues(e)
	}
	for _, f := range []string{"recipient", "reply_to"} {
		p.refused.WithLabelValues(f)
	}
	return p
}

// dlqCounter registers portalmail_dead_letters_total with every class at 0.
func dlqCounter(r *Registry) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "dead_letters_total",
		Help: "Records written to the DLQ, by reason class (the full reason is in the record's portalmail.reason header)."}, []string{"reason"})
	r.reg.MustRegister(c)
	for _, class := range stream.ReasonClasses {
		c.WithLabelValues(class)
	}
	return c
}

// BatchCommitted implements stream.ProcessMetrics.
func (p *Process) BatchCommitted(s stream.BatchStats) {
	if !s.Transaction {
		return
	}
	p.transactions.WithLabelValues("committed").Inc()
	p.batch.Observe(s.Took.Seconds())
	s.Phases.Each(func(name string, d time.Duration) { p.phases.WithLabelValues(name).Add(d.Seconds()) })
	p.records.Add(float64(s.Records))
	for k, n := range s.Changes {
		p.changes.WithLabelValues(k.Table, k.Op).Add(float64(n))
	}
	for t, n := range s.JobsByType {
		p.jobs.WithLabelValues(t).Add(float64(n))
	}
	for c, n := range s.DLQByClass {
		p.dlq.WithLabelValues(c).Add(float64(n))
	}
	e := s.Engine
	p.timers.WithLabelValues("scheduled").Add(float64(e.TimersScheduled))
	p.timers.WithLabelValues("due").Add(float64(e.TimersDue))
	p.timers.WithLabelValues("fired").Add(float64(e.TimersFired))
	p.timers.WithLabelValues("dropped").Add(float64(e.TimersDropped))
	p.parked.WithLabelValues("parked").Add(float64(e.Parked))
	p.parked.WithLabelValues("expired").Add(float64(e.ParkExpired))
	p.cdc.WithLabelValues("stale").Add(float64(e.Stale))
	p.cdc.WithLabelValues("unordered").Add(float64(e.Unordered))
	p.cdc.WithLabelValues("truncate").Add(float64(e.Truncates))
	p.cdc.WithLabelValues("ignored").Add(float64(e.Ignored))
	p.cdc.WithLabelValues("unavailable_unresolved").Add(float64(e.Unresolved))
	p.refused.WithLabelValues("recipient").Add(float64(e.RecipientsRefused))
	p.refused.WithLabelValues("reply_to").Add(float64(e.ReplyToRefused))
}

// BatchAborted implements stream.ProcessMetrics.
func (p *Process) BatchAborted(_ int, failed bool) {
	if failed {
		p.transactions.WithLabelValues("failed").Inc()
		return
	}
	p.transactions.WithLabelValues("aborted").Inc()
}

// Send are the send stage's collectors; it implements stream.SendMetrics.
type Send struct {
	sends    *prometheus.CounterVec
	dlq      *prometheus.CounterVec
	retries  *prometheus.CounterVec
	mailgun  *prometheus.HistogramVec
	waits    prometheus.Counter
	waitSecs prometheus.Counter
}

var _ stream.SendMetrics = (*Send)(nil)

// NewSend registers the send stage's collectors on r.
func NewSend(r *Registry) *Send {
	s := &Send{
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "sends_total",
			Help: "Delivery records by email type and outcome (sent, duplicate_suppressed, failed_permanent)."}, []string{"email_type", "outcome"}),
		dlq: dlqCounter(r),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "send_retries_total",
			Help: "Retries of a Mailgun send after a retryable failure, by email type."}, []string{"email_type"}),
		mailgun: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "mailgun_request_duration_seconds",
			Help:    "Duration of Mailgun send requests, by result (ok, retryable, permanent).",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"result"}),
		waits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "rate_limit_waits_total",
			Help: "Sends that waited for the rate limiter (--rate-limit)."}),
		waitSecs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "rate_limit_wait_seconds_total",
			Help: "Time spent waiting for the rate limiter."}),
	}
	r.reg.MustRegister(s.sends, s.retries, s.mailgun, s.waits, s.waitSecs)
	for _, res := range []string{"ok", "retryable", "permanent"} {
		s.mailgun.WithLabelValues(res)
	}
	return s
}

// Delivered implements stream.SendMetrics.
func (s *Send) Delivered(emailType, outcome string) {
	s.sends.WithLabelValues(emailType, outcome).Inc()
}

// DeadLettered implements stream.SendMetrics.
func (s *Send) DeadLettered(class string) { s.dlq.WithLabelValues(class).Inc() }

// Retried implements stream.SendMetrics.
func (s *Send) Retried(emailType string) { s.retries.WithLabelValues(emailType).Inc() }

// MailgunRequest implements stream.SendMetrics.
func (s *Send) MailgunRequest(took time.Duration, err error) {
	res := "ok"
	if err != nil {
		res = "retryable"
		if permanent, _ := send.Classify(err); permanent {
			res = "permanent"
		}
	}
	s.mailgun.WithLabelValues(res).Observe(took.Seconds())
}

// RateLimitWaited implements stream.SendMetrics; waits under a millisecond
// (a token was there) are not counted as waits.
func (s *Send) RateLimitWaited(d time.Duration) {
	if d < time.Millisecond {
		return
	}
	s.waits.Inc()
	s.waitSecs.Add(d.Seconds())
}

// Webhooks are the webhooks command's collectors; it implements
// webhooks.Metrics.
type Webhooks struct {
	events *prometheus.CounterVec
}

var _ webhooks.Metrics = (*Webhooks)(nil)

// NewWebhooks registers the webhooks command's collectors on r.
func NewWebhooks(r *Registry) *Webhooks {
	w := &Webhooks{events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "webhook_events_total",
		Help: "Mailgun webhook requests by event (delivered, failed_permanent, failed_temporary, opened, clicked, complained, unsubscribed; unknown when refused unread) and result (recorded, refused, failed)."},
		[]string{"event", "result"})}
	r.reg.MustRegister(w.events)
	for _, e := range webhooks.Events {
		w.events.WithLabelValues(e, "recorded")
	}
	w.events.WithLabelValues("unknown", "refused")
	return w
}

// Handled implements webhooks.Metrics.
func (w *Webhooks) Handled(event, result string) { w.events.WithLabelValues(event, result).Inc() }
