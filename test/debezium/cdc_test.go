package debezium

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/portalmail/portalmail/schemas/cdc"
)

// psql runs sql (one or more statements, each its own transaction unless the
// text says BEGIN/COMMIT) on database db and returns what psql printed
// (unaligned, tuples only).
func psql(db, sql string) (string, error) {
	cmd := exec.Command("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-tA", "-d", pgURL+"/"+db, "-f", "-")
	cmd.Stdin = strings.NewReader(sql)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("psql %s: %w: %s", db, err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

func mustPSQL(t *testing.T, db, sql string) string {
	t.Helper()
	out, err := psql(db, sql)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rest calls Kafka Connect's REST API; body may be nil. It returns the
// response body, or an error for a status >= 300 (404 is returned as
// errNotFound).
func rest(method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, connect+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("connect %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNotFound {
		return b, errNotFound
	}
	if resp.StatusCode >= 300 {
		return b, fmt.Errorf("connect %s %s: %s: %s", method, path, resp.Status, b)
	}
	return b, nil
}

var errNotFound = fmt.Errorf("not found")

// connectorState is "RUNNING RUNNING" (connector, first task) or what it is.
func connectorState(name string) (string, string) {
	b, err := rest("GET", "/connectors/"+name+"/status", nil)
	if err != nil {
		return "ABSENT", ""
	}
	var st struct {
		Connector struct{ State, Trace string }
		Tasks     []struct{ State, Trace string }
	}
	_ = json.Unmarshal(b, &st)
	task, trace := "NO_TASK", st.Connector.Trace
	if len(st.Tasks) > 0 {
		task = st.Tasks[0].State
		if st.Tasks[0].Trace != "" {
			trace = st.Tasks[0].Trace
		}
	}
	return st.Connector.State + " " + task, trace
}

// connectorConfig is the config of scripts/debezium/<kind>-connector.json
// with overrides.
func connectorConfig(t *testing.T, kind string, overrides map[string]string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "scripts", "debezium", kind+"-connector.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Config map[string]string }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s-connector.json: %v", kind, err)
	}
	host, port := pgHostPort(t)
	doc.Config["database.hostname"], doc.Config["database.port"] = host, port
	for k, v := range overrides {
		doc.Config[k] = v
	}
	return doc.Config
}

func pgHostPort(t *testing.T) (string, string) {
	t.Helper()
	rest := strings.TrimPrefix(strings.TrimPrefix(pgURL, "postgresql://"), "postgres://")
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	host, port, ok := strings.Cut(rest, ":")
	if !ok {
		t.Fatalf("PG_URL %q has no port", pgURL)
	}
	return host, port
}

// source is one database with its Debezium connector: the unit a test owns.
type source struct {
	kind   string // portal or service (the DDL and connector file)
	db     string // the database
	prefix string // topic.prefix
	name   string // the connector's name, also its slot and publication
	// extra are more connector settings.
	extra map[string]string
}

// topics are the topics the connector writes to: its tables of the source
// contract, and the transaction, message and heartbeat topics.
func (s source) topics() []string {
	var out []string
	for name := range cdc.Contract {
		if kind, rest, _ := strings.Cut(name, "."); kind == s.kind {
			out = append(out, s.prefix+"."+rest)
		}
	}
	sort.Strings(out)
	return append(out, s.prefix+".transaction", s.prefix+".message", "__debezium-heartbeat."+s.prefix)
}

// create makes the database with the tables of scripts/debezium/<kind>.sql.
func (s source) create(t *testing.T) {
	t.Helper()
	s.drop()
	mustPSQL(t, "postgres", "CREATE DATABASE "+s.db)
	ddl, err := os.ReadFile(filepath.Join(repoRoot, "scripts", "debezium", s.kind+".sql"))
	if err != nil {
		t.Fatal(err)
	}
	mustPSQL(t, s.db, string(ddl))
}

// register starts the connector and waits until its snapshot is done and it
// streams (its replication slot is in use).
func (s source) register(t *testing.T) {
	t.Helper()
	overrides := map[string]string{"database.dbname": s.db, "topic.prefix": s.prefix, "slot.name": s.name, "publication.name": s.name}
	for k, v := range s.extra {
		overrides[k] = v
	}
	cfg := connectorConfig(t, s.kind, overrides)
	if _, err := rest("PUT", "/connectors/"+s.name+"/config", cfg); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		state, trace := connectorState(s.name)
		if strings.Contains(state, "FAILED") {
			t.Fatalf("connector %s failed: %s", s.name, trace)
		}
		if state == "RUNNING RUNNING" {
			active, err := psql("postgres", "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '"+s.name+"' AND active")
			if err == nil && active == "1" {
				break
			}
		}
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("connector %s not streaming after 2 minutes (state %s)", s.name, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("connector %s (%s → %s.*) streaming after %s", s.name, s.db, s.prefix, time.Since(start).Round(100*time.Millisecond))
}

// drop deletes the connector, its slot and the database (best effort: also
// what is left of an earlier run).
func (s source) drop() {
	if _, err := rest("DELETE", "/connectors/"+s.name, nil); err == nil {
		// The task releases the slot when it stops.
		for range 100 {
			out, _ := psql("postgres", "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '"+s.name+"' AND active")
			if out != "1" {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	_, _ = psql("postgres", "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '"+s.name+"'")
	_, _ = psql("postgres", "DROP DATABASE IF EXISTS "+s.db+" WITH (FORCE)")
}

// createTopics creates the topics as Debezium would (3 partitions), before
// the connector or a consumer asks for them.
func createTopics(t *testing.T, cl *kgo.Client, partitions int32, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, nil, topics...)
	if err != nil {
		t.Fatal("create topics:", err)
	}
	for _, r := range res.Sorted() {
		if r.Err != nil && !strings.Contains(r.Err.Error(), "TOPIC_ALREADY_EXISTS") {
			t.Fatalf("create topic %s: %v", r.Topic, r.Err)
		}
	}
}

// markers follows the <prefix>.message topics and records, per topic, the
// content of every logical decoding message (op "m") that arrives, so a test
// knows that Debezium has delivered everything before it. Per topic: the two
// sources of a world carry the same labels, and one source's marker says
// nothing about the other's delivery.
type markers struct {
	cl   *kgo.Client
	mu   sync.Mutex
	seen map[string]bool
	done chan struct{}
}

func newMarkers(t *testing.T, topics ...string) *markers {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	m := &markers{cl: cl, seen: map[string]bool{}, done: make(chan struct{})}
	go m.run()
	t.Cleanup(func() { cl.Close(); <-m.done })
	return m
}

func (m *markers) run() {
	defer close(m.done)
	for {
		fs := m.cl.PollFetches(context.Background())
		if fs.IsClientClosed() {
			return
		}
		fs.EachRecord(func(r *kgo.Record) {
			var v struct {
				Payload struct {
					Op      string
					Message struct{ Prefix, Content string }
				}
			}
			if json.Unmarshal(r.Value, &v) != nil || v.Payload.Op != "m" {
				return
			}
			content, err := base64.StdEncoding.DecodeString(v.Payload.Message.Content)
			if err != nil {
				return
			}
			m.mu.Lock()
			m.seen[r.Topic+"/"+v.Payload.Message.Prefix+"/"+string(content)] = true
			m.mu.Unlock()
		})
	}
}

// has reports whether the message (prefix, content) arrived on topic.
func (m *markers) has(topic, prefix, content string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen[topic+"/"+prefix+"/"+content]
}

// markerPrefix is the logical decoding message prefix of the tests' markers.
const markerPrefix = "portalmail.test"

// mark emits a marker message on src's database (a transaction of its own,
// so it follows every change committed before it) and waits until Debezium
// delivered it on src's message topic.
func (m *markers) mark(t *testing.T, src source, label string) {
	t.Helper()
	mustPSQL(t, src.db, fmt.Sprintf("SELECT pg_logical_emit_message(true, '%s', '%s');", markerPrefix, label))
	topic := src.prefix + ".message"
	waitFor(t, "marker "+label+" of "+src.db, 2*time.Minute, func() bool { return m.has(topic, markerPrefix, label) })
}

// randomID is 8 hex digits, for names that must not repeat across runs.
func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
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
