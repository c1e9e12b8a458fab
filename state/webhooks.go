package state

import (
	"context"
	"fmt"
	"time"
)

// FirstUse reports whether a webhook token is seen for the first time, and
// remembers it for ttl (SET NX PX): the replay guard of package webhooks.
// Safe for concurrent use: of two concurrent calls with one token, one wins.
func (s *Store) FirstUse(ctx context.Context, token string, ttl time.Duration) (bool, error) {
	ok, err := s.c.SetNX(ctx, s.prefix+":{w:"+escComponent.Replace(token)+"}", "1", ttl).Result()
	if err != nil {
		return false, fmt.Errorf("state: webhook token: %w", err)
	}
	return ok, nil
}
