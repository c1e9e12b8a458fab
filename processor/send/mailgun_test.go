package send

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portalmail/portalmail/schemas"
)

func TestSendRecordsOneMessage(t *testing.T) {
	srv := newFake(t)
	m := newClient(t, srv)
	job := testJob()

	id, err := m.Send(context.Background(), job)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("recorded %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if id == "" || id != got.ID {
		t.Errorf("provider id %q, recorded id %q", id, got.ID)
	}
	checks := []struct{ field, got, want string }{
		{"Domain", got.Domain, testDomain},
		{"From", got.From, `"Acme Video" <noreply@mg.example.com>`},
		{"To", got.To, `"Pat Partner" <p@example.org>`},
		{"Subject", got.Subject, job.Subject},
		{"Text", got.Text, job.Text},
		{"HTML", got.HTML, job.HTML},
		{"ReplyTo", got.ReplyTo, job.ReplyTo},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	wantTags := []string{"trial.company_created", "trial", "partner"}
	if !reflect.DeepEqual(got.Tags, wantTags) {
		t.Errorf("Tags = %q, want %q", got.Tags, wantTags)
	}
	wantVars := map[string]string{
		"portalmail_key": job.Key,
		"email_type":     job.Type,
		"company_id":     job.CompanyID,
	}
	if !reflect.DeepEqual(got.Vars, wantVars) {
		t.Errorf("Vars = %v, want %v", got.Vars, wantVars)
	}
	if srv.Requests() != 1 {
		t.Errorf("Requests() = %d, want 1", srv.Requests())
	}
}

func TestSendOptionalFields(t *testing.T) {
	srv := newFake(t)
	m := newClient(t, srv)
	job := testJob()
	job.ReplyTo = ""
	job.CompanyID = ""
	job.HTML = ""
	job.Tags = []string{"", "one", " ", "two"}
	job.To.Name = ""

	if _, err := m.Send(context.Background(), job); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := srv.Messages()[0]
	if got.ReplyTo != "" {
		t.Errorf("ReplyTo = %q, want none", got.ReplyTo)
	}
	if _, ok := got.Headers["Reply-To"]; ok {
		t.Errorf("Reply-To header sent: %v", got.Headers)
	}
	if got.HTML != "" {
		t.Errorf("HTML = %q, want none", got.HTML)
	}
	if got.To != "p@example.org" {
		t.Errorf("To = %q, want the bare address", got.To)
	}
	if want := []string{"one", "two"}; !reflect.DeepEqual(got.Tags, want) {
		t.Errorf("Tags = %q, want %q", got.Tags, want)
	}
	if _, ok := got.Vars["company_id"]; ok {
		t.Errorf("empty company_id sent: %v", got.Vars)
	}
}

func TestSendRecipientQuoting(t *testing.T) {
	srv := newFake(t)
	m := newClient(t, srv)
	// Display names lose the characters that delimit or make up addresses:
	// no parser, however naive, can read a second recipient in them.
	cases := []struct {
		name, display, want, wantName string
	}{
		{"plain", "Jane Doe", `"Jane Doe" <jane@example.org>`, "Jane Doe"},
		{"comma", "Doe, Jane", `"Doe Jane" <jane@example.org>`, "Doe Jane"},
		{"quotes", `Jane "JJ" Doe`, `"Jane JJ Doe" <jane@example.org>`, "Jane JJ Doe"},
		{"angle", "Jane <Boss>", `"Jane Boss" <jane@example.org>`, "Jane Boss"},
		{"injection", `x" <attacker@evil.test>, "y`, `"x attackerevil.test y" <jane@example.org>`, "x attackerevil.test y"},
		{"non-ascii", "Jöns Åberg", "=?utf-8?q?J=C3=B6ns_=C3=85berg?= <jane@example.org>", "Jöns Åberg"},
		{"no name", "", "jane@example.org", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			job := testJob()
			job.To = schemas.Recipient{Address: "jane@example.org", Name: c.display, Role: "end_user"}
			if _, err := m.Send(context.Background(), job); err != nil {
				t.Fatalf("Send: %v", err)
			}
			msgs := srv.Messages()
			got := msgs[len(msgs)-1].To
			if got != c.want {
				t.Errorf("To = %q, want %q", got, c.want)
			}
			list, err := mail.ParseAddressList(got)
			if err != nil || len(list) != 1 {
				t.Fatalf("recorded To %q is not one address: %v %v", got, list, err)
			}
			if a := list[0]; a.Name != c.wantName || a.Address != "jane@example.org" {
				t.Errorf("To parses as (%q, %q), want (%q, jane@example.org)", a.Name, a.Address, c.wantName)
			}
		})
	}
}

