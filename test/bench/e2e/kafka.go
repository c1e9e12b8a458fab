package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// broker is the driver's connection to Kafka: one producing client and an
// admin client on it.
type broker struct {
	seeds []string
	cl    *kgo.Client
	adm   *kadm.Client
}

func newBroker(seeds []string) (*broker, error) {
	// A producer like Kafka Connect's: acks=all, idempotent, a few
	// milliseconds of linger, no compression; records spread by key
	// (franz-go's default partitioner hashes keys as Java's does).
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(200000), kgo.ProducerBatchMaxBytes(1<<20), kgo.RecordRetries(1000),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return nil, err
	}
	return &broker{seeds: seeds, cl: cl, adm: kadm.NewClient(cl)}, nil
}

func (b *broker) close() { b.cl.Close() }

// createTopics creates topics with the given partitions (replication 1).
func (b *broker) createTopics(ctx context.Context, partitions int32, topics ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	res, err := b.adm.CreateTopics(ctx, partitions, 1, nil, topics...)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	// Wait until every partition has a leader that answers ListOffsets.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		lo, err := b.adm.ListEndOffsets(ctx, topics...)
		if err == nil && lo.Error() == nil && len(lo) == len(topics) {
			return nil
		}
	}
	return errors.New("create topics: partitions not ready within 30s")
}

// deleteTopics deletes topics (best effort).
func (b *broker) deleteTopics(topics ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = b.adm.DeleteTopics(ctx, topics...)
}

// produced is what produce reports.
type produced struct {
	Records int
	Took    time.Duration
	// At holds, when asked for, the time each record was handed to the
	// client, by topic, partition and offset (for latencies).
	At map[tpo]time.Time
}

type tpo struct {
	topic     string
	partition int32
	offset    int64
}

// produce sends recs and waits until all are acknowledged. rate > 0 paces
// them at that many records per second (in 5 ms steps); otherwise they go
// as fast as the client takes them. With keepTimes it records when each
// record was produced.
func (b *broker) produce(ctx context.Context, recs []*kgo.Record, rate int, keepTimes bool) (produced, error) {
	var (
		mu     sync.Mutex
		at     map[tpo]time.Time
		first  error
		failed atomic.Bool
		wg     sync.WaitGroup
	)
	if keepTimes {
		at = make(map[tpo]time.Time, len(recs))
	}
	done := func(r *kgo.Record, err error) {
		defer wg.Done()
		if err != nil {
			if failed.CompareAndSwap(false, true) {
				first = err
			}
			return
		}
		if keepTimes {
			mu.Lock()
			at[tpo{r.Topic, r.Partition, r.Offset}] = r.Timestamp
			mu.Unlock()
		}
	}
	start := time.Now()
	const step = 5 * time.Millisecond
	for i, r := range recs {
		if rate > 0 {
			due := start.Add(time.Duration(i) * time.Second / time.Duration(rate))
			if d := time.Until(due); d > step/2 {
				time.Sleep(d)
			}
		}
		if ctx.Err() != nil {
			break
		}
		r.Timestamp = time.Now()
		wg.Add(1)
		b.cl.Produce(ctx, r, done)
	}
	if err := b.cl.Flush(ctx); err != nil {
		return produced{}, fmt.Errorf("produce: flush: %w", err)
	}
	wg.Wait()
	if failed.Load() {
		return produced{}, fmt.Errorf("produce: %w", first)
	}
	return produced{Records: len(recs), Took: time.Since(start), At: at}, ctx.Err()
}

// endOffsets are the high watermarks of topics.
func (b *broker) endOffsets(ctx context.Context, topics ...string) (kadm.ListedOffsets, error) {
	lo, err := b.adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	return lo, nil
}

