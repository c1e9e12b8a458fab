package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/portalmail/portalmail/metrics"
	"github.com/portalmail/portalmail/processor/pipeline"
	"github.com/portalmail/portalmail/processor/stream"
	"github.com/portalmail/portalmail/state"
)

// ProcessConfig configures `portalmail process`.
type ProcessConfig struct {
	Kafka           KafkaConfig
	Engine          EngineConfig
	Log             LogConfig
	HTTP            HTTPConfig
	RedisURL        string
	Group           string
	TransactionalID string
	BatchSize       int
	Workers         int
	Tick            time.Duration
	ClockOffset     time.Duration
	// DeletedRetention is how long a deleted row stays in state.
	DeletedRetention time.Duration
	// TrimDelay defers the trims of committed rows (state.Options.TrimDelay).
	TrimDelay time.Duration
}

func (c *ProcessConfig) register(f *flags) {
	host, _ := os.Hostname()
	c.Kafka.register(f)
	c.Engine.register(f)
	c.Log.register(f)
	c.HTTP.register(f, ":9090")
	f.StringOrFile(&c.RedisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis: redis[s]://…, host:port,host:port (Cluster) or redis+sentinel://host:port/master")
	f.String(&c.Group, "group", "portalmail-process", "consumer group of the process stage")
	f.String(&c.TransactionalID, "transactional-id", "portalmail-process-"+host, "Kafka transactional id, distinct per instance")
	f.Int(&c.BatchSize, "batch-size", stream.DefaultMaxPollRecords, "records per poll at most, one transaction each")
	f.Int(&c.Workers, "workers", stream.DefaultWorkers, "goroutines that decode a batch, and concurrent engine calls that apply it, split by row (a row's changes stay in order on one)")
	f.Duration(&c.Tick, "tick", time.Second, "how often due timers are fired when no input arrives")
	f.Duration(&c.ClockOffset, "clock-offset", 0, "shift the clock (tests and replays only)")
	f.Duration(&c.DeletedRetention, "deleted-retention", state.DefaultDeletedRetention, "how long a deleted row is kept in Redis (long enough for late references and redeliveries)")
	f.Duration(&c.TrimDelay, "trim-delay", DefaultTrimDelay, "how long a committed row's older history may wait to be trimmed, so the row's next change trims it in the same Redis call (0: trim at commit)")
}

// DefaultTrimDelay is the default of --trim-delay. On the benchmark
// workload most rows change again within a minute of a commit, and their
// trims ride on those changes' script calls (docs/benchmarks.md).
const DefaultTrimDelay = time.Minute

func (c ProcessConfig) validate() error {
	var errs []error
	errs = append(errs, c.Kafka.validate())
	if _, err := c.Engine.engine(); err != nil {
		errs = append(errs, err)
	}
	if c.RedisURL == "" {
		errs = append(errs, errors.New("--redis-url is required"))
	}
	if c.Group == "" || c.TransactionalID == "" {
		errs = append(errs, errors.New("--group and --transactional-id are required"))
	}
	if c.BatchSize <= 0 || c.Workers <= 0 || c.Tick <= 0 || c.DeletedRetention <= 0 {
		errs = append(errs, errors.New("--batch-size, --workers, --tick and --deleted-retention must be positive"))
	}
	if c.TrimDelay < 0 {
		errs = append(errs, errors.New("--trim-delay must not be negative"))
	}
	errs = append(errs, c.Log.validate(), c.HTTP.validate())
	return errors.Join(errs...)
}

func runProcess(ctx context.Context, env *environ, args []string) error {
	var c ProcessConfig
	f := newFlags("process", "process [flags]", env)
	c.register(f)
	if err := f.load(args, func() error { return c.validate() }); err != nil {
		return err
	}
	log := c.Log.logger(env.stderr)
	tuneGC(env.getenv, log)
	engCfg, _ := c.Engine.engine()
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
	offset := c.ClockOffset
	beforeCommit, err := faultHook(env.getenv, log)
	if err != nil {
		return err
	}
	store := state.New(cn.redis, state.Options{DeletedRetention: c.DeletedRetention, TrimDelay: c.TrimDelay})
	p, _, err := pipeline.NewProcess(pipeline.ProcessDeps{
		Engine: engCfg, Store: store, Serde: cn.serde,
		Schemas: stream.RegistrySchemas{Client: cn.sr}, Log: log,
		PortalPrefix: c.Engine.PortalPrefix, ServicePrefix: c.Engine.ServicePrefix,
		Stream: stream.ProcessConfig{
			Group: c.Group, TransactionalID: c.TransactionalID, JobsTopic: c.Kafka.JobsTopic, DLQTopic: c.Kafka.DLQTopic,
			MaxPollRecords: c.BatchSize, Workers: c.Workers, Tick: c.Tick, Now: func() time.Time { return time.Now().Add(offset) },
			ClientOpts: cn.opts, Logger: log, Metrics: metrics.NewProcess(ops.reg), BeforeCommit: beforeCommit,
		},
	})
	if err != nil {
		return err
	}
	defer p.Close()
	ops.watch(cn.redis, p.Client(), cn.sr, c.Group, c.HTTP.LagEvery, log, check{"batches", p.Healthy})
	log.Info("process stage started", "group", c.Group, "transactional_id", c.TransactionalID)
	err = p.Run(ctx)
	flushTrims(store, log)
	log.Info("process stage stopped")
	return err
}

// flushTrims runs the trims the stage's store deferred (--trim-delay), so
// the rows it committed keep only their newest entry; a failure only
// leaves older entries until the rows' next commits.
func flushTrims(store *state.Store, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := store.FlushTrims(ctx); err != nil {
		log.Warn("trimming committed row histories at stop failed; they are trimmed at their rows' next commits", "err", err)
	}
}

// faultHook builds the stage's BeforeCommit hook from two hidden, test-only
// environment variables (test/debezium uses them; they are not flags and not
// for production):
//
//	PORTALMAIL_FAULT_HOLD_BEFORE_COMMIT=D  every transaction carrying records is
//	    held open for D after its output is flushed, logging
//	    "fault: holding transaction open" first (a kill -9 then lands inside
//	    an open transaction)
//	PORTALMAIL_FAULT_ABORT=N  the first N transactions carrying records are
//	    aborted, logging "fault: aborting transaction"
//
// It returns nil when neither is set.
func faultHook(getenv func(string) string, log *slog.Logger) (func(records int) error, error) {
	var hold time.Duration
	if s := getenv("PORTALMAIL_FAULT_HOLD_BEFORE_COMMIT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("PORTALMAIL_FAULT_HOLD_BEFORE_COMMIT=%q: want a positive duration", s)
		}
		hold = d
	}
	aborts := 0
	if s := getenv("PORTALMAIL_FAULT_ABORT"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("PORTALMAIL_FAULT_ABORT=%q: want a count", s)
		}
		aborts = n
	}
	if hold == 0 && aborts == 0 {
		return nil, nil
	}
	log.Warn("fault injection enabled (test only)", "hold_before_commit", hold, "abort", aborts)
	return func(records int) error {
		if records == 0 {
			return nil
		}
		if aborts > 0 {
			aborts--
			log.Warn("fault: aborting transaction", "records", records)
			return errors.New("fault injection: PORTALMAIL_FAULT_ABORT")
		}
		if hold > 0 {
			log.Warn("fault: holding transaction open", "records", records, "hold", hold)
			time.Sleep(hold)
		}
		return nil
	}, nil
}
