package mailgunfake

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func post(t *testing.T, target, contentType string, body io.Reader, user, pass string) (int, http.Header, map[string]string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]string{}
	_ = json.Unmarshal(raw, &out)
	if len(out) == 0 {
		out["raw"] = string(raw)
	}
	return resp.StatusCode, resp.Header, out
}

func form() url.Values {
	return url.Values{
		"from":                {"Acme <noreply@mg.example.com>"},
		"to":                  {"jane@example.org"},
		"subject":             {"Hi"},
		"text":                {"Hello"},
		"html":                {"<p>Hello</p>"},
		"h:Reply-To":          {"help@acme.example"},
		"o:tag":               {"a", "b"},
		"v:portalmail_key":    {"k1"},
		"v:email_type":        {"t"},
		"h:X-Something-Extra": {"x"},
	}
}

func multipartBody(t *testing.T, v url.Values) (string, io.Reader) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, vs := range v {
		for _, s := range vs {
			if err := w.WriteField(k, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), &buf
}

func TestAcceptsBothEncodings(t *testing.T) {
	s := New()
	defer s.Close()
	target := s.URL() + "/mg.example.com/messages"

	ct, body := multipartBody(t, form())
	status, _, out := post(t, target, ct, body, "api", "key")
	if status != 200 || out["message"] != "Queued. Thank you." || out["id"] == "" {
		t.Fatalf("multipart: %d %v", status, out)
	}
	firstID := out["id"]
	status, _, out = post(t, target, "application/x-www-form-urlencoded", strings.NewReader(form().Encode()), "api", "key")
	if status != 200 || out["id"] == "" || out["id"] == firstID {
		t.Fatalf("urlencoded: %d %v (first id %s)", status, out, firstID)
	}

	msgs := s.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2", len(msgs))
	}
	for _, m := range msgs {
		if m.Domain != "mg.example.com" || m.From != "Acme <noreply@mg.example.com>" || m.To != "jane@example.org" ||
			m.Subject != "Hi" || m.Text != "Hello" || m.HTML != "<p>Hello</p>" || m.ReplyTo != "help@acme.example" ||
			strings.Join(m.Tags, ",") != "a,b" || m.Vars["portalmail_key"] != "k1" || m.Vars["email_type"] != "t" ||
			len(m.Vars) != 2 || m.Headers["X-Something-Extra"] != "x" || m.At.IsZero() {
			t.Errorf("recorded %+v", m)
		}
	}
	// Messages returns copies.
	msgs[0].Vars["portalmail_key"] = "changed"
	msgs[0].Tags[0] = "changed"
	if again := s.Messages()[0]; again.Vars["portalmail_key"] != "k1" || again.Tags[0] != "a" {
		t.Error("Messages shares its maps or slices")
	}
}

func TestRejections(t *testing.T) {
	s := New()
	defer s.Close()
	s.RequireKey("good")
	good := s.URL() + "/mg.example.com/messages"
	missing := func(k string) url.Values { v := form(); v.Del(k); return v }
	noBody := form()
	noBody.Del("text")
	noBody.Del("html")
	cases := []struct {
		name        string
		target      string
		contentType string
		body        string
		user, pass  string
		status      int
		message     string
	}{
		{"no auth", good, "application/x-www-form-urlencoded", form().Encode(), "", "", 401, ""},
		{"wrong user", good, "application/x-www-form-urlencoded", form().Encode(), "root", "good", 401, ""},
		{"wrong key", good, "application/x-www-form-urlencoded", form().Encode(), "api", "bad", 401, ""},
		{"unknown path", s.URL() + "/mg.example.com/bounces", "application/x-www-form-urlencoded", "", "api", "good", 404, "Not Found"},
		{"no version", strings.TrimSuffix(s.URL(), "/v3") + "/mg.example.com/messages", "application/x-www-form-urlencoded", "", "api", "good", 404, "Not Found"},
		{"json body", good, "application/json", "{}", "api", "good", 400, `unsupported Content-Type "application/json"`},
		{"no from", good, "application/x-www-form-urlencoded", missing("from").Encode(), "api", "good", 400, "from parameter is missing"},
		{"no to", good, "application/x-www-form-urlencoded", missing("to").Encode(), "api", "good", 400, "to parameter is missing"},
		{"no subject", good, "application/x-www-form-urlencoded", missing("subject").Encode(), "api", "good", 400, "subject parameter is missing"},
		{"no body", good, "application/x-www-form-urlencoded", noBody.Encode(), "api", "good", 400, "Need at least one of 'text', 'html' or 'template' parameters specified"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, _, out := post(t, c.target, c.contentType, strings.NewReader(c.body), c.user, c.pass)
			if status != c.status || (c.message != "" && out["message"] != c.message) {
				t.Errorf("got %d %v, want %d %q", status, out, c.status, c.message)
			}
		})
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("%d rejected messages recorded", n)
	}
	if s.Requests() != len(cases) {
		t.Errorf("Requests() = %d, want %d", s.Requests(), len(cases))
	}
	req, _ := http.NewRequest(http.MethodGet, good, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("GET messages = %d, want 405", resp.StatusCode)
	}
}

