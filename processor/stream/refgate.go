package stream

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// refGate holds the dependent CDC topics back until the reference topics
// (partners, companies, portal users, interop subscriptions: the rows other
// changes resolve their recipients through) have been consumed by the group
// up to where they ended when the stage started.
//
// Without it a cold start on a full backlog (a new deployment, a replay, a
// new group) consumes every topic at once: the few partner rows arrive after
// hundreds of thousands of changes that need them, every one of those is
// parked and then released at once. Kafka Streams users load such tables
// first (global tables); this is portalmail's equivalent. In steady state
// the reference topics are caught up already and the gate opens on the
// first check.
//
// The gate is per stage instance and judged on the group's committed
// offsets, so with several instances each waits until the group as a whole
// (whoever owns the reference partitions) has caught up. It opens anyway
// after maxWait, with a warning: parking then handles what is missing.
type refGate struct {
	refs, others []string
	maxWait      time.Duration
	log          *slog.Logger

	open    bool
	since   time.Time
	checked time.Time
	target  kadm.ListedOffsets
	// polled is, per reference partition this instance polled since the
	// gate closed, the offset after the last record polled.
	polled map[topicPartition]int64
}

// topicPartition names one partition.
type topicPartition struct {
	topic     string
	partition int32
}

// newRefGate returns a gate over refs holding back others; nil when there
// is nothing to hold back.
func newRefGate(refs, all []string, maxWait time.Duration, log *slog.Logger) *refGate {
	isRef := map[string]bool{}
	for _, t := range refs {
		isRef[t] = true
	}
	var others []string
	for _, t := range all {
		if !isRef[t] {
			others = append(others, t)
		}
	}
	if len(refs) == 0 || len(others) == 0 {
		return nil
	}
	return &refGate{refs: refs, others: others, maxWait: maxWait, log: log}
}

// start closes the gate for a (new) client, unless the reference topics are
// caught up already (the usual restart): then nothing is paused at all.
func (g *refGate) start(ctx context.Context, cl *kgo.Client, group string, now time.Time) {
	if g == nil {
		return
	}
	g.open, g.since, g.checked, g.target, g.polled = false, now, time.Time{}, nil, map[topicPartition]int64{}
	if g.caughtUp(ctx, cl, group) {
		g.open = true
		return
	}
	g.log.Info("holding the other topics back until the reference topics are consumed", "reference", g.refs)
	cl.PauseFetchTopics(g.others...)
}

// check opens the gate once the group's committed offsets of the reference
// topics reach the targets (their end offsets when the gate first looked).
// It asks the broker at most every half second.
func (g *refGate) check(ctx context.Context, cl *kgo.Client, group string, now time.Time) {
	if g == nil || g.open || now.Sub(g.checked) < 500*time.Millisecond {
		return
	}
	g.checked = now
	if now.Sub(g.since) > g.maxWait {
		g.log.Warn("reference topics did not catch up in time; resuming every topic", "waited", now.Sub(g.since).Round(time.Second))
		g.release(cl)
		return
	}
	if g.caughtUp(ctx, cl, group) {
		g.log.Info("reference topics caught up; consuming every topic", "after", now.Sub(g.since).Round(time.Millisecond))
		g.release(cl)
	}
}

// polledRecords opens the gate as soon as this instance has polled every
// reference partition up to its target (a single instance owns them all),
// before the batch that brings the last of them is applied: that batch
// applies its reference changes before anything resolves (Process.batch),
// and the other topics' fetch, which starts only after the fetch in flight
// returns (up to FetchMaxWait), overlaps it. Otherwise the gate opens on
// the group's committed offsets (check).
func (g *refGate) polledRecords(cl *kgo.Client, recs []*kgo.Record, now time.Time) {
	if g == nil || g.open || g.target == nil {
		return
	}
	for _, r := range recs {
		tp := topicPartition{r.Topic, r.Partition}
		if _, ref := g.target.Lookup(r.Topic, r.Partition); ref && r.Offset+1 > g.polled[tp] {
			g.polled[tp] = r.Offset + 1
		}
	}
	if g.reached(func(topic string, partition int32) (int64, bool) {
		at, ok := g.polled[topicPartition{topic, partition}]
		return at, ok
	}) {
		g.log.Info("reference topics polled to their end; consuming every topic", "after", now.Sub(g.since).Round(time.Millisecond))
		g.release(cl)
	}
}

// caughtUp reports whether the group has committed every reference
// partition up to its target (sampled on the first call).
func (g *refGate) caughtUp(ctx context.Context, cl *kgo.Client, group string) bool {
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if g.target == nil {
		ends, err := adm.ListEndOffsets(ctx, g.refs...)
		if err != nil {
			g.log.Warn("reading the reference topics' end offsets failed; will retry", "err", err)
			return false
		}
		g.target = ends
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		g.log.Warn("reading the group's offsets failed; will retry", "err", err)
		return false
	}
	return g.reached(func(topic string, partition int32) (int64, bool) {
		c, ok := committed.Lookup(topic, partition)
		return c.At, ok
	})
}

// reached reports whether at (an offset per partition, ok false where it
// has none) reaches the target of every reference partition that holds
// records.
func (g *refGate) reached(at func(topic string, partition int32) (int64, bool)) bool {
	all := true
	g.target.Each(func(o kadm.ListedOffset) {
		if o.Err != nil || o.Offset <= 0 {
			return
		}
		off, ok := at(o.Topic, o.Partition)
		all = all && ok && off >= o.Offset
	})
	return all
}

func (g *refGate) release(cl *kgo.Client) {
	g.open = true
	cl.ResumeFetchTopics(g.others...)
}
