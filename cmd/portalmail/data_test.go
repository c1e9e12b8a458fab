package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portalmail/portalmail/examples"
	"github.com/portalmail/portalmail/processor/pipeline"
	"github.com/portalmail/portalmail/processor/send"
)

// dataExample is docs/data.md's example: Confluent's Python client reading
// both topics as Avro through the registry and joining them.
const dataExample = "../../docs/examples/join_deliveries.py"

// pythonWithAvro is a Python that imports confluent_kafka and avro (Debian's
// python3-confluent-kafka and python3-avro: scripts/test.sh installs them).
// Without one the test is skipped, unless PORTALMAIL_REQUIRE_TOOLS is set
// (make test sets it), when it fails.
func pythonWithAvro(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if err := exec.Command(py, "-c", "import confluent_kafka.avro, avro").Run(); err == nil {
			return py
		}
	}
	msg := "no python3 with confluent_kafka and avro (apt-get install python3-confluent-kafka python3-avro)"
	if os.Getenv("PORTALMAIL_REQUIRE_TOOLS") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// joinedJob is one line of the example's output.
type joinedJob struct {
	Key        string `json:"key"`
	Type       string `json:"type"`
	CompanyID  string `json:"company_id"`
	To         string `json:"to"`
	CreatedAt  string `json:"created_at"`
	Copies     int    `json:"copies"`
	Deliveries []struct {
		Outcome string  `json:"outcome"`
		Event   *string `json:"event"`
		At      string  `json:"at"`
	} `json:"deliveries"`
}

// TestDataTeamExample runs the bundled sample through the whole pipeline
// (embedded Kafka and registry; the demo's driver), records Mailgun events
// for a few emails through `portalmail webhooks`, then runs docs/data.md's
// example against those topics: every email job is there once by key, joined
// with its sender outcome and, for those, its webhook events.
func TestDataTeamExample(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole sample (~10 s)")
	}
	py := pythonWithAvro(t)
	ctx := context.Background()
	mini := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mini.Addr()})
	defer rc.Close()
	env, err := pipeline.StartEmbedded(ctx, pipeline.EmbeddedOptions{Redis: rc})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	until, _ := time.Parse(time.DateOnly, "2027-01-31")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sum, err := pipeline.Demo(ctx, env, pipeline.DemoOptions{Input: examples.Sample, Until: until, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}

	// Mailgun reports the first three emails delivered, and one of them opened.
	r := &opsRig{env: env, mini: mini, logs: &syncBuffer{}}
	const signingKey = "whk-data-example"
	hook, _ := r.startWebhooks(t, signingKey)
	msgs := env.Mailgun.Messages()
	events := map[string][]string{}
	for i, m := range msgs[:3] {
		key := m.Vars[send.VarKey]
		for j, ev := range []string{"delivered", "opened"}[:1+i%2] {
			body := signedEventFor(signingKey, "tok-"+string(rune('a'+i))+string(rune('0'+j)), ev, key, m.Vars[send.VarEmailType])
			resp, err := http.Post(hook, "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("webhook %s %s: %d", ev, key, resp.StatusCode)
			}
			events[key] = append(events[key], ev)
		}
	}

	cmd := exec.Command(py, dataExample, "--bootstrap-servers", strings.Join(env.Brokers(), ","),
		"--schema-registry", env.Registry.URL(), "--timeout", "60")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", dataExample, err, stderr.String())
	}
	jobs := map[string]joinedJob{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var j joinedJob
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		jobs[j.Key] = j
	}
	if len(jobs) != sum.Sent {
		t.Fatalf("%d jobs joined, the pipeline sent %d\n%s", len(jobs), sum.Sent, stderr.String())
	}
	copies := 0
	for key, j := range jobs {
		if len(j.Deliveries) == 0 || j.Deliveries[0].Outcome != "sent" || j.Deliveries[0].Event != nil {
			t.Errorf("%s: first delivery record %+v, want the sender's sent", key, j.Deliveries)
			continue
		}
		if !strings.HasSuffix(j.CreatedAt, "Z") || j.Type == "" || j.To == "" {
			t.Errorf("%s: %+v", key, j)
		}
		var got []string
		for _, d := range j.Deliveries[1:] {
			if d.Event != nil {
				got = append(got, *d.Event)
			} else if d.Outcome != "duplicate_suppressed" {
				t.Errorf("%s: a second sender record with outcome %s", key, d.Outcome)
			}
		}
		if strings.Join(got, ",") != strings.Join(events[key], ",") {
			t.Errorf("%s: webhook events %v, want %v", key, got, events[key])
		}
		copies += j.Copies - 1
	}
	// The demo redelivers 5 jobs: the topic holds them twice, the key once.
	if copies != 5 || sum.Duplicates != 5 {
		t.Errorf("%d extra copies of jobs on the topic, %d duplicates suppressed; want 5 and 5", copies, sum.Duplicates)
	}
	t.Logf("example: %s", strings.TrimSpace(stderr.String()))
}

// signedEventFor is a signed Mailgun webhook body reporting event for the
// email with the given portalmail key.
func signedEventFor(signingKey, token, event, key, emailType string) []byte {
	var b map[string]any
	_ = json.Unmarshal(signedEvent(signingKey, token, event), &b)
	b["event-data"].(map[string]any)["user-variables"] = map[string]any{send.VarKey: key, send.VarEmailType: emailType}
	out, _ := json.Marshal(b)
	return out
}
