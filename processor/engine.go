package processor

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/portalmail/portalmail/internal/redact"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/portalmail/portalmail/templates"
)

// Renderer is what the engine needs of the templates: which exist (the
// catalog is validated against it at start-up), and which row columns they
// read (the jobs' data keeps only those). The bodies are rendered by the
// send stage from the jobs' data. *templates.Set implements it.
type Renderer interface {
	Has(name string) bool
	Columns() templates.Columns
}

// Config holds the engine's settings. Zero values take the defaults.
type Config struct {
	// Zone is where day-offset timers fall due at TimerHour (default UTC, 9).
	Zone      *time.Location
	TimerHour int
	// ParkFor bounds how long an intent waits for a missing row (default 24h).
	ParkFor time.Duration
	// LeaseFor is how long a fired timer stays leased before it can fire again
	// if its output was never committed (default 5m).
	LeaseFor time.Duration
	// FireLimit caps the timers leased per set per Fire (default 1000).
	FireLimit int
	// DrainChunk is how many intents parked on a row one Fire releases when
	// the row's arrival released only part of them (default 500).
	DrainChunk int
	// Links are the base URLs of the call-to-action links, per site.
	Links map[catalog.Site]string
	// FromAddress is the sender address; the display name is the partner's
	// from_name or brand (default "noreply@portalmail.invalid").
	FromAddress string
	// Bands are the usage-band thresholds (default catalog.DefaultBands).
	Bands catalog.Bands
	// MaxRecipients caps the distinct valid recipients of one email (default
	// DefaultMaxRecipients); an email with more is dead-lettered, none sent.
	MaxRecipients int
	// MaxChangeOutput caps, in bytes of subject and bodies, the jobs derived
	// from one source change, fired timer or parked intent (default
	// DefaultMaxChangeOutput); over it, every email of that change is
	// dead-lettered. A transaction's output is then bounded by batch size ×
	// MaxChangeOutput.
	MaxChangeOutput int
}

// Defaults of Config's output caps.
const (
	DefaultMaxRecipients   = 50
	DefaultMaxChangeOutput = 4 << 20
)

func (c *Config) setDefaults() {
	if c.Zone == nil {
		c.Zone = time.UTC
	}
	if c.TimerHour == 0 {
		c.TimerHour = 9
	}
	if c.ParkFor == 0 {
		c.ParkFor = 24 * time.Hour
	}
	if c.LeaseFor == 0 {
		c.LeaseFor = 5 * time.Minute
	}
	if c.FireLimit == 0 {
		c.FireLimit = 1000
	}
	if c.DrainChunk == 0 {
		c.DrainChunk = 500
	}
	if c.FromAddress == "" {
		c.FromAddress = "noreply@portalmail.invalid"
	}
	if c.Bands == (catalog.Bands{}) {
		c.Bands = catalog.DefaultBands
	}
	if c.MaxRecipients == 0 {
		c.MaxRecipients = DefaultMaxRecipients
	}
	if c.MaxChangeOutput == 0 {
		c.MaxChangeOutput = DefaultMaxChangeOutput
	}
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.TimerHour < 0 || c.TimerHour > 23 {
		errs = append(errs, fmt.Errorf("timer hour %d not in 0..23", c.TimerHour))
	}
	if c.ParkFor < 0 || c.LeaseFor < 0 || c.FireLimit < 0 {
		errs = append(errs, errors.New("park, lease and fire limit must not be negative"))
	}
	if c.MaxRecipients < 0 || c.MaxChangeOutput < 0 {
		errs = append(errs, errors.New("max recipients and max change output must not be negative"))
	}
	for site, base := range c.Links {
		// Link bases are mailed to customers: no credentials, shown redacted.
		u, err := url.Parse(base)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			errs = append(errs, fmt.Errorf("link base for %s: %s is not an http(s) URL", site, redact.URL(base)))
		case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
			errs = append(errs, fmt.Errorf("link base for %s: %s must not carry credentials, a query or a fragment", site, redact.URL(base)))
		}
	}
	return errors.Join(errs...)
}

