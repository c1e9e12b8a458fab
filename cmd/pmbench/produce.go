package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/portalmail/portalmail/test/bench/e2e"
)

// runProduce produces a workload file to Kafka.
func runProduce(ctx context.Context, args []string) error {
	var c e2e.ProduceConfig
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "Kafka seed brokers, comma-separated")
	fs.StringVar(&c.Input, "input", "", "workload file (pmbench gen)")
	fs.StringVar(&c.Phase, "phase", "", "snapshot, changes, or empty for both")
	fs.StringVar(&c.PortalPrefix, "portal-prefix", "portal", "topic prefix of the Partner Portal connector")
	fs.StringVar(&c.ServicePrefix, "service-prefix", "service", "topic prefix of the Pexip Service connector")
	fs.IntVar(&c.Partitions, "create-topics", 0, "create every CDC topic with this many partitions first (0: do not)")
	fs.IntVar(&c.Rate, "rate", 0, "records per second (0: as fast as possible)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.Input == "" {
		return fmt.Errorf("produce: --input is required")
	}
	c.Brokers = strings.Split(*brokers, ",")
	n, took, err := e2e.ProduceFile(ctx, c)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "produce: %d records in %.1f s (%.0f records/s)\n", n, took.Seconds(), float64(n)/took.Seconds())
	return nil
}