func TestSendStatusClasses(t *testing.T) {
	cases := []struct {
		status    int
		permanent bool
	}{
		{http.StatusBadRequest, true},
		{http.StatusUnauthorized, true},
		{http.StatusForbidden, true},
		{http.StatusNotFound, true},
		{http.StatusRequestEntityTooLarge, true},
		{http.StatusRequestTimeout, false},
		{http.StatusTooManyRequests, false},
		{http.StatusInternalServerError, false},
		{http.StatusBadGateway, false},
		{http.StatusServiceUnavailable, false},
		{http.StatusGatewayTimeout, false},
	}
	for _, c := range cases {
		t.Run(strconv.Itoa(c.status), func(t *testing.T) {
			srv := newFake(t)
			m := newClient(t, srv)
			srv.FailNext(1, c.status, `{"message":"something about it"}`, nil)

			_, err := m.Send(context.Background(), testJob())
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if !strings.Contains(err.Error(), strconv.Itoa(c.status)) || !strings.Contains(err.Error(), "something about it") {
				t.Errorf("error %q lacks the status or Mailgun's message", err)
			}
			permanent, wait := Classify(err)
			if permanent != c.permanent || wait != 0 {
				t.Errorf("Classify = (%v, %s), want (%v, 0)", permanent, wait, c.permanent)
			}
			if got := errors.Is(err, ErrPermanent); got != c.permanent {
				t.Errorf("errors.Is(ErrPermanent) = %v", got)
			}
			var re *RetryableError
			if got := errors.As(err, &re); got == c.permanent {
				t.Errorf("errors.As(*RetryableError) = %v", got)
			} else if got && re.Status != c.status {
				t.Errorf("RetryableError.Status = %d, want %d", re.Status, c.status)
			}
			if len(srv.Messages()) != 0 {
				t.Error("a failed request was recorded as a message")
			}
		})
	}
}

func TestSendBadKeyIsPermanent(t *testing.T) {
	srv := newFake(t)
	srv.RequireKey("the-right-key")
	m := newClient(t, srv)
	var rec sleepRecorder
	_, attempts, err := SendWithRetry(context.Background(), m, testJob(), Backoff{Base: time.Millisecond}, 0, rec.sleep, nil)
	if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v, want a permanent 401", err)
	}
	if attempts != 1 || srv.Requests() != 1 || len(rec.recorded()) != 0 {
		t.Errorf("attempts %d, requests %d, sleeps %v; want 1, 1, none", attempts, srv.Requests(), rec.recorded())
	}
	if strings.Contains(err.Error(), testKey) {
		t.Errorf("error shows the API key: %v", err)
	}
}

func TestSendRateLimitWait(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		status int
		header http.Header
		want   time.Duration
	}{
		{"retry-after seconds", 429, http.Header{"Retry-After": {"7"}}, 7 * time.Second},
		{"retry-after date", 429, http.Header{"Retry-After": {now.Add(9 * time.Second).Format(http.TimeFormat)}}, 9 * time.Second},
		{"reset unix seconds", 429, http.Header{"X-RateLimit-Reset": {strconv.FormatInt(now.Add(12*time.Second).Unix(), 10)}}, 12 * time.Second},
		{"reset unix ms lower-case", 429, http.Header{"x-ratelimit-reset": {strconv.FormatInt(now.Add(12500*time.Millisecond).UnixMilli(), 10)}}, 12500 * time.Millisecond},
		{"reset in the past", 429, http.Header{"X-RateLimit-Reset": {strconv.FormatInt(now.Add(-time.Minute).Unix(), 10)}}, 0},
		{"retry-after wins", 429, http.Header{"Retry-After": {"3"}, "X-RateLimit-Reset": {strconv.FormatInt(now.Add(time.Minute).Unix(), 10)}}, 3 * time.Second},
		{"503 with retry-after", 503, http.Header{"Retry-After": {"4"}}, 4 * time.Second},
		{"no header", 429, nil, 0},
		{"garbage", 429, http.Header{"Retry-After": {"soon"}}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := newFake(t)
			m := newClient(t, srv)
			m.now = func() time.Time { return now }
			srv.FailNext(1, c.status, "", c.header)

			_, err := m.Send(context.Background(), testJob())
			var re *RetryableError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want *RetryableError", err)
			}
			if re.Wait != c.want || re.Status != c.status {
				t.Errorf("Wait %s, Status %d; want %s, %d", re.Wait, re.Status, c.want, c.status)
			}
			if _, wait := Classify(err); wait != c.want {
				t.Errorf("Classify wait = %s, want %s", wait, c.want)
			}
		})
	}
}

