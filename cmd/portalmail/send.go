package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/portalmail/portalmail/metrics"
	"github.com/portalmail/portalmail/processor/pipeline"
	"github.com/portalmail/portalmail/processor/send"
	"github.com/portalmail/portalmail/processor/stream"
	"github.com/portalmail/portalmail/state"
)

// SendConfig configures `portalmail send`.
type SendConfig struct {
	Kafka       KafkaConfig
	Log         LogConfig
	HTTP        HTTPConfig
	RedisURL    string
	Group       string
	Owner       string
	Concurrency int
	RateLimit   float64
	RetryBase   time.Duration
	RetryMax    time.Duration
	Mailgun     send.MailgunConfig
}

func (c *SendConfig) register(f *flags) {
	host, _ := os.Hostname()
	c.Kafka.register(f)
	c.Log.register(f)
	c.HTTP.register(f, ":9091")
	f.StringOrFile(&c.RedisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis for the send claims (the same as the process stage's)")
	f.String(&c.Group, "group", "portalmail-send", "consumer group of the send stage")
	f.String(&c.Owner, "owner", fmt.Sprintf("%s-%d", host, os.Getpid()), "this instance's name in send claims")
	f.Int(&c.Concurrency, "concurrency", stream.DefaultSendConcurrency, "jobs sent at once")
	f.Float(&c.RateLimit, "rate-limit", 50, "emails per second at most (0: unlimited)")
	f.String(&c.Mailgun.Domain, "mailgun-domain", "", "Mailgun sending domain")
	f.Secret(&c.Mailgun.APIKey, "mailgun-api-key", "Mailgun API key")
	f.String(&c.Mailgun.Region, "mailgun-region", "us", "Mailgun region: us or eu")
	f.String(&c.Mailgun.APIBase, "mailgun-api-base", "", "Mailgun API base URL (overrides the region; for tests)")
	f.Duration(&c.Mailgun.Timeout, "mailgun-timeout", 30*time.Second, "timeout of one Mailgun request")
	f.Duration(&c.RetryBase, "retry-base", time.Second, "first pause before retrying a failed Mailgun call (doubles, with jitter)")
	f.Duration(&c.RetryMax, "retry-max", 5*time.Minute, "longest pause between Mailgun retries")
}

func (c SendConfig) validate() error {
	var errs []error
	errs = append(errs, c.Kafka.validate(), c.Log.validate(), c.Mailgun.Validate(), c.HTTP.validate())
	if c.RedisURL == "" {
		errs = append(errs, errors.New("--redis-url is required"))
	}
	if c.Group == "" || c.Owner == "" {
		errs = append(errs, errors.New("--group and --owner are required"))
	}
	if c.RetryBase <= 0 || c.RetryMax < c.RetryBase {
		errs = append(errs, errors.New("--retry-base must be positive and --retry-max at least --retry-base"))
	}
	if c.Concurrency <= 0 || c.RateLimit < 0 {
		errs = append(errs, errors.New("--concurrency must be positive and --rate-limit not negative"))
	}
	return errors.Join(errs...)
}

func runSend(ctx context.Context, env *environ, args []string) error {
	var c SendConfig
	f := newFlags("send", "send [flags]", env)
	c.register(f)
	if err := f.load(args, func() error { return c.validate() }); err != nil {
		return err
	}
	log := c.Log.logger(env.stderr)
	tuneGC(env.getenv, log)
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
	mg, err := send.NewMailgun(c.Mailgun)
	if err != nil {
		return err
	}
	s, err := pipeline.NewSend(pipeline.SendDeps{
		Mailer: mg, RatePerSecond: c.RateLimit, Store: state.New(cn.redis, state.Options{Coalesce: true}), Serde: cn.serde,
		Stream: stream.SendConfig{
			JobsTopic: c.Kafka.JobsTopic, DeliveriesTopic: c.Kafka.Deliveries, DLQTopic: c.Kafka.DLQTopic,
			Group: c.Group, Owner: c.Owner, Concurrency: c.Concurrency, ClientOpts: cn.opts, Logger: log,
			Backoff: send.Backoff{Base: c.RetryBase, Max: c.RetryMax, Jitter: send.DefaultBackoff.Jitter},
			Metrics: metrics.NewSend(ops.reg),
		},
	})
	if err != nil {
		return err
	}
	defer s.Close()
	ops.watch(cn.redis, s.Client(), cn.sr, c.Group, c.HTTP.LagEvery, log)
	log.Info("send stage started", "group", c.Group, "owner", c.Owner, "mailgun", c.Mailgun.String())
	err = s.Run(ctx)
	log.Info("send stage stopped")
	return err
}
