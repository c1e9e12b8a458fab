package pipeline_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/linkedin/goavro/v2"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/portalmail/portalmail/examples"
	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/processor/pipeline"
	"github.com/portalmail/portalmail/processor/send"
	"github.com/portalmail/portalmail/processor/simulate"
	"github.com/portalmail/portalmail/processor/stream"
	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/portalmail/portalmail/state"
	"github.com/portalmail/portalmail/templates"
)

// TestSampleEndToEnd runs the bundled sample (every section of the catalog,
// all 47 types) through Kafka, both stages and the Mailgun fake, and checks
// that exactly the emails `portalmail simulate` predicts were sent, that the
// jobs on the topic decode with the schema registered for them, and that
// every job has its delivery record.
func TestSampleEndToEnd(t *testing.T) {
	until := time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)
	want := simulated(t, until)
	r := newEmbeddedRig(t, 3) // pipeline.Demo drives the embedded kfake itself
	sum, err := pipeline.Demo(context.Background(), r.env, pipeline.DemoOptions{Input: examples.Sample, Until: until, StatePrefix: r.prefix, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.sent(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("sent %d emails, simulate predicts %d:\n%s", len(got), len(want), diff(want, got))
	}
	if sum.Duplicates != 5 || sum.RedeliveredJobs != 0 || sum.DeadLettered != 2 {
		t.Fatalf("summary %+v", sum)
	}
	// The jobs topic holds Avro in the Confluent wire format, readable with
	// the schema the registry returns for the id in each record.
	jobs := r.topic(pipeline.JobsTopic)
	if len(jobs) != sum.Jobs+5 {
		t.Fatalf("%d job records, want %d", len(jobs), sum.Jobs+5)
	}
	// The process stage's batches are lz4 (compression type 3); the demo's
	// 5 redelivered copies are its own producer's.
	byCodec := map[uint8]int{}
	for _, rec := range jobs {
		byCodec[rec.Attrs.CompressionType()]++
	}
	if byCodec[3] != sum.Jobs {
		t.Fatalf("job records by compression type %v, want %d lz4 (3)", byCodec, sum.Jobs)
	}
	codecs := map[int]*goavro.Codec{}
	for _, rec := range jobs {
		if len(rec.Value) < 5 || rec.Value[0] != 0 {
			t.Fatalf("job record without the Confluent header: % x", rec.Value[:min(5, len(rec.Value))])
		}
		id := int(binary.BigEndian.Uint32(rec.Value[1:5]))
		codec := codecs[id]
		if codec == nil {
			sch, err := r.env.SR.SchemaByID(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if codec, err = goavro.NewCodec(sch.Schema); err != nil {
				t.Fatal(err)
			}
			codecs[id] = codec
		}
		native, rest, err := codec.NativeFromBinary(rec.Value[5:])
		if err != nil || len(rest) != 0 {
			t.Fatalf("job does not decode with registered schema %d: %v", id, err)
		}
		if m := native.(map[string]any); m["subject"] == "" || m["idempotency_key"] == "" && m["key"] == "" {
			t.Fatalf("decoded job %v", m)
		}
	}
	deliveries := r.topic(pipeline.DeliveriesTopic)
	outcomes := map[string]int{}
	for _, rec := range deliveries {
		d, err := r.env.Serde.DecodeDelivery(rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		outcomes[d.Outcome]++
	}
	if outcomes[schemas.OutcomeSent] != len(want) || outcomes[schemas.OutcomeDuplicateSuppressed] != 5 || len(outcomes) != 2 {
		t.Fatalf("delivery outcomes %v, want %d sent and 5 duplicates", outcomes, len(want))
	}
}

// simulated is what `portalmail simulate` says the sample sends.
func simulated(t *testing.T, until time.Time) []string {
	t.Helper()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rc.Close()
	tmpl, err := templates.Parse()
	if err != nil {
		t.Fatal(err)
	}
	eng, err := processor.New(catalog.Default(), state.New(rc, state.Options{}), tmpl, processor.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	err = simulate.Run(context.Background(), eng, cdc.NewDecoder(cdc.DecoderConfig{}), bytes.NewReader(examples.Sample), until,
		simulate.Sink{Email: func(e simulate.Email) error { out = append(out, e.Type+" "+e.To+" "+e.Subject); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func diff(want, got []string) string {
	w, g := map[string]int{}, map[string]int{}
	for _, s := range want {
		w[s]++
	}
	for _, s := range got {
		g[s]++
	}
	var b strings.Builder
	for s, n := range w {
		if g[s] < n {
			b.WriteString("- " + s + "\n")
		}
	}
	for s, n := range g {
		if w[s] < n {
			b.WriteString("+ " + s + "\n")
		}
	}
	return b.String()
}

// TestProcessCrashMidTransaction kills a process instance between producing a
// batch's jobs and ending its transaction (its client closed, the transaction
// left open); the restarted instance, with the same transactional id, fences
// it: every email is sent exactly once.
func TestProcessCrashMidTransaction(t *testing.T) {
	r := newRig(t, 3)
	snd := r.startSend("s1", nil, nil)
	defer snd.stop(t)
	var crash atomic.Bool
	var crashed atomic.Bool
	var p1 *stage
	p1 = r.startProcess("process-1", func(c *stream.ProcessConfig) {
		c.BeforeCommit = func(int) error {
			if crash.Load() && crashed.CompareAndSwap(false, true) {
				p1.close() // the client goes away with the transaction open
			}
			return nil
		}
	})
	r.produce(r.base()...)
	r.produce(r.endpoints(0, 10)...)
	eventually(t, "the first 20 emails", func() bool { return len(r.sentKeys()) == 20 })
	crash.Store(true)
	r.produce(r.endpoints(10, 10)...)
	eventually(t, "the crash", crashed.Load)
	select {
	case err := <-p1.done:
		t.Logf("crashed instance stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("crashed instance still running")
	}
	if n := len(r.sentKeys()); n != 20 {
		t.Fatalf("the aborted batch leaked %d emails", n-20)
	}
	p2 := r.startProcess("process-1", nil)
	defer p2.stop(t)
	eventually(t, "all 40 emails", func() bool { return len(r.sentKeys()) >= 40 })
	r.settle()
	exactlyOnce(t, r, 40)
}

// TestSendCrashMidBatch stops a send instance in the middle of a batch: some
// emails out, none of the batch's offsets committed. The instance taking over
// re-reads the batch and sends every email exactly once (the claims of the
// sent ones make them duplicates).
func TestSendCrashMidBatch(t *testing.T) {
	r := newRig(t, 3)
	p := r.startProcess("process-1", nil)
	defer p.stop(t)
	var sentN atomic.Int64
	var s1 *stage
	mg := r.mailgun()
	crashing := send.MailerFunc(func(ctx context.Context, j schemas.EmailJob) (string, error) {
		if sentN.Add(1) > 5 {
			s1.cancel() // the process is going down: later sends never reach Mailgun
			return "", &send.RetryableError{Err: errors.New("shutting down")}
		}
		return mg.Send(ctx, j)
	})
	s1 = r.startSend("s1", crashing, func(c *stream.SendConfig) { c.Concurrency = 2 })
	r.produce(r.base()...)
	r.produce(r.endpoints(0, 20)...)
	select {
	case <-s1.done:
	case <-time.After(30 * time.Second):
		t.Fatal("send instance did not stop")
	}
	s1.close()
	if n := len(r.sentKeys()); n != 5 {
		t.Fatalf("%d emails out before the crash, want 5", n)
	}
	s2 := r.startSend("s2", nil, nil)
	defer s2.stop(t)
	eventually(t, "all 40 emails", func() bool { return len(r.sentKeys()) >= 40 })
	r.settle()
	exactlyOnce(t, r, 40)
	if o := r.outcomes(); o[schemas.OutcomeDuplicateSuppressed] < 5 {
		t.Fatalf("outcomes %v: the 5 emails sent before the crash were not suppressed", o)
	}
}

// TestTwoProcessInstancesOneLeaves runs two process instances in one group
// and stops one mid-stream: its partitions move to the other, nothing is
// lost and nothing is sent twice.
func TestTwoProcessInstancesOneLeaves(t *testing.T) {
	r := newRig(t, 6)
	snd := r.startSend("s1", nil, nil)
	defer snd.stop(t)
	a := r.startProcess("process-a", nil)
	b := r.startProcess("process-b", nil)
	defer b.stop(t)
	r.produce(r.base()...)
	r.produce(r.endpoints(0, 30)...)
	eventually(t, "the first wave", func() bool { return len(r.sentKeys()) >= 60 })
	r.produce(r.endpoints(30, 30)...)
	a.stop(t) // leaves the group mid-stream
	r.produce(r.endpoints(60, 30)...)
	eventually(t, "all 180 emails", func() bool { return len(r.sentKeys()) >= 180 })
	r.settle()
	exactlyOnce(t, r, 180)
}

// TestRedeliveredChangesAtNewOffsets feeds the same CDC records twice, as
// Debezium does after a connector restart: no second email.
func TestRedeliveredChangesAtNewOffsets(t *testing.T) {
	r := newRig(t, 3)
	p := r.startProcess("process-1", nil)
	defer p.stop(t)
	s := r.startSend("s1", nil, nil)
	defer s.stop(t)
	recs := append(r.base(), r.endpoints(0, 10)...)
	r.produce(recs...)
	eventually(t, "20 emails", func() bool { return len(r.sentKeys()) == 20 })
	// The stage reports a batch (OnBatch) once its emitted keys are
	// recorded, which can be after send has mailed its jobs: the count is
	// taken once it holds them all.
	eventually(t, "the stage to report the 20 jobs", func() bool { return r.jobs.Load() >= 20 })
	jobs := r.jobs.Load()
	again := make([]*kgo.Record, len(recs))
	for i, rec := range recs {
		again[i] = &kgo.Record{Topic: rec.Topic, Key: rec.Key, Value: rec.Value}
	}
	r.produce(again...)
	r.settle()
	exactlyOnce(t, r, 20)
	if r.jobs.Load() != jobs {
		t.Fatalf("the redelivery emitted %d new jobs", r.jobs.Load()-jobs)
	}
}

// TestPoisonInputGoesToTheDLQ: undecodable records go to the DLQ with the
// reason and their origin in headers, and the good records around them are
// still mailed.
func TestPoisonInputGoesToTheDLQ(t *testing.T) {
	r := newRig(t, 1)
	p := r.startProcess("process-1", nil)
	defer p.stop(t)
	s := r.startSend("s1", nil, nil)
	defer s.stop(t)
	r.produce(r.base()...)
	unknownSchema := append([]byte{0, 0, 0, 0x03, 0xe7}, []byte("avro bytes")...)
	r.produce(r.endpoints(0, 1)...)
	r.produce(
		&kgo.Record{Topic: "service.public.endpoints", Key: []byte(`{"id":"x"}`), Value: []byte("this is not json")},
		&kgo.Record{Topic: "service.public.endpoints", Key: []byte(`{"id":"y"}`), Value: unknownSchema},
		r.row("service.public.endpoints", "c", map[string]any{"id": "ep-nocompany", "name": "No company", "enabled": true}),
	)
	r.produce(r.endpoints(1, 1)...)
	eventually(t, "the good records' emails", func() bool { return len(r.sentKeys()) == 4 })
	var dlq []*kgo.Record
	eventually(t, "3 DLQ records", func() bool { dlq = r.topic(pipeline.DLQTopic); return len(dlq) == 3 })
	for i, want := range []string{"not JSON", "unknown schema id 999", "missing required column company_id"} {
		rec := dlq[i]
		reason := stream.Header(rec, stream.HeaderReason)
		if !strings.Contains(reason, want) || stream.Header(rec, stream.HeaderTopic) != r.cdcTopic("service.public.endpoints") ||
			stream.Header(rec, stream.HeaderPartition) != "0" || stream.Header(rec, stream.HeaderOffset) == "" {
			t.Errorf("DLQ record %d: reason %q headers %v, want reason with %q", i, reason, rec.Headers, want)
		}
	}
	if !bytes.Equal(dlq[0].Value, []byte("this is not json")) {
		t.Errorf("DLQ record keeps the original value: %q", dlq[0].Value)
	}
}

// mailgunScenario feeds one calling domain of c-globex: one email, to its
// partner (the customer has not opted in).
func mailgunScenario(t *testing.T, r *rig, mutate func(*stream.SendConfig)) (stop func()) {
	p := r.startProcess("process-1", nil)
	s := r.startSend("s1", nil, mutate)
	r.produce(r.base()...)
	r.produce(r.row("service.public.domains", "c", map[string]any{"id": "d1", "company_id": "c-globex", "name": "video.globex.test", "kind": "calling"}))
	return func() { s.stop(t); p.stop(t) }
}

func TestMailgunOutageIsRetriedAndSentOnce(t *testing.T) {
	r := newRig(t, 1)
	r.env.Mailgun.FailNext(5, http.StatusInternalServerError, `{"message":"oops"}`, nil)
	stop := mailgunScenario(t, r, nil)
	defer stop()
	eventually(t, "the email", func() bool { return len(r.sentKeys()) == 1 })
	r.settle()
	exactlyOnce(t, r, 1)
	if n := r.env.Mailgun.Requests(); n != 6 {
		t.Fatalf("%d requests, want 5 failures and 1 success", n)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.deliveries) != 1 || r.deliveries[0].Outcome != schemas.OutcomeSent || r.deliveries[0].Attempts != 6 {
		t.Fatalf("deliveries %+v", r.deliveries)
	}
}

func TestMailgunPermanentFailureIsDeadLettered(t *testing.T) {
	r := newRig(t, 1)
	r.env.Mailgun.FailNext(1, http.StatusBadRequest, `{"message":"'to' parameter is not a valid address"}`, nil)
	stop := mailgunScenario(t, r, nil)
	defer stop()
	eventually(t, "the delivery record", func() bool { return r.outcomes()[schemas.OutcomeFailedPermanent] == 1 })
	var dlq []*kgo.Record
	eventually(t, "the DLQ record", func() bool { dlq = r.topic(pipeline.DLQTopic); return len(dlq) == 1 })
	if reason := stream.Header(dlq[0], stream.HeaderReason); !strings.Contains(reason, "400") ||
		stream.Header(dlq[0], stream.HeaderStage) != "send" {
		t.Fatalf("DLQ reason %q", reason)
	}
	job, err := r.env.Serde.DecodeJob(dlq[0].Value)
	if err != nil || job.Type != "service.calling_domain_created" {
		t.Fatalf("the DLQ record holds the job: %v %v", job.Type, err)
	}
	r.settle()
	if n := r.env.Mailgun.Requests(); n != 1 {
		t.Fatalf("a permanent failure was retried: %d requests", n)
	}
}

func TestMailgunRateLimitIsWaitedFor(t *testing.T) {
	r := newRig(t, 1)
	// 60 s away: on a real broker the stages take seconds to join their
	// groups before the first request, so the wait left is less than that.
	reset := time.Now().Add(60 * time.Second).Unix()
	r.env.Mailgun.FailNext(1, http.StatusTooManyRequests, `{"message":"rate limited"}`,
		http.Header{"X-Ratelimit-Reset": []string{itoa(int(reset))}})
	var waited atomic.Int64
	stop := mailgunScenario(t, r, func(c *stream.SendConfig) {
		c.Sleep = func(ctx context.Context, d time.Duration) error {
			waited.Add(int64(d))
			return ctx.Err()
		}
	})
	defer stop()
	eventually(t, "the email", func() bool { return len(r.sentKeys()) == 1 })
	if w := time.Duration(waited.Load()); w < 30*time.Second {
		t.Fatalf("waited %s before retrying, the reset was 60 s away", w)
	}
	r.settle()
	exactlyOnce(t, r, 1)
}

// TestAvroCDCThroughTheRegistry feeds a Debezium record in Avro (Confluent
// wire format, schema registered in the registry the way Debezium's
// AvroConverter does) between two JSON ones: the decoder tells them apart
// per record and all three mail.
func TestAvroCDCThroughTheRegistry(t *testing.T) {
	r := newRig(t, 1)
	p := r.startProcess("process-1", nil)
	defer p.stop(t)
	s := r.startSend("s1", nil, nil)
	defer s.stop(t)
	const schema = `{"type":"record","name":"Envelope","namespace":"service.public.endpoints","fields":[
	 {"name":"before","type":["null",{"type":"record","name":"Value","fields":[
	   {"name":"id","type":"string"},{"name":"company_id","type":["null","string"],"default":null},
	   {"name":"name","type":["null","string"],"default":null},{"name":"enabled","type":["null","boolean"],"default":null}],
	   "connect.name":"service.public.endpoints.Value"}],"default":null},
	 {"name":"after","type":["null","Value"],"default":null},
	 {"name":"source","type":{"type":"record","name":"Source","namespace":"io.debezium.connector.postgresql","fields":[
	   {"name":"lsn","type":["null","long"],"default":null},{"name":"ts_ms","type":"long"}]}},
	 {"name":"op","type":"string"},{"name":"ts_ms","type":["null","long"],"default":null}],
	 "connect.name":"service.public.endpoints.Envelope"}`
	id, _, err := r.env.Registry.RegisterSchema("service.public.endpoints-value", srSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	codec, err := goavro.NewCodec(schema)
	if err != nil {
		t.Fatal(err)
	}
	r.lsn += 10
	body, err := codec.BinaryFromNative(nil, map[string]any{
		"before": nil,
		"after": map[string]any{"service.public.endpoints.Value": map[string]any{
			"id": "ep-avro", "company_id": map[string]any{"string": "c-acme"},
			"name": map[string]any{"string": "Avro Room"}, "enabled": map[string]any{"boolean": true}}},
		"source": map[string]any{"lsn": map[string]any{"long": r.lsn}, "ts_ms": t0.UnixMilli()},
		"op":     "c", "ts_ms": map[string]any{"long": t0.UnixMilli()},
	})
	if err != nil {
		t.Fatal(err)
	}
	framed := binary.BigEndian.AppendUint32([]byte{0}, uint32(id))
	r.produce(r.base()...)
	r.produce(r.endpoints(0, 1)...)
	r.produce(&kgo.Record{Topic: "service.public.endpoints", Key: []byte(`{"id":"ep-avro"}`), Value: append(framed, body...)})
	r.produce(r.endpoints(1, 1)...)
	eventually(t, "6 emails", func() bool { return len(r.sentKeys()) == 6 })
	if sent := strings.Join(r.sent(), "\n"); !strings.Contains(sent, "service.endpoint_enabled it@acme.test") {
		t.Fatalf("sent:\n%s", sent)
	}
	found := false
	for _, m := range r.env.Mailgun.Messages() {
		found = found || strings.Contains(m.Text, "Avro Room")
	}
	if !found {
		t.Fatal("no email about the Avro-encoded endpoint")
	}
	r.settle()
	exactlyOnce(t, r, 6)
}

func srSchema(s string) sr.Schema { return sr.Schema{Schema: s, Type: sr.TypeAvro} }

// failCounter is a stream.ProcessMetrics counting failed batches.
type failCounter struct{ failed atomic.Int64 }

func (f *failCounter) BatchCommitted(stream.BatchStats) {}
func (f *failCounter) BatchAborted(_ int, failed bool) {
	if failed {
		f.failed.Add(1)
	}
}

// TestSchemaRegistryOutageDelaysAvroCDC: an Avro record whose schema is not
// cached arrives while the registry fails every request. It is not
// dead-lettered: the batch is retried until the registry answers, then the
// email goes out once.
func TestSchemaRegistryOutageDelaysAvroCDC(t *testing.T) {
	r := newRig(t, 1)
	const schema = `{"type":"record","name":"Envelope","namespace":"service.public.domains","fields":[
	 {"name":"before","type":["null",{"type":"record","name":"Value","fields":[{"name":"id","type":"string"},
	   {"name":"company_id","type":"string"},{"name":"name","type":"string"},{"name":"kind","type":"string"}]}],"default":null},
	 {"name":"after","type":["null","Value"],"default":null},
	 {"name":"source","type":{"type":"record","name":"Source","fields":[{"name":"lsn","type":"long"},{"name":"ts_ms","type":"long"}]}},
	 {"name":"op","type":"string"},{"name":"ts_ms","type":"long"}]}`
	id, _, err := r.env.Registry.RegisterSchema("service.public.domains-value", srSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	codec, err := goavro.NewCodec(schema)
	if err != nil {
		t.Fatal(err)
	}
	body, err := codec.BinaryFromNative(nil, map[string]any{"before": nil,
		"after":  map[string]any{"service.public.domains.Value": map[string]any{"id": "d1", "company_id": "c-globex", "name": "video.globex.test", "kind": "calling"}},
		"source": map[string]any{"lsn": int64(90_000), "ts_ms": t0.UnixMilli()}, "op": "c", "ts_ms": t0.UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	down.Store(true)
	r.env.Registry.Intercept(func(w http.ResponseWriter, req *http.Request) bool {
		if !down.Load() || !strings.HasPrefix(req.URL.Path, "/schemas/ids/") {
			return false
		}
		http.Error(w, `{"error_code":50003,"message":"unavailable"}`, http.StatusServiceUnavailable)
		return true
	})
	fails := &failCounter{}
	p := r.startProcess("process-1", func(c *stream.ProcessConfig) { c.Metrics = fails })
	defer p.stop(t)
	s := r.startSend("s1", nil, nil)
	defer s.stop(t)
	r.produce(r.base()...)
	r.produce(&kgo.Record{Topic: "service.public.domains", Key: []byte(`{"id":"d1"}`), Value: append(binary.BigEndian.AppendUint32([]byte{0}, uint32(id)), body...)})
	eventually(t, "the stage to retry the batch 3 times", func() bool { return fails.failed.Load() >= 3 })
	if n := len(r.sentKeys()); n != 0 {
		t.Fatalf("%d emails while the registry was down", n)
	}
	down.Store(false)
	eventually(t, "the email", func() bool { return len(r.sentKeys()) == 1 })
	r.settle()
	exactlyOnce(t, r, 1)
	if dlq := r.topic(pipeline.DLQTopic); len(dlq) != 0 {
		t.Fatalf("dead-lettered during the outage: %s", stream.Header(dlq[0], stream.HeaderReason))
	}
}

// TestSendSameKeyTwiceInOnePoll: a job that is on the topic several times
// (a topic replayed, a job re-produced) and comes several times in one
// poll is sent once, whichever of the concurrent workers takes each copy:
// the claim script lets an owner re-acquire its own claim (for a restart),
// so the copies are held apart within the instance.
func TestSendSameKeyTwiceInOnePoll(t *testing.T) {
	r := newRig(t, 1)
	var recs []*kgo.Record
	const keys, copies = 40, 3
	for k := range keys {
		job := schemas.EmailJob{Key: fmt.Sprintf("twice|%d", k), Type: "service.endpoint_enabled", Section: "service",
			CompanyID: "c-acme", To: schemas.Recipient{Address: fmt.Sprintf("user%d@acme.test", k), Role: "customer"},
			From: "Pexip <noreply@mail.test>", Subject: "Video system subscription enabled", HTML: "<p>hi</p>", Text: "hi",
			Tags: []string{"service.endpoint_enabled", "service"}, CreatedAt: t0}
		v, err := r.env.Serde.EncodeJob(job)
		if err != nil {
			t.Fatal(err)
		}
		for range copies {
			recs = append(recs, &kgo.Record{Topic: pipeline.JobsTopic, Key: []byte(job.CompanyID), Value: v})
		}
	}
	r.produce(recs...)
	s := r.startSend("s1", nil, func(c *stream.SendConfig) { c.Concurrency = 32 })
	defer s.stop(t)
	eventually(t, "a delivery record per copy", func() bool { return len(r.topic(pipeline.DeliveriesTopic)) == keys*copies })
	seen := map[string]int{}
	for _, m := range r.env.Mailgun.Messages() {
		seen[m.Vars[send.VarKey]]++
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s sent %d times", k, n)
		}
	}
	if len(seen) != keys {
		t.Errorf("%d keys sent, want %d", len(seen), keys)
	}
	if o := r.outcomes(); o[schemas.OutcomeSent] != keys || o[schemas.OutcomeDuplicateSuppressed] != keys*(copies-1) {
		t.Errorf("outcomes %v, want %d sent and %d suppressed", o, keys, keys*(copies-1))
	}
}

// TestSendRendersFromJobData: jobs carry template data, not bodies; the send
// stage renders them, and each delivery record carries the SHA-256 of the
// bodies Mailgun received. A job whose data does not render is refused
// permanently and dead-lettered, not retried.
func TestSendRendersFromJobData(t *testing.T) {
	r := newRig(t, 1)
	p := r.startProcess("process-1", nil)
	defer p.stop(t)
	s := r.startSend("s1", nil, nil)
	defer s.stop(t)
	r.produce(r.base()...)
	r.produce(r.endpoints(0, 2)...)
	eventually(t, "4 emails", func() bool { return len(r.sentKeys()) == 4 })
	for _, rec := range r.topic(pipeline.JobsTopic) {
		j, err := r.env.Serde.DecodeJob(rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		if j.Data == "" || j.HTML != "" || j.Text != "" {
			t.Fatalf("job %s: data %d bytes, html %d, text %d", j.Key, len(j.Data), len(j.HTML), len(j.Text))
		}
	}
	bodies := map[string]string{}
	for _, m := range r.env.Mailgun.Messages() {
		if !strings.Contains(m.Text, "Room 0") && !strings.Contains(m.Text, "Room 1") {
			t.Errorf("message text lacks the endpoint's name:\n%s", m.Text)
		}
		bodies[m.Vars[send.VarKey]] = templates.BodyDigest(m.HTML, m.Text)
	}
	eventually(t, "4 delivery records", func() bool { return r.outcomes()[schemas.OutcomeSent] == 4 })
	r.mu.Lock()
	for _, d := range r.deliveries {
		if d.BodySHA256 == "" || d.BodySHA256 != bodies[d.Key] {
			t.Errorf("delivery %s: body_sha256 %q, the body Mailgun got hashes to %q", d.Key, d.BodySHA256, bodies[d.Key])
		}
	}
	r.mu.Unlock()
	// A job whose data names no template.
	bad, err := r.env.Serde.EncodeJob(schemas.EmailJob{Key: "bad-data", Type: "service.endpoint_enabled", Section: "service",
		To: schemas.Recipient{Address: "x@acme.test", Role: "customer"}, From: "noreply@mail.test", Subject: "s",
		Data: `{"template":"no_such_template","type":"service.endpoint_enabled"}`, Tags: []string{}, CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	r.produce(&kgo.Record{Topic: pipeline.JobsTopic, Key: []byte("c-acme"), Value: bad})
	var dlq []*kgo.Record
	eventually(t, "the DLQ record", func() bool { dlq = r.topic(pipeline.DLQTopic); return len(dlq) == 1 })
	if reason := stream.Header(dlq[0], stream.HeaderReason); !strings.Contains(reason, "render") || !strings.Contains(reason, "unknown template") {
		t.Fatalf("DLQ reason %q", reason)
	}
	if o := r.outcomes(); o[schemas.OutcomeFailedPermanent] != 1 {
		t.Fatalf("outcomes %v", o)
	}
	if n := r.env.Mailgun.Requests(); n != 4 {
		t.Fatalf("%d Mailgun requests, want 4 (the bad job is not sent)", n)
	}
}

// TestColdStartConsumesReferenceTopicsFirst: with a backlog on the topics
// (a new group on pre-filled topics) the dependent changes come before the
// partner and company they need in the log; the process stage holds the
// dependent topics back until the reference topics are consumed, so nothing
// is parked and every email goes out once.
func TestColdStartConsumesReferenceTopicsFirst(t *testing.T) {
	r := newRig(t, 3)
	r.produce(r.endpoints(0, 200)...)
	r.produce(r.base()...) // after the endpoints in time, and on their own topics
	var parked atomic.Int64
	p := r.startProcess("process-1", func(c *stream.ProcessConfig) {
		inner := c.OnBatch
		c.OnBatch = func(s stream.BatchStats) { parked.Add(int64(s.Engine.Parked)); inner(s) }
		c.MaxPollRecords = 20 // many batches: without the gate, the first ones lack the company
	})
	defer p.stop(t)
	s := r.startSend("s1", nil, nil)
	defer s.stop(t)
	eventually(t, "400 emails", func() bool { return len(r.sentKeys()) == 400 })
	r.settle()
	exactlyOnce(t, r, 400)
	if n := parked.Load(); n != 0 {
		t.Fatalf("%d intents parked: the reference topics were not consumed first", n)
	}
}

// TestFailedBatchAbortsWhatItsWorkersProduced fails a batch after its
// workers have produced their jobs (each engine call's output goes to the
// broker as soon as the call returns): the failure comes in Fire, the step
// after them, once the jobs are on the broker in the open transaction. The
// transaction is aborted, the batch retried, and every email still goes
// exactly once; the jobs topic holds the aborted copies, which read_committed
// readers never see.
func TestFailedBatchAbortsWhatItsWorkersProduced(t *testing.T) {
	r := newRig(t, 3)
	snd := r.startSend("s1", nil, nil)
	defer snd.stop(t)
	f := &failingFire{State: r.store, open: func() bool { return r.openJobs() > 0 }}
	p := r.startProcessOn(f, "process-1", nil)
	defer p.stop(t)
	r.produce(r.base()...)
	r.produce(r.endpoints(0, 10)...)
	eventually(t, "the first 20 emails", func() bool { return len(r.sentKeys()) == 20 })
	f.armed.Store(true)
	r.produce(r.endpoints(10, 10)...)
	eventually(t, "the injected failure", f.failed.Load)
	if !f.sawOpen.Load() {
		t.Fatal("the failing batch's jobs were not on the broker before it failed")
	}
	eventually(t, "all 40 emails", func() bool { return len(r.sentKeys()) >= 40 })
	r.settle()
	exactlyOnce(t, r, 40)
	committed, all := r.topic(pipeline.JobsTopic), r.topicUncommitted(pipeline.JobsTopic)
	if len(committed) != 40 {
		t.Fatalf("%d committed job records, want 40", len(committed))
	}
	if len(all) <= len(committed) {
		t.Fatalf("%d job records in all, %d committed: the aborted batch's jobs never reached the broker", len(all), len(committed))
	}
}

// failingFire is a State whose DueTimers fails once, in the first batch that
// applied endpoint changes after armed is set, after waiting (up to 30 s)
// until open says that batch's jobs are on the broker.
type failingFire struct {
	processor.State
	open func() bool
	// failing guards the one failure; failed is set once it is returned.
	armed, applied, failing, failed, sawOpen atomic.Bool
}

func (f *failingFire) ApplyChanges(ctx context.Context, chs []processor.RowChange) ([]processor.ApplyResult, error) {
	res, err := f.State.ApplyChanges(ctx, chs)
	if err == nil && f.armed.Load() {
		for _, c := range chs {
			if c.Table == cdc.Endpoints {
				f.applied.Store(true)
			}
		}
	}
	return res, err
}

func (f *failingFire) DueTimers(ctx context.Context, sets []string, now time.Time, limit int, lease time.Duration) ([]processor.TimerRef, error) {
	if f.applied.Load() && f.failing.CompareAndSwap(false, true) {
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if f.open() {
				f.sawOpen.Store(true)
				break
			}
		}
		f.failed.Store(true)
		return nil, errors.New("injected: state went away before the timers")
	}
	return f.State.DueTimers(ctx, sets, now, limit, lease)
}

// TestRefusedRecordsAbortTheBatchWithTheBufferFull: every job is too large
// for the client (ProducerBatchMaxBytes) and the client buffers one record
// at a time, so a worker's Produce waits for room while the refused
// record's callback runs. The batch must abort and be retried, not hang
// (the callback once took the lock the waiting Produce held).
func TestRefusedRecordsAbortTheBatchWithTheBufferFull(t *testing.T) {
	r := newRig(t, 3)
	aborts := &lineCounter{substr: "producing failed; aborting the transaction"}
	p := r.startProcess("process-1", func(c *stream.ProcessConfig) {
		c.ClientOpts = append(c.ClientOpts, kgo.MaxBufferedRecords(1), kgo.ProducerBatchMaxBytes(512))
		c.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(aborts, logWriter{r.log}), nil))
	})
	r.produce(r.base()...)
	r.produce(r.endpoints(0, 10)...)
	eventually(t, "two aborted transactions", func() bool { return aborts.n.Load() >= 2 })
	p.stop(t)
	if n := len(r.topic(pipeline.JobsTopic)); n != 0 {
		t.Fatalf("%d committed job records, want none", n)
	}
}

// lineCounter counts the log lines that contain substr.
type lineCounter struct {
	substr string
	n      atomic.Int32
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.n.Add(int32(bytes.Count(p, []byte(c.substr))))
	return len(p), nil
}

// logWriter forwards text log lines to a logger (the rig's, kept per test).
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Info("process", "line", strings.TrimSpace(string(p)))
	return len(p), nil
}