func TestSendWithRetryHonoursRateLimitReset(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	srv := newFake(t)
	m := newClient(t, srv)
	m.now = func() time.Time { return now }
	srv.FailNext(1, 429, "", http.Header{"X-RateLimit-Reset": {strconv.FormatInt(now.Add(30*time.Second).Unix(), 10)}})
	srv.FailNext(1, 429, "", http.Header{"Retry-After": {"2"}})

	var rec sleepRecorder
	b := Backoff{Base: 10 * time.Millisecond, Max: time.Second}
	id, attempts, err := SendWithRetry(context.Background(), m, testJob(), b, 0, rec.sleep, nil)
	if err != nil || id == "" {
		t.Fatalf("SendWithRetry = (%q, %v)", id, err)
	}
	if attempts != 3 || srv.Requests() != 3 || len(srv.Messages()) != 1 {
		t.Errorf("attempts %d, requests %d, messages %d; want 3, 3, 1", attempts, srv.Requests(), len(srv.Messages()))
	}
	waits := rec.recorded()
	if len(waits) != 2 || waits[0] < 30*time.Second || waits[1] < 2*time.Second {
		t.Errorf("waits %v, want at least [30s 2s]", waits)
	}
}

func TestSendWithRetryThroughServerErrors(t *testing.T) {
	srv := newFake(t)
	m := newClient(t, srv)
	srv.FailNext(5, 500, "", nil)

	var rec sleepRecorder
	var retries []int
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second}
	id, attempts, err := SendWithRetry(context.Background(), m, testJob(), b, 0, rec.sleep,
		func(attempt int, err error, wait time.Duration) {
			retries = append(retries, attempt)
			if p, _ := Classify(err); p {
				t.Errorf("retrying a permanent error %v", err)
			}
		})
	if err != nil || id == "" {
		t.Fatalf("SendWithRetry = (%q, %v)", id, err)
	}
	if attempts != 6 || srv.Requests() != 6 || len(srv.Messages()) != 1 {
		t.Errorf("attempts %d, requests %d, messages %d; want 6, 6, 1", attempts, srv.Requests(), len(srv.Messages()))
	}
	if !reflect.DeepEqual(retries, []int{1, 2, 3, 4, 5}) {
		t.Errorf("onRetry attempts %v", retries)
	}
	wantMax := []time.Duration{100, 200, 400, 800, 1000}
	for i, w := range rec.recorded() {
		if hi := wantMax[i] * time.Millisecond; w < hi/2 || w > hi {
			t.Errorf("wait %d = %s, want in [%s, %s]", i+1, w, hi/2, hi)
		}
	}
	if srv.Messages()[0].ID != id {
		t.Errorf("id %q is not the recorded one", id)
	}
}

func TestSendWithRetryPermanentStops(t *testing.T) {
	srv := newFake(t)
	m := newClient(t, srv)
	srv.FailNext(1, 400, `{"message":"'to' parameter is not a valid address"}`, nil)

	var rec sleepRecorder
	_, attempts, err := SendWithRetry(context.Background(), m, testJob(), Backoff{}, 0, rec.sleep, nil)
	if !errors.Is(err, ErrPermanent) {
		t.Fatalf("err = %v, want ErrPermanent", err)
	}
	if want := "mailgun: 400 'to' parameter is not a valid address: permanent delivery failure"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if attempts != 1 || srv.Requests() != 1 || len(rec.recorded()) != 0 {
		t.Errorf("attempts %d, requests %d, sleeps %v; want 1, 1, none", attempts, srv.Requests(), rec.recorded())
	}
}

