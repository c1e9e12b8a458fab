package stream

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/schemas/cdc"
)

// Decoder decodes one CDC record (cdc.Decoder implements it).
type Decoder interface {
	Decode(ctx context.Context, topic string, partition int32, offset int64, key, value []byte) (cdc.Change, error)
}

// JobEncoder encodes email jobs for the jobs topic (schemas.Serde implements
// it): a batch's jobs are appended to one buffer sized by the sum of their
// EncodedJobSize.
type JobEncoder interface {
	AppendEncodeJob(dst []byte, j *schemas.EmailJob) ([]byte, error)
	EncodedJobSize(j *schemas.EmailJob) int
}

// ProcessConfig configures the process stage.
type ProcessConfig struct {
	// Topics are the CDC topics to consume.
	Topics []string
	// Group is the consumer group; TransactionalID must differ per instance.
	Group           string
	TransactionalID string
	JobsTopic       string
	DLQTopic        string
	// MaxPollRecords bounds one batch (one transaction); default
	// DefaultMaxPollRecords.
	MaxPollRecords int
	// Tick is how often timers are fired when no input arrives.
	Tick time.Duration
	// RetryBackoff is the pause after a failed batch before it is retried.
	RetryBackoff time.Duration
	// Now is the clock (time.Now by default).
	Now func() time.Time
	// ClientOpts are extra franz-go options (seeds, SASL, TLS, logger...).
	ClientOpts []kgo.Opt
	Logger     *slog.Logger
	// BeforeCommit, if set, runs after the batch's records are flushed and
	// before its transaction ends (a seam for fault tests). records is the
	// number of consumed records the transaction carries (0 for a
	// transaction that only fired timers); an error aborts the transaction,
	// and the batch is consumed again.
	BeforeCommit func(records int) error
	// OnBatch, if set, is called after every committed transaction, also an
	// empty one (tests, metrics, the demo's clock).
	OnBatch func(BatchStats)
	// Metrics, if set, observes every batch (package metrics implements it).
	Metrics ProcessMetrics
	// ReferenceTopics are the topics of the rows other changes resolve
	// their recipients through (partners, companies, ...): the other topics
	// are held back until the group has consumed these up to where they
	// ended at start (see refGate), at most RefCatchUpMax (default 10m).
	ReferenceTopics []string
	RefCatchUpMax   time.Duration
	// Workers is how many goroutines decode a batch, and how many
	// concurrent Engine.Apply calls apply it (default DefaultWorkers), split by row
	// (Engine.Affinity): a row's changes always go to one worker, in order,
	// so a worker is to the engine what one instance owning those rows
	// would be, and the batch's output is still one transaction. Concurrent
	// workers overlap one's Redis round trips with another's computing.
	Workers int
}

// DefaultWorkers is the default of ProcessConfig.Workers. On 2 cores shared
// with Redis and the broker (docs/benchmarks.md), warm changes/s were
// 21.3-21.7k with 2 workers, 22.2-22.3k with 3 and 22.4-22.5k with 4: while
// one worker waits for Redis or the broker, others compute.
const DefaultWorkers = 4

// DefaultMaxPollRecords is the default bound of one batch. Each batch costs
// a transaction and a fixed chain of Redis round trips whatever its size:
// on the benchmark workload 2,000 records a batch did 18.7k → 21.2k changes/s
// warm against 1,000, the broker's CPU 4.0 → 2.5 s; with the jobs produced
// as the workers finish, 4,000 did 23.1k and 23.9k against 21.5k and 22.3k
// at 2,000, and 8,000 no more (23.7k, max RSS 468 MiB against 370–390)
// (docs/benchmarks.md).
const DefaultMaxPollRecords = 4000

// BatchStats describes one committed transaction.
type BatchStats struct {
	Records, Jobs, DeadLetters int
	Took                       time.Duration
	// Transaction is true when a Kafka transaction was committed (there was
	// input or output); false for an idle poll.
	Transaction bool
	// Changes counts the decoded changes by table and op.
	Changes map[TableOp]int
	// JobsByType counts the jobs emitted by email type.
	JobsByType map[string]int
	// DLQByClass counts the dead letters by reason class (see ReasonClass).
	DLQByClass map[string]int
	// Engine counts timer and parking work.
	Engine processor.Stats
	// Phases is where the batch's time went.
	Phases Phases
}

