package processor

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/portalmail/portalmail/internal/redact"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/portalmail/portalmail/templates"
)

// Renderer renders the bodies of one email. *templates.Set implements it.
type Renderer interface {
	Has(name string) bool
	Render(name string, d templates.Data) (html, text string, err error)
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

// Stats counts the timer and parking work of one Apply or Fire.
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
		RecipientsRefused: s.RecipientsRefused + o.RecipientsRefused, ReplyToRefused: s.ReplyToRefused + o.ReplyToRefused,
	}
}

// Merge returns o's output appended to out's, to be committed together.
func (out Output) Merge(o Output) Output {
	out.Jobs = append(out.Jobs, o.Jobs...)
	out.DLQ = append(out.DLQ, o.DLQ...)
	out.Commit.Emitted = append(out.Commit.Emitted, o.Commit.Emitted...)
	out.Commit.Acked = append(out.Commit.Acked, o.Commit.Acked...)
	out.Commit.Unpark = append(out.Commit.Unpark, o.Commit.Unpark...)
	out.Stats = out.Stats.Add(o.Stats)
	return out
}

// Engine derives email jobs from changes and timers. It is safe for concurrent
// use if its State is; it keeps no state of its own between calls.
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
}

// entry is a catalog type with its parsed subject.
type entry struct {
	catalog.EmailType
	subject *template.Template
}

// New validates the catalog (including that every template exists) and the
// configuration, and returns an engine over them.
func New(cat catalog.Catalog, st State, r Renderer, cfg Config) (*Engine, error) {
	cfg.setDefaults()
	if err := errors.Join(catalog.Validate(cat, r.Has), cfg.Validate()); err != nil {
		return nil, fmt.Errorf("processor.New: %w", err)
	}
	e := &Engine{cat: cat, st: st, r: r, cfg: cfg,
		byTable: map[string][]*entry{}, types: map[catalog.TypeID]*entry{}, thresholds: map[string]thresholds{}}
	for _, t := range cat {
		subj, err := template.New(string(t.ID)).Funcs(catalog.SubjectFuncs).Option("missingkey=zero").Parse(t.Subject)
		if err != nil {
			return nil, fmt.Errorf("processor.New: subject of %s: %w", t.ID, err)
		}
		en := &entry{EmailType: t, subject: subj}
		e.types[t.ID] = en
		table := catalog.TriggerTable(t.Trigger)
		e.byTable[table] = append(e.byTable[table], en)
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
func TimerSet(topic string, partition int32) string { return fmt.Sprintf("%s/%d", topic, partition) }

// Apply processes one batch of changes at time now. Tombstones are skipped.
// Errors are state failures (the whole batch should be retried); problems
// with single changes are returned as dead letters.
func (e *Engine) Apply(ctx context.Context, now time.Time, changes []cdc.Change) (Output, error) {
	var out Output
	live := changes[:0:0]
	for _, ch := range changes {
		if ch.Op == cdc.OpTombstone {
			continue
		}
		if _, ok := e.byTableOrKnown(ch.Table); !ok {
			out.DLQ = append(out.DLQ, DeadLetter{Cause: ch.Cause, Reason: "unknown table " + ch.Table})
			continue
		}
		live = append(live, ch)
	}
	if len(live) == 0 {
		return out, nil
	}
	res, err := e.st.ApplyChanges(ctx, live)
	if err != nil {
		return Output{}, fmt.Errorf("apply %d changes: %w", len(live), err)
	}
	b := newBatch(e, now)
	for i, ch := range live {
		r := res[i]
		if r.Outcome == Stale {
			continue
		}
		e.scheduleTimers(b, ch, r.Next)
		for _, p := range r.Parked {
			b.retryParked(p)
		}
		if ch.Op == cdc.OpRead || ch.Op == cdc.OpDelete || r.Next == nil {
			continue // snapshot reads and deletes never mail
		}
		prev := r.Prev
		if ch.Before != nil && ch.Op == cdc.OpUpdate {
			prev = ch.Before
		}
		e.deriveTransitions(b, ch, prev, r.Next)
		e.collectSamples(b, ch, r.Next)
	}
	if err := b.finish(ctx); err != nil {
		return Output{}, err
	}
	out.Jobs, out.DLQ, out.Commit, out.Stats = b.jobs, append(out.DLQ, b.dlq...), b.commit, b.stats()
	return out, nil
}

func (e *Engine) byTableOrKnown(table string) ([]*entry, bool) {
	if _, ok := cdc.Contract[table]; !ok {
		return nil, false
	}
	return e.byTable[table], true
}

// Commit records output that was committed downstream: emitted keys, acked
// timers, unparked intents.
func (e *Engine) Commit(ctx context.Context, c Commit) error {
	if len(c.Emitted) == 0 && len(c.Acked) == 0 && len(c.Unpark) == 0 {
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