func TestSendWithRetryMaxAttempts(t *testing.T) {
	srv := newFake(t)
	m := newClient(t, srv)
	srv.FailNext(10, 503, "", nil)

	var rec sleepRecorder
	_, attempts, err := SendWithRetry(context.Background(), m, testJob(), Backoff{Base: time.Millisecond}, 3, rec.sleep, nil)
	var re *RetryableError
	if !errors.Is(err, ErrExhausted) || !errors.As(err, &re) || re.Status != 503 {
		t.Fatalf("err = %v, want ErrExhausted wrapping a 503", err)
	}
	if attempts != 3 || srv.Requests() != 3 || len(rec.recorded()) != 2 {
		t.Errorf("attempts %d, requests %d, sleeps %d; want 3, 3, 2", attempts, srv.Requests(), len(rec.recorded()))
	}
}

func TestSendTimeoutIsRetryable(t *testing.T) {
	srv := newFake(t)
	m := newClient(t, srv, func(c *MailgunConfig) { c.Timeout = 150 * time.Millisecond })
	srv.Hang(3 * time.Second)

	start := time.Now()
	_, err := m.Send(context.Background(), testJob())
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Send took %s, the timeout is 150ms", elapsed)
	}
	var re *RetryableError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want *RetryableError", err)
	}
	if re.Status != 0 || re.Wait != 0 || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("err = %v (status %d, wait %s), want a timeout", err, re.Status, re.Wait)
	}
	if errors.Is(err, ErrPermanent) {
		t.Error("timeout classified permanent")
	}

	// SendWithRetry keeps trying and gets through once the server answers.
	sleep := func(ctx context.Context, d time.Duration) error {
		srv.Hang(0)
		return nil
	}
	id, attempts, err := SendWithRetry(context.Background(), m, testJob(), Backoff{Base: time.Millisecond}, 0, sleep, nil)
	if err != nil || id == "" || attempts != 2 {
		t.Errorf("SendWithRetry after a timeout = (%q, %d, %v), want 2 attempts", id, attempts, err)
	}
}

func TestSendCallerCancel(t *testing.T) {
	cases := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, context.DeadlineExceeded},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := newFake(t)
			m := newClient(t, srv, func(c *MailgunConfig) { c.Timeout = 10 * time.Second })
			srv.Hang(5 * time.Second)
			ctx, cancel := c.ctx()
			defer cancel()

			start := time.Now()
			_, err := m.Send(ctx, testJob())
			if elapsed := time.Since(start); elapsed > 3*time.Second {
				t.Errorf("Send took %s after the context ended", elapsed)
			}
			if err != c.want {
				t.Errorf("err = %v, want exactly %v", err, c.want)
			}
			var re *RetryableError
			if errors.As(err, &re) || errors.Is(err, ErrPermanent) {
				t.Errorf("err %v is classified", err)
			}

			var rec sleepRecorder
			_, attempts, err := SendWithRetry(ctx, m, testJob(), Backoff{}, 0, rec.sleep, nil)
			if err != c.want || attempts != 0 || len(rec.recorded()) != 0 {
				t.Errorf("SendWithRetry on an ended ctx = (%d, %v)", attempts, err)
			}
		})
	}
}