// Phases is the time one batch spent in each step, in the order they run.
// Record overlaps the next batch's Poll, Decode and the start of its Apply
// (its changes are stored meanwhile, processor.Hold); Wait is what is left
// of it once the next batch's changes are applied. Trim overlaps the next
// batch's Apply.
type Phases struct {
	Poll    time.Duration // waiting in PollRecords for the records
	Decode  time.Duration // decoding the reference topics' records (in parallel; the others decode during Apply)
	Wait    time.Duration // waiting for the previous batch's Record, after Apply (none when the batch had changes)
	Apply   time.Duration // Engine.ApplyAfter over the changes (the workers), with the other records' decoding
	Fire    time.Duration // Engine.Fire over the owned timer sets
	Encode  time.Duration // producing the fired timers' output, merging the outputs (the workers produce theirs in Apply)
	Produce time.Duration // flushing: waiting for the broker to take what is still buffered
	End     time.Duration // committing the transaction
	Record  time.Duration // Engine.Commit of the committed keys, acks and released intents
	Trim    time.Duration // Engine.Commit of the committed rows: their histories trimmed
}

// PhaseNames are the names of Phases' fields in order (metric labels).
var PhaseNames = []string{"poll", "decode", "wait", "apply", "fire", "encode", "produce", "end", "record", "trim"}

// Each calls f with each phase's name and duration, in order.
func (ph Phases) Each(f func(name string, d time.Duration)) {
	for i, d := range []time.Duration{ph.Poll, ph.Decode, ph.Wait, ph.Apply, ph.Fire, ph.Encode, ph.Produce, ph.End, ph.Record, ph.Trim} {
		f(PhaseNames[i], d)
	}
}

// Add returns the sum of ph and o, phase by phase.
func (ph Phases) Add(o Phases) Phases {
	return Phases{ph.Poll + o.Poll, ph.Decode + o.Decode, ph.Wait + o.Wait, ph.Apply + o.Apply, ph.Fire + o.Fire,
		ph.Encode + o.Encode, ph.Produce + o.Produce, ph.End + o.End, ph.Record + o.Record, ph.Trim + o.Trim}
}

// TableOp is a source table and a cdc.Op ("c", "u", "d", "r" or "tombstone").
type TableOp struct{ Table, Op string }

// ProcessMetrics observes the process stage. BatchCommitted sees every
// committed batch (idle polls included, with Transaction false);
// BatchAborted sees every batch that was not committed: failed is true when
// the engine or state failed (the batch is retried after a pause), false when
// Kafka aborted the transaction (rebalance or produce failure).
type ProcessMetrics interface {
	BatchCommitted(BatchStats)
	BatchAborted(records int, failed bool)
}

func (c *ProcessConfig) setDefaults() {
	if c.MaxPollRecords == 0 {
		c.MaxPollRecords = DefaultMaxPollRecords
	}
	if c.Tick == 0 {
		c.Tick = time.Second
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.RefCatchUpMax == 0 {
		c.RefCatchUpMax = 10 * time.Minute
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
}

// Validate lists every problem of the configuration.
func (c ProcessConfig) Validate() error {
	var errs []error
	if len(c.Topics) == 0 {
		errs = append(errs, errors.New("no CDC topics"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("no consumer group"))
	}
	if c.TransactionalID == "" {
		errs = append(errs, errors.New("no transactional id"))
	}
	if c.JobsTopic == "" || c.DLQTopic == "" {
		errs = append(errs, errors.New("jobs and DLQ topics are required"))
	}
	if c.Workers < 0 {
		errs = append(errs, fmt.Errorf("workers %d must not be negative", c.Workers))
	}
	return errors.Join(errs...)
}

// owned tracks the partitions this instance owns, for firing their timers.
type owned struct {
	mu   sync.Mutex
	sets map[string]map[int32]bool
}

func (o *owned) assigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sets == nil {
		o.sets = map[string]map[int32]bool{}
	}
	for t, ps := range m {
		if o.sets[t] == nil {
			o.sets[t] = map[int32]bool{}
		}
		for _, p := range ps {
			o.sets[t][p] = true
		}
	}
}

func (o *owned) revoked(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for t, ps := range m {
		for _, p := range ps {
			delete(o.sets[t], p)
		}
	}
}

func (o *owned) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sets = nil
}

func (o *owned) timerSets() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var sets []string
	for t, ps := range o.sets {
		for p := range ps {
			sets = append(sets, processor.TimerSet(t, p))
		}
	}
	sort.Strings(sets)
	return sets
}

