package send

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/portalmail/portalmail/schemas"
)

func TestBackoffNext(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second}
	want := []time.Duration{100, 200, 400, 800, 1600, 2000, 2000}
	for i, w := range want {
		if got := b.Next(i + 1); got != w*time.Millisecond {
			t.Errorf("Next(%d) = %s, want %s", i+1, got, w*time.Millisecond)
		}
	}
	for _, attempt := range []int{-3, 0} {
		if got := b.Next(attempt); got != 100*time.Millisecond {
			t.Errorf("Next(%d) = %s, want the base", attempt, got)
		}
	}
	for _, attempt := range []int{63, 64, 1000, 1 << 30} {
		if got := b.Next(attempt); got != 2*time.Second {
			t.Errorf("Next(%d) = %s, want the cap", attempt, got)
		}
	}
	if got := (Backoff{}).Next(1); got != DefaultBackoff.Base {
		t.Errorf("zero Backoff Next(1) = %s, want %s", got, DefaultBackoff.Base)
	}
	if got := (Backoff{}).Next(100); got != DefaultBackoff.Max {
		t.Errorf("zero Backoff Next(100) = %s, want %s", got, DefaultBackoff.Max)
	}
}

func TestBackoffJitter(t *testing.T) {
	cases := []struct {
		jitter float64
		lo     float64 // share of the un-jittered delay
	}{
		{1, 0}, {0.5, 0.5}, {0.25, 0.75}, {2, 0}, {-1, 1},
	}
	for _, c := range cases {
		b := Backoff{Base: time.Second, Max: time.Minute, Jitter: c.jitter}
		for attempt := 1; attempt <= 8; attempt++ {
			d := min(time.Second<<(attempt-1), time.Minute)
			lo := time.Duration(float64(d) * c.lo)
			seen := map[time.Duration]bool{}
			for range 200 {
				got := b.Next(attempt)
				if got < lo || got > d {
					t.Fatalf("jitter %v: Next(%d) = %s, want in [%s, %s]", c.jitter, attempt, got, lo, d)
				}
				seen[got] = true
			}
			if c.lo < 1 && len(seen) < 10 {
				t.Errorf("jitter %v: Next(%d) took only %d values", c.jitter, attempt, len(seen))
			}
		}
	}
}

func TestSendWithRetryWaitsMaxOfBackoffAndProviderWait(t *testing.T) {
	results := []error{
		&RetryableError{Status: 429, Wait: 5 * time.Second},
		&RetryableError{Status: 500},
		errors.New("some unclassified error"),
		&RetryableError{Status: 503, Wait: time.Millisecond},
		nil,
	}
	calls := 0
	m := MailerFunc(func(ctx context.Context, job schemas.EmailJob) (string, error) {
		err := results[calls]
		calls++
		if err != nil {
			return "", err
		}
		return "<id>", nil
	})
	var rec sleepRecorder
	var notified []time.Duration
	b := Backoff{Base: time.Second, Max: time.Minute}
	id, attempts, err := SendWithRetry(context.Background(), m, schemas.EmailJob{Key: "k"}, b, 0, rec.sleep,
		func(_ int, _ error, wait time.Duration) { notified = append(notified, wait) })
	if err != nil || id != "<id>" || attempts != 5 {
		t.Fatalf("SendWithRetry = (%q, %d, %v)", id, attempts, err)
	}
	want := []time.Duration{5 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	got := rec.recorded()
	if len(got) != len(want) {
		t.Fatalf("waits %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] || notified[i] != want[i] {
			t.Errorf("wait %d = %s (notified %s), want %s", i+1, got[i], notified[i], want[i])
		}
	}
}

func TestSendWithRetryCancelledWhileSleeping(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	m := MailerFunc(func(context.Context, schemas.EmailJob) (string, error) {
		return "", &RetryableError{Status: 500}
	})
	sleep := func(ctx context.Context, d time.Duration) error {
		cancel()
		return ctx.Err()
	}
	_, attempts, err := SendWithRetry(ctx, m, schemas.EmailJob{}, Backoff{}, 0, sleep, nil)
	if err != context.Canceled || attempts != 1 {
		t.Errorf("SendWithRetry = (%d, %v), want (1, context.Canceled)", attempts, err)
	}
}

func TestSleepContext(t *testing.T) {
	if err := SleepContext(context.Background(), time.Millisecond); err != nil {
		t.Errorf("SleepContext = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := SleepContext(ctx, time.Hour); err != context.Canceled {
		t.Errorf("SleepContext on a cancelled ctx = %v", err)
	}
	if time.Since(start) > time.Second {
		t.Error("SleepContext slept through a cancelled ctx")
	}
}