// sumOffsets is the sum of the offsets (records, for a non-transactional topic).
func sumOffsets(lo kadm.ListedOffsets) int64 {
	var n int64
	lo.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// caughtUp reports whether group's committed offsets reach ends on every
// partition (a partition without records needs no commit), and how many
// records are still to be committed.
func (b *broker) caughtUp(ctx context.Context, group string, ends kadm.ListedOffsets) (bool, int64, error) {
	committed, err := b.adm.FetchOffsets(ctx, group)
	if err != nil {
		return false, 0, err
	}
	var behind int64
	ends.Each(func(e kadm.ListedOffset) {
		at := int64(0)
		if c, ok := committed.Lookup(e.Topic, e.Partition); ok && c.Err == nil && c.At >= 0 {
			at = c.At
		}
		if at < e.Offset {
			behind += e.Offset - at
		}
	})
	return behind == 0, behind, nil
}

// waitCaughtUp polls caughtUp every 100 ms until the group has committed
// ends, the timeout passes, or alive reports the stage gone. It returns
// when the group got there.
func (b *broker) waitCaughtUp(ctx context.Context, group string, ends kadm.ListedOffsets, timeout time.Duration, alive func() error) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	behind := int64(-1)
	for {
		ok, n, err := b.caughtUp(ctx, group, ends)
		if err == nil && ok {
			return time.Now(), nil
		}
		if err == nil {
			behind = n
		}
		if err := alive(); err != nil {
			return time.Time{}, err
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("group %s still %d records behind after %s", group, behind, timeout)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitMembers waits until group is Stable with n members.
func (b *broker) waitMembers(ctx context.Context, group string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		dg, err := b.adm.DescribeGroups(ctx, group)
		if err == nil {
			if g, ok := dg[group]; ok && g.State == "Stable" && len(g.Members) == n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("group %s did not become stable with %d members within %s", group, n, timeout)
}

// jobRead is one job as the read_committed reader saw it.
type jobRead struct {
	f    jobFields
	at   time.Time // when the reader received it
	size int       // the record value's bytes (Confluent header and Avro)
}

// jobReader reads a jobs topic read_committed from the start, keeping what
// picker extracts from every job.
type jobReader struct {
	cl     *kgo.Client
	reg    *sr.Client
	mu     sync.Mutex
	jobs   []jobRead
	bad    int
	err    error
	schema map[int]*picker
	stop   chan struct{}
	done   chan struct{}
	last   atomic.Int64 // unix ns of the last record received
}

func startJobReader(seeds []string, topic string, reg *sr.Client) (*jobReader, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		return nil, err
	}
	r := &jobReader{cl: cl, reg: reg, schema: map[int]*picker{}, stop: make(chan struct{}), done: make(chan struct{})}
	r.last.Store(time.Now().UnixNano())
	go r.loop()
	return r, nil
}

func (r *jobReader) loop() {
	defer close(r.done)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-r.stop; cancel() }()
	for {
		fs := r.cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		now := time.Now()
		var batch []jobRead
		fs.EachRecord(func(rec *kgo.Record) {
			j, err := r.pick(ctx, rec.Value)
			if err != nil {
				r.mu.Lock()
				r.bad++
				if r.err == nil {
					r.err = err
				}
				r.mu.Unlock()
				return
			}
			batch = append(batch, jobRead{f: j, at: now, size: len(rec.Value)})
		})
		if len(batch) > 0 {
			r.last.Store(now.UnixNano())
			r.mu.Lock()
			r.jobs = append(r.jobs, batch...)
			r.mu.Unlock()
		}
	}
}

// pick decodes the parts of one job, resolving its writer schema by id.
func (r *jobReader) pick(ctx context.Context, v []byte) (jobFields, error) {
	if len(v) < 5 || v[0] != 0 {
		return jobFields{}, errors.New("job without the Confluent header")
	}
	id := int(binary.BigEndian.Uint32(v[1:5]))
	p := r.schema[id]
	if p == nil {
		s, err := r.reg.SchemaByID(ctx, id)
		if err != nil {
			return jobFields{}, fmt.Errorf("schema %d: %w", id, err)
		}
		if p, err = newPicker(s.Schema); err != nil {
			return jobFields{}, err
		}
		f, err := p.pick(v[5:])
		if err != nil {
			return f, err
		}
		if err := serdeCheck(v[5:], f); err != nil {
			return f, fmt.Errorf("schema %d: the picker disagrees with schemas.DecodeJob: %w", id, err)
		}
		r.schema[id] = p
		return f, nil
	}
	return p.pick(v[5:])
}

// count is how many jobs were read so far.
func (r *jobReader) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.jobs)
}

// waitIdle waits until at least min jobs were read and nothing new arrived
// for idle, or timeout passes.
func (r *jobReader) waitIdle(min int, idle, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if r.count() >= min && time.Since(time.Unix(0, r.last.Load())) > idle {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// close stops the reader and returns what it read.
func (r *jobReader) close() ([]jobRead, int, error) {
	close(r.stop)
	<-r.done
	r.cl.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.jobs, r.bad, r.err
}
