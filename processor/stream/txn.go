package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/schemas/cdc"
)

// txn is the Kafka transaction of one batch. It begins with the batch's first
// record to produce, and each engine call's output is produced as soon as
// that call returns: the broker takes one worker's jobs while the other
// workers still apply. A job key is produced once per transaction (see
// processor.Output.Merge: Apply and Fire can release one parked intent
// twice). It is safe for concurrent use by the batch's workers.
type txn struct {
	p *Process
	// sess is the stage's session when the batch began: the workers use it
	// without the stage's lock (Run renews the session only between batches).
	sess  *kgo.GroupTransactSession
	ctx   context.Context
	cause map[cdc.Cause]*kgo.Record // source record of each change, read-only

	mu         sync.Mutex
	begun      bool
	keys       map[string]bool
	jobs, dead int
	jobsByType map[string]int
	dlqByClass map[string]int

	// failed is what the broker refused, from the produce callbacks. It has
	// its own lock: a Produce that waits for room in the client's buffer
	// holds mu, and the room is made only after the callback of a finished
	// record returns.
	failMu sync.Mutex
	failed error
}

// newTxn starts the transaction of a batch of n records (it begins with its
// first record produced); only the Run goroutine calls it.
func (p *Process) newTxn(ctx context.Context, n int) *txn {
	return &txn{p: p, sess: p.sess, ctx: ctx, cause: make(map[cdc.Cause]*kgo.Record, n),
		keys: map[string]bool{}, jobsByType: map[string]int{}, dlqByClass: map[string]int{}}
}

// beginLocked begins the transaction if it has not begun; t.mu is held.
func (t *txn) beginLocked() error {
	if t.begun {
		return nil
	}
	if err := t.sess.Begin(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	t.begun = true
	return nil
}

// produceLocked begins the transaction if it has not begun, and produces r
// in it; t.mu is held.
func (t *txn) produceLocked(r *kgo.Record) error {
	if err := t.beginLocked(); err != nil {
		return err
	}
	t.sess.Produce(t.ctx, r, func(_ *kgo.Record, err error) {
		if err != nil {
			t.failMu.Lock()
			t.failed = errors.Join(t.failed, err)
			t.failMu.Unlock()
		}
	})
	return nil
}

// deadLetter produces one dead letter of the process stage.
func (t *txn) deadLetter(r *kgo.Record, class string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dead++
	t.dlqByClass[class]++
	return t.produceLocked(r)
}

// emit encodes and produces o's dead letters and the jobs of keys not
// produced yet in this transaction, and returns o without them: what the
// batch still needs of it is its commit and its stats. An error (a job that
// does not encode, a transaction that cannot begin) fails the batch.
func (t *txn) emit(o processor.Output) (processor.Output, error) {
	if err := t.produce(o); err != nil {
		return processor.Output{}, err
	}
	o.Jobs, o.DLQ = nil, nil
	return o, nil
}

// produce is emit's producing.
func (t *txn) produce(o processor.Output) error {
	p := t.p
	// The keys and values of all the jobs share one buffer (and the records
	// one array): a record's bytes are its own slice of it, so a buffer that
	// had to grow after all leaves the earlier ones where they are.
	size := 0
	for i := range o.Jobs {
		size += len(o.Jobs[i].PartitionKey()) + p.enc.EncodedJobSize(&o.Jobs[i])
	}
	buf := make([]byte, 0, size)
	recs := make([]kgo.Record, len(o.Jobs))
	for i := range o.Jobs {
		j := &o.Jobs[i]
		start := len(buf)
		buf = append(buf, j.PartitionKey()...)
		mid := len(buf)
		var err error
		if buf, err = p.enc.AppendEncodeJob(buf, j); err != nil {
			return fmt.Errorf("encode job %s: %w", j.Key, err)
		}
		recs[i] = kgo.Record{Topic: p.cfg.JobsTopic, Key: buf[start:mid:mid], Value: buf[mid:len(buf):len(buf)]}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, d := range o.DLQ {
		var key, value []byte = nil, d.Value
		if src := t.cause[d.Cause]; src != nil {
			key = src.Key
			if value == nil {
				value = src.Value
			}
		}
		p.log.Warn("dead-lettering", "topic", d.Cause.Topic, "partition", d.Cause.Partition, "offset", d.Cause.Offset, "reason", d.Reason)
		t.dead++
		t.dlqByClass[ReasonClass(d.Reason)]++
		if err := t.produceLocked(DeadLetterRecord(p.cfg.DLQTopic, "process", d.Reason, d.Cause.Topic, d.Cause.Partition, d.Cause.Offset, key, value)); err != nil {
			return err
		}
	}
	// The debug line's arguments would be boxed for every job even when
	// the level is off.
	debug := p.log.Enabled(t.ctx, slog.LevelDebug)
	for i := range o.Jobs {
		j := &o.Jobs[i]
		if t.keys[j.Key] {
			continue
		}
		t.keys[j.Key] = true
		if debug {
			p.log.Debug("emitting job", "email_type", j.Type, "idempotency_key", j.Key, "topic", j.Cause.Topic, "partition", j.Cause.Partition, "offset", j.Cause.Offset)
		}
		t.jobs++
		t.jobsByType[j.Type]++
		if err := t.produceLocked(&recs[i]); err != nil {
			return err
		}
	}
	return nil
}

// started says whether something was produced (the transaction has begun).
func (t *txn) started() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.begun
}

// counts sets the jobs and dead letters produced in stats.
func (t *txn) counts(stats *BatchStats) {
	t.mu.Lock()
	defer t.mu.Unlock()
	stats.Jobs, stats.DeadLetters, stats.JobsByType, stats.DLQByClass = t.jobs, t.dead, t.jobsByType, t.dlqByClass
}

// end flushes what was produced and commits the transaction with the
// consumed offsets (beginning one if nothing was produced, so that the
// offsets of consumed records are committed); it aborts instead when the
// broker refused a record or the BeforeCommit hook says so. committed is
// false when the transaction was aborted.
func (t *txn) end(consumed int, ph *Phases) (committed bool, err error) {
	p := t.p
	t.mu.Lock()
	err = t.beginLocked()
	t.mu.Unlock()
	if err != nil {
		return false, err
	}
	flushing := time.Now()
	if err := t.sess.Client().Flush(t.ctx); err != nil {
		return false, fmt.Errorf("flush: %w", err)
	}
	t.failMu.Lock()
	failed := t.failed
	t.failMu.Unlock()
	how := kgo.TryCommit
	if failed != nil {
		p.log.Error("producing failed; aborting the transaction", "err", failed)
		how = kgo.TryAbort
	} else if p.cfg.BeforeCommit != nil {
		if err := p.cfg.BeforeCommit(consumed); err != nil {
			p.log.Warn("aborting the transaction", "records", consumed, "err", err)
			failed, how = err, kgo.TryAbort
		}
	}
	ending := time.Now()
	ph.Produce = ending.Sub(flushing)
	committed, err = t.sess.End(t.ctx, how)
	ph.End = time.Now().Sub(ending)
	if err != nil {
		return false, fmt.Errorf("end transaction: %w", err)
	}
	return committed && failed == nil, nil
}

// abort ends a failed batch's transaction, rewinding the consumer to the
// committed offsets (a transaction is begun for that when none was).
func (t *txn) abort(consumed int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.begun && consumed == 0 {
		return nil
	}
	if err := t.beginLocked(); err != nil {
		return err
	}
	if _, err := t.sess.End(t.ctx, kgo.TryAbort); err != nil {
		return fmt.Errorf("abort transaction: %w", err)
	}
	return nil
}
