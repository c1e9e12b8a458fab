package send

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestRetryWait(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"none", nil, 0},
		{"retry-after seconds", http.Header{"Retry-After": {"120"}}, 2 * time.Minute},
		{"retry-after fractional", http.Header{"Retry-After": {"1.5"}}, 1500 * time.Millisecond},
		{"retry-after date", http.Header{"Retry-After": {"Sun, 01 Mar 2026 09:01:00 GMT"}}, time.Minute},
		{"retry-after past date", http.Header{"Retry-After": {"Sun, 01 Mar 2026 08:00:00 GMT"}}, 0},
		{"retry-after negative", http.Header{"Retry-After": {"-5"}}, 0},
		{"reset seconds", http.Header{"X-Ratelimit-Reset": {strconv.FormatInt(now.Unix()+42, 10)}}, 42 * time.Second},
		{"reset ms", http.Header{"X-Ratelimit-Reset": {strconv.FormatInt(now.UnixMilli()+1250, 10)}}, 1250 * time.Millisecond},
		{"reset fractional seconds", http.Header{"X-Ratelimit-Reset": {strconv.FormatInt(now.Unix()+2, 10) + ".5"}}, 2500 * time.Millisecond},
		{"reset delta", http.Header{"X-Ratelimit-Reset": {"30"}}, 30 * time.Second},
		{"capped", http.Header{"Retry-After": {"999999"}}, MaxHeaderWait},
		{"nan", http.Header{"Retry-After": {"NaN"}}, 0},
		{"inf", http.Header{"Retry-After": {"+Inf"}, "X-Ratelimit-Reset": {"Inf"}}, 0},
		{"garbage falls through", http.Header{"Retry-After": {"later"}, "X-Ratelimit-Reset": {"10"}}, 10 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := retryWait(c.header, now); got != c.want {
				t.Errorf("retryWait = %s, want %s", got, c.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	retry := &RetryableError{Err: errors.New("boom"), Wait: 3 * time.Second, Status: 503}
	cases := []struct {
		name      string
		err       error
		permanent bool
		wait      time.Duration
	}{
		{"nil", nil, false, 0},
		{"permanent", fmt.Errorf("mailgun: 400 bad: %w", ErrPermanent), true, 0},
		{"retryable", retry, false, 3 * time.Second},
		{"wrapped retryable", fmt.Errorf("job k: %w", retry), false, 3 * time.Second},
		{"exhausted", fmt.Errorf("%w after 3 attempts: %w", ErrExhausted, retry), false, 3 * time.Second},
		{"context", context.Canceled, false, 0},
		{"other", errors.New("x"), false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, w := Classify(c.err)
			if p != c.permanent || w != c.wait {
				t.Errorf("Classify = (%v, %s), want (%v, %s)", p, w, c.permanent, c.wait)
			}
		})
	}
	if got, want := retry.Error(), "retryable delivery failure (status 503): boom (retry after 3s)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(retry, retry.Err) {
		t.Error("RetryableError does not unwrap")
	}
}
