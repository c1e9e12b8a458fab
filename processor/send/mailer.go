package send

import (
	"context"

	"github.com/portalmail/portalmail/schemas"
)

// Mailer delivers one email job as one message to its single recipient.
//
// Send returns the provider's message id. A failure wraps ErrPermanent or
// is a *RetryableError (see Classify); when ctx ends first, Send returns
// ctx.Err(). Implementations are safe for concurrent use.
type Mailer interface {
	Send(ctx context.Context, job schemas.EmailJob) (providerID string, err error)
}

// MailerFunc adapts a function to the Mailer interface.
type MailerFunc func(ctx context.Context, job schemas.EmailJob) (string, error)

// Send calls f(ctx, job).
func (f MailerFunc) Send(ctx context.Context, job schemas.EmailJob) (string, error) {
	return f(ctx, job)
}

// RateLimited returns a Mailer that waits for a token from l before every
// call of m.Send, retries included. A nil l returns m unchanged.
func RateLimited(m Mailer, l *Limiter) Mailer {
	if l == nil {
		return m
	}
	return MailerFunc(func(ctx context.Context, job schemas.EmailJob) (string, error) {
		if err := l.Wait(ctx); err != nil {
			return "", err
		}
		return m.Send(ctx, job)
	})
}
