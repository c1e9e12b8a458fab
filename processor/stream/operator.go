package stream

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DLQEntry is one dead-lettered record with the reason and origin its
// headers carry.
type DLQEntry struct {
	Partition       int32
	Offset          int64
	Stage, Reason   string
	SourceTopic     string
	SourcePartition int32
	SourceOffset    int64
	Key, Value      []byte
	At              time.Time
}

// ReadDLQ reads every record of the DLQ topic, from the start to the end
// offsets it had when called (committed records only).
func ReadDLQ(ctx context.Context, opts []kgo.Opt, topic string) ([]DLQEntry, error) {
	admin, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, topic)
	admin.Close()
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{}
	parts := map[string]map[int32]kgo.Offset{topic: {}}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			want[o.Partition] = o.Offset
			parts[topic][o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(want) == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumePartitions(parts), kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []DLQEntry
	for len(want) > 0 {
		// Transaction markers take offsets too, so the last record may end
		// before the end offset: a quiet second ends the read.
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pollCtx)
		cancel()
		if err := ctx.Err(); err != nil {
			return out, err
		}
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			sp, _ := strconv.ParseInt(Header(r, HeaderPartition), 10, 32)
			so, _ := strconv.ParseInt(Header(r, HeaderOffset), 10, 64)
			out = append(out, DLQEntry{Partition: r.Partition, Offset: r.Offset, Stage: Header(r, HeaderStage),
				Reason: Header(r, HeaderReason), SourceTopic: Header(r, HeaderTopic), SourcePartition: int32(sp),
				SourceOffset: so, Key: r.Key, Value: r.Value, At: r.Timestamp})
			if r.Offset+1 >= want[r.Partition] {
				delete(want, r.Partition)
			}
		})
		if n == 0 {
			break
		}
	}
	return out, nil
}

// Replayable reports whether an entry can be re-fed: it has a value and a
// source topic (expired parked intents and timer problems have neither a
// record nor a topic to go back to).
func (e DLQEntry) Replayable() bool {
	return len(e.Value) > 0 && e.SourceTopic != "" && e.SourceOffset >= 0
}

// Replay re-feeds entries to where they failed: process-stage records to
// their source CDC topic, send-stage jobs to the jobs topic (after before,
// e.g. clearing the job's failed mark). The engine's and the sender's
// idempotency keys make a replay of something already mailed a no-op.
func Replay(ctx context.Context, cl *kgo.Client, entries []DLQEntry, jobsTopic string, before func(DLQEntry) error) (int, error) {
	var recs []*kgo.Record
	for _, e := range entries {
		if !e.Replayable() {
			continue
		}
		topic := e.SourceTopic
		if e.Stage == "send" {
			topic = jobsTopic
		}
		if before != nil {
			if err := before(e); err != nil {
				return 0, err
			}
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: e.Key, Value: e.Value, Headers: []kgo.RecordHeader{
			{Key: "portalmail.replayed_from", Value: []byte(fmt.Sprintf("dlq/%d/%d", e.Partition, e.Offset))}}})
	}
	if len(recs) == 0 {
		return 0, nil
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	return len(recs), nil
}

// Lag returns the lag of consumer groups per topic partition.
func Lag(ctx context.Context, cl *kgo.Client, groups ...string) (kadm.DescribedGroupLags, error) {
	return kadm.NewClient(cl).Lag(ctx, groups...)
}
