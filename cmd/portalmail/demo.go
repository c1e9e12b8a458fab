package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/portalmail/portalmail/examples"
	"github.com/portalmail/portalmail/processor/pipeline"
	"github.com/portalmail/portalmail/schemas/cdc"
)

// DemoConfig configures `portalmail demo`.
type DemoConfig struct {
	Input string
	Until string
	Log   LogConfig
}

func runDemo(ctx context.Context, env *environ, args []string) error {
	var c DemoConfig
	f := newFlags("demo", "demo [flags]", env)
	f.String(&c.Input, "input", "", "CDC records to feed (default: the bundled sample, examples/sample.jsonl)")
	f.String(&c.Until, "until", "2027-01-31", "run the demo clock on to this time after the input")
	f.String(&c.Log.Format, "log-format", "text", "log format: json or text")
	f.String(&c.Log.Level, "log-level", "error", "log level of the stages: debug, info, warn or error")
	if err := f.parse(args); err != nil {
		return err
	}
	until, ok := cdc.ParseTime(c.Until)
	var errs []error
	if !ok {
		errs = append(errs, fmt.Errorf("--until %q is not a time", c.Until))
	}
	if err := errors.Join(append(errs, c.Log.validate())...); err != nil {
		return err
	}
	input := examples.Sample
	if c.Input != "" {
		b, err := os.ReadFile(c.Input)
		if err != nil {
			return fmt.Errorf("read input: %w", err)
		}
		input = b
	}
	log := c.Log.logger(env.stderr)
	parts, err := pipeline.StartEmbedded(ctx, pipeline.EmbeddedOptions{Log: log})
	if err != nil {
		return err
	}
	defer parts.Close()
	sum, err := pipeline.Demo(ctx, parts, pipeline.DemoOptions{Input: input, Until: until, Log: log, Out: env.stdout})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "\nportalmail demo: %d emails sent, %d dead-lettered, %d duplicates suppressed (%d CDC records, %d redelivered: %d new emails from them) in %s\n",
		sum.Sent, sum.DeadLettered, sum.Duplicates, sum.Records, sum.Redelivered, sum.RedeliveredJobs, sum.Took.Round(100*time.Millisecond))
	return nil
}