// DeadLetter is input the engine could not turn into email, with the reason.
type DeadLetter struct {
	// Cause is the record the problem came from (Offset -1 for timers and
	// expired parked intents).
	Cause  cdc.Cause
	Reason string
	// Value is the DLQ record's value; nil means "the original record's value".
	Value []byte
}

// Output is what one Apply or Fire produced.
type Output struct {
	Jobs []schemas.EmailJob
	DLQ  []DeadLetter
	// Commit is to be passed to Engine.Commit after Jobs and DLQ are committed
	// downstream. Dropping it (an abort) is safe: the next attempt re-derives.
	Commit Commit
	// Stats counts what the call did to timers and parked intents (metrics).
	Stats Stats
}

// Stats counts the timer, parking and ordering work of one Apply or Fire.
type Stats struct {
	// TimersScheduled are timers added or moved.
	TimersScheduled int
	// TimersDue are due timers taken by Fire (park expiries excluded).
	TimersDue int
	// TimersFired passed their re-check against current state.
	TimersFired int
	// TimersDropped failed the re-check, or were superseded by a later
	// overdue timer of their series.
	TimersDropped int
	// Parked are intents parked to wait for a referenced row.
	Parked int
	// ParkExpired are parked intents whose row never came (dead-lettered).
	ParkExpired int
	// Stale are changes older than what state holds for their row: skipped.
	// A row whose changes keep coming stale is one whose positions are
	// wrong; `portalmail explain` shows it.
	Stale int
	// Unordered are changes applied in arrival order because their position
	// could not be ordered against the row's newest (see ApplyResult).
	Unordered int
	// Truncates are TRUNCATEs applied (their table's older rows forgotten).
	Truncates int
	// Ignored are records that carry nothing for portalmail: heartbeats,
	// transaction metadata, logical decoding messages.
	Ignored int
	// Unresolved are unavailable (unchanged TOASTed) values that neither
	// the before image nor the stored image held: the column was left out.
	Unresolved int
	// RecipientsRefused are recipient addresses refused by the address rule
	// (package address); ReplyToRefused are partner reply-to addresses
	// refused (the email goes without a Reply-To).
	RecipientsRefused int
	ReplyToRefused    int
}

// Add returns the sum of s and o.
func (s Stats) Add(o Stats) Stats {
	return Stats{
		TimersScheduled: s.TimersScheduled + o.TimersScheduled, TimersDue: s.TimersDue + o.TimersDue,
		TimersFired: s.TimersFired + o.TimersFired, TimersDropped: s.TimersDropped + o.TimersDropped,
		Parked: s.Parked + o.Parked, ParkExpired: s.ParkExpired + o.ParkExpired,
		Stale: s.Stale + o.Stale, Unordered: s.Unordered + o.Unordered, Truncates: s.Truncates + o.Truncates,
		Ignored: s.Ignored + o.Ignored, Unresolved: s.Unresolved + o.Unresolved,
		RecipientsRefused: s.RecipientsRefused + o.RecipientsRefused, ReplyToRefused: s.ReplyToRefused + o.ReplyToRefused,
	}
}

// Merge returns o's output appended to out's, to be committed together.
//
// Jobs of o whose key out already holds are dropped: one intent can come out
// of both calls of a batch (an intent parked on a row released by the row's
// arrival in Apply and again by a drain in Fire, before the commit unparks
// it), and a transaction must carry a key once.
func (out Output) Merge(o Output) Output { return MergeAll(out, o) }

