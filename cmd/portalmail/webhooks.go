package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/portalmail/portalmail/metrics"
	"github.com/portalmail/portalmail/processor/webhooks"
	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/state"
)

// WebhooksConfig configures `portalmail webhooks`.
type WebhooksConfig struct {
	Kafka      KafkaConfig
	Log        LogConfig
	HTTP       HTTPConfig
	RedisURL   string
	Listen     string
	Path       string
	SigningKey string
	MaxAge     time.Duration
	// limits bound the server's clients (webhookLimits by default).
	limits serverLimits
}

func (c WebhooksConfig) validate() error {
	errs := []error{c.Kafka.validate(), c.Log.validate(), c.HTTP.validate()}
	if c.SigningKey == "" {
		errs = append(errs, errors.New("--webhook-signing-key is required"))
	}
	if c.MaxAge <= 0 {
		errs = append(errs, errors.New("--max-age must be positive"))
	}
	return errors.Join(errs...)
}

func runWebhooks(ctx context.Context, env *environ, args []string) error {
	var c WebhooksConfig
	f := newFlags("webhooks", "webhooks [flags]", env)
	c.Kafka.register(f)
	c.Log.register(f)
	c.HTTP.register(f, ":9095")
	f.StringOrFile(&c.RedisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis for the replay guard (webhook tokens)")
	f.String(&c.Listen, "listen", ":8080", "address to serve Mailgun's event webhooks on")
	f.String(&c.Path, "path", "/webhooks/mailgun", "URL path of the webhook endpoint")
	f.Secret(&c.SigningKey, "webhook-signing-key", "Mailgun HTTP webhook signing key")
	f.Duration(&c.MaxAge, "max-age", 5*time.Minute, "oldest signed timestamp accepted")
	if err := f.load(args, func() error { return c.validate() }); err != nil {
		return err
	}
	log := c.Log.logger(env.stderr)
	ops, err := startOps(ctx, c.HTTP, log)
	if err != nil {
		return err
	}
	defer ops.close()
	cn, err := connect(ctx, c.Kafka, c.RedisURL, log, ops.reg.KafkaHooks())
	if err != nil {
		return err
	}
	defer cn.close()
	producer, err := kgo.NewClient(append(cn.opts, kgo.RequiredAcks(kgo.AllISRAcks()))...)
	if err != nil {
		return err
	}
	defer producer.Close()
	// Ready when Redis (the replay guard), Kafka and the registry answer;
	// the webhooks command is no consumer group.
	ops.health.setChecks(clientChecks(cn.redis, producer, cn.sr)...)
	h, err := webhooks.New(webhooks.Config{SigningKey: c.SigningKey, MaxAge: c.MaxAge, Logger: log, Metrics: metrics.NewWebhooks(ops.reg)},
		state.New(cn.redis, state.Options{}), deliveryProducer{producer, cn.serde, c.Kafka.Deliveries})
	if err != nil {
		return err
	}
	srv := newServer(c.Listen, webhookMux(c.Path, h), c.limits.or(webhookLimits))
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("webhooks listening", "addr", c.Listen, "path", c.Path)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// webhookMux serves the webhook handler on path, and /healthz.
func webhookMux(path string, h http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(path, h)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	return mux
}

// deliveryProducer records webhook updates on the delivery topic, keyed by
// the job key like the sender's own records.
type deliveryProducer struct {
	cl    *kgo.Client
	serde *schemas.Serde
	topic string
}

// Record produces the update and waits for the brokers to acknowledge it.
// An update that does not encode, or that the client or brokers refuse as
// too large, is webhooks.ErrNotRecordable; other failures are retryable.
func (p deliveryProducer) Record(ctx context.Context, d schemas.EmailDelivery) error {
	v, err := p.serde.EncodeDelivery(d)
	if err != nil {
		return fmt.Errorf("encode: %v: %w", err, webhooks.ErrNotRecordable)
	}
	err = p.cl.ProduceSync(ctx, &kgo.Record{Topic: p.topic, Key: []byte(d.Key), Value: v}).FirstErr()
	if errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) {
		return fmt.Errorf("produce: %v: %w", err, webhooks.ErrNotRecordable)
	}
	return err
}
