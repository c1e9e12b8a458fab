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

// RowChange is one change as the engine hands it to State.ApplyChanges: the
// decoded change, its Unavailable columns already merged (After holds no
// cdc.Unavailable), and the columns of first-set triggers that After has set.
// Op cdc.OpTruncate (ID "") records a TRUNCATE of Table at Position.
type RowChange struct {
	cdc.Change
	// Set lists the first-set columns (catalog.FirstSet fields) that After
	// has set; state keeps their union over the row's history so that a
	// column cleared and set again is not "set for the first time" again.
	// The history of the union starts at the row's newest create (op c): an
	// INSERT means the row was absent, deleted or truncated, whether or not
	// state has seen that yet (a truncate's record may come later, from
	// another partition).
	Set []string
}

// ApplyResult is the result of applying one change.
type ApplyResult struct {
	Outcome Outcome
	// Unordered is true when the change was applied although its position
	// could not be ordered against the row's newest (positions of different
	// kinds, or the same instant with a different image): it was taken in
	// arrival order. Operators see these counted.
	Unordered bool
	// Prev is the image before Next in the row's history (nil if none, or
	// forgotten by a truncate older than Next); Next is the image stored at
	// the change's position (nil for a delete). Implementations may leave Prev nil
	// except for updates without a before image, the only changes whose
	// transitions derive from it.
	Prev, Next cdc.Row
	// PrevSet is the union of RowChange.Set over the row's images before
	// Next since its newest create (the first-set columns the row had ever
	// set before this change); empty for a create.
	PrevSet []string
	// Head is the row's newest image after this change, whatever the
	// outcome (nil when the row is deleted, absent or truncated): timers
	// follow it.
	Head cdc.Row
	// Parked holds the intents parked on this row (waiting for it to arrive),
	// returned on Applied and Replay when Next is not nil, at most about
	// ParkChunk of them; MoreParked says more wait (State.Parked drains
	// them). They stay parked until Commit.Unpark removes them.
	Parked     []Parked
	MoreParked bool
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
	Position cdc.Position
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
	// Park parks each intent on its row, atomically with a check that the
	// row is still absent: a row present (stored, not deleted, not
	// truncated) refuses the park, and WriteResult.Arrived returns it.
	Park []Parked
}

// WriteResult is what Write reports back.
type WriteResult struct {
	// Arrived are the parks refused because their row is present: it arrived
	// after the engine read it. The engine resolves those intents again.
	Arrived []Parked
}

// RowPosition is the position of a row's change whose output is committed.
type RowPosition struct {
	RowRef
	Position cdc.Position
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
	// Rows are the newest changes per row whose output is committed: the
	// row's history entries older than each are no longer replayable and are
	// trimmed (the entry itself stays, as the row's image).
	Rows []RowPosition
}

// State is the narrow seam between the engine and its store (Redis in
// production, see package state; in memory, see package state/memory).
// Every method takes a batch and costs a constant number of round trips.
// Implementations are safe for concurrent use; state/statetest is the
// conformance suite every implementation passes.
type State interface {
	// ApplyChanges applies each change in order, by its position against the
	// row's history, and returns one result per change:
	//   - Applied: the row has no history, or the position is newer than its
	//     newest, or cannot be ordered against it (Unordered): stored;
	//   - Replay: the position is one the history holds (every position not
	//     yet trimmed by Commit.Rows): Prev/Next are the stored pair;
	//   - Stale: older than the newest and not held: nothing stored.
	// A delete stores a nil image; deleted rows expire after a retention
	// window. A truncate (Op cdc.OpTruncate) makes every row of the table
	// stored at an older position absent, in constant time. A change older
	// than the truncate that comes after it (Debezium sends a truncate
	// without a key, so on a partition of its own) is applied as any other,
	// against the image before it, which is older too; Head stays nil, and
	// it releases no parked intents.
	ApplyChanges(ctx context.Context, changes []RowChange) ([]ApplyResult, error)
	// Rows returns the current image of each ref, nil where absent, deleted
	// or truncated.
	Rows(ctx context.Context, refs []RowRef) ([]cdc.Row, error)
	// Bands evaluates each sample against the stored band of its key, in order,
	// and stores the new band. A sample whose Position was seen before gets the
	// result it got then; an older unknown one fires nothing; one that cannot
	// be ordered is evaluated in arrival order.
	Bands(ctx context.Context, rules catalog.Bands, samples []BandSample) ([]BandResult, error)
	// Emitted reports, per key, whether it was committed before.
	Emitted(ctx context.Context, keys []string) ([]bool, error)
	// Write applies timer and parking changes.
	Write(ctx context.Context, w Writes) (WriteResult, error)
	// StillParked reports, per intent, whether it is still parked on its row.
	StillParked(ctx context.Context, ps []Parked) ([]bool, error)
	// Parked returns about limit of the intents parked on a row, and whether
	// more remain.
	Parked(ctx context.Context, on RowRef, limit int) ([]Parked, bool, error)
	// DueTimers returns, for each of sets in turn, up to limit of its timers
	// due at or before now that are not leased, in due order, and leases them
	// for leaseFor: a leased timer is not returned again until the lease runs
	// out or it is acked. Each TimerRef names its set.
	DueTimers(ctx context.Context, sets []string, now time.Time, limit int, leaseFor time.Duration) ([]TimerRef, error)
	// NextDue returns the earliest due time of any timer in sets.
	NextDue(ctx context.Context, sets []string) (time.Time, bool, error)
	// Commit records committed output (after the downstream commit succeeded).
	Commit(ctx context.Context, c Commit) error
}
