package send

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/portalmail/portalmail/processor/send/mailgunfake"
	"github.com/portalmail/portalmail/schemas"
)

const (
	testDomain = "mg.example.com"
	testKey    = "key-0123456789abcdef-supersecret"
)

func newFake(t *testing.T) *mailgunfake.Server {
	t.Helper()
	srv := mailgunfake.New()
	t.Cleanup(srv.Close)
	return srv
}

func newClient(t *testing.T, srv *mailgunfake.Server, mod ...func(*MailgunConfig)) *Mailgun {
	t.Helper()
	cfg := MailgunConfig{Domain: testDomain, APIKey: testKey, APIBase: srv.URL(), Timeout: 5 * time.Second}
	for _, f := range mod {
		f(&cfg)
	}
	m, err := NewMailgun(cfg)
	if err != nil {
		t.Fatalf("NewMailgun: %v", err)
	}
	return m
}

func testJob() schemas.EmailJob {
	return schemas.EmailJob{
		Key:       "trial.company_created/company:c-42/created/partner:p@example.org",
		Type:      "trial.company_created",
		Section:   "trial",
		CompanyID: "c-42",
		To:        schemas.Recipient{Address: "p@example.org", Name: "Pat Partner", Role: "partner"},
		From:      "Acme Video <noreply@mg.example.com>",
		ReplyTo:   "support@acme.example",
		Subject:   "New company created (in trial mode)",
		HTML:      "<p>Hello <b>Pat</b></p>",
		Text:      "Hello Pat",
		Tags:      []string{"trial.company_created", "trial", "partner", "extra-1", "extra-2"},
		CreatedAt: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC),
	}
}

// sleepRecorder is a fake sleep for SendWithRetry: it records the waits and
// returns at once.
type sleepRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (r *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	r.waits = append(r.waits, d)
	r.mu.Unlock()
	return ctx.Err()
}

func (r *sleepRecorder) recorded() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.waits...)
}
