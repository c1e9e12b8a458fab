// Package faults is portalmail's fault suite: `process` and `send` run as
// separate OS processes of the built binary against a real Kafka broker
// (KAFKA_BROKERS), a real redis-server started by the suite (appendonly yes),
// a schema registry (srfake) and the Mailgun HTTP fake served by the test
// process. Each test names the emails it expects and asserts that exactly
// those were sent, once each, at the Mailgun fake (by v:portalmail_key) and
// on the delivery topic.
//
// It runs only with PORTALMAIL_FAULTS=1 (scripts/faults.sh, `make
// test-faults`); plain `go test ./...` skips it.
package faults

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/portalmail/portalmail/processor/send"
	"github.com/portalmail/portalmail/processor/send/mailgunfake"
	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/schemas/cdc"
)

var (
	bin      string // the built portalmail binary
	brokers  []string
	redisURL string // redis://127.0.0.1:PORT (no db: each test picks its own)
	redisSrv *redisServer
	repoRoot string
	dbSeq    int
	dbMu     sync.Mutex
)

func TestMain(m *testing.M) {
	if os.Getenv("PORTALMAIL_FAULTS") != "1" {
		fmt.Println("faults: skipped (set PORTALMAIL_FAULTS=1, or run scripts/faults.sh)")
		os.Exit(0)
	}
	if os.Getenv("KAFKA_BROKERS") == "" {
		fmt.Fprintln(os.Stderr, "faults: KAFKA_BROKERS is not set (start a broker: eval \"$(scripts/kafka.sh up)\")")
		os.Exit(1)
	}
	brokers = strings.Split(os.Getenv("KAFKA_BROKERS"), ",")
	wd, _ := os.Getwd()
	repoRoot = filepath.Clean(filepath.Join(wd, "..", ".."))
	tmp, err := os.MkdirTemp("", "portalmail-faults-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(tmp, "portalmail")
	build := exec.Command("go", "build", "-o", bin, "./cmd/portalmail")
	build.Dir, build.Stdout, build.Stderr = repoRoot, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "faults: build:", err)
		os.Exit(1)
	}
	if redisSrv, err = startRedis(filepath.Join(tmp, "redis")); err != nil {
		fmt.Fprintln(os.Stderr, "faults: redis:", err)
		os.Exit(1)
	}
	redisURL = "redis://" + redisSrv.addr
	code := m.Run()
	redisSrv.stop()
	if code == 0 {
		os.RemoveAll(tmp)
	} else {
		fmt.Fprintln(os.Stderr, "faults: logs kept in", tmp)
	}
	os.Exit(code)
}

// redisServer is the suite's own redis-server, with appendonly yes.
type redisServer struct {
	dir, addr string
	extra     []string // more redis-server options
	cmd       *exec.Cmd
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startRedis(dir string) (*redisServer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r := &redisServer{dir: dir, addr: "127.0.0.1:" + strconv.Itoa(freePort())}
	return r, r.start()
}

func (r *redisServer) start() error {
	_, port, _ := net.SplitHostPort(r.addr)
	args := append([]string{"--bind", "127.0.0.1", "--port", port, "--dir", r.dir, "--appendonly", "yes",
		"--appendfsync", "everysec", "--save", "", "--logfile", filepath.Join(r.dir, "redis.log")}, r.extra...)
	r.cmd = exec.Command("redis-server", args...)
	if err := r.cmd.Start(); err != nil {
		return err
	}
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", r.addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s did not answer", r.addr)
}

// stop shuts redis-server down the way an operator's restart does
// (SIGTERM: it writes the append-only file and exits).
func (r *redisServer) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	_ = r.cmd.Wait()
	r.cmd = nil
}

// redisCluster is a Redis Cluster of three masters of the suite's own
// (appendonly yes, no replicas), as scripts/redis.sh cluster-start makes one.
type redisCluster struct{ nodes []*redisServer }

