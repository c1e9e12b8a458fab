package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/portalmail/portalmail/processor/stream"
	"github.com/portalmail/portalmail/state"
)

// runDLQ is `portalmail dlq list|replay`.
func runDLQ(ctx context.Context, env *environ, args []string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		return errors.New("usage: portalmail dlq list|replay [flags]")
	}
	verb := args[0]
	var k KafkaConfig
	var log LogConfig
	var asJSON, all bool
	var offsets, stage, reason, redisURL string
	f := newFlags("dlq "+verb, "dlq "+verb+" [flags]", env)
	k.register(f)
	log.register(f)
	f.Bool(&asJSON, "json", false, "print entries as JSON lines")
	f.String(&stage, "stage", "", "only entries of this stage: process or send")
	f.String(&reason, "reason-contains", "", "only entries whose reason contains this text")
	if verb == "replay" {
		f.String(&offsets, "offsets", "", "DLQ positions to replay, partition:offset,… (or --all with the filters)")
		f.Bool(&all, "all", false, "replay every entry that matches the filters")
		f.StringOrFile(&redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis, to clear the failed mark of replayed send-stage jobs")
	}
	var chosen map[[2]int64]bool
	err := f.load(args[1:], func() error {
		errs := []error{k.validate(), log.validate()}
		var err error
		chosen, err = parsePositions(offsets)
		errs = append(errs, err)
		if verb == "replay" && !all && len(chosen) == 0 {
			errs = append(errs, errors.New("name the entries to replay with --offsets or --all"))
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return err
	}
	opts, err := k.clientOpts(log.logger(env.stderr))
	if err != nil {
		return err
	}
	entries, err := stream.ReadDLQ(ctx, opts, k.DLQTopic)
	if err != nil {
		return err
	}
	var picked []stream.DLQEntry
	for _, e := range entries {
		if (stage == "" || e.Stage == stage) && (reason == "" || strings.Contains(e.Reason, reason)) &&
			(len(chosen) == 0 || chosen[[2]int64{int64(e.Partition), e.Offset}]) {
			picked = append(picked, e)
		}
	}
	if verb == "list" {
		return printDLQ(env, picked, asJSON)
	}
	rc, err := state.Open(ctx, redisURL)
	if err != nil {
		return err
	}
	defer rc.Close()
	store := state.New(rc, state.Options{})
	reg, err := k.registry()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	jobs := newAvroReader(reg)
	n, err := stream.Replay(ctx, cl, picked, k.JobsTopic, func(e stream.DLQEntry) error {
		if e.Stage != "send" {
			return nil
		}
		key, err := jobs.jobKey(ctx, e.Value)
		if err != nil {
			return fmt.Errorf("dlq %d:%d: %w", e.Partition, e.Offset, err)
		}
		_, err = store.ForgetFailed(ctx, key)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "replayed %d of %d chosen entries (the others have no record to re-feed)\n", n, len(picked))
	return nil
}

func printDLQ(env *environ, entries []stream.DLQEntry, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(env.stdout)
		for _, e := range entries {
			if err := enc.Encode(map[string]any{"partition": e.Partition, "offset": e.Offset, "stage": e.Stage,
				"reason": e.Reason, "source_topic": e.SourceTopic, "source_partition": e.SourcePartition,
				"source_offset": e.SourceOffset, "key": string(e.Key), "at": e.At, "replayable": e.Replayable()}); err != nil {
				return err
			}
		}
		return nil
	}
	w := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "POSITION\tSTAGE\tSOURCE\tREASON")
	for _, e := range entries {
		fmt.Fprintf(w, "%d:%d\t%s\t%s/%d@%d\t%s\n", e.Partition, e.Offset, e.Stage, e.SourceTopic, e.SourcePartition, e.SourceOffset, e.Reason)
	}
	fmt.Fprintf(w, "%d entries\n", len(entries))
	return w.Flush()
}

// parsePositions parses "p:o,p:o".
func parsePositions(s string) (map[[2]int64]bool, error) {
	out := map[[2]int64]bool{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		p, o, ok := strings.Cut(part, ":")
		pn, err1 := strconv.ParseInt(p, 10, 32)
		on, err2 := strconv.ParseInt(o, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("--offsets %q: want partition:offset", part)
		}
		out[[2]int64{pn, on}] = true
	}
	return out, nil
}

// runLag is `portalmail lag`: the lag of both stages' groups per partition.
func runLag(ctx context.Context, env *environ, args []string) error {
	var k KafkaConfig
	var log LogConfig
	var groups string
	f := newFlags("lag", "lag [flags]", env)
	k.register(f)
	log.register(f)
	f.String(&groups, "groups", "portalmail-process,portalmail-send", "consumer groups, comma-separated")
	if err := f.load(args, func() error { return errors.Join(k.validate(), log.validate()) }); err != nil {
		return err
	}
	opts, err := k.clientOpts(log.logger(env.stderr))
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	lags, err := stream.Lag(ctx, cl, strings.Split(groups, ",")...)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "GROUP\tSTATE\tTOPIC\tPARTITION\tCOMMITTED\tEND\tLAG")
	for _, g := range lags.Sorted() {
		if err := g.Error(); err != nil {
			fmt.Fprintf(w, "%s\t%s\terror: %v\n", g.Group, g.State, err)
			continue
		}
		for _, l := range g.Lag.Sorted() {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\n", g.Group, g.State, l.Topic, l.Partition, l.Commit.At, l.End.Offset, l.Lag)
		}
		fmt.Fprintf(w, "%s\t%s\ttotal\t\t\t\t%d\n", g.Group, g.State, g.Lag.Total())
	}
	return w.Flush()
}
