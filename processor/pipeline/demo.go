package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/processor/send"
	"github.com/portalmail/portalmail/processor/send/mailgunfake"
	"github.com/portalmail/portalmail/processor/simulate"
	"github.com/portalmail/portalmail/processor/stream"
	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/portalmail/portalmail/state"
)

// DemoOptions are the demo's inputs.
type DemoOptions struct {
	Input []byte
	Until time.Time
	Log   *slog.Logger
	// Out receives a line per email sent (nil: discarded).
	Out io.Writer
	// StatePrefix isolates the demo's Redis keys (default "pm").
	StatePrefix string
}

// DemoSummary counts what the demo did.
type DemoSummary struct {
	Records, Redelivered, RedeliveredJobs int
	Jobs, Sent, DeadLettered, Duplicates  int
	Took                                  time.Duration
}

// demoClock is the demo's simulated time: it jumps from event to event (the
// next record, the next due timer), each jump waiting for the process stage
// to have run at that time, so a year passes in seconds and every timer fires
// on its day, as in `portalmail simulate`.
type demoClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *demoClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *demoClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}

// Demo runs the whole pipeline on embedded parts — Kafka (kfake), a schema
// registry (srfake), Redis (miniredis) and a Mailgun-compatible endpoint —
// all reached over loopback by the production stages: it feeds the input at
// its own pace on an accelerated clock, lets timers fire up to Until, then
// redelivers every CDC record and a few jobs to show that nothing is sent twice.
func Demo(ctx context.Context, env *Embedded, o DemoOptions) (DemoSummary, error) {
	start := time.Now()
	var sum DemoSummary
	recs, err := readRecords(o.Input)
	if err != nil {
		return sum, err
	}
	if len(recs) == 0 {
		return sum, errors.New("no records in the input")
	}
	clock := &demoClock{now: recordTime(recs[0]).Add(-time.Minute)}

	var jobs, dead, sent, dups, consumed, loops atomic.Int64
	if o.Out == nil {
		o.Out = io.Discard
	}
	out := &demoPrinter{w: o.Out}
	store := state.New(env.Redis, state.Options{Prefix: o.StatePrefix})
	proc, eng, err := NewProcess(ProcessDeps{
		Engine: processor.Config{Links: map[catalog.Site]string{
			catalog.SitePortal: "https://portal.pexip.example", catalog.SiteService: "https://service.pexip.example",
			catalog.SiteAnalytics: "https://analytics.pexip.example"}},
		Store: store, Serde: env.Serde, Schemas: stream.RegistrySchemas{Client: env.SR}, Log: o.Log,
		Stream: stream.ProcessConfig{Group: "portalmail-process", TransactionalID: "portalmail-demo-process",
			JobsTopic: JobsTopic, DLQTopic: DLQTopic, Tick: 10 * time.Millisecond, Now: clock.Now,
			ClientOpts: []kgo.Opt{kgo.SeedBrokers(env.Brokers()...)},
			OnBatch: func(s stream.BatchStats) {
				jobs.Add(int64(s.Jobs))
				dead.Add(int64(s.DeadLetters))
				consumed.Add(int64(s.Records))
				loops.Add(1)
			}},
	})
	if err != nil {
		return sum, err
	}
	defer proc.Close()
	mg, err := send.NewMailgun(send.MailgunConfig{Domain: "mail.portalmail.example", APIKey: "demo-key", APIBase: env.Mailgun.URL()})
	if err != nil {
		return sum, err
	}
	// The date printed is the job's own time (when it fell due on the
	// simulated clock, as `simulate` prints it), not when the fake Mailgun
	// received it: the clock may have stepped on by then.
	var dueMu sync.Mutex
	due := map[string]time.Time{}
	mailer := send.MailerFunc(func(ctx context.Context, j schemas.EmailJob) (string, error) {
		dueMu.Lock()
		due[j.Key] = j.CreatedAt
		dueMu.Unlock()
		return mg.Send(ctx, j)
	})
	dueOf := func(key string) time.Time {
		dueMu.Lock()
		defer dueMu.Unlock()
		return due[key]
	}
	snd, err := NewSend(SendDeps{Mailer: mailer, Store: store, Serde: env.Serde,
		Stream: stream.SendConfig{JobsTopic: JobsTopic, DeliveriesTopic: DeliveriesTopic, DLQTopic: DLQTopic,
			Group: "portalmail-send", Owner: "demo", ClientOpts: []kgo.Opt{kgo.SeedBrokers(env.Brokers()...)}, Logger: o.Log,
			OnDelivery: func(d schemas.EmailDelivery) {
				switch d.Outcome {
				case schemas.OutcomeSent:
					sent.Add(1)
					out.add(dueOf(d.Key), env.Mailgun.Messages(), d)
				case schemas.OutcomeDuplicateSuppressed:
					dups.Add(1)
				default:
					dead.Add(1)
				}
			}},
	})
	if err != nil {
		return sum, err
	}
	defer snd.Close()

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	stageErr := make(chan error, 2)
	for _, run := range []func(context.Context) error{proc.Run, snd.Run} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(runCtx); err != nil {
				stageErr <- err
			}
		}()
	}
	defer wg.Wait()
	defer stop()

	producer, err := kgo.NewClient(kgo.SeedBrokers(env.Brokers()...))
	if err != nil {
		return sum, err
	}
	defer producer.Close()
	var sets []string
	for _, topic := range cdc.NewDecoder(cdc.DecoderConfig{}).Topics() {
		for p := range env.Partitions {
			sets = append(sets, processor.TimerSet(topic, p))
		}
	}
	// step sets the clock to t and waits for two process loops at t or later,
	// so that every timer due by t has fired, and for the sender to have
	// handled every job emitted so far; then it prints what was sent.
	step := func(t time.Time) error {
		clock.Set(t)
		for n := loops.Load() + 2; loops.Load() < n; {
			if err := sleep(ctx, stageErr, time.Millisecond); err != nil {
				return err
			}
		}
		for sent.Load()+dups.Load() < jobs.Load() {
			if err := sleep(ctx, stageErr, time.Millisecond); err != nil {
				return err
			}
		}
		out.flush()
		return nil
	}
	// runTo fires, in order, every timer due before t, each on its due time.
	runTo := func(t time.Time) error {
		for {
			next, ok, err := eng.NextDue(ctx, sets)
			if err != nil {
				return err
			}
			if !ok || next.After(t) {
				return step(t)
			}
			if err := step(next); err != nil {
				return err
			}
		}
	}
	// Feed each record at its time, after the timers due before it.
	for i, r := range recs {
		if t := recordTime(r); !t.IsZero() {
			if err := runTo(t); err != nil {
				return sum, err
			}
		}
		if err := producer.ProduceSync(ctx, r.kafka()).FirstErr(); err != nil {
			return sum, fmt.Errorf("feed %s: %w", r.Topic, err)
		}
		for consumed.Load() < int64(i+1) {
			if err := sleep(ctx, stageErr, time.Millisecond); err != nil {
				return sum, err
			}
		}
	}
	sum.Records = len(recs)
	if err := runTo(o.Until); err != nil {
		return sum, err
	}
	settle := func() error {
		for stable := 0; stable < 30; {
			before := sent.Load() + dups.Load() + dead.Load() + jobs.Load()
			if err := sleep(ctx, stageErr, 10*time.Millisecond); err != nil {
				return err
			}
			if after := sent.Load() + dups.Load() + dead.Load() + jobs.Load(); after == before && sent.Load()+dups.Load() >= jobs.Load() {
				stable++
			} else {
				stable = 0
			}
		}
		return nil
	}
	if err := settle(); err != nil {
		return sum, err
	}
	// Debezium redelivers after a connector restart: same changes, new offsets.
	jobsBefore := jobs.Load()
	for _, r := range recs {
		if err := producer.ProduceSync(ctx, r.kafka()).FirstErr(); err != nil {
			return sum, err
		}
	}
	sum.Redelivered = len(recs)
	// A few jobs arrive at the sender twice (e.g. a replayed topic).
	if err := redeliverJobs(ctx, env.Brokers(), producer, 5); err != nil {
		return sum, err
	}
	if err := settle(); err != nil {
		return sum, err
	}
	out.flush()
	sum.RedeliveredJobs = int(jobs.Load() - jobsBefore)
	sum.Jobs, sum.Sent, sum.DeadLettered, sum.Duplicates = int(jobs.Load()), int(sent.Load()), int(dead.Load()), int(dups.Load())
	sum.Took = time.Since(start)
	return sum, nil
}