// Process is the process stage: a consumer group over the CDC topics that
// applies each polled batch to the engine, fires the due timers of its
// partitions, and produces the jobs and dead letters in one Kafka transaction
// that also commits the consumed offsets. Emitted keys are recorded only after
// the transaction commits.
type Process struct {
	cfg   ProcessConfig
	eng   *processor.Engine
	dec   Decoder
	enc   JobEncoder
	owned *owned
	log   *slog.Logger
	opts  []kgo.Opt
	gate  *refGate // only touched by the Run goroutine
	// committing is closed when the last batch's emitted keys, acked
	// timers and released intents are recorded; trimming when its rows'
	// histories are trimmed too (nil when none is under way). Only touched
	// by the Run goroutine.
	committing, trimming chan struct{}
	// unparking are the intents the last batch released, until its record
	// (committing) is done: the next batch stores its changes meanwhile
	// and must not release those again (processor.Hold).
	unparking map[parkedIntent]bool
	isRef     map[string]bool

	// sess is replaced (renew) only by the Run goroutine, under mu; other
	// goroutines read it under mu (Client, Close).
	mu     sync.Mutex
	sess   *kgo.GroupTransactSession
	closed atomic.Bool
	// lastErr is the failure of the last batch (nil when it succeeded).
	lastErr atomic.Value // errBox
	totals  totals
}

// totals sums the committed batches of a Run, for the log line at its end.
type totals struct {
	mu                     sync.Mutex
	batches, records, jobs int
	phases                 Phases
}

func (t *totals) add(s BatchStats) {
	if !s.Transaction {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.batches++
	t.records += s.Records
	t.jobs += s.Jobs
	t.phases = t.phases.Add(s.Phases)
}

// log writes the totals: how many batches, records and jobs, and the
// seconds spent in each phase of them.
func (t *totals) log(log *slog.Logger) {
	t.mu.Lock()
	defer t.mu.Unlock()
	attrs := []any{"batches", t.batches, "records", t.records, "jobs", t.jobs}
	t.phases.Each(func(name string, d time.Duration) {
		attrs = append(attrs, name+"_s", math.Round(d.Seconds()*1000)/1000)
	})
	log.Info("process stage totals (committed transactions; seconds per phase)", attrs...)
}

// errBox holds a possibly nil error in an atomic.Value.
type errBox struct{ err error }

// Healthy reports why the stage cannot process its input right now: the
// error of the last batch, which is being retried (the schema registry or
// Redis unavailable, say); nil when the last batch went through. It is the
// stage's own readiness condition.
func (p *Process) Healthy(context.Context) error {
	if b, ok := p.lastErr.Load().(errBox); ok && b.err != nil {
		return fmt.Errorf("the last batch failed and is being retried: %w", b.err)
	}
	return nil
}

// NewProcess builds the stage; it connects lazily (Run).
func NewProcess(cfg ProcessConfig, eng *processor.Engine, dec Decoder, enc JobEncoder) (*Process, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("process config: %w", err)
	}
	p := &Process{cfg: cfg, eng: eng, dec: dec, enc: enc, owned: &owned{}, log: cfg.Logger,
		gate: newRefGate(cfg.ReferenceTopics, cfg.Topics, cfg.RefCatchUpMax, cfg.Logger), isRef: map[string]bool{}}
	for _, t := range cfg.ReferenceTopics {
		p.isRef[t] = true
	}
	opts := append([]kgo.Opt{
		kgo.TransactionalID(cfg.TransactionalID),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics...),
		kgo.RequireStableFetchOffsets(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(p.owned.assigned),
		kgo.OnPartitionsRevoked(p.owned.revoked),
		kgo.OnPartitionsLost(p.owned.revoked),
		kgo.TransactionTimeout(60 * time.Second),
		// A fetch long-polls this long at most: topics the refGate
		// resumes are fetched once the fetch in flight returns, so a cold
		// start waits for it once; an idle stage sends a few empty
		// fetches a second.
		kgo.FetchMaxWait(250 * time.Millisecond),
		// lz4 halves the broker's CPU for the jobs (JSON template data
		// compresses well) at no measurable cost to the stage
		// (docs/benchmarks.md); ClientOpts may choose another codec.
		kgo.ProducerBatchCompression(kgo.Lz4Compression()),
	}, cfg.ClientOpts...)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	p.sess, p.opts = sess, opts
	return p, nil
}

