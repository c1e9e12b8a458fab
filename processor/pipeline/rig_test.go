package pipeline_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/mail"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/processor/pipeline"
	"github.com/portalmail/portalmail/processor/send"
	"github.com/portalmail/portalmail/processor/stream"
	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/portalmail/portalmail/state"
)

// rig is a whole pipeline over TCP: Kafka, schema registry (srfake), the
// Mailgun HTTP fake, and Redis — the real redis-server at REDIS_URL when set
// (as in CI), else miniredis. Kafka is the real broker at KAFKA_BROKERS when
// set (as in CI), else kfake.
//
// On a real broker every test gets its own topics, created with the
// partitions it asks for and deleted afterwards: the CDC topics under the
// prefixes "<id>portal" and "<id>service", the output topics "<id>.<name>";
// its own consumer groups and transactional ids. The tests keep naming the
// default topics: produce and topic map them (cdcTopic, outTopic).
type rig struct {
	t       testing.TB
	env     *pipeline.Embedded
	store   *state.Store
	prefix  string
	brokers []string
	// id is "" on kfake (the default topic names), else the test's own
	// topic and group prefix.
	id       string
	now      atomic.Int64 // unix ms of the stages' clock
	producer *kgo.Client
	lsn      int64

	mu         sync.Mutex
	deliveries []schemas.EmailDelivery
	jobs       atomic.Int64
	dead       atomic.Int64
	loops      atomic.Int64

	// log is the stages' logger (franz-go's included); what it wrote is
	// printed when the test fails.
	log *slog.Logger
}

// logBuffer keeps the stages' logs of one test (safe for concurrent use).
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	if len(s) > n {
		s = "...\n" + s[len(s)-n:]
	}
	return s
}

var t0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

// quiet drops the stages' logs (set PORTALMAIL_TEST_LOGS=1 to see them).
var quiet = func() *slog.Logger {
	if os.Getenv("PORTALMAIL_TEST_LOGS") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}()

// newEmbeddedRig is a rig on kfake even when KAFKA_BROKERS is set, for tests
// that drive the embedded environment themselves (pipeline.Demo).
func newEmbeddedRig(t testing.TB, partitions int32) *rig {
	t.Helper()
	return newRigOn(t, partitions, nil)
}

func newRig(t testing.TB, partitions int32) *rig {
	t.Helper()
	var brokers []string
	if v := os.Getenv("KAFKA_BROKERS"); v != "" {
		brokers = strings.Split(v, ",")
	}
	return newRigOn(t, partitions, brokers)
}

func newRigOn(t testing.TB, partitions int32, brokers []string) *rig {
	t.Helper()
	ctx := context.Background()
	var rc redis.UniversalClient
	if url := os.Getenv("REDIS_URL"); url != "" {
		var err error
		if rc, err = state.Open(ctx, url); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rc.Close() })
	}
	env, err := pipeline.StartEmbedded(ctx, pipeline.EmbeddedOptions{Partitions: partitions, Redis: rc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	r := &rig{t: t, env: env, prefix: "it-" + hex.EncodeToString(b), lsn: 1000, brokers: env.Brokers()}
	logs := &logBuffer{}
	var w io.Writer = logs
	if os.Getenv("PORTALMAIL_TEST_LOGS") != "" {
		w = io.MultiWriter(logs, os.Stderr)
	}
	r.log = slog.New(slog.NewTextHandler(w, nil))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stage logs:\n%s", logs.tail(16000))
		}
	})
	r.store = state.New(env.Redis, state.Options{Prefix: r.prefix})
	r.now.Store(t0.UnixMilli())
	if len(brokers) > 0 {
		r.brokers = brokers
		r.id = "t" + hex.EncodeToString(b)
		r.createTopics(partitions)
	}
	if r.producer, err = kgo.NewClient(kgo.SeedBrokers(r.brokers...)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.producer.Close)
	if rc != nil {
		t.Cleanup(func() {
			iter := rc.Scan(ctx, 0, r.prefix+":*", 1000).Iterator()
			for iter.Next(ctx) {
				rc.Unlink(ctx, iter.Val())
			}
		})
	}
	return r
}

// createTopics creates the test's own topics on the real broker and deletes
// them when the test ends.
func (r *rig) createTopics(partitions int32) {
	r.t.Helper()
	topics := append(r.decoder().Topics(), r.outTopic(pipeline.JobsTopic), r.outTopic(pipeline.DeliveriesTopic), r.outTopic(pipeline.DLQTopic))
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...))
	if err != nil {
		r.t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := adm.CreateTopics(ctx, partitions, 1, nil, topics...)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		cl.Close()
		r.t.Fatalf("create topics on %v: %v", r.brokers, err)
	}
	r.t.Cleanup(func() {
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, topics...)
	})
}