func TestSendOutage(t *testing.T) {
	srv := newFake(t)
	m := newClient(t, srv)
	srv.Down()

	_, err := m.Send(context.Background(), testJob())
	var re *RetryableError
	if !errors.As(err, &re) || re.Status != 0 {
		t.Fatalf("err = %v, want a retryable connection error", err)
	}

	var rec sleepRecorder
	sleep := func(ctx context.Context, d time.Duration) error {
		if len(rec.recorded()) == 3 {
			srv.Up()
		}
		return rec.sleep(ctx, d)
	}
	id, attempts, err := SendWithRetry(context.Background(), m, testJob(), Backoff{Base: time.Millisecond}, 0, sleep, nil)
	if err != nil || id == "" || attempts != 5 {
		t.Errorf("SendWithRetry through the outage = (%q, %d, %v), want 5 attempts", id, attempts, err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d messages recorded, want 1", n)
	}
}

func TestSendInvalidJobIsPermanentWithoutRequest(t *testing.T) {
	srv := newFake(t)
	m := newClient(t, srv)
	cases := []struct {
		name string
		mod  func(*schemas.EmailJob)
		want string
	}{
		{"no address", func(j *schemas.EmailJob) { j.To.Address = "" }, "recipient: no address"},
		{"no from", func(j *schemas.EmailJob) { j.From = " " }, "no from address"},
		{"no body", func(j *schemas.EmailJob) { j.Text, j.HTML = "", "" }, "no text or HTML body"},
		// Addresses are checked again at the edge, whatever made the job.
		{"quoted comma recipient", func(j *schemas.EmailJob) { j.To.Address = `"attacker@evil.test,x"@acme.example` }, "recipient: quoted or escaped local part"},
		{"recipient list", func(j *schemas.EmailJob) { j.To.Address = "a@acme.example,attacker@evil.test" }, "recipient: comma or semicolon"},
		{"recipient with a name", func(j *schemas.EmailJob) { j.To.Address = "Bob <bob@acme.example>" }, "recipient: white space inside"},
		{"recipient header injection", func(j *schemas.EmailJob) { j.To.Address = "p@example.org\r\nBcc: x@evil.test" }, "recipient: control character"},
		{"recipient not canonical", func(j *schemas.EmailJob) { j.To.Address = "p@Example.ORG" }, "recipient: not in canonical form"},
		{"recipient padded", func(j *schemas.EmailJob) { j.To.Address = " p@example.org" }, "recipient: not in canonical form"},
		{"reply-to list", func(j *schemas.EmailJob) { j.ReplyTo = "support@acme.example,attacker@evil.test" }, "reply-to: comma or semicolon"},
		{"reply-to injection", func(j *schemas.EmailJob) { j.ReplyTo = "r@acme.example\r\nCc: x@evil.test" }, "reply-to: control character"},
		{"reply-to with a name", func(j *schemas.EmailJob) { j.ReplyTo = "Support <support@acme.example>" }, "reply-to: white space inside"},
		{"from list", func(j *schemas.EmailJob) { j.From = "a@mg.example.com, attacker@evil.test" }, "from: not one address"},
		// net/mail unquotes the local part: posted bare, its comma would split.
		{"from quoted local part", func(j *schemas.EmailJob) { j.From = `Acme <"a,b"@mg.example.com>` }, "from: comma or semicolon"},
		{"subject injection", func(j *schemas.EmailJob) { j.Subject = "Hi\r\nBcc: x@evil.test" }, "control character in the subject"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			job := testJob()
			c.mod(&job)
			_, err := m.Send(context.Background(), job)
			if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want permanent %q", err, c.want)
			}
		})
	}
	if srv.Requests() != 0 {
		t.Errorf("%d requests made for invalid jobs", srv.Requests())
	}
}

func TestSendAcceptedWithUnreadableBody(t *testing.T) {
	srv := newFake(t)
	m := newClient(t, srv)
	srv.FailNext(1, 200, "not json", nil)
	id, err := m.Send(context.Background(), testJob())
	if err != nil || id != "" {
		t.Errorf("Send = (%q, %v), want accepted with an unknown id", id, err)
	}
}

