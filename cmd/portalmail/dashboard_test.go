package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	dashboardFile = "../../deploy/grafana/portalmail.json"
	alertsFile    = "../../deploy/alerts.yml"
)

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID    string  `json:"uid"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Links []struct {
		Title string `json:"title"`
		URL   string `json:"url"`
	} `json:"links"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// alertRules are the alert names and expressions of deploy/alerts.yml, which
// keeps one expression per line (`expr: ...`), so no YAML parser is needed.
func alertRules(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]string{}
	var name string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "- alert:"); ok {
			name = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "expr:"); ok {
			v = strings.TrimSpace(v)
			if name == "" || v == "" || v == "|" || v == ">" {
				t.Fatalf("%s: keep each rule's expr on its own line, after its alert: %q", alertsFile, line)
			}
			rules[name] = v
		}
	}
	if len(rules) == 0 {
		t.Fatalf("%s: no rules", alertsFile)
	}
	return rules
}

var (
	promStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promVars     = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true}
)

// metricNames are the metric names a PromQL expression selects: what is
// left of its identifiers once strings, label matchers, ranges, grouping
// clauses, Grafana variables, function calls and keywords are taken out.
func metricNames(expr string) []string {
	s := promStrings.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	s = promVars.ReplaceAllString(s, " ")
	var names []string
	for _, m := range promIdent.FindAllStringSubmatch(s, -1) {
		if m[1] != "" || promKeywords[m[0]] { // a function or aggregation, or a keyword
			continue
		}
		names = append(names, m[0])
	}
	return names
}

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`sum by (table) (rate(portalmail_changes_consumed_total[$__rate_interval]))`, []string{"portalmail_changes_consumed_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(portalmail_batch_duration_seconds_bucket{job="x"}[5m]))) > 5`, []string{"portalmail_batch_duration_seconds_bucket"}},
		{`absent(up{job="portalmail-send"} == 1) or absent(up{job="a"} == 1)`, []string{"up", "up"}},
		{`sum(rate(a_total{result="aborted"}[15m])) > 0.1 * sum(rate(b_total[15m]))`, []string{"a_total", "b_total"}},
		{`max by (group) (sum by (group, instance) (lag)) > 1000 and deriv(max by (group) (x)[10m:1m]) > 0`, []string{"lag", "x"}},
		{`sum without (instance) (m{l=~"a|b", k!="}"})`, []string{"m"}},
	}
	for _, tt := range tests {
		if got := metricNames(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

// TestDashboardShape: one dashboard, unique panel ids, every panel on the
// datasource variable with a query, the metrics the dashboard is for all
// shown, and every alert rule of deploy/alerts.yml linked from a panel (and
// every link naming a rule that exists).
func TestDashboardShape(t *testing.T) {
	d := readDashboard(t)
	rules := alertRules(t)
	ids := map[int]bool{}
	linked := map[string]bool{}
	used := map[string]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		for _, l := range p.Links {
			_, name, ok := strings.Cut(l.URL, "/alerting/list?search=")
			if _, known := rules[name]; !ok || !known {
				t.Errorf("panel %q links %s, not an alert rule of %s", p.Title, l.URL, alertsFile)
			}
			linked[name] = true
		}
		if p.Type == "row" || p.Type == "alertlist" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: want the ${datasource} variable and at least one query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, n := range metricNames(tg.Expr) {
				used[n] = true
			}
		}
	}
	for name := range rules {
		if !linked[name] {
			t.Errorf("alert %s is linked from no panel", name)
		}
	}
	for _, m := range []string{"portalmail_changes_consumed_total", "portalmail_jobs_emitted_total", "portalmail_sends_total",
		"portalmail_consumer_lag", "portalmail_batch_duration_seconds_bucket", "portalmail_timers_total", "portalmail_parked_total",
		"portalmail_dead_letters_total", "portalmail_mailgun_request_duration_seconds_count", "portalmail_send_retries_total",
		"portalmail_webhook_events_total"} {
		if !used[m] {
			t.Errorf("the dashboard shows no %s", m)
		}
	}
	if d.UID != "portalmail" {
		t.Errorf("dashboard uid %q", d.UID)
	}
}

// servedNames are the metric names of a scrape, histogram and summary series
// included ("# TYPE name histogram" serves name_bucket, name_sum, name_count).
func servedNames(scrape string, into map[string]bool) {
	for _, line := range strings.Split(scrape, "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" {
			continue
		}
		into[f[2]] = true
		switch f[3] {
		case "histogram":
			into[f[2]+"_bucket"], into[f[2]+"_sum"], into[f[2]+"_count"] = true, true, true
		case "summary":
			into[f[2]+"_sum"], into[f[2]+"_count"] = true, true
		}
	}
}