// MergeAll is Merge of outs in order, in one pass: the first job of each key
// is kept.
func MergeAll(outs ...Output) Output {
	var jobs, dlq, emitted, acked, unpark, rows int
	for _, o := range outs {
		jobs, dlq, emitted = jobs+len(o.Jobs), dlq+len(o.DLQ), emitted+len(o.Commit.Emitted)
		acked, unpark, rows = acked+len(o.Commit.Acked), unpark+len(o.Commit.Unpark), rows+len(o.Commit.Rows)
	}
	out := Output{Jobs: capacity[schemas.EmailJob](jobs), DLQ: capacity[DeadLetter](dlq)}
	out.Commit.Emitted = capacity[string](emitted)
	out.Commit.Acked = capacity[TimerRef](acked)
	out.Commit.Unpark = capacity[Parked](unpark)
	out.Commit.Rows = capacity[RowPosition](rows)
	have := make(map[string]bool, jobs)
	done := make(map[string]bool, emitted)
	for _, o := range outs {
		for _, j := range o.Jobs {
			if !have[j.Key] {
				have[j.Key] = true
				out.Jobs = append(out.Jobs, j)
			}
		}
		for _, k := range o.Commit.Emitted {
			if !done[k] {
				done[k] = true
				out.Commit.Emitted = append(out.Commit.Emitted, k)
			}
		}
		out.DLQ = append(out.DLQ, o.DLQ...)
		out.Commit.Acked = append(out.Commit.Acked, o.Commit.Acked...)
		out.Commit.Unpark = append(out.Commit.Unpark, o.Commit.Unpark...)
		out.Commit.Rows = append(out.Commit.Rows, o.Commit.Rows...)
		out.Stats = out.Stats.Add(o.Stats)
	}
	return out
}

// capacity is an empty slice with room for n elements (nil for none, as
// appending nothing to nil leaves it).
func capacity[T any](n int) []T {
	if n == 0 {
		return nil
	}
	return make([]T, 0, n)
}

// Engine derives email jobs from changes and timers. It is safe for concurrent
// use if its State is; it keeps no state of its own between calls but its
// hints of which rows to read together (refHints), which change how many
// round trips a batch takes, never what it derives.
type Engine struct {
	cat      catalog.Catalog
	st       State
	r        Renderer
	cfg      Config
	byTable  map[string][]*entry
	subjects map[catalog.TypeID]*template.Template
	types    map[catalog.TypeID]*entry
	// thresholds are the Threshold types per table.
	thresholds map[string]thresholds
	// firstSet are the fields of FirstSet transitions per table.
	firstSet map[string][]string
	hints    refHints
}

// entry is a catalog type with its parsed subject.
type entry struct {
	catalog.EmailType
	subject *template.Template
	// tags are its jobs' Mailgun tags (type and section), one slice shared
	// by every job of the type: jobs are read, never changed.
	tags []string
}

// New validates the catalog (including that every template exists) and the
// configuration, and returns an engine over them.
func New(cat catalog.Catalog, st State, r Renderer, cfg Config) (*Engine, error) {
	cfg.setDefaults()
	if err := errors.Join(catalog.Validate(cat, r.Has), cfg.Validate()); err != nil {
		return nil, fmt.Errorf("processor.New: %w", err)
	}
	e := &Engine{cat: cat, st: st, r: r, cfg: cfg,
		byTable: map[string][]*entry{}, types: map[catalog.TypeID]*entry{}, thresholds: map[string]thresholds{},
		firstSet: map[string][]string{}}
	if l, ok := st.(LocalReads); ok && l.LocalReads() {
		e.hints.off = true
	}
	for _, t := range cat {
		subj, err := template.New(string(t.ID)).Funcs(catalog.SubjectFuncs).Option("missingkey=zero").Parse(t.Subject)
		if err != nil {
			return nil, fmt.Errorf("processor.New: subject of %s: %w", t.ID, err)
		}
		en := &entry{EmailType: t, subject: subj, tags: []string{string(t.ID), string(t.Section)}}
		e.types[t.ID] = en
		table := catalog.TriggerTable(t.Trigger)
		e.byTable[table] = append(e.byTable[table], en)
		if tr, ok := t.Trigger.(catalog.Transition); ok && tr.Change == catalog.FirstSet && !slices.Contains(e.firstSet[table], tr.Field) {
			e.firstSet[table] = append(e.firstSet[table], tr.Field)
		}
		if th, ok := t.Trigger.(catalog.Threshold); ok {
			ts := e.thresholds[table]
			if ts.byLevel == nil {
				ts.byLevel = map[catalog.Level]*entry{}
			}
			ts.th, ts.byLevel[th.Level] = th, en
			e.thresholds[table] = ts
		}
	}
	return e, nil
}

