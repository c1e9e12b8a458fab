package pipeline

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/portalmail/portalmail/processor/send/mailgunfake"
	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/schemas/cdc"
)

// Default output topic names.
const (
	JobsTopic       = "portalmail.email-jobs"
	DeliveriesTopic = "portalmail.email-deliveries"
	DLQTopic        = "portalmail.dlq"
)

// Embedded is a whole environment in one process, every part reached over
// loopback TCP like its real counterpart: a Kafka broker (kfake), a schema
// registry (srfake), Redis (miniredis, unless a real one is given) and a
// Mailgun-compatible HTTP endpoint (mailgunfake).
type Embedded struct {
	Kafka    *kfake.Cluster
	Registry *srfake.Registry
	Mailgun  *mailgunfake.Server
	Redis    redis.UniversalClient
	mini     *miniredis.Miniredis
	SR       *sr.Client
	Serde    *schemas.Serde
	// Partitions of every topic.
	Partitions int32
}

// EmbeddedOptions tune StartEmbedded.
type EmbeddedOptions struct {
	// Partitions of every topic (default 3).
	Partitions int32
	// Redis, if set, is used instead of an embedded miniredis.
	Redis redis.UniversalClient
	Log   *slog.Logger
}

// StartEmbedded starts every part and registers the output schemas.
func StartEmbedded(ctx context.Context, o EmbeddedOptions) (*Embedded, error) {
	if o.Partitions == 0 {
		o.Partitions = 3
	}
	topics := append(cdc.NewDecoder(cdc.DecoderConfig{}).Topics(), JobsTopic, DeliveriesTopic, DLQTopic)
	e := &Embedded{Partitions: o.Partitions}
	var err error
	if e.Kafka, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(o.Partitions, topics...)); err != nil {
		return nil, fmt.Errorf("start kafka: %w", err)
	}
	e.Registry = srfake.New()
	e.Mailgun = mailgunfake.New()
	if o.Redis != nil {
		e.Redis = o.Redis
	} else {
		if e.mini, err = miniredis.Run(); err != nil {
			e.Close()
			return nil, fmt.Errorf("start redis: %w", err)
		}
		e.Redis = redis.NewClient(&redis.Options{Addr: e.mini.Addr()})
	}
	if e.SR, err = sr.NewClient(sr.URLs(e.Registry.URL())); err != nil {
		e.Close()
		return nil, err
	}
	if e.Serde, err = schemas.Register(ctx, e.SR, JobsTopic, DeliveriesTopic); err != nil {
		e.Close()
		return nil, fmt.Errorf("register schemas: %w", err)
	}
	return e, nil
}

// Brokers are the Kafka seed addresses.
func (e *Embedded) Brokers() []string { return e.Kafka.ListenAddrs() }

// Close stops every part.
func (e *Embedded) Close() {
	if e.Mailgun != nil {
		e.Mailgun.Close()
	}
	if e.Registry != nil {
		e.Registry.Close()
	}
	if e.mini != nil {
		e.Redis.Close()
		e.mini.Close()
	}
	if e.Kafka != nil {
		e.Kafka.Close()
	}
}
