package state

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// eachMode runs a test of the send claims on a Store without and with
// Options.Coalesce.
func eachMode(t *testing.T, test func(t *testing.T, coalesce bool)) {
	for _, coalesce := range []bool{false, true} {
		t.Run(map[bool]string{false: "own-pipeline", true: "coalesced"}[coalesce], func(t *testing.T) {
			test(t, coalesce)
		})
	}
}

func TestSendClaims(t *testing.T) { eachMode(t, testSendClaims) }

func testSendClaims(t *testing.T, coalesce bool) {
	s, env := newTestStore(t, Options{SentTTL: time.Hour, Coalesce: coalesce})
	ctx := context.Background()
	claim := func(key, owner string, lease time.Duration, want ClaimStatus) {
		t.Helper()
		got, err := s.ClaimSend(ctx, key, owner, lease)
		if err != nil || got != want {
			t.Fatalf("ClaimSend(%s, %s) = %v, %v; want %v", key, owner, got, err, want)
		}
	}
	claim("k1", "A", time.Minute, ClaimAcquired)
	claim("k1", "A", time.Minute, ClaimAcquired) // re-entrant
	claim("k1", "B", time.Minute, ClaimInFlight)
	if err := s.ReleaseSend(ctx, "k1", "B"); err != nil { // not B's: no effect
		t.Fatal(err)
	}
	claim("k1", "B", time.Minute, ClaimInFlight)
	if err := s.ReleaseSend(ctx, "k1", "A"); err != nil {
		t.Fatal(err)
	}
	claim("k1", "B", time.Minute, ClaimAcquired)
	if err := s.MarkSent(ctx, "k1", "<msg-1@mailgun>"); err != nil {
		t.Fatal(err)
	}
	claim("k1", "B", time.Minute, ClaimAlreadySent)
	claim("k1", "C", time.Minute, ClaimAlreadySent)
	if err := s.ReleaseSend(ctx, "k1", "B"); err != nil { // sent marks are never released
		t.Fatal(err)
	}
	claim("k1", "C", time.Minute, ClaimAlreadySent)
	if v, _ := env.c.Get(ctx, s.claimKey("k1")).Result(); v != "sent:<msg-1@mailgun>" {
		t.Errorf("claim value = %q", v)
	}
	if ttl, _ := env.c.TTL(ctx, s.claimKey("k1")).Result(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("sent TTL = %v", ttl)
	}

	// permanent failure
	claim("k2", "A", time.Minute, ClaimAcquired)
	if err := s.MarkSent(ctx, "k2", "failed"); err != nil {
		t.Fatal(err)
	}
	claim("k2", "A", time.Minute, ClaimAlreadySent)

	// a lapsed claim can be taken over
	claim("k3", "A", 100*time.Millisecond, ClaimAcquired)
	claim("k3", "B", time.Minute, ClaimInFlight)
	env.advance(300 * time.Millisecond)
	claim("k3", "B", time.Minute, ClaimAcquired)
	claim("k3", "A", time.Minute, ClaimInFlight)

	if got := fmt.Sprint(ClaimAcquired, ClaimAlreadySent, ClaimInFlight, ClaimStatus(0)); got != "acquired already_sent in_flight unknown" {
		t.Errorf("String: %s", got)
	}
}

// TestMarkSentAndClaim: the mark lands whatever the claim's outcome, in
// one round trip (coalesced: in order on the shared stream, in one or two of
// its batches), also when both name one key (the mark first).
func TestMarkSentAndClaim(t *testing.T) { eachMode(t, testMarkSentAndClaim) }

func testMarkSentAndClaim(t *testing.T, coalesce bool) {
	s, env := newTestStore(t, Options{SentTTL: time.Hour, Coalesce: coalesce})
	ctx := context.Background()
	mustClaim := func(key, owner string, want ClaimStatus) {
		t.Helper()
		if got, err := s.ClaimSend(ctx, key, owner, time.Minute); err != nil || got != want {
			t.Fatalf("ClaimSend(%s, %s) = %v, %v; want %v", key, owner, got, err, want)
		}
	}
	mustClaim("a", "A", ClaimAcquired)
	mustClaim("b", "B", ClaimAcquired) // b is in flight elsewhere
	for _, c := range []struct {
		sent, next string
		want       ClaimStatus
	}{
		{"a", "b", ClaimInFlight},    // marked all the same
		{"x", "c", ClaimAcquired},    // a mark of a key never claimed
		{"c", "c", ClaimAlreadySent}, // one key: marked, then claimed
		{"d", "a", ClaimAlreadySent},
	} {
		got, err := s.MarkSentAndClaim(ctx, c.sent, "<id-"+c.sent+">", c.next, "A", time.Minute)
		if err != nil || got != c.want {
			t.Errorf("MarkSentAndClaim(%s, %s) = %v, %v; want %v", c.sent, c.next, got, err, c.want)
		}
		if v, _ := env.c.Get(ctx, s.claimKey(c.sent)).Result(); v != "sent:<id-"+c.sent+">" {
			t.Errorf("after MarkSentAndClaim(%s, %s): %s holds %q", c.sent, c.next, c.sent, v)
		}
	}
	mustClaim("a", "C", ClaimAlreadySent)
	h := &countHook{}
	env.c.AddHook(h)
	if _, err := s.MarkSentAndClaim(ctx, "e", "<id-e>", "f", "A", time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := h.n.Load(); n != 1 && !(coalesce && n == 2) {
		t.Errorf("%d round trips, want 1", n)
	}
}

func TestConcurrentClaims(t *testing.T) { eachMode(t, testConcurrentClaims) }

func testConcurrentClaims(t *testing.T, coalesce bool) {
	s, _ := newTestStore(t, Options{Coalesce: coalesce})
	ctx := context.Background()
	const keys, owners = 50, 4
	var wg sync.WaitGroup
	results := make([][owners]ClaimStatus, keys)
	errs := make(chan error, keys*owners)
	for k := 0; k < keys; k++ {
		for o := 0; o < owners; o++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, err := s.ClaimSend(ctx, fmt.Sprintf("key-%d", k), fmt.Sprintf("owner-%d", o), time.Minute)
				if err != nil {
					errs <- err
				}
				results[k][o] = st
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for k, rs := range results {
		acquired := 0
		for _, st := range rs {
			switch st {
			case ClaimAcquired:
				acquired++
			case ClaimInFlight:
			default:
				t.Errorf("key %d: status %v", k, st)
			}
		}
		if acquired != 1 {
			t.Errorf("key %d: %d owners acquired, want exactly 1 (%v)", k, acquired, rs)
		}
	}
}