func sleep(ctx context.Context, stageErr <-chan error, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-stageErr:
		return fmt.Errorf("stage failed: %w", err)
	case <-time.After(d):
		return nil
	}
}

// redeliverJobs copies the first n job records back onto the jobs topic.
func redeliverJobs(ctx context.Context, brokers []string, producer *kgo.Client, n int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(JobsTopic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	var copies []*kgo.Record
	pollCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for len(copies) < n {
		fs := cl.PollFetches(pollCtx)
		if pollCtx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			if len(copies) < n {
				copies = append(copies, &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value})
			}
		})
	}
	return producer.ProduceSync(ctx, copies...).FirstErr()
}

// demoPrinter collects a line per email sent (the job's time, its at, as
// `simulate` prints it; type; recipient; subject) and prints them sorted each
// time the demo has caught up, so the output is the same from run to run
// whatever order the concurrent sends finished in.
type demoPrinter struct {
	mu    sync.Mutex
	w     io.Writer
	lines []string
}

// add records the line of delivery d; msgs are the messages the fake
// Mailgun received, to find its recipient and subject.
func (p *demoPrinter) add(at time.Time, msgs []mailgunfake.Message, d schemas.EmailDelivery) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Vars[send.VarKey] == d.Key {
			p.lines = append(p.lines, fmt.Sprintf("%s  %-36s → %-32s %s\n", at.UTC().Format("2006-01-02"), d.Type, msgs[i].To, msgs[i].Subject))
			return
		}
	}
}

// flush prints the lines collected since the last flush, sorted.
func (p *demoPrinter) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	sort.Strings(p.lines)
	for _, l := range p.lines {
		fmt.Fprint(p.w, l)
	}
	p.lines = p.lines[:0]
}

// demoRecord is one input line.
type demoRecord simulate.Record

func readRecords(input []byte) ([]demoRecord, error) {
	var out []demoRecord
	sc := bufio.NewScanner(bytes.NewReader(input))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r demoRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("input line %d: %w", n, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// recordTime is the record's ts_ms as the decoder reads it (plain or in the
// schema/payload wrapper), zero for tombstones and undecodable records.
func recordTime(r demoRecord) time.Time {
	rec := r.kafka()
	ch, err := demoDecoder.Decode(context.Background(), rec.Topic, 0, 0, rec.Key, rec.Value)
	if err != nil || ch.TsMs.IsZero() {
		return time.Time{}
	}
	return ch.TsMs
}

var demoDecoder = cdc.NewDecoder(cdc.DecoderConfig{})

func (r demoRecord) kafka() *kgo.Record {
	rec := &kgo.Record{Topic: r.Topic}
	if len(r.Key) > 0 && string(r.Key) != "null" {
		rec.Key = r.Key
	}
	if len(r.Value) > 0 && string(r.Value) != "null" {
		rec.Value = r.Value
	}
	return rec
}
