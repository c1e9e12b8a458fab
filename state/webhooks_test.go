package state

import (
	"context"
	"testing"
	"time"
)

// TestWebhookTokenClaims: a token is claimed once; only its owner releases
// it, and a released token can be claimed again (Mailgun's retry).
func TestWebhookTokenClaims(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	step := func(what string, got, want bool, err error) {
		t.Helper()
		if err != nil || got != want {
			t.Fatalf("%s: %v, %v; want %v", what, got, err, want)
		}
	}
	ok, err := s.ClaimToken(ctx, "tok{1}:x", "req-a", time.Minute)
	step("first claim", ok, true, err)
	ok, err = s.ClaimToken(ctx, "tok{1}:x", "req-b", time.Minute)
	step("second claim", ok, false, err)
	if err := s.ReleaseToken(ctx, "tok{1}:x", "req-b"); err != nil {
		t.Fatal(err)
	}
	ok, err = s.ClaimToken(ctx, "tok{1}:x", "req-c", time.Minute)
	step("claim after a stranger's release", ok, false, err)
	if err := s.ReleaseToken(ctx, "tok{1}:x", "req-a"); err != nil {
		t.Fatal(err)
	}
	ok, err = s.ClaimToken(ctx, "tok{1}:x", "req-d", time.Minute)
	step("claim after the owner's release", ok, true, err)
	if err := s.ReleaseToken(ctx, "never-claimed", "req-e"); err != nil {
		t.Fatalf("releasing a free token: %v", err)
	}
}
