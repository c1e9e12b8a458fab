package send

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/portalmail/portalmail/schemas"
)

// Backoff computes capped exponential delays with jitter.
//
// The un-jittered delay of attempt n (1-based) is Base·2^(n-1), capped at
// Max. Jitter in [0, 1] is the share of that delay that is randomised: the
// result is uniform in [d·(1-Jitter), d]. Jitter 1 is "full jitter", 0.5 is
// "equal jitter", 0 is none. Zero Base and Max take DefaultBackoff's.
type Backoff struct {
	Base   time.Duration
	Max    time.Duration
	Jitter float64
}

// DefaultBackoff is the sender's backoff: 1s doubling up to 5 minutes, with
// equal jitter.
var DefaultBackoff = Backoff{Base: time.Second, Max: 5 * time.Minute, Jitter: 0.5}

// Next returns the delay before retrying after failed attempt number
// attempt (1 for the first attempt; smaller values count as 1).
func (b Backoff) Next(attempt int) time.Duration {
	base, ceil := b.Base, b.Max
	if base <= 0 {
		base = DefaultBackoff.Base
	}
	if ceil <= 0 {
		ceil = max(DefaultBackoff.Max, base)
	}
	attempt = max(attempt, 1)
	d := ceil
	if attempt-1 < 62 {
		if f := float64(base) * math.Exp2(float64(attempt-1)); f < float64(ceil) {
			d = time.Duration(f)
		}
	}
	j := min(max(b.Jitter, 0), 1)
	if j == 0 || d <= 0 {
		return d
	}
	fixed := time.Duration(float64(d) * (1 - j))
	return fixed + time.Duration(rand.Float64()*float64(d-fixed))
}

// SleepContext waits for d or until ctx ends, whichever is first, and
// returns ctx.Err() in the latter case. It is SendWithRetry's default sleep.
func SleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// SendWithRetry sends job through m, retrying failures that are not
// permanent until it succeeds, ctx ends, or maxAttempts attempts were made
// (0 or less means unlimited, the default of the sender: a Mailgun outage
// delays mail, it never drops it).
//
// Between attempts it waits max(b.Next(attempt), the provider's requested
// wait) using sleep (SleepContext when nil), after calling onRetry (when not
// nil) with the failed attempt's number, error and that wait.
//
// It returns the provider id and the number of attempts made. The error is
// nil on success; wraps ErrPermanent on a permanent failure (no retry); is
// ctx.Err() when ctx ended; and wraps both ErrExhausted and the last error
// when maxAttempts ran out. Errors that are neither permanent nor a
// *RetryableError are retried too.
func SendWithRetry(
	ctx context.Context,
	m Mailer,
	job schemas.EmailJob,
	b Backoff,
	maxAttempts int,
	sleep func(context.Context, time.Duration) error,
	onRetry func(attempt int, err error, wait time.Duration),
) (providerID string, attempts int, err error) {
	if sleep == nil {
		sleep = SleepContext
	}
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return "", attempt - 1, err
		}
		id, err := m.Send(ctx, job)
		if err == nil {
			return id, attempt, nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			if errors.Is(err, ctxErr) {
				return "", attempt, err
			}
			return "", attempt, ctxErr
		}
		permanent, wait := Classify(err)
		if permanent {
			return "", attempt, err
		}
		if maxAttempts > 0 && attempt >= maxAttempts {
			return "", attempt, fmt.Errorf("%w after %d attempts: %w", ErrExhausted, attempt, err)
		}
		wait = max(wait, b.Next(attempt))
		if onRetry != nil {
			onRetry(attempt, err, wait)
		}
		if err := sleep(ctx, wait); err != nil {
			return "", attempt, err
		}
	}
}