// Catalog returns the engine's catalog.
func (e *Engine) Catalog() catalog.Catalog { return e.cat }

// TimerSet names the timer set of a source partition.
func TimerSet(topic string, partition int32) string {
	return topic + "/" + strconv.FormatInt(int64(partition), 10)
}

// Apply processes one batch of changes at time now. Tombstones are skipped;
// records Debezium sends beside the changes (heartbeats, transaction
// metadata, logical decoding messages) are counted and skipped. Errors are
// state failures (the whole batch should be retried); problems with single
// changes are returned as dead letters.
//
// Per change, by its outcome in state (see State.ApplyChanges): an applied
// or replayed change derives its transitions from its (previous, image)
// pair, so a replay after an aborted transaction derives the same
// idempotency keys however many changes of its row the batch held; a stale
// one derives nothing. Whatever the outcome, the row's timers are scheduled
// from its newest image.
func (e *Engine) Apply(ctx context.Context, now time.Time, changes []cdc.Change) (Output, error) {
	return e.apply(ctx, now, changes, nil, Hold{})
}

// Hold is what an ApplyAfter call waits for before it resolves anything,
// and what it must not release again meanwhile.
type Hold struct {
	// Ready is closed when the call may resolve what its changes brought.
	Ready <-chan struct{}
	// Unparking, if set, reports the parked intents an earlier batch
	// released whose unparking (Commit.Unpark) is not recorded yet: state
	// may still return them as parked on a row a change makes present, and
	// they are not released a second time.
	Unparking func(Parked) bool
	// Stored, if set, is called once the changes are stored (or the call
	// fails before they are), before the call waits: changes of other rows
	// that resolve through these may resolve from then on.
	Stored func()
}

// ApplyAfter is Apply that resolves nothing before h.Ready is closed: it
// stores its changes in state (State.ApplyChanges) and derives their
// transitions at once, then waits, then resolves what they brought
// (recipients, bands, parks, timers) against state as it is by then.
//
// The process stage applies a batch this way while the previous batch's
// commit is still being recorded (Ready closes when it is: storing a row
// change reads nothing that record writes but the parked intents, which
// Unparking covers), and the changes of the other topics until those of
// the reference topics are stored (Stored), so that an email still reads
// its company and partner as the batch's reference changes left them. It
// returns ctx's error if ctx ends first.
func (e *Engine) ApplyAfter(ctx context.Context, now time.Time, changes []cdc.Change, h Hold) (Output, error) {
	return e.apply(ctx, now, changes, nil, h)
}

// ApplyEach is Apply with a clock per change: changes[i] is decided at
// clocks[i] (its jobs' CreatedAt, its timers scheduled only if due after
// it, a park's deadline from it), as if the changes were applied one by
// one at their clocks, in one batch. clocks must not decrease; the batch's
// own time (for intents released from parks) is the last clock. The
// simulation applies a file's records this way between timer due times.
func (e *Engine) ApplyEach(ctx context.Context, clocks []time.Time, changes []cdc.Change) (Output, error) {
	if len(clocks) != len(changes) {
		return Output{}, fmt.Errorf("ApplyEach: %d clocks for %d changes", len(clocks), len(changes))
	}
	if len(changes) == 0 {
		return Output{}, nil
	}
	return e.apply(ctx, clocks[len(clocks)-1], changes, clocks, Hold{})
}

