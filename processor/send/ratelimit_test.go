package send

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/portalmail/portalmail/schemas"
)

// fakeClock's Sleep advances its time instead of sleeping.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	slept  []time.Duration
	cancel bool // Sleep fails as if ctx ended
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slept = append(c.slept, d)
	if c.cancel {
		return context.Canceled
	}
	c.now = c.now.Add(d)
	return nil
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) takeSlept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.slept
	c.slept = nil
	return s
}

func TestLimiterRate(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	l := NewLimiter(10, 3).WithClock(clock)
	ctx := context.Background()
	start := clock.Now()

	// The burst goes at once, then one token every 100ms.
	for i := range 3 {
		if err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if s := clock.takeSlept(); len(s) != 0 {
			t.Fatalf("burst wait %d slept %v", i, s)
		}
	}
	for i := range 20 {
		if err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if s := clock.takeSlept(); len(s) != 1 || s[0] != 100*time.Millisecond {
			t.Fatalf("wait %d slept %v, want [100ms]", i, s)
		}
	}
	if got := clock.Now().Sub(start); got != 2*time.Second {
		t.Errorf("23 sends at 10/s with burst 3 took %s, want 2s", got)
	}

	// An idle second refills the bucket to the burst, no further.
	clock.advance(10 * time.Second)
	for range 3 {
		_ = l.Wait(ctx)
	}
	if s := clock.takeSlept(); len(s) != 0 {
		t.Errorf("refilled burst slept %v", s)
	}
	_ = l.Wait(ctx)
	if s := clock.takeSlept(); len(s) != 1 || s[0] != 100*time.Millisecond {
		t.Errorf("after the burst slept %v, want [100ms]", s)
	}
}

func TestLimiterConcurrentReservations(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	// Sleep does not advance time here: each waiter reserves its own slot.
	l := NewLimiter(4, 1).WithClock(&reserveClock{fakeClock: clock})
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = l.Wait(context.Background()) }()
	}
	wg.Wait()
	got := map[time.Duration]int{}
	for _, d := range clock.takeSlept() {
		got[d]++
	}
	want := map[time.Duration]int{250 * time.Millisecond: 1, 500 * time.Millisecond: 1, 750 * time.Millisecond: 1, time.Second: 1}
	if len(got) != len(want) {
		t.Fatalf("sleeps %v, want %v", got, want)
	}
	for d, n := range want {
		if got[d] != n {
			t.Errorf("sleeps %v, want %v", got, want)
		}
	}
}

// reserveClock records sleeps without moving time.
type reserveClock struct{ *fakeClock }

func (c *reserveClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slept = append(c.slept, d)
	return nil
}

func TestLimiterCancelRefunds(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	l := NewLimiter(1, 1).WithClock(clock)
	_ = l.Wait(context.Background())

	clock.cancel = true
	for range 5 {
		if err := l.Wait(context.Background()); err != context.Canceled {
			t.Fatalf("Wait = %v, want context.Canceled", err)
		}
	}
	clock.cancel = false
	clock.takeSlept()
	// Cancelled waits gave their tokens back: the next waits 1s, not 6s.
	_ = l.Wait(context.Background())
	if s := clock.takeSlept(); len(s) != 1 || s[0] != time.Second {
		t.Errorf("after cancelled waits slept %v, want [1s]", s)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Wait(ctx); err != context.Canceled {
		t.Errorf("Wait on a cancelled ctx = %v", err)
	}
}

func TestLimiterUnlimited(t *testing.T) {
	for _, l := range []*Limiter{NewLimiter(0, 0), NewLimiter(-1, 5), nil} {
		clock := &fakeClock{now: time.Unix(0, 0)}
		if l != nil {
			l.WithClock(clock)
		}
		for range 1000 {
			if err := l.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if s := clock.takeSlept(); len(s) != 0 {
			t.Errorf("unlimited limiter slept %d times", len(s))
		}
	}
}

func TestRateLimitedMailer(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	l := NewLimiter(2, 1).WithClock(clock)
	calls := 0
	m := RateLimited(MailerFunc(func(context.Context, schemas.EmailJob) (string, error) {
		calls++
		return "id", nil
	}), l)
	for range 3 {
		if _, err := m.Send(context.Background(), schemas.EmailJob{}); err != nil {
			t.Fatal(err)
		}
	}
	if s := clock.takeSlept(); calls != 3 || len(s) != 2 || s[0] != 500*time.Millisecond {
		t.Errorf("calls %d, sleeps %v", calls, s)
	}
}
