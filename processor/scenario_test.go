package processor_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/processor/simulate"
	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/portalmail/portalmail/state"
	"github.com/portalmail/portalmail/state/memory"
	"github.com/portalmail/portalmail/templates"
)

// The scenario tests drive the engine, over real state, with one CDC scenario
// per catalog type: testdata/scenarios/base.jsonl (the shared reference rows,
// snapshot reads) followed by <type-id>.jsonl, run through simulate.Run as
// `portalmail simulate` runs it, against <type-id>.want.jsonl. A want file's
// first line is {"until": RFC 3339, "dlq": N (optional, default 0)}; every
// further line is one expected email {"type", "to", "role", "subject", "at"}.
// The want files are written from DESIGN.md and the spec, never copied from
// the engine's output; the expected set is every email the scenario produces.

const scenarioDir = "../testdata/scenarios"

// scenarioEmail is what a scenario checks of one email.
type scenarioEmail struct {
	Type    string `json:"type"`
	To      string `json:"to"`
	Role    string `json:"role"`
	Subject string `json:"subject"`
	At      string `json:"at"`
}

func (e scenarioEmail) String() string {
	return fmt.Sprintf("%s  %-32s %-28s %-18s %q", e.At, e.Type, e.To, e.Role, e.Subject)
}

// scenarioWant is a parsed want file.
type scenarioWant struct {
	Until  time.Time
	DLQ    int
	Emails []scenarioEmail
}

// scenarioResult is what one run of a scenario produced.
type scenarioResult struct {
	Emails []scenarioEmail
	DLQ    []simulate.DeadLetter
}

func scenarioPaths(id catalog.TypeID) (input, want string) {
	return filepath.Join(scenarioDir, string(id)+".jsonl"), filepath.Join(scenarioDir, string(id)+".want.jsonl")
}

// TestScenarios runs every catalog type's scenario on each State, the Redis
// store (a real redis-server in `make test`) and the in-memory one, and
// compares the emails and the number of dead letters with the want file.
func TestScenarios(t *testing.T) {
	t.Parallel()
	keys := scenarioKeySpace(t)
	for _, store := range []string{"redis", "memory"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			for _, typ := range catalog.Default() {
				t.Run(string(typ.ID), func(t *testing.T) {
					t.Parallel()
					input, wantPath := scenarioPaths(typ.ID)
					want := readScenarioWant(t, wantPath)
					if !slices.ContainsFunc(want.Emails, func(e scenarioEmail) bool { return e.Type == string(typ.ID) }) {
						t.Errorf("%s expects no email of type %s", wantPath, typ.ID)
					}
					var st processor.State = memory.New(memory.Options{})
					if store == "redis" {
						st = state.New(scenarioRedis(t), state.Options{Prefix: keys + "-" + string(typ.ID)})
					}
					got := runScenario(t, st, input, want.Until)
					if diff := diffScenarioEmails(want.Emails, got.Emails); diff != "" {
						t.Errorf("emails differ from %s (- want, + got):\n%s", wantPath, diff)
					}
					if len(got.DLQ) != want.DLQ {
						var b strings.Builder
						for _, d := range got.DLQ {
							fmt.Fprintf(&b, "\n  line %d %s: %s", d.Line, d.Topic, d.Reason)
						}
						t.Errorf("%d dead letters, want %d (%s):%s", len(got.DLQ), want.DLQ, wantPath, b.String())
					}
				})
			}
		})
	}
}

// TestEveryCatalogTypeHasAScenario lists every catalog type lacking its
// scenario input or want file.
func TestEveryCatalogTypeHasAScenario(t *testing.T) {
	var missing []string
	for _, typ := range catalog.Default() {
		input, want := scenarioPaths(typ.ID)
		for _, p := range []string{input, want} {
			if _, err := os.Stat(p); err != nil {
				missing = append(missing, p)
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d scenario files missing:\n  %s", len(missing), strings.Join(missing, "\n  "))
	}
}

// readScenarioWant parses a want file strictly: unknown fields are errors.
func readScenarioWant(t *testing.T, path string) scenarioWant {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read want file: %v", err)
	}
	var w scenarioWant
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if n == 1 {
			var head struct {
				Until string `json:"until"`
				DLQ   int    `json:"dlq"`
			}
			if err := dec.Decode(&head); err != nil {
				t.Fatalf("%s:1: %v", path, err)
			}
			until, err := time.Parse(time.RFC3339, head.Until)
			if err != nil {
				t.Fatalf("%s:1: until: %v", path, err)
			}
			w.Until, w.DLQ = until, head.DLQ
			continue
		}
		var e scenarioEmail
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		at, err := time.Parse(time.RFC3339, e.At)
		if err != nil {
			t.Fatalf("%s:%d: at: %v", path, n, err)
		}
		e.At = at.UTC().Format(time.RFC3339)
		w.Emails = append(w.Emails, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if w.Until.IsZero() {
		t.Fatalf("%s: no until line", path)
	}
	return w
}

var scenarioTemplates = sync.OnceValues(templates.Parse)

// runScenario runs base.jsonl and then input through the engine, built as
// `portalmail simulate` builds it, on st (fresh state).
func runScenario(t *testing.T, st processor.State, input string, until time.Time) scenarioResult {
	t.Helper()
	ctx := context.Background()
	var in bytes.Buffer
	for _, p := range []string{filepath.Join(scenarioDir, "base.jsonl"), input} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("read scenario: %v", err)
		}
		in.Write(data)
		in.WriteByte('\n')
	}
	tmpl, err := scenarioTemplates()
	if err != nil {
		t.Fatalf("templates: %v", err)
	}
	eng, err := processor.New(catalog.Default(), st, tmpl, processor.Config{
		Zone: time.UTC, ParkFor: 24 * time.Hour, FromAddress: "noreply@mail.pexip.example",
		Links: map[catalog.Site]string{
			catalog.SitePortal:    "https://portal.pexip.example",
			catalog.SiteService:   "https://service.pexip.example",
			catalog.SiteAnalytics: "https://analytics.pexip.example",
		},
	})
	if err != nil {
		t.Fatalf("processor.New: %v", err)
	}
	var res scenarioResult
	err = simulate.Run(ctx, eng, cdc.NewDecoder(cdc.DecoderConfig{}), &in, until, simulate.Sink{
		Email: func(e simulate.Email) error {
			res.Emails = append(res.Emails, scenarioEmail{Type: e.Type, To: e.To, Role: e.Role, Subject: e.Subject,
				At: e.At.UTC().Format(time.RFC3339)})
			return nil
		},
		DeadLetter: func(d simulate.DeadLetter) error {
			res.DLQ = append(res.DLQ, d)
			return nil
		},
	})
	if err != nil {
		t.Fatalf("simulate.Run: %v", err)
	}
	return res
}

