package state

import (
	"context"
	"fmt"
	"time"
)

// ClaimToken claims a webhook token for one request (owner, unique per
// request) and keeps it for ttl (SET NX PX): the replay guard of package
// webhooks. It reports whether the token was free; a token claimed before,
// by anyone, gives false. Safe for concurrent use: of two concurrent claims
// of one token, one wins. On error the claim may or may not be written.
func (s *Store) ClaimToken(ctx context.Context, token, owner string, ttl time.Duration) (bool, error) {
	ok, err := s.c.SetNX(ctx, s.tokenKey(token), owner, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("state: claim webhook token: %w", err)
	}
	return ok, nil
}

// ReleaseToken gives up owner's claim on a token (its event could not be
// recorded, for a reason worth retrying), so Mailgun's retry of the same
// signed request is accepted: the key is deleted only if owner still holds
// it (one script, one round trip). Idempotent.
func (s *Store) ReleaseToken(ctx context.Context, token, owner string) error {
	_, err := s.run(ctx, []op{{script: scriptRelease, keys: []string{s.tokenKey(token)}, args: []any{owner}}})
	if err != nil {
		return fmt.Errorf("state: release webhook token: %w", err)
	}
	return nil
}

func (s *Store) tokenKey(token string) string {
	return s.prefix + ":{w:" + escComponent.Replace(token) + "}"
}
