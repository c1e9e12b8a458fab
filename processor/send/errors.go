package send

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrPermanent marks a delivery failure that retrying cannot fix: Mailgun
// answered with a 4xx status other than 408 and 429 (bad request, bad API
// key, unknown domain, ...), or the job cannot be expressed as a message.
// Errors of this class wrap it; test with errors.Is(err, ErrPermanent).
var ErrPermanent = errors.New("permanent delivery failure")

// ErrExhausted is wrapped (together with the last attempt's error) by
// SendWithRetry when a positive maxAttempts was used up on retryable failures.
var ErrExhausted = errors.New("delivery attempts exhausted")

// RetryableError is a delivery failure worth retrying later: Mailgun answered
// 429, 408 or 5xx, the request timed out, or the connection failed.
type RetryableError struct {
	// Err is the underlying failure.
	Err error
	// Wait is how long the provider asked us to wait before the next attempt
	// (from Retry-After or X-RateLimit-Reset), or 0 when it did not say.
	Wait time.Duration
	// Status is the HTTP status of the response, or 0 when there was none
	// (timeout, connection error).
	Status int
}

// Error describes the failure, with the status and the requested wait when
// known.
func (e *RetryableError) Error() string {
	var b strings.Builder
	b.WriteString("retryable delivery failure")
	if e.Status != 0 {
		fmt.Fprintf(&b, " (status %d)", e.Status)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Wait > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.Wait)
	}
	return b.String()
}

// Unwrap returns the underlying failure.
func (e *RetryableError) Unwrap() error { return e.Err }

// Classify sorts an error returned by a Mailer. permanent is true for errors
// wrapping ErrPermanent. For a *RetryableError, wait is the delay the
// provider asked for (0 when it did not say). Every other error, including
// nil, gives (false, 0); callers check their own context first, since a
// cancelled context is neither permanent nor worth retrying.
func Classify(err error) (permanent bool, wait time.Duration) {
	if err == nil {
		return false, 0
	}
	if errors.Is(err, ErrPermanent) {
		return true, 0
	}
	var re *RetryableError
	if errors.As(err, &re) {
		return false, re.Wait
	}
	return false, 0
}

// MaxHeaderWait caps the wait taken from a response's rate-limit headers, so
// that a bogus header cannot park a sender for days. SendWithRetry still
// retries after it.
const MaxHeaderWait = time.Hour

// retryWait reads the wait a response asks for: Retry-After (delta seconds
// or an HTTP date), else X-RateLimit-Reset (a unix time in seconds or in
// milliseconds; a small number is taken as delta seconds). It returns 0 when
// no header says anything usable. http.Header.Get canonicalises names, so
// x-ratelimit-reset and X-RateLimit-Reset are the same header.
func retryWait(h http.Header, now time.Time) time.Duration {
	if h == nil {
		return 0
	}
	clamp := func(d time.Duration) time.Duration {
		return max(0, min(d, MaxHeaderWait))
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(s) && !math.IsInf(s, 0) {
			return clamp(time.Duration(math.Max(0, math.Min(s, MaxHeaderWait.Seconds())) * float64(time.Second)))
		}
		if t, err := http.ParseTime(v); err == nil {
			return clamp(t.Sub(now))
		}
	}
	if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			switch {
			case n >= 1e12: // unix milliseconds
				return clamp(time.UnixMilli(n).Sub(now))
			case n >= 1e9: // unix seconds
				return clamp(time.Unix(n, 0).Sub(now))
			default: // delta seconds
				return clamp(time.Duration(n) * time.Second)
			}
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f < 1e15 {
			switch {
			case f >= 1e12:
				return clamp(time.UnixMicro(int64(f * 1e3)).Sub(now))
			case f >= 1e9:
				return clamp(time.UnixMicro(int64(f * 1e6)).Sub(now))
			default:
				return clamp(time.Duration(f * float64(time.Second)))
			}
		}
	}
	return 0
}
