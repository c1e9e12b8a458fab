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
//   - the trims still waiting after half the delay run with the Commits
//     that follow, a share each (two generations of waiting rows, turned
//     every half delay: a map entry per row, whatever the commits);
//   - FlushTrims runs all of them (a stage that stops).
//
// A trim that never runs (the process killed) leaves the row's entries
// older than the committed one, and only until the row's next change is
// committed: they take memory and keep older changes replayable, which the
// engine's emitted keys make harmless.
type deferredTrims struct {
	delay time.Duration
	max   int // rows waiting at most; the older generation runs early beyond it
	drain int // trims a commit takes of a due generation, at least
	now   func() time.Time

	// Two generations, row history key -> committed position: a row's trim
	// is in cur or in old, never both. Every half delay old's trims are due
	// (they waited half the delay to the whole of it) and cur becomes old:
	// a map entry per waiting row, no per-commit queue.
	mu       sync.Mutex
	cur, old map[string]string
	turned   time.Time // when cur began
}

// trimDrain is how many of a due generation's trims a commit takes at
// least: 8 trim script calls, a few milliseconds of Redis.
const trimDrain = 2000

func newDeferredTrims(delay time.Duration, maxRows int, now func() time.Time) *deferredTrims {
	return &deferredTrims{delay: delay, max: maxRows, drain: trimDrain, now: now,
		cur: map[string]string{}, old: map[string]string{}, turned: now()}
}

// add defers the trims of rows (their history keys and committed
// positions, a newer commit of a row replacing its older one) and returns
// those whose time has come: the older generation's, once it is half the
// delay old (or more than max rows wait), at most max(drain, 2·len(rows))
// a call, so a generation is trimmed over the commits that follow, never
// in one pipeline that would hold Redis up for every batch behind it. The
// generations turn when the older one is drained.
func (d *deferredTrims) add(rows, positions []string) (dueRows, duePositions []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, row := range rows {
		delete(d.old, row)
		d.cur[row] = positions[i]
	}
	now := d.now()
	due := func() bool { return now.Sub(d.turned) >= d.delay/2 || len(d.cur)+len(d.old) > d.max }
	if len(d.old) == 0 && due() {
		d.old, d.cur, d.turned = d.cur, make(map[string]string, len(d.cur)), now
	}
	if len(d.old) == 0 || !due() {
		return nil, nil
	}
	limit := max(d.drain, 2*len(rows))
	for row, pos := range d.old {
		if len(dueRows) == limit {
			break
		}
		delete(d.old, row)
		dueRows, duePositions = append(dueRows, row), append(duePositions, pos)
	}
	return dueRows, duePositions
}

// take removes and returns the trim waiting for row ("" for none).
func (d *deferredTrims) take(row string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if pos, ok := d.cur[row]; ok {
		delete(d.cur, row)
		return pos
	}
	if pos, ok := d.old[row]; ok {
		delete(d.old, row)
		return pos
	}
	return ""
}

// all removes and returns every trim waiting.
func (d *deferredTrims) all() (rows, positions []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, gen := range []map[string]string{d.old, d.cur} {
		for row, pos := range gen {
			rows, positions = append(rows, row), append(positions, pos)
		}
	}
	d.cur, d.old = map[string]string{}, map[string]string{}
	return rows, positions
}

// waiting is how many rows' trims wait.
func (d *deferredTrims) waiting() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.cur) + len(d.old)
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
