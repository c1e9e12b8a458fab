package send

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/mailgun/mailgun-go/v4"

	"github.com/portalmail/portalmail/internal/redact"
	"github.com/portalmail/portalmail/processor/address"
	"github.com/portalmail/portalmail/schemas"
)

// DefaultTimeout is the per-request timeout of a Mailgun client whose
// MailgunConfig.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// MaxTags is the number of tags Mailgun accepts on one message; further
// job tags are dropped.
const MaxTags = mailgun.MaxNumberOfTags

// Names of the Mailgun user variables (v:...) set on every message, so that
// Mailgun events can be matched back to jobs.
const (
	VarKey       = "portalmail_key"
	VarEmailType = "email_type"
	VarCompanyID = "company_id"
)

// MailgunConfig configures a Mailgun client. Its String, GoString and
// LogValue never show the API key, and neither do Validate's errors.
type MailgunConfig struct {
	// Domain is the Mailgun sending domain (required).
	Domain string
	// APIKey is the Mailgun private API key (required).
	APIKey string
	// Region is "us" (the default when empty) or "eu".
	Region string
	// APIBase overrides Region with an explicit API base URL ending in a
	// version, e.g. "http://127.0.0.1:1234/v3" for a local fake.
	APIBase string
	// Timeout bounds each HTTP request; 0 means DefaultTimeout.
	Timeout time.Duration
	// HTTPClient, when set, is used (a copy of it, with its Transport
	// wrapped) instead of a client built here.
	HTTPClient *http.Client
}

var versionedPath = regexp.MustCompile(`/v[1-5]/?$`)

// Validate reports every problem of the configuration at once, joined with
// errors.Join. It never includes the API key.
func (c MailgunConfig) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Domain) == "" {
		errs = append(errs, errors.New("mailgun: domain is required"))
	} else if strings.ContainsAny(c.Domain, ":&'@(),!?#;%+=<>/ ") {
		errs = append(errs, fmt.Errorf("mailgun: domain %q contains invalid characters", c.Domain))
	}
	if strings.TrimSpace(c.APIKey) == "" {
		errs = append(errs, errors.New("mailgun: API key is required"))
	}
	if c.APIBase == "" {
		switch strings.ToLower(strings.TrimSpace(c.Region)) {
		case "", "us", "eu":
		default:
			errs = append(errs, fmt.Errorf("mailgun: region %q is not one of \"us\", \"eu\"", c.Region))
		}
	} else {
		u, err := url.Parse(c.APIBase)
		shown := redact.URL(c.APIBase) // never the credentials or query it may carry
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("mailgun: API base %s is not a URL: %s", shown, redact.ParseError(err)))
		case u.User != nil:
			errs = append(errs, fmt.Errorf("mailgun: API base %s must not carry credentials", shown))
		case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
			errs = append(errs, fmt.Errorf("mailgun: API base %s must not carry a query or fragment", shown))
		case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs = append(errs, fmt.Errorf("mailgun: API base %s must be an absolute http(s) URL", shown))
		case !versionedPath.MatchString(u.Path):
			errs = append(errs, fmt.Errorf("mailgun: API base %s must end with an API version such as /v3", shown))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("mailgun: timeout %s is negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// apiBase is the API base URL the configuration resolves to.
func (c MailgunConfig) apiBase() string {
	if c.APIBase != "" {
		return strings.TrimSuffix(c.APIBase, "/")
	}
	if strings.EqualFold(strings.TrimSpace(c.Region), "eu") {
		return mailgun.APIBaseEU
	}
	return mailgun.APIBaseUS
}

func (c MailgunConfig) timeout() time.Duration {
	if c.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

func redactKey(key string) string {
	if key == "" {
		return "<unset>"
	}
	return "<redacted>"
}

// String describes the configuration with the API key redacted.
func (c MailgunConfig) String() string {
	return fmt.Sprintf("MailgunConfig{Domain:%q APIKey:%s Region:%q APIBase:%q Timeout:%s}",
		c.Domain, redactKey(c.APIKey), c.Region, redact.URL(c.APIBase), c.Timeout)
}

// GoString is String, so that %#v does not print the API key either.
func (c MailgunConfig) GoString() string { return c.String() }

// LogValue logs the configuration with the API key redacted.
func (c MailgunConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("domain", c.Domain),
		slog.String("api_key", redactKey(c.APIKey)),
		slog.String("region", c.Region),
		slog.String("api_base", redact.URL(c.APIBase)),
		slog.Duration("timeout", c.Timeout),
	)
}

// Mailgun is a Mailer that sends through the Mailgun messages API with
// mailgun-go/v4. It is safe for concurrent use.
type Mailgun struct {
	mg      *mailgun.MailgunImpl
	domain  string
	base    string
	timeout time.Duration
	now     func() time.Time // for the rate-limit headers; tests replace it
}

var _ Mailer = (*Mailgun)(nil)

// NewMailgun validates cfg and returns a client for it.
func NewMailgun(cfg MailgunConfig) (*Mailgun, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Mailgun{
		domain:  strings.TrimSpace(cfg.Domain),
		base:    cfg.apiBase(),
		timeout: cfg.timeout(),
		now:     time.Now,
	}
	m.mg = mailgun.NewMailgun(m.domain, cfg.APIKey)
	m.mg.SetAPIBase(m.base)
	m.mg.SetClient(newHTTPClient(cfg.HTTPClient))
	return m, nil
}

// String describes the client without its API key.
func (m *Mailgun) String() string {
	return fmt.Sprintf("Mailgun{Domain:%q APIBase:%q Timeout:%s}", m.domain, m.base, m.timeout)
}

// newHTTPClient returns a client whose transport records every response
// into the exchange carried by the request's context. A given client is
// copied, never modified.
func newHTTPClient(given *http.Client) *http.Client {
	var c http.Client
	if given != nil {
		c = *given
	}
	base := c.Transport
	if base == nil {
		if given != nil {
			base = http.DefaultTransport
		} else {
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
			t.TLSHandshakeTimeout = 10 * time.Second
			t.ResponseHeaderTimeout = 0 // bounded by the per-request context instead
			// One idle connection for each worker of send's default
			// --concurrency (32).
			t.MaxIdleConnsPerHost = 32
			// A message's request (headers, form, HTML and text: ~10 KB)
			// leaves in one write instead of one per 4 KB.
			t.WriteBufferSize = 64 << 10
			base = t
		}
	}
	c.Transport = &captureTransport{base: base}
	return &c
}

// exchange is what the transport saw of one Send's HTTP traffic. Each Send
// has its own, carried in the request context, so concurrent Sends never
// see each other's responses.
type exchange struct {
	mu        sync.Mutex
	attempted bool
	status    int
	header    http.Header
}

type exchangeKey struct{}

func (x *exchange) snapshot() (attempted bool, status int, header http.Header) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.attempted, x.status, x.header
}

