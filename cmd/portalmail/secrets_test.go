package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/portalmail/portalmail/processor/pipeline"
)

// The secrets of the URL flags in these tests all hold this fragment; a
// malformed one also holds a bad %-escape whose text net/url would quote.
const (
	secretMark = "S3cret"
	badEscape  = "%zz"
)

func password(id string) string { return "pw-" + id + "-" + secretMark }

// noSecret fails if text (one output of a run) shows any part of a secret.
func noSecret(t *testing.T, where, text string) {
	t.Helper()
	for _, s := range []string{secretMark, badEscape, "S3c%20ret", "S3c ret"} {
		if i := strings.Index(text, s); i >= 0 {
			t.Errorf("%s shows %q: …%s…", where, s, text[max(0, i-120):min(len(text), i+60)])
		}
	}
}

// cliRun is one run of the CLI in the background.
type cliRun struct {
	out, errb syncBuffer
	err       error
	done      chan struct{}
	cancel    context.CancelFunc
}

func startCLI(t *testing.T, env map[string]string, args ...string) *cliRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	r := &cliRun{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(r.done)
		r.err = run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), &r.out, &r.errb)
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// finish waits for the run to end (cancelling it after d) and checks that
// neither stdout, stderr (the logs) nor the error main would print show a
// secret.
func (r *cliRun) finish(t *testing.T, name string, d time.Duration) error {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(d):
		r.cancel()
		<-r.done
	}
	noSecret(t, name+": stdout", r.out.String())
	noSecret(t, name+": stderr", r.errb.String())
	if r.err != nil {
		noSecret(t, name+": the error", "portalmail: "+r.err.Error())
	}
	return r.err
}

// scrape fetches /readyz, /healthz and /metrics of addr and checks them.
func scrape(t *testing.T, name, addr string) {
	t.Helper()
	for _, path := range []string{"/readyz", "/healthz", "/metrics"} {
		_, body := get(t, "http://"+addr+path)
		noSecret(t, name+": "+path, body)
	}
}

// secretRig is the embedded Kafka (and Mailgun) plus, per run, a Redis and a
// schema registry that require the credentials of one case.
type secretRig struct {
	env    *pipeline.Embedded
	closed string // an address nothing listens on
}

