package webhooks_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portalmail/portalmail/processor/webhooks"
	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/state"
)

const signingKey = "whk-test-signing-key"

type memRecorder struct {
	mu  sync.Mutex
	got []schemas.EmailDelivery
}

func (m *memRecorder) Record(_ context.Context, d schemas.EmailDelivery) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, d)
	return nil
}

func newServer(t *testing.T, now time.Time) (*httptest.Server, *memRecorder) {
	t.Helper()
	rec := &memRecorder{}
	return newServerWith(t, now, rec, nil, nil), rec
}

// newServerWith serves a Handler over real state (the Redis at REDIS_URL,
// else miniredis) recording into rec; wrap, if set, wraps the token store,
// and mod adjusts the configuration.
func newServerWith(t *testing.T, now time.Time, rec webhooks.Recorder, wrap func(webhooks.Tokens) webhooks.Tokens, mod func(*webhooks.Config)) *httptest.Server {
	t.Helper()
	var rc *redis.Client
	if url := os.Getenv("REDIS_URL"); url != "" {
		opt, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		rc = redis.NewClient(opt)
	} else {
		rc = redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	}
	t.Cleanup(func() { rc.Close() })
	var tokens webhooks.Tokens = state.New(rc, state.Options{Prefix: "wh-" + strconv.FormatInt(time.Now().UnixNano(), 36)})
	if wrap != nil {
		tokens = wrap(tokens)
	}
	cfg := webhooks.Config{SigningKey: signingKey, Now: func() time.Time { return now }}
	if mod != nil {
		mod(&cfg)
	}
	h, err := webhooks.New(cfg, tokens, rec)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// payload builds a Mailgun webhook body signed with key at ts.
func payload(key, token string, ts time.Time, event map[string]any) []byte {
	stamp := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(stamp + token))
	body, _ := json.Marshal(map[string]any{
		"signature":  map[string]any{"timestamp": stamp, "token": token, "signature": hex.EncodeToString(mac.Sum(nil))},
		"event-data": event,
	})
	return body
}

func event(name string, extra map[string]any) map[string]any {
	e := map[string]any{
		"event": name, "timestamp": 1767607200.5, "id": "evt-1",
		"message":        map[string]any{"headers": map[string]any{"message-id": "20260105.1@mail.test"}},
		"user-variables": map[string]any{"portalmail_key": "order.new|portal.public.license_plans|lp1|@1070|abc", "email_type": "order.new"},
	}
	for k, v := range extra {
		e[k] = v
	}
	return e
}

func post(t *testing.T, url string, body []byte) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestSignedEventsAreRecorded(t *testing.T) {
	now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	srv, rec := newServer(t, now)
	cases := []struct {
		name, event string
		extra       map[string]any
		outcome     string
		want        string
	}{
		{"delivered", "delivered", nil, schemas.OutcomeSent, "delivered"},
		{"permanent failure", "failed", map[string]any{"severity": "permanent", "reason": "bounce",
			"delivery-status": map[string]any{"message": "550 no such user"}}, schemas.OutcomeFailedPermanent, "failed_permanent"},
		{"temporary failure", "failed", map[string]any{"severity": "temporary", "reason": "greylisted"}, schemas.OutcomeSent, "failed_temporary"},
		{"opened", "opened", nil, schemas.OutcomeSent, "opened"},
		{"clicked", "clicked", map[string]any{"url": "https://portal.test"}, schemas.OutcomeSent, "clicked"},
		{"complained", "complained", nil, schemas.OutcomeSent, "complained"},
		{"unsubscribed", "unsubscribed", nil, schemas.OutcomeSent, "unsubscribed"},
	}
	for i, c := range cases {
		if code := post(t, srv.URL, payload(signingKey, "token-"+strconv.Itoa(i), now.Add(-time.Minute), event(c.event, c.extra))); code != http.StatusOK {
			t.Fatalf("%s: status %d", c.name, code)
		}
		d := rec.got[len(rec.got)-1]
		if d.Key != "order.new|portal.public.license_plans|lp1|@1070|abc" || d.Type != "order.new" ||
			d.Outcome != c.outcome || d.Event != c.want || d.ProviderID != "20260105.1@mail.test" {
			t.Errorf("%s: recorded %+v", c.name, d)
		}
		if _, err := schemas.EncodeDelivery(d); err != nil {
			t.Errorf("%s: the update does not encode: %v", c.name, err)
		}
	}
	if rec.got[1].LastError != "550 no such user" {
		t.Errorf("permanent failure reason %q", rec.got[1].LastError)
	}
}

func TestForgedStaleReplayedAndUnsignedAreRefused(t *testing.T) {
	now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	srv, rec := newServer(t, now)
	good := payload(signingKey, "token-good", now, event("delivered", nil))
	if code := post(t, srv.URL, good); code != http.StatusOK {
		t.Fatalf("good request: %d", code)
	}
	unsigned, _ := json.Marshal(map[string]any{"event-data": event("delivered", nil)})
	cases := []struct {
		name string
		body []byte
		want int
	}{
		{"forged", payload("not-the-key", "token-forged", now, event("delivered", nil)), http.StatusUnauthorized},
		{"stale", payload(signingKey, "token-stale", now.Add(-10*time.Minute), event("delivered", nil)), http.StatusUnauthorized},
		{"from the future", payload(signingKey, "token-future", now.Add(10*time.Minute), event("delivered", nil)), http.StatusUnauthorized},
		{"replayed", good, http.StatusUnauthorized},
		{"unsigned", unsigned, http.StatusNotAcceptable},
		{"not JSON", []byte("event=delivered"), http.StatusNotAcceptable},
		{"not a portalmail email", payload(signingKey, "token-foreign", now, event("delivered", map[string]any{"user-variables": map[string]any{}})), http.StatusNotAcceptable},
	}
	for _, c := range cases {
		if code := post(t, srv.URL, c.body); code != c.want {
			t.Errorf("%s: status %d, want %d", c.name, code, c.want)
		}
	}
	if len(rec.got) != 1 {
		t.Fatalf("refused requests recorded updates: %+v", rec.got)
	}
}