func startRedisCluster(dir string) (*redisCluster, error) {
	c := &redisCluster{}
	var addrs []string
	for i := range 3 {
		d := filepath.Join(dir, strconv.Itoa(i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		n := &redisServer{dir: d, addr: "127.0.0.1:" + strconv.Itoa(freePort()),
			extra: []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"}}
		c.nodes = append(c.nodes, n)
		addrs = append(addrs, n.addr)
		if err := n.start(); err != nil {
			c.stop()
			return nil, err
		}
	}
	create := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		c.stop()
		return nil, fmt.Errorf("redis-cli --cluster create: %v: %s", err, out)
	}
	return c, c.waitOK()
}

// url is the cluster as --redis-url takes it.
func (c *redisCluster) url() string {
	var addrs []string
	for _, n := range c.nodes {
		addrs = append(addrs, n.addr)
	}
	return strings.Join(addrs, ",")
}

// waitOK waits until every node reports cluster_state:ok.
func (c *redisCluster) waitOK() error {
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.nodes {
		_, port, _ := net.SplitHostPort(n.addr)
		for {
			out, _ := exec.Command("redis-cli", "-p", port, "cluster", "info").Output()
			if strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("redis cluster node %s: not ok: %s", n.addr, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// start starts every node again (their nodes.conf keeps the cluster).
func (c *redisCluster) start() error {
	for _, n := range c.nodes {
		if err := n.start(); err != nil {
			return err
		}
	}
	return c.waitOK()
}

// stop stops every node as redisServer.stop does.
func (c *redisCluster) stop() {
	for _, n := range c.nodes {
		n.stop()
	}
}

// env is one test's world: its own topics, groups, Redis db, schema
// registry and Mailgun fake.
type env struct {
	t          *testing.T
	id         string
	redis      string
	sr         *srfake.Registry
	registry   *proxy // in front of sr: the stages reach the registry through it
	mg         *mailgunfake.Server
	serde      *schemas.Serde
	producer   *kgo.Client
	jobs, dlq  string
	deliveries string
	lsn        int64
	dir        string
	mu         sync.Mutex
	procs      []*proc
}

func newEnv(t *testing.T, partitions int32) *env {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	dbMu.Lock()
	dbSeq++
	db := dbSeq % 16
	dbMu.Unlock()
	e := &env{t: t, id: "f" + hex.EncodeToString(b), redis: redisURL + "/" + strconv.Itoa(db), lsn: 1000, dir: t.TempDir()}
	e.jobs, e.deliveries, e.dlq = e.id+".portalmail.email-jobs", e.id+".portalmail.email-deliveries", e.id+".portalmail.dlq"
	e.sr = srfake.New()
	t.Cleanup(e.sr.Close)
	e.registry = newProxy(t, strings.TrimPrefix(e.sr.URL(), "http://"))
	e.mg = mailgunfake.New()
	t.Cleanup(e.mg.Close)
	src, err := sr.NewClient(sr.URLs(e.sr.URL()))
	if err != nil {
		t.Fatal(err)
	}
	if e.serde, err = schemas.Register(context.Background(), src, e.jobs, e.deliveries); err != nil {
		t.Fatal(err)
	}
	if e.producer, err = kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordRetries(1000), kgo.ProduceRequestTimeout(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.producer.Close)
	topics := []string{e.jobs, e.deliveries, e.dlq}
	adm := kadm.NewClient(e.producer)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := adm.CreateTopics(ctx, partitions, 1, nil, append(topics, e.cdcTopics()...)...)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatal("create topics:", err)
	}
	t.Cleanup(func() {
		for _, p := range e.procs {
			p.kill()
		}
		if t.Failed() {
			e.dumpLogs()
		}
	})
	return e
}

// cdcTopics are every CDC topic of the contract under the test's prefixes
// (the stages subscribe to all of them).
func (e *env) cdcTopics() []string {
	return cdc.NewDecoder(cdc.DecoderConfig{PortalPrefix: e.id + "portal", ServicePrefix: e.id + "service"}).Topics()
}

// proc is one portalmail OS process.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func (p *proc) kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// stop is a graceful shutdown (SIGTERM), as an orchestrator does it.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill()
	}
}

func (e *env) start(name string, args ...string) *proc { return e.startWithEnv(name, nil, args...) }

// startWithEnv starts a stage with extra environment variables (the hidden
// fault hooks of cmd/portalmail/process.go).
func (e *env) startWithEnv(name string, environ []string, args ...string) *proc {
	e.t.Helper()
	logPath := filepath.Join(e.dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	common := []string{"--brokers", strings.Join(brokers, ","), "--redis-url", e.redis, "--schema-registry", "http://" + e.registry.addr,
		"--jobs-topic", e.jobs, "--deliveries-topic", e.deliveries, "--dlq-topic", e.dlq,
		"--log-format", "text", "--http-addr", "", "--lag-interval", "0", "--session-timeout", "10s"}
	cmd := exec.Command(bin, append(args, common...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), environ...)
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	return p
}

func (e *env) startProcess(name string, extra ...string) *proc {
	return e.start(name, append([]string{"process", "--group", e.id + "-process", "--transactional-id", e.id + "-" + name,
		"--portal-prefix", e.id + "portal", "--service-prefix", e.id + "service", "--tick", "100ms"}, extra...)...)
}

func (e *env) startSend(name string) *proc {
	return e.start(name, "send", "--group", e.id+"-send", "--owner", name, "--mailgun-api-base", e.mg.URL(),
		"--mailgun-domain", "mail.test", "--mailgun-api-key", "key-test", "--mailgun-timeout", "2s", "--rate-limit", "0",
		"--retry-max", "5s")
}

func (e *env) dumpLogs() {
	for _, p := range e.procs {
		b, _ := os.ReadFile(p.log)
		s := string(b)
		if len(s) > 6000 {
			s = "...\n" + s[len(s)-6000:]
		}
		e.t.Logf("--- %s log (%s):\n%s", p.name, p.log, s)
	}
}

// row is a Debezium JSON record at the next source position.
func (e *env) row(table, op string, row map[string]any) *kgo.Record {
	e.lsn += 10
	ts := time.Now().UnixMilli()
	v := map[string]any{"before": nil, "after": row, "op": op, "ts_ms": ts,
		"source": map[string]any{"connector": "postgresql", "lsn": e.lsn, "ts_ms": ts}}
	val, _ := json.Marshal(v)
	key, _ := json.Marshal(map[string]any{"id": row["id"]})
	return &kgo.Record{Topic: e.id + table, Key: key, Value: val}
}

// base are the reference rows: partner p-direct, company c-acme.
func (e *env) base() []*kgo.Record {
	return []*kgo.Record{
		e.row("portal.public.partners", "r", map[string]any{"id": "p-direct", "name": "Direct", "type": "direct",
			"contact_email": "partner@direct.test"}),
		e.row("portal.public.companies", "r", map[string]any{"id": "c-acme", "partner_id": "p-direct", "name": "Acme",
			"status": "active", "contact_email": "it@acme.test"}),
	}
}

// endpoints are n new endpoints of c-acme: 2 emails each.
func (e *env) endpoints(from, n int) []*kgo.Record {
	var out []*kgo.Record
	for i := from; i < from+n; i++ {
		out = append(out, e.row("service.public.endpoints", "c", map[string]any{"id": "ep-" + strconv.Itoa(i),
			"company_id": "c-acme", "name": "Room " + strconv.Itoa(i), "enabled": true}))
	}
	return out
}

// endpointEmails are the emails endpoints [from, from+n) send: one to the
// partner and one to the customer, as "type entity address".
func endpointEmails(from, n int) []string {
	var out []string
	for i := from; i < from+n; i++ {
		id := "ep-" + strconv.Itoa(i)
		out = append(out, "service.endpoint_enabled "+id+" it@acme.test", "service.endpoint_enabled "+id+" partner@direct.test")
	}
	sort.Strings(out)
	return out
}

func (e *env) produce(recs ...*kgo.Record) {
	e.t.Helper()
	for i := 0; i < len(recs); i += 500 {
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		err := e.producer.ProduceSync(ctx, recs[i:min(i+500, len(recs))]...).FirstErr()
		cancel()
		if err != nil {
			e.t.Fatal("produce:", err)
		}
	}
}

// sent are the emails Mailgun accepted as "type entity address", and the
// number of messages per idempotency key.
func (e *env) sent() (emails []string, perKey map[string]int) {
	perKey = map[string]int{}
	for _, m := range e.mg.Messages() {
		key := m.Vars[send.VarKey]
		perKey[key]++
		parts := strings.Split(key, "|")
		ent := ""
		if len(parts) > 2 {
			ent = parts[2]
		}
		to := m.To
		if a, err := mail.ParseAddress(m.To); err == nil {
			to = a.Address
		}
		emails = append(emails, m.Vars[send.VarEmailType]+" "+ent+" "+to)
	}
	sort.Strings(emails)
	return emails, perKey
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}

// deliveries reads the delivery topic (read_committed) and counts the
// outcomes per key.
func (e *env) deliveryRecords() []schemas.EmailDelivery {
	e.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(e.deliveries),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	var out []schemas.EmailDelivery
	for idle := 0; idle < 3; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			d, err := e.serde.DecodeDelivery(r.Value)
			if err != nil {
				e.t.Fatalf("delivery record: %v", err)
			}
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

// figures are a test's numbers, logged for docs/testing.md.
type figures struct {
	changes, emails, duplicates, requests int
}

// checkExactly waits until want emails went out and the pipeline is quiet,
// then asserts that exactly want was sent, each once, and that the delivery
// topic holds one "sent" record for each and nothing but duplicates besides.
func (e *env) checkExactly(want []string, changes int, timeout time.Duration) figures {
	e.t.Helper()
	waitFor(e.t, fmt.Sprintf("%d emails", len(want)), timeout, func() bool { got, _ := e.sent(); return len(got) >= len(want) })
	// Evidence before silence: the process group has consumed every CDC
	// record, and every committed job has its delivery record; only then
	// does a quiet Mailgun mean nothing more is coming.
	e.consumed(2 * time.Minute)
	e.jobsDelivered(2 * time.Minute)
	last, since := -1, time.Now()
	waitFor(e.t, "the pipeline to settle", 2*time.Minute, func() bool {
		if n := e.mg.Requests(); n != last {
			last, since = n, time.Now()
		}
		return time.Since(since) > 3*time.Second
	})
	got, perKey := e.sent()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		e.t.Errorf("sent %d emails, want %d:\n%s", len(got), len(want), diff(want, got))
	}
	for k, n := range perKey {
		if n != 1 {
			e.t.Errorf("%s sent %d times", k, n)
		}
	}
	var ds []schemas.EmailDelivery
	sentRecs := map[string]int{}
	dups := 0
	waitFor(e.t, "a delivery record for every email", time.Minute, func() bool {
		ds = e.deliveryRecords()
		sentRecs, dups = map[string]int{}, 0
		for _, d := range ds {
			switch d.Outcome {
			case schemas.OutcomeSent:
				sentRecs[d.Key]++
			case schemas.OutcomeDuplicateSuppressed:
				dups++
			}
		}
		return len(sentRecs) >= len(perKey)
	})
	for _, d := range ds {
		if d.Outcome != schemas.OutcomeSent && d.Outcome != schemas.OutcomeDuplicateSuppressed {
			e.t.Errorf("delivery %s: outcome %s (%s)", d.Key, d.Outcome, d.LastError)
		}
	}
	for k := range perKey {
		if sentRecs[k] != 1 {
			e.t.Errorf("%s has %d sent records on the delivery topic", k, sentRecs[k])
		}
	}
	if len(sentRecs) != len(perKey) {
		e.t.Errorf("%d sent records on the delivery topic, %d emails at Mailgun", len(sentRecs), len(perKey))
	}
	f := figures{changes: changes, emails: len(got), duplicates: dups, requests: e.mg.Requests()}
	e.t.Logf("FIGURES %s: %d changes, %d emails sent (each once), %d duplicates suppressed, %d Mailgun requests",
		e.t.Name(), f.changes, f.emails, f.duplicates, f.requests)
	return f
}

// consumed waits until the process group's committed offsets reach the end
// of every CDC topic.
func (e *env) consumed(d time.Duration) {
	e.t.Helper()
	adm := kadm.NewClient(e.producer)
	waitFor(e.t, "the process group to consume every CDC record", d, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ends, err := adm.ListEndOffsets(ctx, e.cdcTopics()...)
		if err != nil {
			return false
		}
		committed, err := adm.FetchOffsets(ctx, e.id+"-process")
		if err != nil {
			return false
		}
		ok := true
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset == 0 {
				return
			}
			c, found := committed.Lookup(o.Topic, o.Partition)
			ok = ok && found && c.At >= o.Offset
		})
		return ok
	})
}

// jobsDelivered waits until every committed job has a delivery record.
func (e *env) jobsDelivered(d time.Duration) {
	e.t.Helper()
	waitFor(e.t, "a delivery record for every committed job", d, func() bool {
		jobs := map[string]bool{}
		for _, r := range e.topicRecords(e.jobs) {
			j, err := e.serde.DecodeJob(r.Value)
			if err != nil {
				e.t.Fatalf("job record: %v", err)
			}
			jobs[j.Key] = true
		}
		for _, d := range e.deliveryRecords() {
			delete(jobs, d.Key)
		}
		return len(jobs) == 0
	})
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
	n := 0
	for s, c := range w {
		if g[s] < c && n < 20 {
			b.WriteString("- " + s + "\n")
			n++
		}
	}
	for s, c := range g {
		if w[s] < c && n < 40 {
			b.WriteString("+ " + s + "\n")
			n++
		}
	}
	return b.String()
}

// countLogged counts the lines of p's log containing s.
func countLogged(p *proc, s string) int {
	b, _ := os.ReadFile(p.log)
	return strings.Count(string(b), s)
}

// lastLine is the last non-empty line of p's log.
func lastLine(p *proc) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return lines[len(lines)-1]
}

// logged waits for a line containing s in p's log.
func logged(p *proc, s string) bool {
	f, err := os.Open(p.log)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			return true
		}
	}
	return false
}