func (r *rig) decoder() *cdc.Decoder {
	if r.id == "" {
		return cdc.NewDecoder(cdc.DecoderConfig{})
	}
	return cdc.NewDecoder(cdc.DecoderConfig{PortalPrefix: r.id + "portal", ServicePrefix: r.id + "service"})
}

// cdcTopic is the test's name of a default CDC topic ("portal.public.x").
func (r *rig) cdcTopic(name string) string {
	if r.id == "" || strings.HasPrefix(name, r.id) {
		return name
	}
	if strings.HasPrefix(name, "portal.") || strings.HasPrefix(name, "service.") {
		return r.id + name
	}
	return name
}

// outTopic is the test's name of a default output topic.
func (r *rig) outTopic(name string) string {
	if r.id == "" || strings.HasPrefix(name, r.id) {
		return name
	}
	switch name {
	case pipeline.JobsTopic, pipeline.DeliveriesTopic, pipeline.DLQTopic:
		return r.id + "." + name
	}
	return name
}

func (r *rig) topicName(name string) string { return r.outTopic(r.cdcTopic(name)) }

// name is a group or transactional id, unique to the test on a real broker.
func (r *rig) name(n string) string {
	if r.id == "" {
		return n
	}
	return r.id + "-" + n
}

func (r *rig) clock() time.Time { return time.UnixMilli(r.now.Load()).UTC() }

// stage is a running process or send instance.
type stage struct {
	cancel context.CancelFunc
	done   chan error
	close  func()
}

func (s *stage) stop(t testing.TB) {
	t.Helper()
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		t.Fatal("stage did not stop")
	}
	s.close()
}

func run(runFn func(context.Context) error, closeFn func()) *stage {
	ctx, cancel := context.WithCancel(context.Background())
	s := &stage{cancel: cancel, done: make(chan error, 1), close: closeFn}
	go func() { s.done <- runFn(ctx) }()
	return s
}

func (r *rig) startProcess(txnID string, mutate func(*stream.ProcessConfig)) *stage {
	r.t.Helper()
	return r.startProcessOn(r.store, txnID, mutate)
}

