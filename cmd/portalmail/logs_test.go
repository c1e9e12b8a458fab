package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Secrets and content of the bundled sample that must never be logged: the
// activation tokens of its rows, and sentences of the email bodies it causes.
var neverLogged = []string{
	"tok-eu-1", "tok-pu", "tok-an", // activation tokens of the sample
	"To start using it, please activate your account and choose a password", // account.portal_activate body
	"has been enabled. The video system can now use the Pexip Service",      // service.endpoint_enabled body
	"demo-key", // the demo's Mailgun API key
}

var addressPattern = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[a-z]{2,}`)

// checkJSONLogs fails on a line that is not a JSON object, or that holds
// any of never; with noAddresses, on a line holding an email address.
func checkJSONLogs(t *testing.T, logs string, never []string, noAddresses bool) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	if len(lines) < 5 {
		t.Fatalf("only %d log lines:\n%s", len(lines), logs)
	}
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line is not JSON: %s", line)
			continue
		}
		for _, s := range never {
			if strings.Contains(line, s) {
				t.Errorf("log line holds %q: %s", s, line)
			}
		}
		if noAddresses {
			if a := addressPattern.FindString(line); a != "" {
				t.Errorf("log line at info holds the address %q: %s", a, line)
			}
		}
	}
}

// TestLogsHoldNoSecretsOrBodies runs the whole bundled sample (the demo: the
// production stages on embedded parts) with JSON logs, at debug and at the
// default info level: no token, API key or body text at any level, and no
// address at info.
func TestLogsHoldNoSecretsOrBodies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo twice")
	}
	for _, level := range []string{"debug", "info"} {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			_, logs, err := runCLI(t, nil, "demo", "--log-format", "json", "--log-level", level)
			if err != nil {
				t.Fatal(err)
			}
			checkJSONLogs(t, logs, neverLogged, level == "info")
			if level == "debug" && !strings.Contains(logs, `"idempotency_key"`) {
				t.Error("debug logs have no idempotency_key: the stages did not log at debug")
			}
		})
	}
}

// TestStageLogsHoldNoAPIKeyOrAddresses runs `portalmail process` and `send`
// with their default log settings (JSON, info) over a scenario that sends
// mail and dead-letters a record: the API key given in the environment and
// the recipients' addresses appear in no log line.
func TestStageLogsHoldNoAPIKeyOrAddresses(t *testing.T) {
	r := startOpsRig(t, nil)
	r.waitReady(t)
	r.produce(t, endpointScenario()...)
	waitFor(t, 20*time.Second, func() string {
		_, scrape := get(t, "http://"+r.sendAddr+"/metrics")
		if v, _ := metricValue(scrape, `portalmail_sends_total{email_type="service.endpoint_enabled",outcome="sent"}`); v != "4" {
			return "4 sends not seen"
		}
		return ""
	})
	if code, _ := get(t, "http://"+r.procAddr+"/healthz"); code != http.StatusOK {
		t.Fatal("process not alive")
	}
	logs := r.logs.String()
	for _, want := range []string{`"msg":"sent"`, `"email_type":"service.endpoint_enabled"`, `"msg":"dead-lettering undecodable record"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	checkJSONLogs(t, logs, []string{"key-ops-test-secret-0123456789", "has been enabled. The video system"}, true)
	// franz-go's transaction cycle is logged at debug level (kafkaLogger),
	// its group events at info.
	for m := range txnChatter {
		if strings.Contains(logs, `"msg":"`+m+`"`) {
			t.Errorf("franz-go's %q is logged at info level", m)
		}
	}
	if !strings.Contains(logs, `"msg":"assigning partitions"`) {
		t.Errorf("franz-go's group events are not logged:\n%s", logs)
	}
}
