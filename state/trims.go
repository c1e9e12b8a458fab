package state

import (
	"context"
	"sync"
	"time"

	"github.com/portalmail/portalmail/processor"
)

// deferredTrims are the trims of committed rows' histories a Store has not
// run yet (Options.TrimDelay). A row's trim drops its history entries older
// than a committed change, which no later change reads; run late it drops
// the same entries, so it may wait:
//   - the next ApplyChanges of the row, within the delay, takes the trim
//     with it (the apply script trims first, in the same call), and the
//     separate trim is not needed;
//   - the trims still waiting after the delay run with a later Commit;
//   - FlushTrims runs all of them (a stage that stops).
//
// A trim that never runs (the process killed) leaves the row's entries
// older than the committed one, and only until the row's next change is
// committed: they take memory and keep older changes replayable, which the
// engine's emitted keys make harmless.
type deferredTrims struct {
	delay time.Duration
	max   int // rows waiting at most; the oldest run early beyond it
	now   func() time.Time

	mu    sync.Mutex
	byRow map[string]pendingTrim // row history key -> its trim waiting
	queue []queuedTrim           // in commit order; an entry whose seq byRow no longer has is done
	seq   uint64
}

type pendingTrim struct {
	pos string
	seq uint64
}

type queuedTrim struct {
	row, pos string
	at       time.Time
	seq      uint64
}

func newDeferredTrims(delay time.Duration, maxRows int, now func() time.Time) *deferredTrims {
	return &deferredTrims{delay: delay, max: maxRows, now: now, byRow: map[string]pendingTrim{}}
}

// add defers the trims of rows (their history keys and committed
// positions, a newer commit of a row replacing its older one) and returns
// those whose time has come: waiting longer than the delay, or the oldest
// beyond max rows.
func (d *deferredTrims) add(rows, positions []string) (dueRows, duePositions []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	for i, row := range rows {
		d.seq++
		d.byRow[row] = pendingTrim{positions[i], d.seq}
		d.queue = append(d.queue, queuedTrim{row, positions[i], now, d.seq})
	}
	cut := now.Add(-d.delay)
	n := 0
	for ; n < len(d.queue); n++ {
		q := d.queue[n]
		p, ok := d.byRow[q.row]
		if !ok || p.seq != q.seq {
			continue // taken by an apply, or replaced by a newer commit
		}
		if q.at.After(cut) && len(d.byRow) <= d.max {
			break
		}
		delete(d.byRow, q.row)
		dueRows, duePositions = append(dueRows, q.row), append(duePositions, q.pos)
	}
	d.queue = d.queue[n:]
	if len(d.queue) == 0 {
		d.queue = nil // let the array go
	}
	return dueRows, duePositions
}

// take removes and returns the trim waiting for row ("" for none).
func (d *deferredTrims) take(row string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.byRow[row]
	if !ok {
		return ""
	}
	delete(d.byRow, row)
	return p.pos
}

// all removes and returns every trim waiting.
func (d *deferredTrims) all() (rows, positions []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, q := range d.queue {
		if p, ok := d.byRow[q.row]; ok && p.seq == q.seq {
			rows, positions = append(rows, q.row), append(positions, q.pos)
		}
	}
	d.byRow, d.queue = map[string]pendingTrim{}, nil
	return rows, positions
}

// waiting is how many rows' trims wait.
func (d *deferredTrims) waiting() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.byRow)
}

// FlushTrims runs every trim the Store deferred (Options.TrimDelay): a
// stage that stops calls it, so the rows it committed keep only their
// newest entry. Without TrimDelay it does nothing.
func (s *Store) FlushTrims(ctx context.Context) error {
	if s.trims == nil {
		return nil
	}
	rows, positions := s.trims.all()
	_, err := s.run(ctx, s.trimOps(rows, positions))
	return err
}

// trimOps are the trim.lua calls for rows (history keys) at positions, in
// chunks (one row per call on Cluster).
func (s *Store) trimOps(rows, positions []string) []op {
	chunk := applyChunk
	if s.perKeyScripts() {
		chunk = 1
	}
	var ops []op
	for lo := 0; lo < len(rows); lo += chunk {
		hi := min(lo+chunk, len(rows))
		args := make([]any, 0, hi-lo)
		for _, p := range positions[lo:hi] {
			args = append(args, p)
		}
		ops = append(ops, op{script: scriptTrim, keys: rows[lo:hi:hi], args: args})
	}
	return ops
}

// commitTrims are the trim ops of committed rows: all of them now, or,
// with TrimDelay, those whose time has come.
func (s *Store) commitTrims(rows []processor.RowPosition) []op {
	keys := make([]string, len(rows))
	positions := make([]string, len(rows))
	for i, rp := range rows {
		keys[i], positions[i] = s.rowKey(rp.Table, rp.ID), rp.Position.String()
	}
	if s.trims != nil {
		keys, positions = s.trims.add(keys, positions)
	}
	return s.trimOps(keys, positions)
}
