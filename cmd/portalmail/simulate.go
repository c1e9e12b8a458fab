package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/processor/simulate"
	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/portalmail/portalmail/state"
	"github.com/portalmail/portalmail/state/memory"
	"github.com/portalmail/portalmail/templates"
)

// SimulateConfig configures `portalmail simulate`.
type SimulateConfig struct {
	Input    string
	Until    string
	RedisURL string
	Engine   EngineConfig
}

func runSimulate(ctx context.Context, env *environ, args []string) error {
	var c SimulateConfig
	f := newFlags("simulate", "simulate --input FILE [--until TIME] [flags]", env)
	f.String(&c.Input, "input", "", "file of CDC records, JSON lines {\"topic\",\"key\",\"value\"} (- for stdin)")
	f.String(&c.Until, "until", "", "run the simulated clock on to this time after the input (RFC 3339 or YYYY-MM-DD)")
	f.String(&c.RedisURL, "redis-url", "", "Redis to keep state in (default: in memory, empty)")
	c.Engine.register(f)
	if err := f.parse(args); err != nil {
		return err
	}
	var errs []error
	if c.Input == "" {
		errs = append(errs, errors.New("--input is required"))
	}
	var until time.Time
	if c.Until != "" {
		t, ok := cdc.ParseTime(c.Until)
		if !ok {
			errs = append(errs, fmt.Errorf("--until %q is not a time (RFC 3339 or YYYY-MM-DD)", c.Until))
		}
		until = t
	}
	engCfg, err := c.Engine.engine()
	if err := errors.Join(append(errs, err)...); err != nil {
		return err
	}

	tuneSimulateGC(env.getenv)
	in := env.stdin
	if c.Input != "-" {
		file, err := os.Open(c.Input)
		if err != nil {
			return fmt.Errorf("open input: %w", err)
		}
		defer file.Close()
		in = file
	}

	// The in-memory store expires rows in simulated time (its clock follows
	// the simulation's), so a long input's memory follows its live rows.
	var clock atomic.Int64
	clock.Store(time.Now().UnixMilli())
	var st processor.State = memory.New(memory.Options{Now: func() time.Time { return time.UnixMilli(clock.Load()) }})
	if c.RedisURL != "" {
		rc, err := state.Open(ctx, c.RedisURL)
		if err != nil {
			return err
		}
		defer rc.Close()
		st = state.New(rc, state.Options{})
	}
	tmpl, err := templates.Parse()
	if err != nil {
		return err
	}
	eng, err := processor.New(catalog.Default(), st, tmpl, engCfg)
	if err != nil {
		return err
	}
	dec := cdc.NewDecoder(cdc.DecoderConfig{PortalPrefix: c.Engine.PortalPrefix, ServicePrefix: c.Engine.ServicePrefix, Images: true})
	// One write per email would be one system call per email: buffer them.
	bw := bufio.NewWriterSize(env.stdout, 256<<10)
	errOut := json.NewEncoder(env.stderr)
	var line []byte // each email's line, written as encoding/json would
	err = simulate.Run(ctx, eng, dec, in, until, simulate.Sink{
		Email: func(e simulate.Email) error {
			var err error
			if line, err = e.AppendJSON(line[:0]); err != nil {
				return err
			}
			_, err = bw.Write(append(line, '\n'))
			return err
		},
		Clock: func(t time.Time) { clock.Store(t.UnixMilli()) },
		DeadLetter: func(d simulate.DeadLetter) error {
			return errOut.Encode(struct {
				DLQ simulate.DeadLetter `json:"dlq"`
			}{d})
		},
	})
	if ferr := bw.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write output: %w", ferr)
	}
	return err
}