// Client returns the underlying franz-go client (it changes when Run renews
// its session).
func (p *Process) Client() *kgo.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sess.Client()
}

// Close leaves the group and closes the client; Run then returns.
func (p *Process) Close() {
	p.closed.Store(true)
	p.mu.Lock()
	sess := p.sess
	p.mu.Unlock()
	sess.Close()
}

// renew replaces a session whose transactional state is lost (e.g. the
// broker was gone for longer than the client retries) by a new one with the
// same transactional id: it fences whatever the old one left open and
// rejoins the group from the committed offsets.
func (p *Process) renew() error {
	sess, err := kgo.NewGroupTransactSession(p.opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	p.mu.Lock()
	old := p.sess
	p.sess = sess
	p.mu.Unlock()
	p.owned.reset()
	go old.Close() // may wait for a broker that is still away
	return nil
}

// Run consumes until ctx ends or Close is called. On ctx end it finishes the
// batch in hand, ends its transaction and returns nil. When the transaction
// state is lost (End failed, e.g. the broker was away too long) it renews the
// session and goes on; it returns an error only if no new client can be made.
func (p *Process) Run(ctx context.Context) error {
	defer p.totals.log(p.log)
	defer p.awaitTrim()
	p.gate.start(ctx, p.sess.Client(), p.cfg.Group, time.Now())
	for {
		if ctx.Err() != nil {
			return nil
		}
		p.gate.check(ctx, p.sess.Client(), p.cfg.Group, time.Now())
		pollCtx, cancel := context.WithTimeout(ctx, p.cfg.Tick)
		polled := time.Now()
		fetches := p.sess.PollRecords(pollCtx, p.cfg.MaxPollRecords)
		pollTook := time.Since(polled)
		cancel()
		if fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(t string, part int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				p.log.Warn("fetch error", "topic", t, "partition", part, "err", err)
			}
		})
		recs := fetches.Records()
		p.gate.polledRecords(p.sess.Client(), recs, time.Now())
		if err := p.transact(context.WithoutCancel(ctx), recs, pollTook); err != nil {
			if ctx.Err() != nil || p.closed.Load() {
				return err
			}
			p.log.Error("kafka transaction state lost; renewing the session", "err", err)
			time.Sleep(p.cfg.RetryBackoff)
			if err := p.renew(); err != nil {
				return err
			}
			p.gate.start(ctx, p.sess.Client(), p.cfg.Group, time.Now())
		}
	}
}

