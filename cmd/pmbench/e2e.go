package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/portalmail/portalmail/test/bench/e2e"
)

// runE2E runs the end-to-end benchmark. Flags default to the environment
// scripts/bench-e2e.sh sets (KAFKA_BROKERS, REDIS_URL, REDIS_CLUSTER_URL,
// BENCH_ONLY, BENCH_RUNS, ...).
func runE2E(ctx context.Context, args []string) error {
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	envInt := func(k string, def int) int {
		if n, err := strconv.Atoi(os.Getenv(k)); err == nil {
			return n
		}
		return def
	}
	var c e2e.Config
	fs := flag.NewFlagSet("e2e", flag.ContinueOnError)
	brokers := fs.String("brokers", env("KAFKA_BROKERS", "127.0.0.1:9092"), "Kafka seed brokers")
	only := fs.String("only", env("BENCH_ONLY", ""), "scenarios, comma-separated: "+strings.Join(e2e.Scenarios, ",")+" (default all)")
	fs.StringVar(&c.Bin, "bin", env("PORTALMAIL_BIN", ""), "the portalmail binary")
	fs.StringVar(&c.Input, "input", env("BENCH_INPUT", ""), "workload file (pmbench gen)")
	fs.StringVar(&c.RedisURL, "redis-url", env("REDIS_URL", ""), "standalone Redis (flushed before every run)")
	fs.StringVar(&c.ClusterURL, "cluster-url", env("REDIS_CLUSTER_URL", ""), "Redis Cluster seeds host:port,host:port,... (flushed before every run)")
	fs.IntVar(&c.KafkaPID, "kafka-pid", envInt("KAFKA_PID", 0), "pid of the broker (for its CPU time)")
	fs.IntVar(&c.Runs, "runs", envInt("BENCH_RUNS", 3), "runs of cold and warm")
	fs.IntVar(&c.ScalingRuns, "scaling-runs", envInt("BENCH_SCALING_RUNS", 1), "runs of each scaling and cluster configuration")
	fs.IntVar(&c.Partitions, "partitions", envInt("BENCH_PARTITIONS", 6), "partitions per topic")
	fs.IntVar(&c.ScalingPartitions, "scaling-partitions", envInt("BENCH_SCALING_PARTITIONS", 12), "partitions per topic in the scaling and cluster runs")
	rates := fs.String("latency-rates", env("BENCH_LATENCY_RATES", "20000"), "changes per second of the latency runs, comma-separated (one run each)")
	fs.IntVar(&c.LatencyInstances, "latency-instances", envInt("BENCH_LATENCY_INSTANCES", 1), "process instances of the latency runs (above 1: on --scaling-partitions partitions)")
	fs.IntVar(&c.SimRedisRecords, "sim-redis-records", envInt("BENCH_SIM_REDIS_RECORDS", 100050), "records simulate --redis-url reads (0: all)")
	fs.StringVar(&c.Dir, "dir", env("BENCH_DIR", ""), "directory for logs and results.json")
	fs.DurationVar(&c.Timeout, "timeout", 20*time.Minute, "bound of every wait")
	fs.IntVar(&c.Restarts, "restarts", envInt("BENCH_RESTARTS", 5), "restarts of crashed process-stage instances per run before the run fails")
	fs.BoolVar(&c.WarmUp, "warm-up", env("BENCH_WARMUP", "1") == "1", "run one untimed warm run first, so a freshly started broker is warm for the timed runs")
	fs.StringVar(&c.PeerClasspath, "peer-classpath", env("PEER_CLASSPATH", ""), "classpath of the Kafka Streams peer (KAFKA_POM=test/bench/peer/pom.xml scripts/kafka.sh classpath); the peer scenario is skipped without it")
	fs.StringVar(&c.PeerSource, "peer-source", env("PEER_SOURCE", "test/bench/peer"), "directory of Peer.java and its log4j2.properties")
	fs.StringVar(&c.ProfileDir, "profile-dir", env("BENCH_PROFILE_DIR", ""), "record perf CPU profiles of the process stage and Redis during the first warm run here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.Brokers = strings.Split(*brokers, ",")
	for _, r := range strings.Split(*rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n <= 0 {
			return fmt.Errorf("e2e: --latency-rates %q: want positive numbers", *rates)
		}
		c.LatencyRates = append(c.LatencyRates, n)
	}
	if *only != "" {
		c.Only = strings.Split(*only, ",")
	}
	if c.Dir == "" {
		d, err := os.MkdirTemp("", "pmbench-")
		if err != nil {
			return err
		}
		c.Dir = d
	}
	if c.SimRedisRecords == 0 {
		c.SimRedisRecords = -1
	}
	fmt.Fprintf(os.Stderr, "e2e: logs and results.json in %s\n", c.Dir)
	_, err := e2e.Run(ctx, c)
	return err
}
