package processor

import (
	"context"
	"time"

	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/schemas/cdc"
)

// Outcome is what applying one change to state decided, by source position
// (never by Kafka offset).
type Outcome int

// Outcomes of State.ApplyChanges.
const (
	// Applied: newer than what was stored; stored, transitions derive from (Prev, Next).
	Applied Outcome = iota + 1
	// Replay: the position is one already stored; Prev and Next are the stored
	// pair at that position, so transitions derive again with the same keys.
	Replay
	// Stale: older than anything stored and not a known position: skipped.
	Stale
)

// String names the outcome ("applied", "replay", "stale").
func (o Outcome) String() string {
	switch o {
	case Applied:
		return "applied"
	case Replay:
		return "replay"
	case Stale:
		return "stale"
	}
	return "unknown"
}

// RowRef names one row in state.
type RowRef struct {
	Table string
	ID    string
}

// ApplyResult is the result of applying one change.
type ApplyResult struct {
	Outcome Outcome
	// Prev is the image before Next in the row's history (nil if none); Next is
	// the image stored at the change's position (nil for a delete).
	// Implementations may leave Prev nil except for updates without a before
	// image, the only changes whose transitions derive from it.
	Prev, Next cdc.Row
	// Parked holds the intents parked on this row (waiting for it to arrive),
	// returned on Applied and Replay when Next is not nil. They stay parked
	// until Commit.Unpark removes them.
	Parked []Parked
}

// Parked is an email intent waiting for a referenced row.
type Parked struct {
	// On is the row it waits for.
	On RowRef
	// Key identifies the intent (unique per intent); Data is its opaque encoding.
	Key  string
	Data []byte
	// Set and Deadline place its expiry timer: when the deadline passes and it
	// is still parked, the intent is dead-lettered.
	Set      string
	Deadline time.Time
}

// TimerRef is one timer: a member of the timer set Set (one set per source
// partition) due at Due.
type TimerRef struct {
	Set    string
	Member string
	Due    time.Time
}

// BandSample is one usage sample for the band of Key (a subscription id).
type BandSample struct {
	Key      string
	Position int64
	Percent  int
}

// BandResult says which band lines a sample fired.
type BandResult struct {
	Usage bool
	Over  bool
}

// Writes are the state changes the engine makes before its output is
// committed. Replaying them is harmless.
type Writes struct {
	Schedule []TimerRef // add or move (same Set and Member, new Due)
	Cancel   []TimerRef // remove (Due ignored)
	Park     []Parked
}

// Commit is what the engine records after its output was committed downstream.
type Commit struct {
	// Emitted are idempotency keys whose jobs are committed: refused from now on.
	Emitted []string
	// Acked are fired (or dropped) timers: removed unless re-scheduled to
	// another due time meanwhile.
	Acked []TimerRef
	// Unpark are parked intents that are resolved or dead-lettered.
	Unpark []Parked
}

// State is the narrow seam between the engine and its store (Redis in
// production, see package state). Every method takes a batch and costs a
// constant number of round trips. Implementations are safe for concurrent use.
type State interface {
	// ApplyChanges applies each change in order (compare-and-set by
	// cdc.Change.Position against the row's history) and returns one result
	// per change. A delete stores a nil image.
	ApplyChanges(ctx context.Context, changes []cdc.Change) ([]ApplyResult, error)
	// Rows returns the current image of each ref, nil where absent or deleted.
	Rows(ctx context.Context, refs []RowRef) ([]cdc.Row, error)
	// Bands evaluates each sample against the stored band of its key, in order,
	// and stores the new band. A sample whose Position was seen before gets the
	// result it got then; an older unknown one fires nothing.
	Bands(ctx context.Context, rules catalog.Bands, samples []BandSample) ([]BandResult, error)
	// Emitted reports, per key, whether it was committed before.
	Emitted(ctx context.Context, keys []string) ([]bool, error)
	// Write applies timer and parking changes.
	Write(ctx context.Context, w Writes) error
	// DueTimers returns up to limit timers of set due at or before now that are
	// not leased, in due order, and leases them for leaseFor: a leased timer is
	// not returned again until the lease runs out or it is acked.
	DueTimers(ctx context.Context, set string, now time.Time, limit int, leaseFor time.Duration) ([]TimerRef, error)
	// NextDue returns the earliest due time of any timer in sets.
	NextDue(ctx context.Context, sets []string) (time.Time, bool, error)
	// Commit records committed output (after the downstream commit succeeded).
	Commit(ctx context.Context, c Commit) error
}