func newSecretRig(t *testing.T) *secretRig {
	t.Helper()
	env, err := pipeline.StartEmbedded(context.Background(), pipeline.EmbeddedOptions{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	return &secretRig{env: env, closed: freeAddr(t)}
}

// redis starts a Redis requiring user u with password pw.
func (r *secretRig) redis(t *testing.T, pw string) *miniredis.Miniredis {
	t.Helper()
	m := miniredis.RunT(t)
	m.RequireUserAuth("u", pw)
	return m
}

// registry starts a schema registry requiring basic auth u:pw.
func (r *secretRig) registry(t *testing.T, pw string) *srfake.Registry {
	t.Helper()
	reg := srfake.New(srfake.WithAuth("Basic " + base64.StdEncoding.EncodeToString([]byte("u:"+pw))))
	t.Cleanup(reg.Close)
	return reg
}

func withCreds(rawURL, pw string) string {
	scheme, rest, _ := strings.Cut(rawURL, "://")
	return scheme + "://u:" + pw + "@" + rest
}

func (r *secretRig) base(extra ...string) map[string]string {
	env := map[string]string{
		"PORTALMAIL_BROKERS":          strings.Join(r.env.Brokers(), ","),
		"PORTALMAIL_MAILGUN_DOMAIN":   "mail.portalmail.example",
		"PORTALMAIL_MAILGUN_API_KEY":  "key-" + secretMark + "-mailgun",
		"PORTALMAIL_MAILGUN_API_BASE": r.env.Mailgun.URL(),
		"PORTALMAIL_LAG_INTERVAL":     "200ms",
		"PORTALMAIL_TICK":             "50ms",
		"PORTALMAIL_READY_TIMEOUT":    "300ms",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return env
}

// TestURLFlagSecretsNeverShow runs every command that takes a URL flag with
// that URL carrying credentials, malformed, and unreachable (at start-up and
// after it, for the stages), and checks stdout, stderr (the logs), the error
// and the stages' /readyz, /healthz and /metrics for any part of the
// secrets.
func TestURLFlagSecretsNeverShow(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every command a few dozen times")
	}
	rig := newSecretRig(t)
	input := "../../examples/sample.jsonl"
	okRedis := miniredis.RunT(t) // for the commands whose registry is the case
	okRedisURL := "redis://" + okRedis.Addr() + "/0"
	okRegistry := rig.env.Registry.URL()

	// Commands that end: every URL flag malformed or unreachable; a run is
	// expected to fail (wantErr) or to succeed.
	type oneShot struct {
		name    string
		args    []string
		wantErr bool
	}
	var shots []oneShot
	redisCmds := map[string][]string{
		"process":    {"process", "--schema-registry", okRegistry},
		"send":       {"send", "--schema-registry", okRegistry},
		"webhooks":   {"webhooks", "--schema-registry", okRegistry, "--webhook-signing-key", "whk", "--listen", "127.0.0.1:0"},
		"explain":    {"explain", "--company", "c1", "--schema-registry", okRegistry},
		"dlq replay": {"dlq", "replay", "--all", "--schema-registry", okRegistry},
		"simulate":   {"simulate", "--input", input},
	}
	registryCmds := map[string][]string{
		"process":  {"process", "--redis-url", okRedisURL},
		"send":     {"send", "--redis-url", okRedisURL},
		"webhooks": {"webhooks", "--redis-url", okRedisURL, "--webhook-signing-key", "whk", "--listen", "127.0.0.1:0"},
		"explain":  {"explain", "--company", "c1", "--redis-url", okRedisURL},
		"dlq list": {"dlq", "list"},
	}
	for cmd, args := range redisCmds {
		for kind, url := range map[string]string{
			"malformed (bad escape)": "redis://u:" + password("r1") + badEscape + "@" + okRedis.Addr() + "/0",
			"malformed (space)":      "redis://u:S3c ret-" + password("r2") + "@" + okRedis.Addr() + "/0",
			"unreachable":            "redis://u:" + password("r3") + "@" + rig.closed + "/0",
			// (An unreachable Sentinel keeps Open retrying until cancelled;
			// its errors are covered by state's TestOpenErrorsShowNoSecret.)
			"malformed cluster entry": rig.closed + ",redis://u:" + password("r5") + badEscape + "@" + rig.closed,
		} {
			shots = append(shots, oneShot{cmd + " --redis-url " + kind, append(append([]string{}, args...), "--redis-url", url), true})
		}
	}
	for cmd, args := range registryCmds {
		for kind, url := range map[string]string{
			"malformed (bad escape)": "http://u:" + password("s1") + badEscape + "@" + strings.TrimPrefix(okRegistry, "http://"),
			"malformed (space)":      "http://u:S3c ret-" + password("s2") + "@" + strings.TrimPrefix(okRegistry, "http://"),
			"with a query":           okRegistry + "?token=" + password("s3"),
			"unreachable":            "http://u:" + password("s4") + "@" + rig.closed,
		} {
			// dlq list needs no registry, explain only to decode jobs it finds.
			wantErr := kind != "unreachable" || (cmd != "dlq list" && cmd != "explain")
			shots = append(shots, oneShot{cmd + " --schema-registry " + kind, append(append([]string{}, args...), "--schema-registry", url), wantErr})
		}
	}
	for _, base := range []string{"--mailgun-api-base"} {
		for kind, url := range map[string]string{
			"malformed":        "http://api:" + password("m1") + badEscape + "@" + strings.TrimPrefix(rig.env.Mailgun.URL(), "http://"),
			"with credentials": withCreds(rig.env.Mailgun.URL(), password("m2")),
			"with a query":     rig.env.Mailgun.URL() + "?key=" + password("m3"),
		} {
			shots = append(shots, oneShot{"send " + base + " " + kind, []string{"send", "--redis-url", okRedisURL, "--schema-registry", okRegistry, base, url}, true})
		}
	}
	for _, cmd := range []string{"process", "simulate"} {
		for _, flag := range []string{"--portal-url", "--service-url", "--analytics-url"} {
			for kind, url := range map[string]string{
				"malformed":        "https://u:" + password("l1") + badEscape + "@portal.example",
				"with credentials": "https://u:" + password("l2") + "@portal.example",
				"with a query":     "https://portal.example/?token=" + password("l3"),
			} {
				args := []string{cmd, "--redis-url", okRedisURL, "--schema-registry", okRegistry, flag, url}
				if cmd == "simulate" {
					args = []string{cmd, "--input", input, flag, url}
				}
				shots = append(shots, oneShot{cmd + " " + flag + " " + kind, args, true})
			}
		}
	}
	for _, s := range shots {
		start := time.Now()
		err := startCLI(t, rig.base(), s.args...).finish(t, s.name, 15*time.Second)
		if (err != nil) != s.wantErr {
			t.Errorf("%s: error %v, want an error: %v", s.name, err, s.wantErr)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Logf("%s took %s", s.name, took.Round(time.Millisecond))
		}
	}

	// The stages with valid credentials in their URLs: served, then their
	// registry and their Redis become unreachable.
	for _, stage := range []string{"process", "send"} {
		pw := password("v-" + stage)
		m, reg := rig.redis(t, pw), rig.registry(t, pw)
		addr := freeAddr(t)
		r := startCLI(t, rig.base(), stage, "--http-addr", addr, "--group", "secrets-"+stage,
			"--redis-url", withCreds("redis://"+m.Addr()+"/0", pw), "--schema-registry", withCreds(reg.URL(), pw))
		name := stage + " with valid credentials"
		waitFor(t, 20*time.Second, func() string {
			if code, body := get(t, "http://"+addr+"/readyz"); code != http.StatusOK {
				return fmt.Sprintf("%s: /readyz %d %s (%s)", name, code, body, r.errb.String())
			}
			return ""
		})
		scrape(t, name, addr)
		for _, down := range []struct {
			check string
			stop  func()
		}{{"schema_registry", reg.Close}, {"redis", m.Close}} {
			down.stop()
			waitFor(t, 20*time.Second, func() string {
				if _, body := get(t, "http://"+addr+"/readyz"); !strings.Contains(body, `"`+down.check+`":`) {
					return fmt.Sprintf("%s: /readyz does not report %s down: %s", name, down.check, body)
				}
				return ""
			})
			scrape(t, name+", "+down.check+" down", addr)
		}
		_ = r.finish(t, name, 0)
	}
	for _, m := range []struct {
		name string
		args func(redisURL, registryURL string) []string
	}{
		{"webhooks", func(rd, rg string) []string {
			return []string{"webhooks", "--redis-url", rd, "--schema-registry", rg, "--webhook-signing-key", "whk", "--listen", freeAddr(t)}
		}},
		{"explain", func(rd, rg string) []string {
			return []string{"explain", "--company", "c1", "--redis-url", rd, "--schema-registry", rg}
		}},
		{"dlq replay", func(rd, rg string) []string {
			return []string{"dlq", "replay", "--all", "--redis-url", rd, "--schema-registry", rg}
		}},
		{"dlq list", func(_, rg string) []string { return []string{"dlq", "list", "--schema-registry", rg} }},
		{"simulate", func(rd, _ string) []string { return []string{"simulate", "--input", input, "--redis-url", rd} }},
	} {
		pw := password("v-" + strings.ReplaceAll(m.name, " ", "-"))
		rd, rg := rig.redis(t, pw), rig.registry(t, pw)
		r := startCLI(t, rig.base(), m.args(withCreds("redis://"+rd.Addr()+"/0", pw), withCreds(rg.URL(), pw))...)
		if err := r.finish(t, m.name+" with valid credentials", 2*time.Second); err != nil && m.name != "webhooks" {
			t.Errorf("%s with valid credentials: %v", m.name, err)
		}
	}
	t.Logf("%d one-shot runs and 7 runs with valid credentials", len(shots))
}