// transact runs one batch: it decodes and applies the records and fires the
// due timers, producing the output as it comes, and commits it with the
// consumed offsets in one transaction (none when there is neither input nor
// output). A failed batch is aborted, with whatever it produced, and its
// records are polled again after RetryBackoff.
func (p *Process) transact(ctx context.Context, recs []*kgo.Record, pollTook time.Duration) error {
	start := time.Now()
	t := p.newTxn(ctx, len(recs))
	out, stats, err := p.batch(ctx, recs, t)
	t.counts(&stats)
	stats.Phases.Poll = pollTook
	p.lastErr.Store(errBox{err})
	if err != nil {
		if p.cfg.Metrics != nil {
			p.cfg.Metrics.BatchAborted(len(recs), true)
		}
		p.log.Error("batch failed; it will be retried", "records", len(recs), "err", err)
		// Rewind to the committed offsets; what was produced is aborted.
		if err := t.abort(len(recs)); err != nil {
			return err
		}
		time.Sleep(p.cfg.RetryBackoff)
		return nil
	}
	if len(recs) > 0 || t.started() {
		committed, err := t.end(len(recs), &stats.Phases)
		if err != nil {
			if p.cfg.Metrics != nil {
				p.cfg.Metrics.BatchAborted(len(recs), false)
			}
			return err
		}
		stats.Transaction = true
		if !committed {
			if p.cfg.Metrics != nil {
				p.cfg.Metrics.BatchAborted(len(recs), false)
			}
			p.log.Info("transaction aborted (rebalance or produce failure); the batch will be re-consumed", "records", len(recs))
			return nil
		}
	}
	// The committed output is recorded in state while the next batch is
	// polled, decoded and its changes stored; the next batch resolves
	// nothing before its keys, acks and released intents are, and does not
	// release those intents again meanwhile (batch, processor.Hold). Its
	// rows' histories are trimmed behind that, while the next batch
	// applies: a trim drops only entries older than a committed change,
	// which no later change reads (docs/design.md, "The state commit
	// overlaps the next batch").
	marks, trims := out.Commit, processor.Commit{Rows: out.Commit.Rows}
	marks.Rows = nil
	done, trimmed, lastTrim := make(chan struct{}), make(chan struct{}), p.trimming
	p.committing, p.trimming, p.unparking = done, trimmed, nil
	if len(marks.Unpark) > 0 {
		p.unparking = make(map[parkedIntent]bool, len(marks.Unpark))
		for _, pk := range marks.Unpark {
			p.unparking[parkedIntent{pk.On, pk.Key}] = true
		}
	}
	go func() {
		defer close(trimmed)
		recording := time.Now()
		err := p.eng.Commit(ctx, marks)
		close(done)
		if err != nil {
			// The jobs are committed; without the markers a redelivery would
			// emit them again, and the sender's claim still refuses them.
			p.log.Error("recording committed keys failed", "err", err)
		}
		stats.Phases.Record = time.Since(recording)
		if lastTrim != nil {
			<-lastTrim // trims keep the batches' order
		}
		trimming := time.Now()
		if err := p.eng.Commit(ctx, trims); err != nil {
			// Untrimmed entries only keep older changes replayable longer.
			p.log.Error("trimming committed row histories failed", "err", err)
		}
		stats.Phases.Trim = time.Since(trimming)
		stats.Took = time.Since(start)
		p.totals.add(stats)
		if p.cfg.OnBatch != nil {
			p.cfg.OnBatch(stats)
		}
		if p.cfg.Metrics != nil {
			p.cfg.Metrics.BatchCommitted(stats)
		}
	}()
	return nil
}

// parkedIntent names one parked intent: its row and key.
type parkedIntent struct {
	on  processor.RowRef
	key string
}

// awaitCommit waits until the last committed batch's keys, acks and
// released intents are recorded in state.
func (p *Process) awaitCommit() {
	if p.committing != nil {
		<-p.committing
		p.committing, p.unparking = nil, nil
	}
}

// hold is what the batch's first changes wait for before they resolve
// anything: the last batch's record.
func (p *Process) hold() processor.Hold {
	if p.committing == nil {
		return processor.Hold{}
	}
	h := processor.Hold{Ready: p.committing}
	if unparking := p.unparking; unparking != nil {
		h.Unparking = func(pk processor.Parked) bool { return unparking[parkedIntent{pk.On, pk.Key}] }
	}
	return h
}

// awaitTrim waits until the last committed batch is wholly recorded, its
// rows' histories trimmed.
func (p *Process) awaitTrim() {
	p.awaitCommit()
	if p.trimming != nil {
		<-p.trimming
		p.trimming = nil
	}
}

