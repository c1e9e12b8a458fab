// Package webhooks receives Mailgun's event webhooks (delivered, failed
// permanently or temporarily, opened, clicked, complained, unsubscribed),
// verifies them, matches each to its email job by the job key the sender put
// in the message's v:portalmail_key variable, and records it as an
// EmailDelivery update.
//
// A request is accepted only when its HMAC-SHA256 signature (over timestamp
// and token, keyed with the webhook signing key) is right, its timestamp is
// recent, and its token was not used before. Unsigned or unreadable requests
// get 406 (Mailgun does not retry a 406), forged, stale or replayed ones 401.
//
// # Tokens
//
// A genuine, fresh signature is spent as soon as it is seen: the token is
// claimed before the event is even parsed, so a signature captured from a
// request whose body was refused (406) cannot be replayed with a forged
// event. The claim is released only when recording the event fails for a
// reason worth retrying (503: Mailgun retries the same signed request, and
// it is accepted). An event that can never be recorded is refused with 406
// and its token stays spent. Identifying fields over their limits (job key,
// email type, message id) are refused with 406; the free-text failure
// reason is cut to MaxReason bytes.
package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mailgun/mailgun-go/v4"
	"github.com/mailgun/mailgun-go/v4/events"

	"github.com/portalmail/portalmail/processor/send"
	"github.com/portalmail/portalmail/schemas"
)

// Recorder stores a delivery update (the webhooks command produces it to the
// delivery topic). Record returns once the update is durable.
type Recorder interface {
	Record(ctx context.Context, d schemas.EmailDelivery) error
}

// Recorder errors that wrap ErrNotRecordable are permanent (the update can
// never be recorded: it does not encode, or is too large for the topic); any
// other Recorder error is worth retrying.
var ErrNotRecordable = errors.New("delivery update cannot be recorded")

// Tokens guards against replays. *state.Store implements it.
type Tokens interface {
	// ClaimToken claims token for owner (unique per request) for ttl and
	// reports whether it was free.
	ClaimToken(ctx context.Context, token, owner string, ttl time.Duration) (bool, error)
	// ReleaseToken gives up owner's claim, if owner still holds it.
	ReleaseToken(ctx context.Context, token, owner string) error
}

// Field limits of an event: identifying fields above them are refused (406),
// the failure reason is cut.
const (
	MaxKey        = 1024 // v:portalmail_key (a job key is ~120 bytes)
	MaxEmailType  = 128  // v:email_type
	MaxProviderID = 1024 // the Message-Id header
	MaxReason     = 2048 // the failure reason, cut beyond
)

// Metrics observes every answer of the handler; metrics.Webhooks implements
// it. Implementations are safe for concurrent use.
type Metrics interface {
	// Handled counts one request. event is the recorded event (delivered,
	// failed_permanent, failed_temporary, opened, clicked, complained,
	// unsubscribed), or "unknown" when the request was refused or failed
	// before its event was read; result is recorded, refused (a 4xx: bad
	// signature, stale, replayed, unreadable) or failed (a 5xx: not
	// recorded, Mailgun retries).
	Handled(event, result string)
}

// Events are the Mailgun events the handler records, as EmailDelivery.Event.
var Events = []string{"delivered", "failed_permanent", "failed_temporary", "opened", "clicked", "complained", "unsubscribed"}

// Config configures a Handler.
type Config struct {
	// SigningKey is Mailgun's HTTP webhook signing key.
	SigningKey string
	// MaxAge is how old a signed timestamp may be (default 5 minutes);
	// timestamps more than a minute in the future are refused too.
	MaxAge time.Duration
	// MaxBody caps the request body (default 1 MiB).
	MaxBody int64
	// RecordTimeout bounds recording one event (default 10s); running out
	// of it is a retryable failure (503).
	RecordTimeout time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
	// Metrics, if set, counts every request by event and result.
	Metrics Metrics
}

// Handler is the webhook endpoint (an http.Handler for POST requests).
type Handler struct {
	cfg    Config
	mg     *mailgun.MailgunImpl
	tokens Tokens
	rec    Recorder
}