// scenarioRedis returns a client on $REDIS_URL, or else on a fresh miniredis.
func scenarioRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	var c redis.UniversalClient
	if url := os.Getenv("REDIS_URL"); url != "" {
		var err error
		if c, err = state.Open(context.Background(), url); err != nil {
			t.Fatalf("open redis: %v", err)
		}
	} else {
		c = redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// scenarioKeySpace returns a unique random key prefix for the scenarios of
// one test (each scenario appends "-<type id>") and, against $REDIS_URL,
// deletes their keys once the test and its subtests are done: one scan of the
// shared keyspace per test, not one per scenario.
func scenarioKeySpace(t *testing.T) string {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	keys := "pmscenario-" + hex.EncodeToString(rnd[:])
	url := os.Getenv("REDIS_URL")
	if url == "" {
		return keys
	}
	t.Cleanup(func() {
		ctx := context.Background()
		c, err := state.Open(ctx, url)
		if err != nil {
			t.Errorf("clean up redis keys: %v", err)
			return
		}
		defer c.Close()
		var cursor uint64
		for {
			found, next, err := c.Scan(ctx, cursor, keys+"-*", 1000).Result()
			if err != nil {
				t.Errorf("clean up redis keys: %v", err)
				return
			}
			if len(found) > 0 {
				if err := c.Del(ctx, found...).Err(); err != nil {
					t.Errorf("clean up redis keys: %v", err)
					return
				}
			}
			if cursor = next; cursor == 0 {
				return
			}
		}
	})
	return keys
}

// diffScenarioEmails compares want and got as sorted multisets and returns
// the emails only in want ("-") and only in got ("+"), in time order; "" when
// they are equal.
func diffScenarioEmails(want, got []scenarioEmail) string {
	left := map[scenarioEmail]int{}
	for _, e := range got {
		left[e]++
	}
	type line struct {
		sign string
		e    scenarioEmail
	}
	var lines []line
	for _, e := range want {
		if left[e] > 0 {
			left[e]--
			continue
		}
		lines = append(lines, line{"-", e})
	}
	for _, e := range got {
		if left[e] > 0 {
			left[e]--
			lines = append(lines, line{"+", e})
		}
	}
	if len(lines) == 0 {
		return ""
	}
	slices.SortStableFunc(lines, func(a, b line) int {
		return strings.Compare(a.e.String()+a.sign, b.e.String()+b.sign)
	})
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%s %s\n", l.sign, l.e)
	}
	return b.String()
}

// TestBundledDataLooksLikeDebezium3: the sample and every scenario are in the
// form Debezium 3.6's PostgreSQL connector writes with the JsonConverter and
// schemas.enable=true (cmd/cdcfmt writes them so): wrapped keys and values,
// the 3.x source block, realistic LSNs, sub-millisecond times.
func TestBundledDataLooksLikeDebezium3(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(scenarioDir, "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../examples/sample.jsonl")
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".want.jsonl") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
			var rec struct {
				Key   map[string]json.RawMessage `json:"key"`
				Value *struct {
					Schema  map[string]any `json:"schema"`
					Payload struct {
						Source map[string]any `json:"source"`
						TsUs   json.Number    `json:"ts_us"`
					} `json:"payload"`
				} `json:"value"`
			}
			if err := json.Unmarshal(line, &rec); err != nil {
				continue // the sample's deliberate poison line
			}
			if rec.Key["schema"] == nil || rec.Key["payload"] == nil {
				t.Errorf("%s:%d: key not in the schema/payload wrapper", f, n+1)
			}
			if rec.Value == nil {
				continue // tombstone
			}
			src := rec.Value.Payload.Source
			lsn, _ := src["lsn"].(float64)
			if rec.Value.Schema == nil || !strings.HasPrefix(fmt.Sprint(src["version"]), "3.") || src["sequence"] == nil ||
				src["ts_us"] == nil || src["ts_ns"] == nil || src["txId"] == nil || src["snapshot"] == nil || lsn < 1e7 || rec.Value.Payload.TsUs == "" {
				t.Errorf("%s:%d: not Debezium 3.x's shape (source %v)", f, n+1, src)
			}
			checked++
		}
	}
	if checked < 100 {
		t.Fatalf("only %d records checked", checked)
	}
}