// batch decodes, applies and fires, producing the output in t as it comes,
// and returns the merged output (its Commit is recorded once t commits).
//
// The records are decoded in parallel, then applied by up to Workers
// concurrent Engine.Apply calls per phase, each over the changes of some
// rows (Engine.Affinity: a row's changes, in order, all on one worker);
// each call's jobs are produced as soon as it returns. The reference
// topics' records are decoded first and their changes applied while the
// other records are decoded and their changes stored: those resolve
// nothing before the reference changes are stored (Engine.ApplyAfter).
// The due timers are fired once the changes are applied. A worker is to
// the engine what an instance owning those rows would be.
func (p *Process) batch(ctx context.Context, recs []*kgo.Record, tx *txn) (processor.Output, BatchStats, error) {
	stats := BatchStats{Records: len(recs), Changes: map[TableOp]int{}}
	now := p.cfg.Now()
	t := time.Now()
	lap := func(d *time.Duration) { // the time since the last lap, into d
		n := time.Now()
		*d, t = n.Sub(t), n
	}
	var refRecs, restRecs []*kgo.Record
	for _, r := range recs {
		tx.cause[cdc.Cause{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}] = r
		if p.isRef[r.Topic] {
			refRecs = append(refRecs, r)
		} else {
			restRecs = append(restRecs, r)
		}
	}
	// The other records are decoded while the reference changes apply.
	type decodedAll struct {
		d   []decodedRecord
		err error
	}
	restDecoded := make(chan decodedAll, 1)
	refDecoded, err := p.decodeAll(ctx, refRecs)
	go func() {
		d, err := p.decodeAll(ctx, restRecs)
		restDecoded <- decodedAll{d, err}
	}()
	lap(&stats.Phases.Decode)
	if err != nil {
		<-restDecoded
		return processor.Output{}, stats, err
	}
	refs, err := p.changes(refDecoded, refRecs, tx, &stats)
	if err != nil {
		<-restDecoded
		return processor.Output{}, stats, err
	}
	// The changes are stored while the previous batch's commit is still
	// being recorded; they resolve nothing before it is (hold). Reference
	// rows first: the changes of the other topics resolve their recipients
	// through them, and would park on one a concurrent worker has not
	// applied yet.
	hold := p.hold()
	var refsStoring sync.WaitGroup
	refsStored := make(chan struct{})
	refOuts := p.applyPhase(ctx, now, refs, hold, &refsStoring, tx)
	go func() {
		refsStoring.Wait()
		if hold.Ready != nil {
			<-hold.Ready // the rest waits for the record too
		}
		close(refsStored)
	}()
	d := <-restDecoded
	if d.err != nil {
		refOuts.wg.Wait()
		return processor.Output{}, stats, d.err
	}
	rest, err := p.changes(d.d, restRecs, tx, &stats)
	if err != nil {
		refOuts.wg.Wait()
		return processor.Output{}, stats, err
	}
	restOuts := p.applyPhase(ctx, now, rest, processor.Hold{Ready: refsStored, Unparking: hold.Unparking}, nil, tx)
	restOuts.wg.Wait()
	refOuts.wg.Wait()
	<-refsStored
	lap(&stats.Phases.Apply)
	p.awaitCommit() // done already, unless the batch had no changes
	lap(&stats.Phases.Wait)
	if err := errors.Join(append(refOuts.errs, restOuts.errs...)...); err != nil {
		return processor.Output{}, stats, err
	}
	outs := append(refOuts.got, restOuts.got...)
	fired, err := p.eng.Fire(ctx, now, p.owned.timerSets())
	if err != nil {
		return processor.Output{}, stats, err
	}
	lap(&stats.Phases.Fire)
	if fired, err = tx.emit(fired); err != nil {
		return processor.Output{}, stats, err
	}
	// The outputs' jobs and dead letters are produced: what is merged is
	// their commit and stats.
	out := processor.MergeAll(append(outs, fired)...)
	stats.Engine = out.Stats
	if e := out.Stats; e.Stale+e.Unordered+e.Unresolved > 0 {
		p.log.Warn("changes that could not be ordered or completed", "stale", e.Stale, "unordered", e.Unordered,
			"unavailable_unresolved", e.Unresolved, "hint", "portalmail explain shows a row's history positions")
	}
	lap(&stats.Phases.Encode)
	return out, stats, nil
}