// startProcessOn is startProcess with the engine on st (r.store, wrapped).
func (r *rig) startProcessOn(st processor.State, txnID string, mutate func(*stream.ProcessConfig)) *stage {
	r.t.Helper()
	cfg := stream.ProcessConfig{
		Group: r.name("portalmail-process"), TransactionalID: r.name(txnID),
		JobsTopic: r.outTopic(pipeline.JobsTopic), DLQTopic: r.outTopic(pipeline.DLQTopic),
		Tick: 20 * time.Millisecond, RetryBackoff: 50 * time.Millisecond, Now: r.clock, Logger: r.log,
		ClientOpts: []kgo.Opt{kgo.SeedBrokers(r.brokers...), kgo.WithLogger(kslog.New(r.log))},
		OnBatch: func(s stream.BatchStats) {
			r.jobs.Add(int64(s.Jobs))
			r.dead.Add(int64(s.DeadLetters))
			r.loops.Add(1)
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	p, _, err := pipeline.NewProcess(pipeline.ProcessDeps{
		Engine: processor.Config{Links: map[catalog.Site]string{catalog.SitePortal: "https://portal.test",
			catalog.SiteService: "https://service.test", catalog.SiteAnalytics: "https://analytics.test"}},
		Store: st, Serde: r.env.Serde, Stream: cfg, Schemas: stream.RegistrySchemas{Client: r.env.SR},
		PortalPrefix: r.portalPrefix(), ServicePrefix: r.servicePrefix(),
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return run(p.Run, p.Close)
}

func (r *rig) portalPrefix() string {
	if r.id == "" {
		return ""
	}
	return r.id + "portal"
}

func (r *rig) servicePrefix() string {
	if r.id == "" {
		return ""
	}
	return r.id + "service"
}

func (r *rig) mailgun() send.Mailer {
	m, err := send.NewMailgun(send.MailgunConfig{Domain: "mail.test", APIKey: "key-test", APIBase: r.env.Mailgun.URL(), Timeout: 2 * time.Second})
	if err != nil {
		r.t.Fatal(err)
	}
	return m
}

func (r *rig) startSend(owner string, m send.Mailer, mutate func(*stream.SendConfig)) *stage {
	r.t.Helper()
	cfg := stream.SendConfig{
		JobsTopic: r.outTopic(pipeline.JobsTopic), DeliveriesTopic: r.outTopic(pipeline.DeliveriesTopic), DLQTopic: r.outTopic(pipeline.DLQTopic),
		Group: r.name("portalmail-send"), Owner: owner, ClaimLease: 2 * time.Second, Logger: r.log,
		Backoff:    send.Backoff{Base: time.Millisecond, Max: 10 * time.Millisecond},
		ClientOpts: []kgo.Opt{kgo.SeedBrokers(r.brokers...), kgo.WithLogger(kslog.New(r.log))},
		OnDelivery: func(d schemas.EmailDelivery) {
			r.mu.Lock()
			r.deliveries = append(r.deliveries, d)
			r.mu.Unlock()
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	if m == nil {
		m = r.mailgun()
	}
	// As `portalmail send` has it: the claims and marks of its workers coalesced.
	store := state.New(r.env.Redis, state.Options{Prefix: r.prefix, Coalesce: true})
	s, err := pipeline.NewSend(pipeline.SendDeps{Mailer: m, Store: store, Serde: r.env.Serde, Stream: cfg})
	if err != nil {
		r.t.Fatal(err)
	}
	return run(s.Run, s.Close)
}

// row builds a Debezium JSON record at the next source position.
func (r *rig) row(topic, op string, row map[string]any) *kgo.Record {
	r.lsn += 10
	ts := r.clock().UnixMilli()
	v := map[string]any{"before": nil, "after": row, "op": op, "ts_ms": ts,
		"source": map[string]any{"connector": "postgresql", "lsn": r.lsn, "ts_ms": ts}}
	val, _ := json.Marshal(v)
	key, _ := json.Marshal(map[string]any{"id": row["id"]})
	return &kgo.Record{Topic: topic, Key: key, Value: val}
}

func (r *rig) produce(recs ...*kgo.Record) {
	r.t.Helper()
	for _, rec := range recs {
		rec.Topic = r.topicName(rec.Topic)
	}
	if err := r.producer.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		r.t.Fatal(err)
	}
}

// base are the reference rows: partners p-direct (opted into "service") and
// p-resell, companies c-acme (p-direct) and c-globex (p-resell).
func (r *rig) base() []*kgo.Record {
	return []*kgo.Record{
		r.row("portal.public.partners", "r", map[string]any{"id": "p-direct", "name": "Direct", "type": "direct",
			"contact_email": "partner@direct.test", "optional_notifications": []string{"service"}}),
		r.row("portal.public.partners", "r", map[string]any{"id": "p-resell", "name": "Resell", "type": "reseller",
			"distributor_id": "p-dist", "contact_email": "partner@resell.test"}),
		r.row("portal.public.companies", "r", map[string]any{"id": "c-acme", "partner_id": "p-direct", "name": "Acme",
			"status": "active", "contact_email": "it@acme.test"}),
		r.row("portal.public.companies", "r", map[string]any{"id": "c-globex", "partner_id": "p-resell", "name": "Globex",
			"status": "active", "contact_email": "ops@globex.test"}),
	}
}

// endpoints are n new endpoints of c-acme: 2 emails each (partner, customer).
func (r *rig) endpoints(from, n int) []*kgo.Record {
	var out []*kgo.Record
	for i := from; i < from+n; i++ {
		out = append(out, r.row("service.public.endpoints", "c", map[string]any{"id": "ep-" + itoa(i),
			"company_id": "c-acme", "name": "Room " + itoa(i), "enabled": true}))
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }

// sent are the messages Mailgun accepted, as sorted "type to subject" lines.
func (r *rig) sent() []string {
	var out []string
	for _, m := range r.env.Mailgun.Messages() {
		to := m.To
		if a, err := mail.ParseAddress(m.To); err == nil {
			to = a.Address
		}
		out = append(out, m.Vars[send.VarEmailType]+" "+to+" "+m.Subject)
	}
	sort.Strings(out)
	return out
}

// sentKeys counts the messages per job key.
func (r *rig) sentKeys() map[string]int {
	out := map[string]int{}
	for _, m := range r.env.Mailgun.Messages() {
		out[m.Vars[send.VarKey]]++
	}
	return out
}

func (r *rig) outcomes() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, d := range r.deliveries {
		out[d.Outcome]++
	}
	return out
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settle waits until the pipeline has demonstrably handled everything
// produced so far, before a test asserts that nothing more happens: the
// process group's committed offsets reach the end of every CDC topic, the
// process stage has reported those batches, the send stage has a delivery
// record for every committed job, and then the process stage runs three
// more loops with nothing new sent. A quiet period alone proves nothing: a
// stage that had not consumed yet is quiet too.
func (r *rig) settle() {
	r.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...))
	if err != nil {
		r.t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics := r.decoder().Topics()
	consumed := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ends, err := adm.ListEndOffsets(ctx, topics...)
		if err != nil {
			return false
		}
		committed, err := adm.FetchOffsets(ctx, r.name("portalmail-process"))
		if err != nil {
			return false
		}
		caughtUp := true
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset == 0 {
				return
			}
			c, ok := committed.Lookup(o.Topic, o.Partition)
			caughtUp = caughtUp && ok && c.At >= o.Offset
		})
		return caughtUp
	}
	eventually(r.t, "the process group to consume every CDC record", consumed)
	// A batch is reported (OnBatch, r.jobs) once its emitted keys are
	// recorded, after its transaction committed, and the reports come in
	// order: two more, and every committed job is counted.
	reported := r.loops.Load()
	eventually(r.t, "the process stage to report its committed batches", func() bool { return r.loops.Load() >= reported+2 })
	eventually(r.t, "a delivery record for every committed job", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return int64(len(r.deliveries)) >= r.jobs.Load()
	})
	start, requests := r.loops.Load(), r.env.Mailgun.Requests()
	eventually(r.t, "three more process loops", func() bool { return r.loops.Load() >= start+3 })
	if n := r.env.Mailgun.Requests(); n != requests {
		r.t.Fatalf("Mailgun got %d more requests after the pipeline had handled everything", n-requests)
	}
}

// exactlyOnce checks that each of want keys was sent exactly once and nothing else.
func exactlyOnce(t *testing.T, r *rig, want int) {
	t.Helper()
	keys := r.sentKeys()
	for k, n := range keys {
		if n != 1 {
			t.Errorf("%s sent %d times", k, n)
		}
	}
	if len(keys) != want {
		t.Errorf("%d distinct emails sent, want %d", len(keys), want)
	}
}

// topic reads every committed record of a topic.
func (r *rig) topic(name string) []*kgo.Record {
	r.t.Helper()
	return r.records(name, kgo.ReadCommitted())
}

// topicUncommitted reads every record of a topic, those of aborted and open
// transactions too.
func (r *rig) topicUncommitted(name string) []*kgo.Record {
	r.t.Helper()
	return r.records(name, kgo.ReadUncommitted())
}

// openJobs is how many records of the jobs topic are in open transactions
// (its high watermarks past its last stable offsets); -1 when the broker
// does not say. It may be called from any goroutine.
func (r *rig) openJobs() int64 {
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...))
	if err != nil {
		return -1
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	topic := r.topicName(pipeline.JobsTopic)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return -1
	}
	stable, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return -1
	}
	var open int64
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := stable.Lookup(o.Topic, o.Partition); ok {
			open += o.Offset - s.Offset
		}
	})
	return open
}

// records reads every record of a topic at an isolation level, through to
// the ends the broker gives (the last stable offsets for read_committed, the
// high watermarks otherwise) when the read starts. Control records (the
// markers that end transactions) are read too, so that a partition whose
// last record is a marker is known to be read, and left out of the result.
func (r *rig) records(name string, iso kgo.IsolationLevel) []*kgo.Record {
	r.t.Helper()
	topic := r.topicName(name)
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.ConsumeTopics(topic), kgo.KeepControlRecords(),
		kgo.FetchIsolationLevel(iso), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		r.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	list := adm.ListEndOffsets
	if iso == kgo.ReadCommitted() {
		list = adm.ListCommittedOffsets
	}
	ends, err := list(ctx, topic)
	if err != nil {
		r.t.Fatalf("end offsets of %s: %v", topic, err)
	}
	left := map[int32]int64{} // partition → its end, not read to yet
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	var out []*kgo.Record
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			r.t.Fatalf("reading %s: %d partitions not read to their end in 30s (%v)", topic, len(left), left)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if end, ok := left[rec.Partition]; ok && rec.Offset+1 >= end {
				delete(left, rec.Partition)
			}
			if !rec.Attrs.IsControl() {
				out = append(out, rec)
			}
		})
	}
	return out
}