// apply is Apply, ApplyAfter and ApplyEach: clocks, when not nil, has each
// change's clock; h.Ready, when not nil, is waited for before anything is
// resolved.
func (e *Engine) apply(ctx context.Context, now time.Time, changes []cdc.Change, clocks []time.Time, h Hold) (Output, error) {
	stored := h.Stored // called once: when the changes are stored, or on return
	defer func() {
		if stored != nil {
			stored()
		}
	}()
	var out Output
	live := make([]RowChange, 0, len(changes))
	var liveAt []time.Time // the clock of each live change, with clocks
	for i, ch := range changes {
		switch ch.Op {
		case cdc.OpTombstone:
			continue
		case cdc.OpIgnore:
			out.Stats.Ignored++
			continue
		}
		if _, ok := e.byTableOrKnown(ch.Table); !ok {
			out.DLQ = append(out.DLQ, DeadLetter{Cause: ch.Cause, Reason: "unknown table " + ch.Table})
			continue
		}
		live = append(live, RowChange{Change: ch})
		if clocks != nil {
			liveAt = append(liveAt, clocks[i])
		}
	}
	if len(live) == 0 {
		return out, nil
	}
	unresolved, err := e.mergeUnavailable(ctx, live)
	if err != nil {
		return Output{}, err
	}
	for i := range live {
		live[i].Set = e.setColumns(live[i].Change)
	}
	res, err := e.st.ApplyChanges(ctx, live)
	if err != nil {
		return Output{}, fmt.Errorf("apply %d changes: %w", len(live), err)
	}
	if stored != nil {
		stored()
		stored = nil
	}
	b := newBatch(e, now)
	b.changes = len(live)
	b.commit.Rows = make([]RowPosition, 0, len(live))
	b.counts.Ignored, b.counts.Unresolved = out.Stats.Ignored, unresolved
	// Each row's newest change of the batch schedules its timers, against
	// the row's head; each row's newest change not stale is committed.
	type rowHead struct {
		i      int // into live
		head   cdc.Row
		commit int // into b.commit.Rows, -1 for none yet
	}
	at := func(i int) time.Time {
		if liveAt != nil {
			return liveAt[i]
		}
		return now
	}
	heads := make(map[RowRef]int, len(live)) // into order
	order := make([]rowHead, 0, len(live))
	for i, rc := range live {
		ch, r := rc.Change, res[i]
		if ch.Op == cdc.OpTruncate {
			if r.Outcome == Applied {
				b.counts.Truncates++
			}
			continue
		}
		ref := RowRef{ch.Table, ch.ID}
		j, seen := heads[ref]
		if seen {
			order[j].i, order[j].head = i, r.Head
		} else {
			j = len(order)
			heads[ref] = j
			order = append(order, rowHead{i: i, head: r.Head, commit: -1})
		}
		if r.Outcome == Stale {
			b.counts.Stale++
			continue
		}
		if r.Unordered {
			b.counts.Unordered++
		}
		rp := RowPosition{RowRef: ref, Position: ch.Position}
		if c := order[j].commit; c >= 0 {
			b.commit.Rows[c] = rp
		} else {
			order[j].commit = len(b.commit.Rows)
			b.commit.Rows = append(b.commit.Rows, rp)
		}
		n0, s0 := len(b.intents), len(b.samples)
		for _, p := range r.Parked {
			if h.Unparking == nil || !h.Unparking(p) {
				b.retryParked(p)
			}
		}
		stamp := func() { // the change's clock on what it brought
			if liveAt != nil {
				for j := n0; j < len(b.intents); j++ {
					b.intents[j].at = liveAt[i]
				}
				for j := s0; j < len(b.samples); j++ {
					b.samples[j].at = liveAt[i]
				}
			}
		}
		if r.MoreParked {
			// Many intents wait for this row: the rest are released in
			// chunks by Fire, so a batch's memory stays bounded.
			// Due just after now: the next batch drains, once this one's
			// commit has unparked what it released.
			b.writes.Schedule = append(b.writes.Schedule, TimerRef{Set: TimerSet(ch.Cause.Topic, ch.Cause.Partition),
				Member: drainMember(ref), Due: b.now.Add(time.Millisecond)})
		}
		if ch.Op == cdc.OpRead || ch.Op == cdc.OpDelete || r.Next == nil {
			stamp()
			continue // snapshot reads and deletes never mail
		}
		prev := r.Prev
		if ch.Before != nil && ch.Op == cdc.OpUpdate {
			prev = ch.Before
		}
		e.deriveTransitions(b, ch, prev, r.Next, r.PrevSet)
		e.collectSamples(b, ch, r.Next)
		stamp()
	}
	for _, h := range order {
		e.scheduleTimers(b, live[h.i].Change, h.head, at(h.i))
	}
	if h.Ready != nil {
		select {
		case <-h.Ready:
		case <-ctx.Done():
			return Output{}, ctx.Err()
		}
	}
	if err := b.finish(ctx); err != nil {
		return Output{}, err
	}
	out.Jobs, out.DLQ, out.Commit, out.Stats = b.jobs, append(out.DLQ, b.dlq...), b.commit, b.stats()
	return out, nil
}