// New returns a Handler; it fails without a signing key.
func New(cfg Config, tokens Tokens, rec Recorder) (*Handler, error) {
	if cfg.SigningKey == "" {
		return nil, errors.New("webhooks: a signing key is required")
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = 5 * time.Minute
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.RecordTimeout == 0 {
		cfg.RecordTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	mg := mailgun.NewMailgun("webhooks.invalid", "unused")
	mg.SetWebhookSigningKey(cfg.SigningKey)
	return &Handler{cfg: cfg, mg: mg, tokens: tokens, rec: rec}, nil
}

// refusal is an HTTP answer to a request that changes nothing.
type refusal struct {
	status int
	reason string
}

func (r refusal) Error() string { return r.reason }

// ServeHTTP verifies, parses and records one event.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	d, err := h.handle(r)
	var ref refusal
	result := "recorded"
	switch {
	case errors.As(err, &ref):
		result = "refused"
		h.cfg.Logger.Warn("webhook refused", "status", ref.status, "reason", ref.reason)
		http.Error(w, ref.reason, ref.status)
	case err != nil:
		// Not recorded: Mailgun retries on 5xx.
		result = "failed"
		h.cfg.Logger.Error("webhook not recorded", "err", err)
		http.Error(w, "not recorded, retry later", http.StatusServiceUnavailable)
	default:
		h.cfg.Logger.Info("webhook recorded", "email_type", d.Type, "idempotency_key", d.Key, "event", d.Event)
		w.WriteHeader(http.StatusOK)
	}
	if h.cfg.Metrics != nil {
		event := d.Event
		if event == "" {
			event = "unknown"
		}
		h.cfg.Metrics.Handled(event, result)
	}
}

func (h *Handler) handle(r *http.Request) (schemas.EmailDelivery, error) {
	var d schemas.EmailDelivery
	body, err := io.ReadAll(io.LimitReader(r.Body, h.cfg.MaxBody+1))
	if err != nil || int64(len(body)) > h.cfg.MaxBody {
		return d, refusal{http.StatusNotAcceptable, "unreadable or oversized body"}
	}
	var p mailgun.WebhookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return d, refusal{http.StatusNotAcceptable, "not a Mailgun webhook payload"}
	}
	sig := p.Signature
	if sig.Signature == "" || sig.Token == "" || sig.TimeStamp == "" {
		return d, refusal{http.StatusNotAcceptable, "unsigned"}
	}
	ok, err := h.mg.VerifyWebhookSignature(sig)
	if err != nil || !ok {
		return d, refusal{http.StatusUnauthorized, "bad signature"}
	}
	secs, err := strconv.ParseInt(sig.TimeStamp, 10, 64)
	if err != nil {
		return d, refusal{http.StatusUnauthorized, "bad timestamp"}
	}
	now := h.cfg.Now()
	if at := time.Unix(secs, 0); now.Sub(at) > h.cfg.MaxAge || at.Sub(now) > time.Minute {
		return d, refusal{http.StatusUnauthorized, "stale timestamp"}
	}
	// The signature is genuine and fresh: spend it now, whatever the body
	// turns out to hold.
	ctx := r.Context()
	owner := newOwner()
	first, err := h.tokens.ClaimToken(ctx, sig.Token, owner, 2*h.cfg.MaxAge+time.Minute)
	if err != nil {
		h.release(ctx, sig.Token, owner) // the claim may have been written
		return d, fmt.Errorf("claim token: %w", err)
	}
	if !first {
		return d, refusal{http.StatusUnauthorized, "token already used"}
	}
	d, err = delivery(p.EventData, now)
	if err != nil {
		return d, refusal{http.StatusNotAcceptable, err.Error()}
	}
	rctx, cancel := context.WithTimeout(ctx, h.cfg.RecordTimeout)
	defer cancel()
	if err := h.rec.Record(rctx, d); err != nil {
		if errors.Is(err, ErrNotRecordable) {
			h.cfg.Logger.Error("webhook event cannot be recorded; refused", "idempotency_key", d.Key, "err", err)
			return d, refusal{http.StatusNotAcceptable, "event cannot be recorded"}
		}
		h.release(ctx, sig.Token, owner)
		return d, fmt.Errorf("record %s: %w", d.Key, err)
	}
	return d, nil
}

// release gives the token back after a retryable failure, so that
// Mailgun's retry of the same request is accepted. A failed release is
// logged: the retry is then refused as a replay until the claim expires.
func (h *Handler) release(ctx context.Context, token, owner string) {
	if err := h.tokens.ReleaseToken(context.WithoutCancel(ctx), token, owner); err != nil {
		h.cfg.Logger.Error("webhook token not released; Mailgun's retry will be refused as a replay", "err", err)
	}
}

// newOwner is a random id for one request's token claim.
func newOwner() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// delivery turns a Mailgun event into the delivery update of its job.
func delivery(raw events.RawJSON, now time.Time) (schemas.EmailDelivery, error) {
	ev, err := mailgun.ParseEvent(raw)
	if err != nil {
		return schemas.EmailDelivery{}, fmt.Errorf("event: %v", err)
	}
	d := schemas.EmailDelivery{Outcome: schemas.OutcomeSent, At: now.UTC()}
	var vars any
	var msgID string
	switch e := ev.(type) {
	case *events.Delivered:
		d.Event, vars, msgID = "delivered", e.UserVariables, e.Message.Headers.MessageID
	case *events.Failed:
		vars, msgID = e.UserVariables, e.Message.Headers.MessageID
		d.Event, d.LastError = "failed_temporary", e.Reason
		if e.Severity == "permanent" {
			d.Event, d.Outcome = "failed_permanent", schemas.OutcomeFailedPermanent
		}
		if e.DeliveryStatus.Message != "" {
			d.LastError = e.DeliveryStatus.Message
		}
	case *events.Opened:
		d.Event, vars, msgID = "opened", e.UserVariables, e.Message.Headers.MessageID
	case *events.Clicked:
		d.Event, vars, msgID = "clicked", e.UserVariables, e.Message.Headers.MessageID
	case *events.Complained:
		d.Event, vars, msgID = "complained", e.UserVariables, e.Message.Headers.MessageID
	case *events.Unsubscribed:
		d.Event, vars, msgID = "unsubscribed", e.UserVariables, e.Message.Headers.MessageID
	default:
		return d, fmt.Errorf("event %q is not one portalmail records", ev.GetName())
	}
	m, _ := vars.(map[string]any)
	d.Key, _ = m[send.VarKey].(string)
	d.Type, _ = m[send.VarEmailType].(string)
	if d.Key == "" {
		return d, errors.New("no " + send.VarKey + " user variable: not a portalmail email")
	}
	d.ProviderID = msgID
	for _, f := range []struct {
		name  string
		value string
		max   int
	}{{send.VarKey, d.Key, MaxKey}, {send.VarEmailType, d.Type, MaxEmailType}, {"message-id", d.ProviderID, MaxProviderID}} {
		if len(f.value) > f.max {
			return d, fmt.Errorf("%s of %d bytes, more than %d", f.name, len(f.value), f.max)
		}
	}
	if len(d.LastError) > MaxReason {
		d.LastError = strings.ToValidUTF8(d.LastError[:MaxReason], "") + " [cut]"
	}
	return d, nil
}
