package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/portalmail/portalmail/processor/send"
	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/state"
)

// Claimer is the sender's dedup guard (*state.Store implements it).
type Claimer interface {
	ClaimSend(ctx context.Context, key, owner string, lease time.Duration) (state.ClaimStatus, error)
	MarkSent(ctx context.Context, key, providerID string) error
	// MarkSentAndClaim is MarkSent(sentKey) and then ClaimSend(key) in one
	// round trip; on error neither is known to be written.
	MarkSentAndClaim(ctx context.Context, sentKey, providerID, key, owner string, lease time.Duration) (state.ClaimStatus, error)
	ReleaseSend(ctx context.Context, key, owner string) error
}

// SendSerde decodes jobs and encodes delivery records (*schemas.Serde implements it).
type SendSerde interface {
	DecodeJob([]byte) (schemas.EmailJob, error)
	EncodeDelivery(schemas.EmailDelivery) ([]byte, error)
}

// SendConfig configures the send stage.
type SendConfig struct {
	JobsTopic       string
	DeliveriesTopic string
	DLQTopic        string
	Group           string
	// Owner identifies this instance in send claims.
	Owner string
	// Concurrency is how many jobs of one poll are sent at once (default
	// DefaultSendConcurrency).
	Concurrency    int
	MaxPollRecords int
	// ClaimLease is how long a claim protects a job being sent; it is renewed
	// on every retry.
	ClaimLease time.Duration
	Backoff    send.Backoff
	// Sleep is the retry pause (send.SleepContext by default; tests inject).
	Sleep      func(context.Context, time.Duration) error
	Now        func() time.Time
	ClientOpts []kgo.Opt
	Logger     *slog.Logger
	// OnDelivery, if set, sees every delivery record produced.
	OnDelivery func(schemas.EmailDelivery)
	// Metrics, if set, observes the stage (package metrics implements it).
	Metrics SendMetrics
	// Render renders the bodies of a job that carries template data
	// (EmailJob.Data) and returns them with their digest
	// ((*templates.Set).RenderJobData). A job with data is refused
	// (permanently) when Render is nil or fails.
	Render func(data []byte) (html, text, digest string, err error)
}

// SendMetrics observes the send stage. Delivered sees every delivery record
// (outcome as in schemas.EmailDelivery), DeadLettered every DLQ record by
// reason class, Retried every retry of a send. MailgunRequest and
// RateLimitWaited are called by the Mailer chain that pipeline.NewSend builds.
type SendMetrics interface {
	Delivered(emailType, outcome string)
	DeadLettered(class string)
	Retried(emailType string)
	MailgunRequest(took time.Duration, err error)
	RateLimitWaited(d time.Duration)
}

// DefaultSendConcurrency is how many jobs send sends at once unless told
// otherwise: as many as the Mailgun client keeps idle connections
// (send.MailgunConfig), and on the two cores of docs/benchmarks.md the best
// of 16, 32, 64 and 128.
const DefaultSendConcurrency = 32

