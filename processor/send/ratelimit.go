package send

import (
	"context"
	"math"
	"sync"
	"time"
)

// Clock is the time source of a Limiter. Sleep waits for d or until ctx
// ends, returning ctx.Err() in that case.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time                                   { return time.Now() }
func (realClock) Sleep(ctx context.Context, d time.Duration) error { return SleepContext(ctx, d) }

// Limiter is a token bucket: it holds up to burst tokens, gains perSecond
// tokens a second, and Wait takes one token, waiting for it when the bucket
// is empty. Waiters are served in arrival order of their reservations. It
// is safe for concurrent use; a nil *Limiter never waits.
type Limiter struct {
	mu     sync.Mutex
	clock  Clock
	rate   float64 // tokens per second; <= 0 means unlimited
	burst  float64
	tokens float64 // may go negative: tokens reserved by waiters
	last   time.Time
}

// NewLimiter returns a limiter allowing perSecond sends a second with bursts
// of up to burst (at least 1); perSecond <= 0 means unlimited. The bucket
// starts full.
func NewLimiter(perSecond float64, burst int) *Limiter {
	b := float64(max(burst, 1))
	return &Limiter{clock: realClock{}, rate: perSecond, burst: b, tokens: b}
}

// WithClock replaces the limiter's clock (for tests) and returns l. Call it
// before the limiter is shared.
func (l *Limiter) WithClock(c Clock) *Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clock = c
	l.last = time.Time{}
	return l
}

// refill adds the tokens earned since the last call; l.mu is held.
func (l *Limiter) refill(now time.Time) {
	if !l.last.IsZero() && now.After(l.last) {
		l.tokens = math.Min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	if l.last.IsZero() || now.After(l.last) {
		l.last = now
	}
}

// Wait takes a token, waiting until one is available or ctx ends; in the
// latter case it returns ctx.Err() and gives the reserved token back.
func (l *Limiter) Wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if l.rate <= 0 {
		l.mu.Unlock()
		return nil
	}
	clock := l.clock
	l.refill(clock.Now())
	l.tokens--
	var wait time.Duration
	if l.tokens < 0 {
		wait = time.Duration(math.Ceil(-l.tokens / l.rate * float64(time.Second)))
	}
	l.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	if err := clock.Sleep(ctx, wait); err != nil {
		l.mu.Lock()
		l.refill(clock.Now())
		l.tokens = math.Min(l.burst, l.tokens+1)
		l.mu.Unlock()
		return err
	}
	return nil
}
