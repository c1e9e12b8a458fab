package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// testEnv is what newTestStore set up.
type testEnv struct {
	c  redis.UniversalClient
	mr *miniredis.Miniredis // nil against a real server
}

// advance lets Redis's clock run on by d (TTLs, leases of claims).
func (e *testEnv) advance(d time.Duration) {
	if e.mr != nil {
		e.mr.FastForward(d)
		return
	}
	time.Sleep(d)
}

// newTestStore returns a Store on the server at $REDIS_URL, with a unique
// random key prefix whose keys are deleted at the end of the test, or else on
// a fresh miniredis.
func newTestStore(t testing.TB, opts ...Options) (*Store, *testEnv) {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	env := &testEnv{}
	if url := os.Getenv("REDIS_URL"); url != "" {
		ctx := context.Background()
		c, err := Open(ctx, url)
		if err != nil {
			t.Fatalf("open %s: %v", url, err)
		}
		var rnd [6]byte
		_, _ = rand.Read(rnd[:])
		o.Prefix = "pmtest-" + hex.EncodeToString(rnd[:])
		prefix := o.Prefix
		t.Cleanup(func() {
			defer c.Close()
			if err := deleteKeys(ctx, c, prefix+":*"); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
		env.c = c
	} else {
		env.mr = miniredis.RunT(t)
		env.c = redis.NewClient(&redis.Options{Addr: env.mr.Addr()})
		t.Cleanup(func() { _ = env.c.Close() })
	}
	return New(env.c, o), env
}

// countHook counts round trips: single commands and pipelines, except the
// handshake of a new connection (HELLO, CLIENT SETINFO, AUTH, SELECT).
type countHook struct {
	n    atomic.Int64
	mu   sync.Mutex
	seen []string
}

func connInit(name string) bool {
	switch name {
	case "hello", "client", "auth", "select":
		return true
	}
	return false
}

func (h *countHook) note(name string) {
	h.mu.Lock()
	h.seen = append(h.seen, name)
	h.mu.Unlock()
}

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !connInit(cmd.Name()) {
			h.n.Add(1)
			h.note(cmd.Name())
		}
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && !connInit(cmds[0].Name()) {
			h.n.Add(1)
			h.note("pipeline:" + cmds[0].Name())
		}
		return next(ctx, cmds)
	}
}

// deleteKeys deletes the keys matching pattern: SCAN on every master, DEL
// one key per command (keys of a test span Cluster slots).
func deleteKeys(ctx context.Context, c redis.UniversalClient, pattern string) error {
	del := func(ctx context.Context, node redis.UniversalClient) error {
		var cursor uint64
		for {
			keys, next, err := node.Scan(ctx, cursor, pattern, 1000).Result()
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				pipe := c.Pipeline()
				for _, k := range keys {
					pipe.Del(ctx, k)
				}
				if _, err := pipe.Exec(ctx); err != nil {
					return err
				}
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	if cc, ok := c.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return del(ctx, node) })
	}
	return del(ctx, c)
}
