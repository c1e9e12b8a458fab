package webhooks_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portalmail/portalmail/processor/webhooks"
	"github.com/portalmail/portalmail/schemas"
)

// flakyRecorder fails its first calls with errs[i], then records.
type flakyRecorder struct {
	memRecorder
	mu    sync.Mutex
	errs  []error
	calls int
}

func (f *flakyRecorder) Record(ctx context.Context, d schemas.EmailDelivery) error {
	f.mu.Lock()
	i := f.calls
	f.calls++
	f.mu.Unlock()
	if i < len(f.errs) {
		if f.errs[i] == context.DeadlineExceeded {
			<-ctx.Done() // a broker that does not answer in time
			return ctx.Err()
		}
		return f.errs[i]
	}
	return f.memRecorder.Record(ctx, d)
}

// lostReply is a token store whose first claim is written but answered with
// an error (a reply lost on the network).
type lostReply struct {
	webhooks.Tokens
	once sync.Once
}

func (l *lostReply) ClaimToken(ctx context.Context, token, owner string, ttl time.Duration) (bool, error) {
	ok, err := l.Tokens.ClaimToken(ctx, token, owner, ttl)
	lost := false
	l.once.Do(func() { lost = true })
	if lost {
		return false, errors.New("i/o timeout")
	}
	return ok, err
}

// TestRetryAfterARetryableFailureIsAccepted: when the event cannot be
// recorded for a reason worth retrying (503), the token is given back, so
// Mailgun's retry of the same signed request is recorded, once; after that
// the token is spent.
func TestRetryAfterARetryableFailureIsAccepted(t *testing.T) {
	now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		errs []error
		wrap func(webhooks.Tokens) webhooks.Tokens
	}{
		{"broker down once", []error{errors.New("broker: connection refused")}, nil},
		{"broker down twice", []error{errors.New("refused"), errors.New("refused")}, nil},
		{"record times out", []error{context.DeadlineExceeded}, nil},
		{"token claim reply lost", nil, func(tk webhooks.Tokens) webhooks.Tokens { return &lostReply{Tokens: tk} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &flakyRecorder{errs: c.errs}
			srv := newServerWith(t, now, rec, c.wrap, func(cfg *webhooks.Config) { cfg.RecordTimeout = 50 * time.Millisecond })
			body := payload(signingKey, "token-retry", now, event("failed", map[string]any{"severity": "permanent", "reason": "bounce"}))
			failures := max(len(c.errs), 1)
			for i := range failures {
				if code := post(t, srv.URL, body); code != http.StatusServiceUnavailable {
					t.Fatalf("attempt %d: status %d, want 503", i+1, code)
				}
			}
			if code := post(t, srv.URL, body); code != http.StatusOK {
				t.Fatalf("Mailgun's retry: status %d, want 200", code)
			}
			if code := post(t, srv.URL, body); code != http.StatusUnauthorized {
				t.Fatalf("a replay after the success: status %d, want 401", code)
			}
			if len(rec.got) != 1 || rec.got[0].Event != "failed_permanent" {
				t.Fatalf("recorded %+v, want the event once", rec.got)
			}
		})
	}
}

// TestRefusedBodySpendsTheSignature: a genuine, fresh signature seen with a
// body that is refused (406) is spent: the same signature with a forged
// event is a replay (401) and nothing is recorded.
func TestRefusedBodySpendsTheSignature(t *testing.T) {
	now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	srv, rec := newServer(t, now)
	vars := func(key, typ string) map[string]any {
		return map[string]any{"user-variables": map[string]any{"portalmail_key": key, "email_type": typ}}
	}
	long := func(n int) string { return strings.Repeat("k", n) }
	cases := []struct {
		name  string
		event map[string]any
	}{
		{"not a portalmail email", event("delivered", map[string]any{"user-variables": map[string]any{}})},
		{"event portalmail does not record", event("accepted", nil)},
		{"unknown event", event("exploded", nil)},
		{"oversized job key", event("delivered", vars(long(webhooks.MaxKey+1), "order.new"))},
		{"oversized email type", event("delivered", vars("k1", long(webhooks.MaxEmailType+1)))},
		{"oversized message id", event("delivered", map[string]any{
			"message": map[string]any{"headers": map[string]any{"message-id": long(webhooks.MaxProviderID + 1)}}})},
	}
	for i, c := range cases {
		token := fmt.Sprintf("token-refused-%d", i)
		if code := post(t, srv.URL, payload(signingKey, token, now, c.event)); code != http.StatusNotAcceptable {
			t.Errorf("%s: status %d, want 406", c.name, code)
		}
		forged := payload(signingKey, token, now, event("failed", map[string]any{"severity": "permanent", "reason": "forged"}))
		if code := post(t, srv.URL, forged); code != http.StatusUnauthorized {
			t.Errorf("%s: the captured signature with a forged event: status %d, want 401", c.name, code)
		}
	}
	if len(rec.got) != 0 {
		t.Fatalf("recorded %+v", rec.got)
	}
	t.Logf("%d refused bodies", len(cases))
}

// TestUnrecordableEventIsRefusedAndSpent: an update that can never be
// recorded is 406 (Mailgun would retry a 503 forever), and its token spent.
func TestUnrecordableEventIsRefusedAndSpent(t *testing.T) {
	now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	rec := &flakyRecorder{errs: []error{fmt.Errorf("produce: MESSAGE_TOO_LARGE: %w", webhooks.ErrNotRecordable)}}
	srv := newServerWith(t, now, rec, nil, nil)
	body := payload(signingKey, "token-big", now, event("delivered", nil))
	if code := post(t, srv.URL, body); code != http.StatusNotAcceptable {
		t.Fatalf("status %d, want 406", code)
	}
	if code := post(t, srv.URL, body); code != http.StatusUnauthorized {
		t.Fatalf("retry: status %d, want 401", code)
	}
}

// TestOversizedReasonIsCut: the free-text failure reason is cut, not refused:
// the event is recorded.
func TestOversizedReasonIsCut(t *testing.T) {
	now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	srv, rec := newServer(t, now)
	huge := strings.Repeat("550 mailbox unavailable ", 30000) // ~700 KB
	body := payload(signingKey, "token-reason", now, event("failed", map[string]any{"severity": "permanent",
		"delivery-status": map[string]any{"message": huge}}))
	if code := post(t, srv.URL, body); code != http.StatusOK {
		t.Fatalf("status %d, want 200", code)
	}
	if len(rec.got) != 1 || len(rec.got[0].LastError) > webhooks.MaxReason+len(" [cut]") || !strings.HasSuffix(rec.got[0].LastError, "[cut]") {
		t.Fatalf("recorded reason of %d bytes", len(rec.got[0].LastError))
	}
}
