// Package send is portalmail's outbound edge: it delivers one
// schemas.EmailJob as one Mailgun message.
//
// The pieces compose as the sender stage needs them:
//
//   - Mailer is the delivery interface; Mailgun implements it over
//     github.com/mailgun/mailgun-go/v4 and adds what that client drops: the
//     response status and rate-limit headers of every request, a per-request
//     timeout, and a classification of every failure.
//   - Failures come in two classes. ErrPermanent (wrapped) means the request
//     will never succeed as it is (a 4xx other than 408 and 429, or a job that
//     cannot be turned into a message); the job is recorded as failed and
//     dead-lettered. *RetryableError means try again later (429, 408, 5xx,
//     timeouts, connection errors) and carries the wait the provider asked
//     for, if any. The caller's own context ending is neither: Send returns
//     ctx.Err() as is. Classify sorts any error into these classes.
//   - SendWithRetry retries retryable failures with capped exponential
//     backoff and jitter (Backoff), waiting at least as long as a rate-limit
//     reset says, and by default never gives up: a Mailgun outage delays
//     mail, it never drops it.
//   - Limiter is a token bucket that keeps the sender under the account's
//     sending rate; RateLimited applies it to every attempt of a Mailer.
//
// The subpackage mailgunfake is a Mailgun-compatible HTTP server with
// programmable faults, used by the tests and by `portalmail demo`.
package send