func (c *SendConfig) setDefaults() {
	if c.Concurrency == 0 {
		c.Concurrency = DefaultSendConcurrency
	}
	if c.MaxPollRecords == 0 {
		c.MaxPollRecords = 500
	}
	if c.ClaimLease == 0 {
		c.ClaimLease = 10 * time.Minute
	}
	if c.Backoff == (send.Backoff{}) {
		c.Backoff = send.DefaultBackoff
	}
	if c.Sleep == nil {
		c.Sleep = send.SleepContext
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate lists every problem of the configuration.
func (c SendConfig) Validate() error {
	var errs []error
	if c.JobsTopic == "" || c.DeliveriesTopic == "" || c.DLQTopic == "" {
		errs = append(errs, errors.New("jobs, deliveries and DLQ topics are required"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("no consumer group"))
	}
	if c.Owner == "" {
		errs = append(errs, errors.New("no owner id"))
	}
	if c.Concurrency < 0 {
		errs = append(errs, errors.New("concurrency must not be negative"))
	}
	return errors.Join(errs...)
}

// Send is the send stage: a consumer group over the jobs topic that delivers
// each job through the Mailer at most once per idempotency key (claim before,
// mark after), produces a delivery record per job, and commits offsets only
// after the delivery records are acknowledged. Retryable failures are retried
// without limit: an outage delays mail, it never drops it.
type Send struct {
	cfg    SendConfig
	cl     *kgo.Client
	mailer send.Mailer
	claims Claimer
	serde  SendSerde
	log    *slog.Logger
	// keys holds the idempotency keys this instance's workers are on, from
	// the claim until the mark landed: the claim script lets an owner
	// re-acquire its own claim (a restart), so copies of one job in a poll
	// must be kept apart here.
	keys keyLocks
	// renders keeps recent renderings: an email's jobs to its several
	// recipients share their template data.
	renders *renderCache
}

// keyLocks is a set of held keys; a worker waits for a key another holds.
type keyLocks struct {
	mu   sync.Mutex
	held map[string]chan struct{} // closed when the key is let go
}

// tryLock takes key, or returns a channel closed when its holder lets go.
func (l *keyLocks) tryLock(key string) (busy <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ch, ok := l.held[key]; ok {
		return ch
	}
	if l.held == nil {
		l.held = map[string]chan struct{}{}
	}
	l.held[key] = make(chan struct{})
	return nil
}

// unlock lets key go.
func (l *keyLocks) unlock(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ch, ok := l.held[key]; ok {
		close(ch)
		delete(l.held, key)
	}
}

// NewSend builds the stage.
func NewSend(cfg SendConfig, mailer send.Mailer, claims Claimer, serde SendSerde) (*Send, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("send config: %w", err)
	}
	opts := append([]kgo.Opt{
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.JobsTopic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	}, cfg.ClientOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return &Send{cfg: cfg, cl: cl, mailer: mailer, claims: claims, serde: serde, log: cfg.Logger, renders: newRenderCache(renderCacheSize)}, nil
}

// Client returns the underlying franz-go client.
func (s *Send) Client() *kgo.Client { return s.cl }

// Close leaves the group and closes the client.
func (s *Send) Close() { s.cl.Close() }

// Run sends until ctx ends; the batch in hand is finished or, if its sends
// are interrupted, left uncommitted (its claims released) for redelivery.
func (s *Send) Run(ctx context.Context) error {
	for {
		if ctx.Err() != nil {
			return nil
		}
		fetches := s.cl.PollRecords(ctx, s.cfg.MaxPollRecords)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			s.log.Warn("fetch error", "topic", t, "partition", p, "err", err)
		})
		recs := fetches.Records()
		if len(recs) == 0 {
			continue
		}
		if err := s.batch(ctx, recs); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

var errInterrupted = errors.New("interrupted")

// batch delivers a poll's jobs, produces their records, then commits.
// Concurrency workers take the jobs in order; each marks the email it sent
// in the round trip that claims its next job (sentMark), and marks its last
// one alone before the batch goes on, so every mark lands before the
// offsets are committed.
func (s *Send) batch(ctx context.Context, recs []*kgo.Record) error {
	out := make([][]*kgo.Record, len(recs))
	errs := make([]error, len(recs))
	workers := min(s.cfg.Concurrency, len(recs))
	last := make([]error, workers)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var owed *sentMark
			for {
				i := int(next.Add(1) - 1)
				if i >= len(recs) {
					break
				}
				out[i], owed, errs[i] = s.deliver(ctx, recs[i], owed)
			}
			if owed != nil {
				last[w] = s.settle(ctx, owed)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(append(errs, last...)...); err != nil {
		return err // interrupted: nothing committed, claims released
	}
	var produce []*kgo.Record
	for _, rs := range out {
		produce = append(produce, rs...)
	}
	for {
		err := s.cl.ProduceSync(ctx, produce...).FirstErr()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Error("producing delivery records failed; retrying", "err", err)
		if err := s.cfg.Sleep(ctx, time.Second); err != nil {
			return err
		}
	}
	if err := s.cl.CommitRecords(ctx, recs...); err != nil {
		// The deliveries are recorded and the keys marked: a redelivery of
		// this batch (after a rebalance) only suppresses duplicates.
		s.log.Warn("committing offsets failed; the batch may be redelivered and suppressed", "err", err)
	}
	return nil
}

// sentMark is a mark a worker owes: the key of an email it sent (id: the
// provider's message id) or failed for good (id "failed"), to be marked
// with the claim of its next job, or alone when there is none.
type sentMark struct{ key, id string }

// deliver sends one job and returns the records to produce for it and the
// mark it owes for it (nil: none). owed is the mark the worker owed before:
// it is written, with this job's claim, before anything is sent; it is
// returned still owed when this job could not claim (undecodable, or
// interrupted before the mark landed).
func (s *Send) deliver(ctx context.Context, r *kgo.Record, owed *sentMark) ([]*kgo.Record, *sentMark, error) {
	dead := func(reason string) *kgo.Record {
		if s.cfg.Metrics != nil {
			s.cfg.Metrics.DeadLettered(ReasonClass(reason))
		}
		return DeadLetterRecord(s.cfg.DLQTopic, "send", reason, r.Topic, r.Partition, r.Offset, r.Key, r.Value)
	}
	job, err := s.serde.DecodeJob(r.Value)
	if err != nil {
		s.log.Warn("dead-lettering undecodable job", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
		return []*kgo.Record{dead("undecodable job: " + err.Error())}, owed, nil
	}
	log := s.log.With("email_type", job.Type, "idempotency_key", job.Key, "partition", r.Partition, "offset", r.Offset)
	first := s.cfg.Now()
	d := schemas.EmailDelivery{Key: job.Key, Type: job.Type, FirstTry: first}
	status, owed, err := s.claimAfter(ctx, owed, job.Key)
	if err != nil {
		return nil, owed, err
	}
	// From here the worker holds job.Key (s.keys): it lets go when it owes
	// no mark for it, or once the mark landed (claimAfter, settle).
	var extra []*kgo.Record
	var owe *sentMark
	switch status {
	case state.ClaimAlreadySent:
		d.Outcome = schemas.OutcomeDuplicateSuppressed
		log.Info("duplicate suppressed")
	default:
		if job.Data != "" && job.HTML == "" && job.Text == "" {
			if err := s.render(&job, &d); err != nil {
				d.Outcome, d.LastError = schemas.OutcomeFailedPermanent, err.Error()
				owe = &sentMark{job.Key, "failed"}
				log.Warn("rendering failed; job dead-lettered", "err", err)
				extra = append(extra, dead("render: "+err.Error()))
				break // out of the switch: nothing to send
			}
		}
		// An attempt under way is not cancelled by shutdown: cut short, Mailgun
		// may have taken the email without us knowing, and the next owner
		// would send it again. Shutdown waits for it (bounded by the Mailgun
		// timeout) and interrupts only the pauses between attempts.
		detached := send.MailerFunc(func(ctx context.Context, j schemas.EmailJob) (string, error) {
			return s.mailer.Send(context.WithoutCancel(ctx), j)
		})
		id, attempts, err := send.SendWithRetry(ctx, detached, job, s.cfg.Backoff, 0, s.cfg.Sleep,
			func(n int, err error, wait time.Duration) {
				log.Warn("send failed, retrying", "attempt", n, "wait", wait, "err", err)
				if s.cfg.Metrics != nil {
					s.cfg.Metrics.Retried(string(job.Type))
				}
				if _, cerr := s.claims.ClaimSend(ctx, job.Key, s.cfg.Owner, s.cfg.ClaimLease); cerr != nil {
					log.Warn("renewing send claim failed", "err", cerr)
				}
			})
		d.Attempts = attempts
		switch {
		case err == nil:
			d.Outcome, d.ProviderID = schemas.OutcomeSent, id
			owe = &sentMark{job.Key, id}
			log.Info("sent", "attempts", attempts)
		case errors.Is(err, send.ErrPermanent):
			d.Outcome, d.LastError = schemas.OutcomeFailedPermanent, err.Error()
			owe = &sentMark{job.Key, "failed"}
			log.Warn("permanent failure; job dead-lettered", "err", err)
			extra = append(extra, dead("permanent delivery failure: "+err.Error()))
		default:
			if rerr := s.claims.ReleaseSend(context.WithoutCancel(ctx), job.Key, s.cfg.Owner); rerr != nil {
				log.Warn("releasing send claim failed", "err", rerr)
			}
			s.keys.unlock(job.Key)
			return nil, nil, fmt.Errorf("%w: %s: %v", errInterrupted, job.Key, err)
		}
	}
	if owe == nil {
		s.keys.unlock(job.Key)
	}
	d.At = s.cfg.Now()
	v, err := s.serde.EncodeDelivery(d)
	if err != nil {
		return nil, owe, fmt.Errorf("encode delivery %s: %w", job.Key, err)
	}
	if s.cfg.OnDelivery != nil {
		s.cfg.OnDelivery(d)
	}
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.Delivered(string(d.Type), string(d.Outcome))
	}
	return append([]*kgo.Record{{Topic: s.cfg.DeliveriesTopic, Key: []byte(job.Key), Value: v}}, extra...), owe, nil
}

// render fills in the bodies of a job from its template data and records
// their digest on the delivery.
func (s *Send) render(job *schemas.EmailJob, d *schemas.EmailDelivery) error {
	if s.cfg.Render == nil {
		return errors.New("the job carries template data and this sender has no templates")
	}
	r, err := s.renders.render(job.Data, s.cfg.Render)
	if err != nil {
		return err
	}
	job.HTML, job.Text, d.BodySHA256 = r.html, r.text, r.digest
	return nil
}

// claimAfter takes key within this instance (s.keys) and claims it as claim
// does, first writing the mark owed (if any) in the same round trip. It
// returns the mark still owed: nil once it landed (its key let go), owed
// itself when interrupted before. A worker waits for a key another worker
// holds only after settling its own mark, so no two wait for each other.
func (s *Send) claimAfter(ctx context.Context, owed *sentMark, key string) (state.ClaimStatus, *sentMark, error) {
	if owed != nil && owed.key == key {
		// The same job again: its mark first, then the claim sees it.
		if err := s.mark(ctx, owed.key, owed.id); err != nil {
			return 0, owed, err
		}
		owed = nil // the key stays held, by this job now
	} else {
		for {
			busy := s.keys.tryLock(key)
			if busy == nil {
				break
			}
			if owed != nil {
				if err := s.settle(ctx, owed); err != nil {
					return 0, owed, err
				}
				owed = nil
			}
			select {
			case <-busy:
			case <-ctx.Done():
				return 0, nil, fmt.Errorf("%w: %v", errInterrupted, ctx.Err())
			}
		}
	}
	if owed != nil && ctx.Err() == nil {
		st, err := s.claims.MarkSentAndClaim(ctx, owed.key, owed.id, key, s.cfg.Owner, s.cfg.ClaimLease)
		if err == nil {
			s.keys.unlock(owed.key)
			owed = nil
			if st != state.ClaimInFlight {
				return st, nil, nil
			}
		} else {
			s.log.Warn("marking sent with the next claim failed; marking alone", "idempotency_key", owed.key, "err", err)
		}
	}
	if owed != nil {
		if err := s.settle(ctx, owed); err != nil {
			s.keys.unlock(key)
			return 0, owed, err
		}
	}
	st, err := s.claim(ctx, key)
	if err != nil {
		s.keys.unlock(key)
	}
	return st, nil, err
}

// settle writes a mark owed and lets its key go.
func (s *Send) settle(ctx context.Context, owed *sentMark) error {
	defer s.keys.unlock(owed.key)
	return s.mark(ctx, owed.key, owed.id)
}

// claim claims a key, waiting while another instance holds it and retrying
// Redis failures, until it is ours or known to be sent.
func (s *Send) claim(ctx context.Context, key string) (state.ClaimStatus, error) {
	for {
		st, err := s.claims.ClaimSend(ctx, key, s.cfg.Owner, s.cfg.ClaimLease)
		switch {
		case err != nil:
			s.log.Warn("claiming send failed; retrying", "idempotency_key", key, "err", err)
		case st == state.ClaimInFlight:
			// Another instance is sending it (or crashed holding the lease).
		default:
			return st, nil
		}
		if err := s.cfg.Sleep(ctx, time.Second); err != nil {
			return 0, fmt.Errorf("%w: %v", errInterrupted, err)
		}
	}
}

// mark records a key as sent, retrying Redis failures: the email is out, so
// the mark must land before the offset is committed.
func (s *Send) mark(ctx context.Context, key, id string) error {
	for {
		err := s.claims.MarkSent(context.WithoutCancel(ctx), key, id)
		if err == nil {
			return nil
		}
		s.log.Error("marking sent failed; retrying", "idempotency_key", key, "err", err)
		if err := s.cfg.Sleep(ctx, time.Second); err != nil {
			return fmt.Errorf("%w: %v", errInterrupted, err)
		}
	}
}