// mergeUnavailable replaces the Unavailable values (unchanged TOASTed
// columns) of the changes' images by the value in the before image, else in
// the row's image before the change: the stored image, or the image of an
// earlier change of the row in this batch. One state read, only when some
// change holds an Unavailable value. It returns how many columns no image
// could fill (they are left out of the image).
func (e *Engine) mergeUnavailable(ctx context.Context, live []RowChange) (int, error) {
	need := map[RowRef]bool{}
	var refs []RowRef
	for _, rc := range live {
		if len(rc.After.UnavailableColumns()) == 0 && len(rc.Before.UnavailableColumns()) == 0 {
			continue
		}
		ref := RowRef{rc.Table, rc.ID}
		if !need[ref] {
			need[ref] = true
			refs = append(refs, ref)
		}
	}
	if len(refs) == 0 {
		return 0, nil
	}
	stored, err := e.st.Rows(ctx, refs)
	if err != nil {
		return 0, fmt.Errorf("read %d rows to merge unavailable values: %w", len(refs), err)
	}
	latest := make(map[RowRef]cdc.Row, len(refs))
	for i, ref := range refs {
		latest[ref] = stored[i]
	}
	unresolved := 0
	for i := range live {
		rc := &live[i]
		ref := RowRef{rc.Table, rc.ID}
		if !need[ref] {
			continue
		}
		if rc.Before != nil {
			rc.Before, _ = rc.Before.MergeUnavailable(latest[ref])
		}
		if rc.After != nil {
			var left []string
			rc.After, left = rc.After.MergeUnavailable(rc.Before, latest[ref])
			rc.Image = nil // of the image before the merge
			unresolved += len(left)
		}
		switch rc.Op {
		case cdc.OpDelete:
			latest[ref] = nil
		case cdc.OpTruncate:
		default:
			latest[ref] = rc.After
		}
	}
	return unresolved, nil
}

// setColumns lists the FirstSet fields the change's image has set.
func (e *Engine) setColumns(ch cdc.Change) []string {
	var cols []string
	for _, f := range e.firstSet[ch.Table] {
		if _, ok := ch.After.Time(f); ok {
			cols = append(cols, f)
		}
	}
	return cols
}

func (e *Engine) byTableOrKnown(table string) ([]*entry, bool) {
	if _, ok := cdc.Contract[table]; !ok {
		return nil, false
	}
	return e.byTable[table], true
}

// Commit records output that was committed downstream: emitted keys, acked
// timers, unparked intents, and the rows whose older history is trimmed.
func (e *Engine) Commit(ctx context.Context, c Commit) error {
	if len(c.Emitted) == 0 && len(c.Acked) == 0 && len(c.Unpark) == 0 && len(c.Rows) == 0 {
		return nil
	}
	if err := e.st.Commit(ctx, c); err != nil {
		return fmt.Errorf("record commit: %w", err)
	}
	return nil
}

// link builds the call-to-action URL of t for row, or "".
func (e *Engine) link(t *entry, row cdc.Row) string {
	if t.Link == nil {
		return ""
	}
	base := strings.TrimRight(e.cfg.Links[t.Link.Site], "/")
	if base == "" {
		return ""
	}
	u := base + t.Link.Path
	if t.Link.Param != "" {
		v := row.Str(t.Link.Field)
		if v == "" {
			return ""
		}
		u += "?" + url.QueryEscape(t.Link.Param) + "=" + url.QueryEscape(v)
	}
	return u
}

func contains(list []string, v string) bool { return slices.Contains(list, v) }
