package debezium

import (
	"context"
	"fmt"
	"net/mail"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/portalmail/portalmail/processor/send"
	"github.com/portalmail/portalmail/processor/send/mailgunfake"
	"github.com/portalmail/portalmail/processor/stream"
	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/test/internal/stage"
)

// world is one end-to-end run's own everything: two databases with their
// connectors and topic prefixes, portalmail's topics and groups, a Redis
// database, a schema registry and a Mailgun fake.
type world struct {
	t                 *testing.T
	id                string
	portal, service   source
	redis             string
	sr                *srfake.Registry
	mg                *mailgunfake.Server
	serde             *schemas.Serde
	cl                *kgo.Client
	adm               *kadm.Client
	jobs, deliveries  string
	dlq               string
	dir               string
	marks             *markers
	procs             []*stage.Proc
	processN, markSeq int
}

// redisDBs hands each world its own database of the suite's redis-server.
var redisDBs = 0

func newWorld(t *testing.T) *world {
	t.Helper()
	id := "d" + randomID()
	redisDBs++
	w := &world{t: t, id: id, redis: "redis://" + redisSrv.Addr + "/" + fmt.Sprint(redisDBs%16), dir: t.TempDir()}
	w.portal = source{kind: "portal", db: id + "_portal", prefix: id + "portal", name: id + "_portal"}
	w.service = source{kind: "service", db: id + "_service", prefix: id + "service", name: id + "_service"}
	w.jobs, w.deliveries, w.dlq = id+".portalmail.email-jobs", id+".portalmail.email-deliveries", id+".portalmail.dlq"
	w.sr = srfake.New()
	t.Cleanup(w.sr.Close)
	w.mg = mailgunfake.New()
	t.Cleanup(w.mg.Close)
	src, err := sr.NewClient(sr.URLs(w.sr.URL()))
	if err != nil {
		t.Fatal(err)
	}
	if w.serde, err = schemas.Register(context.Background(), src, w.jobs, w.deliveries); err != nil {
		t.Fatal(err)
	}
	if w.cl, err = kgo.NewClient(kgo.SeedBrokers(brokers...)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.cl.Close)
	w.adm = kadm.NewClient(w.cl)
	topics := append(append([]string{w.jobs, w.deliveries, w.dlq}, w.portal.topics()...), w.service.topics()...)
	createTopics(t, w.cl, 3, topics...)
	w.portal.create(t)
	w.service.create(t)
	t.Cleanup(func() {
		for _, p := range w.procs {
			p.Kill()
		}
		if t.Failed() {
			for _, p := range w.procs {
				t.Logf("--- %s log (%s):\n%s", p.Name, p.Log, p.Tail(8000))
			}
		}
		w.portal.drop()
		w.service.drop()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = w.adm.DeleteTopics(ctx, topics...)
	})
	w.marks = newMarkers(t, w.portal.prefix+".message", w.service.prefix+".message")
	return w
}

// cdcTopics are the contract topics of both sources (what process consumes).
func (w *world) cdcTopics() []string {
	var out []string
	for _, s := range []source{w.portal, w.service} {
		for _, tp := range s.topics() {
			if strings.Contains(tp, ".public.") {
				out = append(out, tp)
			}
		}
	}
	return out
}

func (w *world) start(name string, env []string, args ...string) *stage.Proc {
	w.t.Helper()
	common := []string{"--brokers", strings.Join(brokers, ","), "--redis-url", w.redis, "--schema-registry", w.sr.URL(),
		"--jobs-topic", w.jobs, "--deliveries-topic", w.deliveries, "--dlq-topic", w.dlq,
		"--log-format", "text", "--http-addr", "", "--lag-interval", "0", "--session-timeout", "10s"}
	p, err := stage.Start(bin, w.dir, name, append(args, common...), env)
	if err != nil {
		w.t.Fatal(err)
	}
	w.procs = append(w.procs, p)
	return p
}

// processGroup is the process stage's consumer group; every instance uses
// the same transactional id (a restart fences what the last one left open).
func (w *world) processGroup() string { return w.id + "-process" }

func (w *world) startProcess(env []string, extra ...string) *stage.Proc {
	w.processN++
	return w.start(fmt.Sprintf("process-%d", w.processN), env, append([]string{"process", "--group", w.processGroup(),
		"--transactional-id", w.id + "-process", "--portal-prefix", w.portal.prefix, "--service-prefix", w.service.prefix,
		"--tick", "100ms"}, extra...)...)
}

func (w *world) startSend() *stage.Proc {
	return w.start("send", nil, "send", "--group", w.id+"-send", "--owner", "send-1", "--mailgun-api-base", w.mg.URL(),
		"--mailgun-domain", "mail.test", "--mailgun-api-key", "key-test", "--mailgun-timeout", "2s", "--rate-limit", "0",
		"--retry-max", "5s")
}

// sync makes sure everything committed in both databases so far went
// through Debezium (a marker message on each arrived) and through the
// process stage (its group committed every CDC partition to its end).
func (w *world) sync() {
	w.t.Helper()
	w.markSeq++
	label := fmt.Sprintf("%s-%d", w.id, w.markSeq)
	for _, s := range []source{w.portal, w.service} {
		w.marks.mark(w.t, s, label)
	}
	w.drained(2 * time.Minute)
}

// drained waits until the process group has committed every CDC partition
// to its end offset.
func (w *world) drained(d time.Duration) {
	w.t.Helper()
	topics := w.cdcTopics()
	waitFor(w.t, "the process stage to commit every CDC record", d, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ends, err := w.adm.ListEndOffsets(ctx, topics...)
		if err != nil {
			return false
		}
		committed, err := w.adm.FetchOffsetsForTopics(ctx, w.processGroup(), topics...)
		if err != nil {
			return false
		}
		ok := true
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err != nil {
				ok = false // a partition without an answer is not drained
				return
			}
			if o.Offset == 0 {
				return
			}
			c, found := committed.Lookup(o.Topic, o.Partition)
			if !found || c.At < o.Offset {
				ok = false
			}
		})
		return ok
	})
}

// email is one sent email as the tests compare them: "type to subject".
func email(typ, to, subject string) string { return typ + " | " + to + " | " + subject }

// sent are the emails the Mailgun fake accepted, and the number of messages
// per idempotency key.
func (w *world) sent() (emails []string, perKey map[string]int) {
	perKey = map[string]int{}
	for _, m := range w.mg.Messages() {
		perKey[m.Vars[send.VarKey]]++
		to := m.To
		if a, err := mail.ParseAddress(m.To); err == nil {
			to = a.Address
		}
		emails = append(emails, email(m.Vars[send.VarEmailType], strings.ToLower(to), m.Subject))
	}
	sort.Strings(emails)
	return emails, perKey
}

// deadLetter is one record of the DLQ topic: the stage that wrote it, the
// topic of the record it is about, and the reason.
type deadLetter struct{ stage, topic, reason string }

func (w *world) deadLetters() []deadLetter {
	w.t.Helper()
	rd, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(w.dlq),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		w.t.Fatal(err)
	}
	defer rd.Close()
	var out []deadLetter
	for idle := 0; idle < 2; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := rd.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			d := deadLetter{stage: stream.Header(r, stream.HeaderStage), topic: stream.Header(r, stream.HeaderTopic),
				reason: stream.Header(r, stream.HeaderReason)}
			out = append(out, d)
		})
		if n == 0 {
			idle++
		} else {
			idle = 0
		}
	}
	return out
}