// rateLimitHeaders are the response headers kept for classification.
var rateLimitHeaders = []string{
	"Retry-After",
	"X-RateLimit-Reset",
	"X-RateLimit-Limit",
	"X-RateLimit-Remaining",
}

// captureTransport wraps a RoundTripper and records the last response's
// status and rate-limit headers into the request's exchange.
type captureTransport struct {
	base http.RoundTripper
}

func (t *captureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	x, _ := req.Context().Value(exchangeKey{}).(*exchange)
	if x != nil {
		x.mu.Lock()
		x.attempted = true
		x.mu.Unlock()
	}
	resp, err := t.base.RoundTrip(req)
	if x != nil && resp != nil {
		h := make(http.Header)
		for _, name := range rateLimitHeaders {
			if v := resp.Header.Values(name); len(v) > 0 {
				h[http.CanonicalHeaderKey(name)] = append([]string(nil), v...)
			}
		}
		x.mu.Lock()
		x.status = resp.StatusCode
		x.header = h
		x.mu.Unlock()
	}
	return resp, err
}

// CloseIdleConnections closes the idle connections of the underlying
// transport, so that http.Client.CloseIdleConnections reaches it.
func (t *captureTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// errRequestTimeout is the cancellation cause of the per-request timeout.
var errRequestTimeout = errors.New("mailgun request timeout")

// BuildMessage builds the mailgun-go message for a job: one recipient, From,
// Subject, Text, HTML, Reply-To when set, the v: variables VarKey,
// VarEmailType and VarCompanyID (each when non-empty) and at most MaxTags
// non-empty tags. A job that cannot make a valid message gives an error
// wrapping ErrPermanent.
//
// The addresses are checked again here, whatever produced the job (defence
// in depth behind the engine): the recipient and Reply-To must be in the
// canonical form of package address, From must be one such address with an
// optional display name, and the subject must hold no control character.
// They are posted in that form, so Mailgun reads exactly one recipient.
func BuildMessage(job schemas.EmailJob) (*mailgun.Message, error) {
	var problems []string
	to, err := FormatRecipient(job.To)
	if err != nil {
		problems = append(problems, "recipient: "+err.Error())
	}
	from, err := formatFrom(job.From)
	if err != nil {
		problems = append(problems, "from: "+err.Error())
	}
	if job.ReplyTo != "" && !address.Valid(job.ReplyTo) {
		problems = append(problems, "reply-to: "+address.Refusal(job.ReplyTo))
	}
	if strings.ContainsFunc(job.Subject, unicode.IsControl) {
		problems = append(problems, "control character in the subject")
	}
	if job.Text == "" && job.HTML == "" {
		problems = append(problems, "no text or HTML body")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("mailgun: invalid job %q: %s: %w", job.Key, strings.Join(problems, ", "), ErrPermanent)
	}
	msg := mailgun.NewMessage(from, job.Subject, job.Text, to)
	if job.HTML != "" {
		msg.SetHTML(job.HTML)
	}
	if job.ReplyTo != "" {
		msg.SetReplyTo(job.ReplyTo)
	}
	vars := []struct{ name, value string }{
		{VarKey, job.Key},
		{VarEmailType, job.Type},
		{VarCompanyID, job.CompanyID},
	}
	for _, v := range vars {
		if v.value == "" {
			continue
		}
		if err := msg.AddVariable(v.name, v.value); err != nil {
			return nil, fmt.Errorf("mailgun: variable %s: %v: %w", v.name, err, ErrPermanent)
		}
	}
	if tags := LimitTags(job.Tags); len(tags) > 0 {
		if err := msg.AddTag(tags...); err != nil {
			return nil, fmt.Errorf("mailgun: tags: %v: %w", err, ErrPermanent)
		}
	}
	return msg, nil
}

// FormatRecipient formats a job's recipient for the To field: the bare
// address, or `Name <address>` (quoted and encoded as RFC 5322 requires) when
// a name is set. The address must be in the canonical form of package
// address; the name is passed through address.DisplayName.
func FormatRecipient(r schemas.Recipient) (string, error) {
	if !address.Valid(r.Address) {
		return "", errors.New(address.Refusal(r.Address))
	}
	name := address.DisplayName(r.Name)
	if name == "" {
		return r.Address, nil
	}
	return (&mail.Address{Name: name, Address: r.Address}).String(), nil
}

// formatFrom re-formats a From value: exactly one address, canonical, with
// its display name passed through address.DisplayName.
func formatFrom(from string) (string, error) {
	if strings.TrimSpace(from) == "" {
		return "", errors.New("no from address")
	}
	a, err := mail.ParseAddress(from)
	if err != nil {
		return "", errors.New("not one address")
	}
	if !address.Valid(a.Address) {
		return "", errors.New(address.Refusal(a.Address))
	}
	return (&mail.Address{Name: address.DisplayName(a.Name), Address: a.Address}).String(), nil
}

// LimitTags returns the job tags Mailgun will accept: the non-empty ones, at most
// MaxTags of them, in order.
func LimitTags(tags []string) []string {
	out := make([]string, 0, min(len(tags), MaxTags))
	for _, t := range tags {
		if len(out) == MaxTags {
			break
		}
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// Send sends job as one message and returns Mailgun's message id.
//
// Each request is bounded by the configured timeout; running out of it is a
// *RetryableError, while ctx ending returns ctx.Err(). A 2xx answer whose
// body cannot be read returns an empty id and no error: the message was
// accepted, and retrying would send it twice.
func (m *Mailgun) Send(ctx context.Context, job schemas.EmailJob) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	msg, err := BuildMessage(job)
	if err != nil {
		return "", err
	}
	x := &exchange{}
	reqCtx, cancel := context.WithTimeoutCause(ctx, m.timeout, errRequestTimeout)
	defer cancel()
	reqCtx = context.WithValue(reqCtx, exchangeKey{}, x)

	_, id, err := m.mg.Send(reqCtx, msg)
	if err == nil {
		return id, nil
	}
	return "", m.classify(ctx, reqCtx, x, err)
}

// classify maps a mailgun-go error to the error classes of this package.
func (m *Mailgun) classify(ctx, reqCtx context.Context, x *exchange, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	attempted, status, header := x.snapshot()

	var ure *mailgun.UnexpectedResponseError
	if errors.As(err, &ure) {
		return statusError(ure.Actual, ure.Data, header, m.now())
	}
	if status >= 200 && status < 300 {
		return nil // accepted; only the response body was unreadable
	}
	if errors.Is(context.Cause(reqCtx), errRequestTimeout) || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return &RetryableError{Err: fmt.Errorf("mailgun: request timed out after %s: %w", m.timeout, err)}
	}
	if attempted {
		return &RetryableError{Err: fmt.Errorf("mailgun: %w", err)}
	}
	// mailgun-go refused the message before any request was made.
	return fmt.Errorf("mailgun: %v: %w", err, ErrPermanent)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// statusError classifies a non-2xx Mailgun answer: 429, 408 and 5xx are
// retryable (with the wait from the headers), every other status is
// permanent.
func statusError(status int, body []byte, header http.Header, now time.Time) error {
	msg := responseMessage(status, body)
	if status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500 {
		return &RetryableError{
			Err:    fmt.Errorf("mailgun: %d %s", status, msg),
			Wait:   retryWait(header, now),
			Status: status,
		}
	}
	return fmt.Errorf("mailgun: %d %s: %w", status, msg, ErrPermanent)
}

// responseMessage extracts Mailgun's {"message": ...} from an error body,
// falling back to the (shortened) body and then to the status text.
func responseMessage(status int, body []byte) string {
	var r struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &r) == nil && strings.TrimSpace(r.Message) != "" {
		return strings.TrimSpace(r.Message)
	}
	s := strings.Join(strings.Fields(string(body)), " ")
	if s == "" {
		return http.StatusText(status)
	}
	const maxLen = 200
	if len(s) > maxLen {
		s = s[:maxLen] + "..."
	}
	return s
}
