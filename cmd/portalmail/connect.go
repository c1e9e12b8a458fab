package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/state"
)

// conns are what the stages and the webhooks command connect to: Redis, the
// schema registry (with the output schemas registered) and the franz-go
// options for Kafka.
type conns struct {
	redis redis.UniversalClient
	sr    *sr.Client
	serde *schemas.Serde
	opts  []kgo.Opt
}

// connect opens Redis, registers the output schemas and builds the Kafka
// options (extra appended). On error nothing stays open.
func connect(ctx context.Context, k KafkaConfig, redisURL string, log *slog.Logger, extra ...kgo.Opt) (*conns, error) {
	rc, err := state.Open(ctx, redisURL)
	if err != nil {
		return nil, err
	}
	c := &conns{redis: rc}
	if c.sr, err = k.registry(); err != nil {
		rc.Close()
		return nil, err
	}
	if c.serde, err = schemas.Register(ctx, c.sr, k.JobsTopic, k.Deliveries); err != nil {
		rc.Close()
		return nil, fmt.Errorf("register schemas: %w", err)
	}
	if c.opts, err = k.clientOpts(log); err != nil {
		rc.Close()
		return nil, err
	}
	c.opts = append(c.opts, extra...)
	return c, nil
}

func (c *conns) close() { c.redis.Close() }