func TestFailNextQueue(t *testing.T) {
	s := New()
	defer s.Close()
	target := s.URL() + "/d/messages"
	s.FailNext(1, 429, "", http.Header{"X-RateLimit-Reset": {"1700000000000"}, "retry-after": {"3"}})
	s.FailNext(2, 500, "boom", nil)
	s.FailNext(0, 400, "ignored", nil)

	want := []int{429, 500, 500, 200}
	for i, w := range want {
		status, h, out := post(t, target, "application/x-www-form-urlencoded", strings.NewReader(form().Encode()), "api", "k")
		if status != w {
			t.Fatalf("request %d = %d, want %d", i+1, status, w)
		}
		if i == 0 && (h.Get("X-RateLimit-Reset") != "1700000000000" || h.Get("Retry-After") != "3" || out["message"] != "Too Many Requests") {
			t.Errorf("429 answer headers %v body %v", h, out)
		}
		if i == 1 && out["raw"] != "boom" {
			t.Errorf("500 body %v", out)
		}
	}
	if s.Requests() != 4 || len(s.Messages()) != 1 {
		t.Errorf("requests %d messages %d, want 4 and 1", s.Requests(), len(s.Messages()))
	}
	s.Reset()
	if s.Requests() != 0 || len(s.Messages()) != 0 {
		t.Error("Reset kept state")
	}
}

func TestHangAndDown(t *testing.T) {
	s := New()
	defer s.Close()
	target := s.URL() + "/d/messages"
	client := &http.Client{}
	send := func(ctx context.Context) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form().Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("api", "k")
		return client.Do(req)
	}

	s.Hang(200 * time.Millisecond)
	start := time.Now()
	resp, err := send(context.Background())
	if err != nil || resp.StatusCode != 200 || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("hung request: %v %v after %s", resp, err, time.Since(start))
	}
	resp.Body.Close()

	s.Hang(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err = send(ctx)
	cancel()
	if err == nil {
		t.Fatal("request hanging for an hour returned")
	}
	s.Hang(0)

	s.Down()
	if resp, err := send(context.Background()); err == nil {
		resp.Body.Close()
		t.Fatalf("request during an outage answered %d", resp.StatusCode)
	}
	s.Up()
	resp, err = send(context.Background())
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after Up: %v %v", resp, err)
	}
	resp.Body.Close()
	if s.Requests() != 4 || len(s.Messages()) != 2 {
		t.Errorf("requests %d messages %d, want 4 and 2", s.Requests(), len(s.Messages()))
	}
}

func TestCloseReleasesHangingRequests(t *testing.T) {
	s := New()
	s.Hang(time.Hour)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/d/messages", strings.NewReader(form().Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	for s.Requests() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a hanging request")
	}
	wg.Wait()
	s.Close() // idempotent
}

func TestNewAt(t *testing.T) {
	s, err := NewAt("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || !strings.HasSuffix(s.URL(), "/v3") {
		t.Errorf("URL() = %s", s.URL())
	}
	status, _, _ := post(t, s.URL()+"/d/messages", "application/x-www-form-urlencoded", strings.NewReader(form().Encode()), "api", "k")
	if status != 200 {
		t.Errorf("status %d", status)
	}
	if _, err := NewAt("127.0.0.1:-1"); err == nil {
		t.Error("NewAt on a bad address succeeded")
	}
}
