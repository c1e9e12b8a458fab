package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/portalmail/portalmail/processor/pipeline"
	"github.com/portalmail/portalmail/processor/stream"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of two stages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// opsRig runs `portalmail process` and `portalmail send`, as the CLI runs
// them, against embedded Kafka, schema registry, Mailgun and a miniredis the
// test can stop.
type opsRig struct {
	env                *pipeline.Embedded
	mini               *miniredis.Miniredis
	procAddr, sendAddr string
	logs               *syncBuffer
}

func startOpsRig(t *testing.T, extra map[string]string) *opsRig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	mini := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mini.Addr()})
	env, err := pipeline.StartEmbedded(ctx, pipeline.EmbeddedOptions{Redis: rc})
	if err != nil {
		t.Fatal(err)
	}
	r := &opsRig{env: env, mini: mini, procAddr: freeAddr(t), sendAddr: freeAddr(t), logs: &syncBuffer{}}
	common := map[string]string{
		"PORTALMAIL_BROKERS":          strings.Join(env.Brokers(), ","),
		"PORTALMAIL_SCHEMA_REGISTRY":  env.Registry.URL(),
		"PORTALMAIL_REDIS_URL":        "redis://" + mini.Addr() + "/0",
		"PORTALMAIL_LAG_INTERVAL":     "200ms",
		"PORTALMAIL_TICK":             "50ms",
		"PORTALMAIL_MAILGUN_DOMAIN":   "mail.portalmail.example",
		"PORTALMAIL_MAILGUN_API_KEY":  "key-ops-test-secret-0123456789",
		"PORTALMAIL_MAILGUN_API_BASE": env.Mailgun.URL(),
	}
	for k, v := range extra {
		common[k] = v
	}
	var wg sync.WaitGroup
	for _, stage := range []struct{ name, addr string }{{"process", r.procAddr}, {"send", r.sendAddr}} {
		vars := map[string]string{"PORTALMAIL_HTTP_ADDR": stage.addr}
		for k, v := range common {
			vars[k] = v
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := run(ctx, []string{stage.name}, func(k string) string { return vars[k] }, strings.NewReader(""), io.Discard, r.logs)
			if err != nil && ctx.Err() == nil {
				t.Errorf("%s: %v", stage.name, err)
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		rc.Close()
		env.Close()
	})
	return r
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls f until it returns "" or the deadline passes.
func waitFor(t *testing.T, d time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := f()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *opsRig) waitReady(t *testing.T) {
	t.Helper()
	for _, addr := range []string{r.procAddr, r.sendAddr} {
		waitFor(t, 20*time.Second, func() string {
			code, body := get(t, "http://"+addr+"/readyz")
			if code != http.StatusOK {
				return fmt.Sprintf("%s/readyz: %d %s", addr, code, body)
			}
			return ""
		})
	}
}

func (r *opsRig) produce(t *testing.T, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.env.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// cdcRecord is a Debezium JSON envelope (no schema wrapper).
func cdcRecord(topic, id, op string, after map[string]any, lsn int64) *kgo.Record {
	table := topic[strings.Index(topic, ".")+1:]
	schema, tbl, _ := strings.Cut(table, ".")
	now := time.Now().UnixMilli()
	v, _ := json.Marshal(map[string]any{
		"before": nil, "after": after, "op": op, "ts_ms": now,
		"source": map[string]any{"connector": "postgresql", "schema": schema, "table": tbl, "lsn": lsn, "ts_ms": now},
	})
	k, _ := json.Marshal(map[string]any{"id": id})
	return &kgo.Record{Topic: topic, Key: k, Value: v}
}

// metricValue finds the sample line `name{labels} value` in a scrape.
func metricValue(scrape, series string) (string, bool) {
	for _, line := range strings.Split(scrape, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v, true
		}
	}
	return "", false
}

func endpointScenario() []*kgo.Record {
	return []*kgo.Record{
		cdcRecord("portal.public.partners", "p1", "c", map[string]any{
			"id": "p1", "name": "Northwind", "type": "direct", "contact_email": "partner@p1.example",
			"optional_notifications": []string{"service"}, "order_recipients": []string{}, "trial_activity_recipients": []string{},
			"otj_distribution_list": []string{}}, 100),
		cdcRecord("portal.public.companies", "c1", "c", map[string]any{
			"id": "c1", "partner_id": "p1", "name": "Acme", "status": "active", "contact_email": "it@c1.example",
			"optional_notifications": []string{}}, 101),
		cdcRecord("service.public.endpoints", "e1", "c", map[string]any{"id": "e1", "company_id": "c1", "name": "Lobby", "enabled": true}, 102),
		cdcRecord("service.public.endpoints", "e2", "c", map[string]any{"id": "e2", "company_id": "c1", "name": "Board", "enabled": true}, 103),
		// Waits for company c-later, which never comes: parked.
		cdcRecord("service.public.endpoints", "e3", "c", map[string]any{"id": "e3", "company_id": "c-later", "name": "Far", "enabled": true}, 104),
		{Topic: "service.public.endpoints", Key: []byte(`{"id":"bad"}`), Value: []byte("not json at all")},
	}
}

// TestMetricsAfterScenario scrapes both stages after a small scenario and
// finds the counts it caused.
func TestMetricsAfterScenario(t *testing.T) {
	r := startOpsRig(t, nil)
	r.waitReady(t)
	// The partner and company first, applied before the endpoints come: an
	// endpoint polled before its company would park too, and the parked
	// count below would depend on how the topics' fetches fell (CI saw 3).
	recs := endpointScenario()
	r.produce(t, recs[:2]...)
	waitFor(t, 20*time.Second, func() string {
		_, scrape := get(t, "http://"+r.procAddr+"/metrics")
		if v, _ := metricValue(scrape, `portalmail_changes_consumed_total{op="c",table="portal.public.companies"}`); v != "1" {
			return "the company is not applied yet: " + v
		}
		return ""
	})
	r.produce(t, recs[2:]...)

	want := map[string]map[string]string{
		r.procAddr: {
			`portalmail_changes_consumed_total{op="c",table="portal.public.partners"}`:                           "1",
			`portalmail_changes_consumed_total{op="c",table="portal.public.companies"}`:                          "1",
			`portalmail_changes_consumed_total{op="c",table="service.public.endpoints"}`:                         "3",
			`portalmail_records_consumed_total`:                                                                  "6",
			`portalmail_jobs_emitted_total{email_type="service.endpoint_enabled"}`:                               "4",
			`portalmail_dead_letters_total{reason="undecodable"}`:                                                "1",
			`portalmail_dead_letters_total{reason="render"}`:                                                     "0",
			`portalmail_parked_total{event="parked"}`:                                                            "1",
			`portalmail_transactions_total{result="failed"}`:                                                     "0",
			`portalmail_consumer_lag{group="portalmail-process",partition="0",topic="service.public.endpoints"}`: "0",
		},
		r.sendAddr: {
			`portalmail_sends_total{email_type="service.endpoint_enabled",outcome="sent"}`: "4",
			`portalmail_mailgun_request_duration_seconds_count{result="ok"}`:               "4",
			`portalmail_dead_letters_total{reason="permanent_failure"}`:                    "0",
			`portalmail_send_retries_total{email_type="service.endpoint_enabled"}`:         "",
		},
	}
	for addr, series := range want {
		waitFor(t, 20*time.Second, func() string {
			code, scrape := get(t, "http://"+addr+"/metrics")
			if code != http.StatusOK {
				return fmt.Sprintf("%s/metrics: %d", addr, code)
			}
			for s, v := range series {
				got, ok := metricValue(scrape, s)
				if v == "" {
					if ok {
						return fmt.Sprintf("%s: %s = %s, want absent", addr, s, got)
					}
					continue
				}
				if got != v {
					return fmt.Sprintf("%s: %s = %q, want %s", addr, s, got, v)
				}
			}
			return ""
		})
	}
	// Committed transactions, the batch histogram and kprom's client metrics
	// are there too.
	_, scrape := get(t, "http://"+r.procAddr+"/metrics")
	for _, prefix := range []string{`portalmail_transactions_total{result="committed"} `, `portalmail_batch_duration_seconds_count `, `portalmail_kafka_`} {
		if !strings.Contains(scrape, "\n"+prefix) {
			t.Errorf("process /metrics has no %s", prefix)
		}
	}
	// Where the committed batches' time went: every phase is exported, and
	// the ones every transaction passes through took time.
	for _, ph := range stream.PhaseNames {
		v, ok := metricValue(scrape, `portalmail_batch_phase_seconds_total{phase="`+ph+`"}`)
		if !ok {
			t.Errorf("process /metrics has no batch_phase_seconds_total for %s", ph)
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); ph != "wait" && ph != "fire" && ph != "poll" && (err != nil || f <= 0) {
			t.Errorf("batch_phase_seconds_total{phase=%q} = %s, want > 0", ph, v)
		}
	}
	if code, body := get(t, "http://"+r.sendAddr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %s", code, body)
	}
}

// TestReadyzFollowsRedis: /readyz is 503 naming redis while Redis is down,
// and 200 again once it is back; /healthz stays 200.
func TestReadyzFollowsRedis(t *testing.T) {
	r := startOpsRig(t, nil)
	r.waitReady(t)
	r.mini.Close()
	for _, addr := range []string{r.procAddr, r.sendAddr} {
		waitFor(t, 10*time.Second, func() string {
			code, body := get(t, "http://"+addr+"/readyz")
			var got struct {
				Ready    bool              `json:"ready"`
				NotReady map[string]string `json:"not_ready"`
			}
			_ = json.Unmarshal([]byte(body), &got)
			if code != http.StatusServiceUnavailable || got.Ready || got.NotReady["redis"] == "" || len(got.NotReady) != 1 {
				return fmt.Sprintf("%s/readyz with Redis down: %d %s", addr, code, body)
			}
			return ""
		})
		if code, _ := get(t, "http://"+addr+"/healthz"); code != http.StatusOK {
			t.Errorf("%s/healthz with Redis down: %d", addr, code)
		}
	}
	if err := r.mini.Restart(); err != nil {
		t.Fatal(err)
	}
	r.waitReady(t)
}

// TestRefusedAddressesAreCountedAndDeadLettered runs both stages over branding
// orders whose notify_emails are partly and wholly refused by the address
// rule: the valid address is mailed (once, bare, in canonical form), the
// refused ones are counted, the order left with none is a dead letter of
// class no_recipient, and the partner's malformed reply_to is counted and
// left out.
func TestRefusedAddressesAreCountedAndDeadLettered(t *testing.T) {
	r := startOpsRig(t, nil)
	r.waitReady(t)
	r.produce(t,
		cdcRecord("portal.public.partners", "p1", "c", map[string]any{
			"id": "p1", "name": "Northwind", "type": "direct", "contact_email": "partner@p1.example",
			"reply_to": "support@p1.example, attacker@evil.test"}, 100),
		cdcRecord("portal.public.companies", "c1", "c", map[string]any{
			"id": "c1", "partner_id": "p1", "name": "Acme", "status": "active", "contact_email": "it@c1.example"}, 101),
		cdcRecord("portal.public.branding_orders", "bo1", "c", map[string]any{"id": "bo1", "company_id": "c1", "status": "placed",
			"notify_emails": []string{`"attacker@evil.test,x"@c1.example`, "Brand@C1.Example"}}, 102),
		cdcRecord("portal.public.branding_orders", "bo2", "c", map[string]any{"id": "bo2", "company_id": "c1", "status": "placed",
			"notify_emails": []string{"a@evil.test;b@c1.example", "not an address"}}, 103),
	)
	want := map[string]map[string]string{
		r.procAddr: {
			`portalmail_jobs_emitted_total{email_type="branding.instructions"}`: "1",
			`portalmail_addresses_refused_total{field="recipient"}`:             "3",
			`portalmail_addresses_refused_total{field="reply_to"}`:              "1",
			`portalmail_dead_letters_total{reason="no_recipient"}`:              "1",
			`portalmail_dead_letters_total{reason="too_many_recipients"}`:       "0",
		},
		r.sendAddr: {`portalmail_sends_total{email_type="branding.instructions",outcome="sent"}`: "1"},
	}
	for addr, series := range want {
		waitFor(t, 20*time.Second, func() string {
			_, scrape := get(t, "http://"+addr+"/metrics")
			for s, v := range series {
				if got, _ := metricValue(scrape, s); got != v {
					return fmt.Sprintf("%s: %s = %q, want %s", addr, s, got, v)
				}
			}
			return ""
		})
	}
	msgs := r.env.Mailgun.Messages()
	if len(msgs) != 1 || msgs[0].To != "Brand@c1.example" || msgs[0].ReplyTo != "" {
		t.Fatalf("posted %+v, want one message to Brand@c1.example without Reply-To", msgs)
	}
	logs := r.logs.String()
	if !strings.Contains(logs, "no valid recipient for branding.instructions: 2 refused") {
		t.Errorf("the dead letter is not logged with its reason:\n%s", logs)
	}
	checkJSONLogs(t, logs, []string{"evil.test"}, true)
}
