package state

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

var forgetFailedScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == 'sent:failed' then return redis.call('DEL', KEYS[1]) end return 0`)

// ForgetFailed removes the "failed permanently" mark of a job key so that a
// replayed job is sent again; a key marked as sent (with a provider id) stays.
// It reports whether a mark was removed.
func (s *Store) ForgetFailed(ctx context.Context, key string) (bool, error) {
	n, err := forgetFailedScript.Run(ctx, s.c, []string{s.claimKey(key)}).Int()
	if err != nil {
		return false, fmt.Errorf("state: forget failed %s: %w", key, err)
	}
	return n == 1, nil
}