func TestSendConcurrent(t *testing.T) {
	srv := newFake(t)
	m := newClient(t, srv)
	// Five requests are rate limited with Retry-After: 1; the others succeed
	// without headers. Each Send must classify with its own response's
	// headers, so every retry waits at least a second.
	srv.FailNext(5, 429, "", http.Header{"Retry-After": {"1"}})
	const n = 30
	var wg sync.WaitGroup
	var rec sleepRecorder
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			job := testJob()
			job.Key = fmt.Sprintf("k-%d", i)
			_, _, err := SendWithRetry(context.Background(), m, job, Backoff{Base: time.Millisecond}, 0, rec.sleep, nil)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	waits := rec.recorded()
	if len(waits) != 5 {
		t.Errorf("%d retries, want 5", len(waits))
	}
	for _, w := range waits {
		if w < time.Second {
			t.Errorf("retry waited %s, want >= 1s from its own Retry-After", w)
		}
	}
	keys := map[string]bool{}
	for _, msg := range srv.Messages() {
		keys[msg.Vars["portalmail_key"]] = true
	}
	if len(keys) != n || len(srv.Messages()) != n || srv.Requests() != n+5 {
		t.Errorf("%d messages for %d keys in %d requests, want %d, %d, %d", len(srv.Messages()), len(keys), srv.Requests(), n, n, n+5)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  MailgunConfig
		want []string // every one must appear
	}{
		{"empty", MailgunConfig{}, []string{"domain is required", "API key is required"}},
		{"everything wrong", MailgunConfig{Domain: "bad domain?", APIKey: "", Region: "mars", Timeout: -time.Second},
			[]string{"domain", "invalid characters", "API key is required", `region "mars"`, "timeout -1s is negative"}},
		{"api base not versioned", MailgunConfig{Domain: testDomain, APIKey: testKey, APIBase: "http://127.0.0.1:1"},
			[]string{"must end with an API version"}},
		{"api base relative", MailgunConfig{Domain: testDomain, APIKey: testKey, APIBase: "/v3"},
			[]string{"absolute http(s) URL"}},
		{"api base with credentials", MailgunConfig{Domain: testDomain, APIKey: testKey, APIBase: "https://api:" + testKey + "@example.com/v3"},
			[]string{"must not carry credentials"}},
		{"api base malformed with credentials", MailgunConfig{Domain: testDomain, APIKey: testKey, APIBase: "https://api:" + testKey + "%zz@example.com/v3"},
			[]string{"is not a URL: an invalid %-escape", "https://***@example.com/v3"}},
		{"api base with a query", MailgunConfig{Domain: testDomain, APIKey: testKey, APIBase: "https://example.com/v3?key=" + testKey},
			[]string{"must not carry a query", "https://example.com/v3?***"}},
		{"ok us", MailgunConfig{Domain: testDomain, APIKey: testKey}, nil},
		{"ok eu", MailgunConfig{Domain: testDomain, APIKey: testKey, Region: "EU"}, nil},
		{"ok api base", MailgunConfig{Domain: testDomain, APIKey: testKey, APIBase: "http://127.0.0.1:1234/v3"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
			} else if err == nil {
				t.Fatal("Validate = nil")
			}
			if err != nil {
				for _, w := range c.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), "%zz") {
					t.Errorf("error shows the API key: %q", err)
				}
				if _, nerr := NewMailgun(c.cfg); nerr == nil || nerr.Error() != err.Error() {
					t.Errorf("NewMailgun error %v, want the Validate error", nerr)
				}
			}
		})
	}
}

func TestConfigNeverPrintsKey(t *testing.T) {
	cfg := MailgunConfig{Domain: testDomain, APIKey: testKey, Region: "eu"}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "mailgun", cfg)
	m, err := NewMailgun(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		cfg.String(), fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprint(&cfg),
		logged.String(), m.String(), fmt.Sprintf("%v", m),
	} {
		if strings.Contains(s, testKey) {
			t.Errorf("API key printed: %s", s)
		}
	}
	if !strings.Contains(cfg.String(), "<redacted>") || !strings.Contains(m.String(), "https://api.eu.mailgun.net/v3") {
		t.Errorf("String() = %s / %s", cfg, m)
	}
}

func TestNewMailgunKeepsGivenClient(t *testing.T) {
	srv := newFake(t)
	given := &http.Client{Timeout: time.Minute}
	m := newClient(t, srv, func(c *MailgunConfig) { c.HTTPClient = given })
	if given.Transport != nil {
		t.Error("the given client was modified")
	}
	if _, err := m.Send(context.Background(), testJob()); err != nil {
		t.Fatal(err)
	}
	srv.FailNext(1, 429, "", http.Header{"Retry-After": {"5"}})
	_, err := m.Send(context.Background(), testJob())
	if _, wait := Classify(err); wait != 5*time.Second {
		t.Errorf("headers not captured through a given client: %v", err)
	}
}