// changes dead-letters the records that did not decode and counts the
// changes of the others, which it returns in order.
func (p *Process) changes(decoded []decodedRecord, recs []*kgo.Record, tx *txn, stats *BatchStats) ([]cdc.Change, error) {
	out := make([]cdc.Change, 0, len(decoded))
	for i, d := range decoded {
		r := recs[i]
		if d.err != nil {
			p.log.Warn("dead-lettering undecodable record", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", d.err)
			dl := DeadLetterRecord(p.cfg.DLQTopic, "process", d.err.Error(), r.Topic, r.Partition, r.Offset, r.Key, r.Value)
			if err := tx.deadLetter(dl, ClassUndecodable); err != nil {
				return nil, err
			}
			continue
		}
		if d.ch.Op != cdc.OpIgnore {
			stats.Changes[TableOp{d.ch.Table, string(d.ch.Op)}]++
		}
		out = append(out, d.ch)
	}
	return out, nil
}

// phase is the Engine calls of one phase of a batch under way: wait for wg,
// then got and errs hold one output and error per call.
type phase struct {
	wg   sync.WaitGroup
	got  []processor.Output
	errs []error
}

// applyPhase starts the Engine calls over changes, split across workers by
// row (splitRows), each holding as h says (Engine.ApplyAfter) and
// producing its output in tx as it returns. With storing not nil, each
// call is added to it and done with it once its changes are stored.
func (p *Process) applyPhase(ctx context.Context, now time.Time, changes []cdc.Change, h processor.Hold, storing *sync.WaitGroup, tx *txn) *phase {
	ph := &phase{}
	if len(changes) == 0 {
		return ph
	}
	truncated := map[string]bool{}
	for _, ch := range changes {
		if ch.Op == cdc.OpTruncate {
			truncated[ch.Table] = true
		}
	}
	shares := p.splitRows(changes, truncated)
	ph.got, ph.errs = make([]processor.Output, len(shares)), make([]error, len(shares))
	for i, chs := range shares {
		ph.wg.Add(1)
		h := h
		if storing != nil {
			storing.Add(1)
			h.Stored = storing.Done
		}
		go func() {
			defer ph.wg.Done()
			if ph.got[i], ph.errs[i] = p.eng.ApplyAfter(ctx, now, chs, h); ph.errs[i] == nil {
				ph.got[i], ph.errs[i] = tx.emit(ph.got[i])
			}
		}()
	}
	return ph
}

// decodedRecord is one record decoded: its change, or why it could not be.
type decodedRecord struct {
	ch  cdc.Change
	err error // cdc.ErrUndecodable: dead-lettered
}

// decodeAll decodes recs, in up to Workers goroutines over contiguous
// runs. An error that is not the record's fault (the schema registry is
// down) fails the batch: nothing is dead-lettered.
func (p *Process) decodeAll(ctx context.Context, recs []*kgo.Record) ([]decodedRecord, error) {
	out := make([]decodedRecord, len(recs))
	n := max(1, min(p.cfg.Workers, len(recs)/64)) // small batches: one goroutine
	errs := make([]error, n)
	var wg sync.WaitGroup
	for w := range n {
		lo, hi := w*len(recs)/n, (w+1)*len(recs)/n
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				r := recs[i]
				ch, err := p.dec.Decode(ctx, r.Topic, r.Partition, r.Offset, r.Key, r.Value)
				if err != nil && !errors.Is(err, cdc.ErrUndecodable) {
					errs[w] = err
					return
				}
				out[i] = decodedRecord{ch, err}
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// minShare is the fewest changes splitRows gives a worker: each share pays
// an Engine call's chain of Redis round trips (apply, reads, keys, writes)
// whatever its size, so a small batch (a stream at a few thousand changes
// a second) is applied by one or two workers, not by four shares of a few
// dozen changes (docs/benchmarks.md).
const minShare = 250

// splitRows splits changes into at most Workers shares by their affinity
// (Engine.Affinity), each share keeping the changes' order, and each of at
// least about minShare changes.
func (p *Process) splitRows(changes []cdc.Change, truncated map[string]bool) [][]cdc.Change {
	n := min(p.cfg.Workers, len(changes)/minShare)
	if n <= 1 {
		return [][]cdc.Change{changes}
	}
	// Each change's share first, then every share cut from one array of
	// the batch's size: no share grows by copying.
	share := make([]int, len(changes))
	sizes := make([]int, n)
	for i, ch := range changes {
		h := maphash.String(affinitySeed, p.eng.Affinity(ch, truncated[ch.Table]))
		share[i] = int(h % uint64(n))
		sizes[share[i]]++
	}
	all := make([]cdc.Change, 0, len(changes))
	shares := make([][]cdc.Change, n)
	for s, size := range sizes {
		shares[s] = all[len(all) : len(all) : len(all)+size]
		all = all[:len(all)+size]
	}
	for i, ch := range changes {
		shares[share[i]] = append(shares[share[i]], ch)
	}
	out := shares[:0]
	for _, s := range shares {
		if len(s) > 0 {
			out = append(out, s)
		}
	}
	return out
}

var affinitySeed = maphash.MakeSeed()