// startWebhooks runs `portalmail webhooks` against the rig's Kafka, registry
// and Redis; it returns the webhook URL and the ops address.
func (r *opsRig) startWebhooks(t *testing.T, signingKey string) (url, opsAddr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	listen, opsAddr := freeAddr(t), freeAddr(t)
	vars := map[string]string{
		"PORTALMAIL_BROKERS":             strings.Join(r.env.Brokers(), ","),
		"PORTALMAIL_SCHEMA_REGISTRY":     r.env.Registry.URL(),
		"PORTALMAIL_REDIS_URL":           "redis://" + r.mini.Addr() + "/0",
		"PORTALMAIL_LISTEN":              listen,
		"PORTALMAIL_HTTP_ADDR":           opsAddr,
		"PORTALMAIL_WEBHOOK_SIGNING_KEY": signingKey,
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := run(ctx, []string{"webhooks"}, func(k string) string { return vars[k] }, strings.NewReader(""), io.Discard, r.logs); err != nil && ctx.Err() == nil {
			t.Errorf("webhooks: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	waitFor(t, 20*time.Second, func() string {
		if code, body := get(t, "http://"+opsAddr+"/readyz"); code != http.StatusOK {
			return fmt.Sprintf("webhooks /readyz: %d %s", code, body)
		}
		return ""
	})
	return "http://" + listen + "/webhooks/mailgun", opsAddr
}

// signedEvent is a Mailgun webhook body for one event, signed with key.
func signedEvent(key, token, event string) []byte {
	stamp := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(stamp + token))
	body, _ := json.Marshal(map[string]any{
		"signature": map[string]any{"timestamp": stamp, "token": token, "signature": hex.EncodeToString(mac.Sum(nil))},
		"event-data": map[string]any{"event": event, "timestamp": float64(time.Now().Unix()), "id": "evt-" + token,
			"message":        map[string]any{"headers": map[string]any{"message-id": "20260105.1@mail.test"}},
			"user-variables": map[string]any{"portalmail_key": "service.endpoint_enabled|x|e1|@102|abc", "email_type": "service.endpoint_enabled"}},
	})
	return body
}

// TestDashboardAndAlertsQueryServedMetrics starts process, send and webhooks
// as the CLI runs them (embedded Kafka, registry, Mailgun; miniredis), drives
// a little of everything through them (CDC changes, a parked change, a
// poison record, a Mailgun 500 and its retry, a webhook event), scrapes their
// /metrics, and fails if the dashboard or an alert rule queries a metric
// name none of them serves.
func TestDashboardAndAlertsQueryServedMetrics(t *testing.T) {
	queries := map[string]string{} // expression → where
	for _, p := range readDashboard(t).Panels {
		for _, tg := range p.Targets {
			queries[tg.Expr] = "dashboard panel " + strconv.Quote(p.Title)
		}
	}
	for name, expr := range alertRules(t) {
		queries[expr] = "alert " + name
	}

	r := startOpsRig(t, map[string]string{"PORTALMAIL_RETRY_BASE": "10ms", "PORTALMAIL_RETRY_MAX": "20ms"})
	const key = "whk-dashboard-test"
	hook, whOps := r.startWebhooks(t, key)
	r.waitReady(t)
	r.env.Mailgun.FailNext(1, http.StatusInternalServerError, "", nil)
	r.produce(t, endpointScenario()...)
	resp, err := http.Post(hook, "application/json", bytes.NewReader(signedEvent(key, "tok-1", "delivered")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook: %d", resp.StatusCode)
	}

	served := map[string]bool{"up": true} // up: synthesized by Prometheus for every target
	for _, addr := range []string{r.procAddr, r.sendAddr, whOps} {
		waitFor(t, 20*time.Second, func() string {
			code, scrape := get(t, "http://"+addr+"/metrics")
			if code != http.StatusOK {
				return fmt.Sprintf("%s/metrics: %d", addr, code)
			}
			// Wait for the series that only appear once observed.
			for _, s := range []string{"portalmail_consumer_lag{", "portalmail_sends_total{", "portalmail_send_retries_total{",
				"portalmail_jobs_emitted_total{", `portalmail_webhook_events_total{event="delivered",result="recorded"} 1`} {
				if addr == r.procAddr && (strings.HasPrefix(s, "portalmail_se") || strings.Contains(s, "webhook")) ||
					addr == r.sendAddr && (strings.HasPrefix(s, "portalmail_jobs") || strings.Contains(s, "webhook")) ||
					addr == whOps && !strings.Contains(s, "webhook") {
					continue
				}
				if !strings.Contains(scrape, "\n"+s) {
					return fmt.Sprintf("%s/metrics has no %s yet", addr, s)
				}
			}
			servedNames(scrape, served)
			return ""
		})
	}
	var missing []string
	for expr, where := range queries {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric in %q", where, expr)
		}
		for _, n := range names {
			if !served[n] {
				missing = append(missing, fmt.Sprintf("%s queries %s, which no stage serves", where, n))
			}
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Error(m)
	}
}
