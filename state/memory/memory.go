// Package memory is an in-process implementation of processor.State with the
// semantics of the Redis store (package state), proven by the same
// conformance suite (state/statetest). It serves `portalmail simulate`, the
// scenario tests and anything else that runs the engine in one process: no
// network, no Lua interpreter, no JSON round trip of row images.
//
// Row images are kept encoded, as the Redis store keeps them
// (cdc.Row.AppendJSON), and decoded when read (cdc.DecodeRow): a stored row
// costs its JSON and no pointers for the collector to follow, and reads
// return what the Redis store returns. Emitted-key markers are kept as
// 128-bit hashes of the keys. Times that expire something
// (deleted rows, usage rows, emitted markers) are judged by Options.Now, so a
// simulated clock expires them in simulated time.
package memory

import (
	"bytes"
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/schemas/cdc"
)

var _ processor.State = (*Store)(nil)

// Options configure a Store; zero fields take the defaults of the Redis
// store's options of the same name.
type Options struct {
	// EmittedTTL is how long an emitted-key marker is kept (default 30 days).
	EmittedTTL time.Duration
	// DeletedRetention is how long a deleted row is kept (default 7 days).
	DeletedRetention time.Duration
	// UsageTTL is how long a row of UsageTable lives after its last applied
	// change (default 48h).
	UsageTTL time.Duration
	// UsageTable is the table whose rows expire after UsageTTL (default
	// service.public.cvi_usage).
	UsageTable string
	// ParkChunk is how many parked intents an arriving row releases at once
	// (default 500, as the Redis store).
	ParkChunk int
	// Now is the clock that judges expiry (default time.Now).
	Now func() time.Time
}

// Defaults, equal to the Redis store's.
const (
	DefaultEmittedTTL       = 30 * 24 * time.Hour
	DefaultDeletedRetention = 7 * 24 * time.Hour
	DefaultUsageTTL         = 48 * time.Hour
	// recentBandResults is how many (position → result) pairs a band keeps.
	recentBandResults = 16
)

func (o Options) withDefaults() Options {
	if o.EmittedTTL <= 0 {
		o.EmittedTTL = DefaultEmittedTTL
	}
	if o.DeletedRetention <= 0 {
		o.DeletedRetention = DefaultDeletedRetention
	}
	if o.UsageTTL <= 0 {
		o.UsageTTL = DefaultUsageTTL
	}
	if o.UsageTable == "" {
		o.UsageTable = cdc.CVIUsage
	}
	if o.ParkChunk <= 0 {
		o.ParkChunk = 500
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Store is the in-memory processor.State. The zero value is not usable;
// create it with New. It is safe for concurrent use (one mutex).
type Store struct {
	mu      sync.Mutex
	opts    Options
	rows    map[processor.RowRef]*row
	trunc   map[string]cdc.Position
	parked  map[processor.RowRef]map[string]processor.Parked
	bands   map[string]*band
	timers  map[string]*timerSet
	emitted map[keyHash]int64 // key → expiry (Unix ms)
	// deletedQ and usageQ are the rows given an expiry, in the order given
	// (so in expiry order, each with one TTL, the clock not going back):
	// sweep drops the rows that expired without being read again.
	deletedQ, usageQ []expiry
	seeds            [2]maphash.Seed
	// enc is where apply encodes an image before copying it out (under mu):
	// one allocation per image of its own size.
	enc []byte
}

// keyHash is a 128-bit hash of an emitted key: two keys that collide (one
// chance in about 2^90 over a billion keys) would suppress an email.
type keyHash [2]uint64

func (s *Store) hashKey(k string) keyHash {
	return keyHash{maphash.String(s.seeds[0], k), maphash.String(s.seeds[1], k)}
}

// New returns an empty Store.
func New(opts Options) *Store {
	return &Store{
		opts:    opts.withDefaults(),
		rows:    map[processor.RowRef]*row{},
		trunc:   map[string]cdc.Position{},
		parked:  map[processor.RowRef]map[string]processor.Parked{},
		bands:   map[string]*band{},
		timers:  map[string]*timerSet{},
		emitted: map[keyHash]int64{},
		seeds:   [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
	}
}

// row is one row's history, newest first: every entry not yet trimmed by
// Commit.Rows, the oldest being the last committed image.
type row struct {
	hist    []entry
	expires time.Time // zero: never
}

// entry is one stored change of a row.
type entry struct {
	pos     cdc.Position
	img     []byte   // the image's JSON; nil for a delete
	prevSet []string // first-set columns set before this change
	set     []string // first-set columns this image has set
}

// everSet is the union of first-set columns through this entry.
func (e entry) everSet() []string { return union(e.prevSet, e.set) }

func union(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// LocalReads implements processor.LocalReads: reads cost no round trip, so
// an engine keeps no row hints for them.
func (s *Store) LocalReads() bool { return true }

// Len is the number of rows the store holds (expired ones not swept yet
// included).
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rows)
}

// expiry is a row given an expiry time.
type expiry struct {
	ref processor.RowRef
	at  time.Time
}

// sweep drops the rows whose expiry has passed from the front of the
// queues (a row given a later expiry since, or none, stays).
func (s *Store) sweep(now time.Time) {
	for _, q := range []*[]expiry{&s.deletedQ, &s.usageQ} {
		n := 0
		for n < len(*q) && !now.Before((*q)[n].at) {
			e := (*q)[n]
			if r := s.rows[e.ref]; r != nil && !r.expires.IsZero() && !now.Before(r.expires) {
				delete(s.rows, e.ref)
			}
			n++
		}
		if n > 0 {
			*q = (*q)[n:]
		}
	}
}

// live returns the row at ref, dropping it if it expired.
func (s *Store) live(ref processor.RowRef, now time.Time) *row {
	r := s.rows[ref]
	if r == nil {
		return nil
	}
	if !r.expires.IsZero() && !now.Before(r.expires) {
		delete(s.rows, ref)
		return nil
	}
	return r
}

// older reports whether p is older than the table's truncate (positions that
// cannot be ordered against it are not).
func (s *Store) older(table string, p cdc.Position) bool {
	t, ok := s.trunc[table]
	if !ok {
		return false
	}
	c, ordered := p.Compare(t)
	return ordered && c < 0
}

// ApplyChanges implements processor.State.
func (s *Store) ApplyChanges(_ context.Context, changes []processor.RowChange) ([]processor.ApplyResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	s.sweep(now)
	if len(changes) == 0 {
		return nil, nil
	}
	out := make([]processor.ApplyResult, len(changes))
	for i, ch := range changes {
		if ch.Op == cdc.OpTruncate {
			out[i] = s.truncate(ch)
			continue
		}
		var err error
		if out[i], err = s.apply(ch, now); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Store) truncate(ch processor.RowChange) processor.ApplyResult {
	cur, had := s.trunc[ch.Table]
	if had && cur == ch.Position {
		return processor.ApplyResult{Outcome: processor.Replay}
	}
	c, ordered := ch.Position.Compare(cur)
	if had && ordered && c <= 0 {
		return processor.ApplyResult{Outcome: processor.Stale}
	}
	s.trunc[ch.Table] = ch.Position
	return processor.ApplyResult{Outcome: processor.Applied, Unordered: had && (!ordered || c == 0)}
}

func (s *Store) apply(ch processor.RowChange, now time.Time) (processor.ApplyResult, error) {
	ref := processor.RowRef{Table: ch.Table, ID: ch.ID}
	var img []byte // nil: a delete
	switch {
	case ch.Op == cdc.OpDelete || ch.After == nil:
	case ch.Image != nil:
		img = ch.Image // encoded by the decoder, kept as it is
	default:
		enc, err := ch.After.AppendJSON(s.enc[:0])
		if err != nil {
			return processor.ApplyResult{}, fmt.Errorf("memory: encode %s %s: %w", ch.Table, ch.ID, err)
		}
		s.enc, img = enc, bytes.Clone(enc)
	}
	r := s.live(ref, now)
	var hist []entry
	if r != nil {
		hist = r.hist
	}
	var res processor.ApplyResult
	var prev *entry // the entry before Next, if any
	idx := slices.IndexFunc(hist, func(e entry) bool { return e.pos == ch.Position })
	switch {
	case len(hist) == 0:
		res.Outcome = processor.Applied
	case idx >= 0:
		res.Outcome = processor.Replay
		res.PrevSet = hist[idx].prevSet
		if idx+1 < len(hist) {
			prev = &hist[idx+1]
		}
	default:
		c, ordered := ch.Position.Compare(hist[0].pos)
		if ordered && c < 0 {
			res.Outcome = processor.Stale
			break
		}
		res.Outcome, res.Unordered = processor.Applied, !ordered || c == 0
		prev = &hist[0]
	}
	// A change older than its table's truncate (late: its record came after
	// the truncate's, from another partition) still gets its transition,
	// against the image before it, which is older too; the row stays absent.
	late := s.older(ch.Table, ch.Position)
	prevLive := prev != nil && (late || !s.older(ch.Table, prev.pos))
	var prevImg []byte // read now: inserting the new entry moves prev's
	if prevLive {
		prevImg = prev.img
	} else {
		res.PrevSet = nil
	}
	if res.Outcome == processor.Applied {
		e := entry{pos: ch.Position, img: img, set: ch.Set}
		if prevLive && ch.Op != cdc.OpCreate { // an INSERT starts the row afresh
			e.prevSet = prev.everSet()
		}
		if r == nil {
			r = &row{}
			s.rows[ref] = r
		}
		wasDeleted := len(r.hist) > 0 && r.hist[0].img == nil
		r.hist = slices.Insert(r.hist, 0, e)
		switch {
		case img == nil:
			r.expires = now.Add(s.opts.DeletedRetention)
			s.deletedQ = append(s.deletedQ, expiry{ref, r.expires})
		case ch.Table == s.opts.UsageTable:
			r.expires = now.Add(s.opts.UsageTTL)
			s.usageQ = append(s.usageQ, expiry{ref, r.expires})
		case wasDeleted:
			r.expires = time.Time{}
		}
		res.PrevSet = e.prevSet
	}
	// Images are decoded as the Redis store decodes them: the change's own
	// image is handed back as it came; Prev only for an update without a
	// before image, the one case the engine derives transitions from it.
	var err error
	head := r != nil && len(r.hist) > 0 && !s.older(ch.Table, r.hist[0].pos)
	switch {
	case head && res.Outcome == processor.Applied:
		if ch.Op != cdc.OpDelete {
			res.Head = ch.After
		}
	case head:
		if res.Head, err = cdc.DecodeRow(orNull(r.hist[0].img)); err != nil {
			return res, err
		}
	}
	if res.Outcome == processor.Stale {
		res.Prev, res.Next, res.PrevSet, res.Unordered = nil, nil, nil, false
		return res, nil
	}
	switch {
	case res.Outcome == processor.Applied:
		if ch.Op != cdc.OpDelete {
			res.Next = ch.After
		}
	case idx == 0 && head:
		res.Next = res.Head // a replay of the newest change
	default:
		if res.Next, err = cdc.DecodeRow(orNull(hist[idx].img)); err != nil {
			return res, err
		}
	}
	if prevLive && ch.Op == cdc.OpUpdate && ch.Before == nil {
		if res.Outcome == processor.Applied && string(prevImg) == string(img) {
			res.Prev = ch.After // same image: no need to decode it
		} else if res.Prev, err = cdc.DecodeRow(orNull(prevImg)); err != nil {
			return res, err
		}
	}
	if res.Next != nil && !late {
		res.Parked, res.MoreParked = s.parkedOn(ref, s.opts.ParkChunk)
	}
	return res, nil
}

// orNull is a stored image as JSON ("null" for a delete).
func orNull(img []byte) []byte {
	if img == nil {
		return []byte("null")
	}
	return img
}

// parkedOn returns the first limit intents parked on ref by key, and whether
// more remain.
func (s *Store) parkedOn(ref processor.RowRef, limit int) ([]processor.Parked, bool) {
	m := s.parked[ref]
	if len(m) == 0 {
		return nil, false
	}
	out := make([]processor.Parked, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b processor.Parked) int { return cmpString(a.Key, b.Key) })
	if len(out) > limit {
		return out[:limit], true
	}
	return out, false
}

// Parked implements processor.State.
func (s *Store) Parked(_ context.Context, on processor.RowRef, limit int) ([]processor.Parked, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps, more := s.parkedOn(on, max(1, limit))
	return ps, more, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Rows implements processor.State.
func (s *Store) Rows(_ context.Context, refs []processor.RowRef) ([]cdc.Row, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	out := make([]cdc.Row, len(refs))
	for i, ref := range refs {
		if img := s.present(ref, now); img != nil {
			var err error
			if out[i], err = cdc.DecodeRow(img); err != nil {
				return nil, fmt.Errorf("memory: row %s %s: %w", ref.Table, ref.ID, err)
			}
		}
	}
	return out, nil
}

// present is the row's newest image (JSON), nil when absent, deleted or
// truncated.
func (s *Store) present(ref processor.RowRef, now time.Time) []byte {
	r := s.live(ref, now)
	if r == nil || len(r.hist) == 0 || s.older(ref.Table, r.hist[0].pos) {
		return nil
	}
	return r.hist[0].img
}

// band is the usage band of one subscription.
type band struct {
	usageDisarmed, overDisarmed bool
	latest                      cdc.Position
	evaluated                   bool
	recent                      []bandResult // newest first
}

type bandResult struct {
	pos cdc.Position
	res processor.BandResult
}

// Bands implements processor.State.
func (s *Store) Bands(_ context.Context, rules catalog.Bands, samples []processor.BandSample) ([]processor.BandResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rules == (catalog.Bands{}) {
		rules = catalog.DefaultBands
	}
	out := make([]processor.BandResult, len(samples))
	for i, sm := range samples {
		b := s.bands[sm.Key]
		if b == nil {
			b = &band{}
			s.bands[sm.Key] = b
		}
		out[i] = b.evaluate(rules, sm)
	}
	return out, nil
}

func (b *band) evaluate(rules catalog.Bands, sm processor.BandSample) processor.BandResult {
	for _, r := range b.recent {
		if r.pos == sm.Position {
			return r.res
		}
	}
	if b.evaluated {
		if c, ok := sm.Position.Compare(b.latest); ok && c < 0 {
			return processor.BandResult{}
		}
	}
	x := sm.Percent
	if x < rules.UsageRearmBelow {
		b.usageDisarmed = false
	}
	if x <= rules.OverRearmAtOrBelow {
		b.overDisarmed = false
	}
	var res processor.BandResult
	switch {
	case x > rules.OverAbove && !b.overDisarmed:
		b.overDisarmed, b.usageDisarmed, res.Over = true, true, true
	case x >= rules.UsageAt && !b.usageDisarmed:
		b.usageDisarmed, res.Usage = true, true
	}
	b.latest, b.evaluated = sm.Position, true
	b.recent = slices.Insert(b.recent, 0, bandResult{pos: sm.Position, res: res})
	if len(b.recent) > recentBandResults {
		b.recent = b.recent[:recentBandResults]
	}
	return res
}

// Emitted implements processor.State.
func (s *Store) Emitted(_ context.Context, keys []string) ([]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	out := make([]bool, len(keys))
	for i, k := range keys {
		h := s.hashKey(k)
		exp, ok := s.emitted[h]
		if ok && now.UnixMilli() >= exp {
			delete(s.emitted, h)
			ok = false
		}
		out[i] = ok
	}
	return out, nil
}

// Write implements processor.State.
func (s *Store) Write(_ context.Context, w processor.Writes) (processor.WriteResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	for _, t := range w.Cancel {
		s.set(t.Set).remove(t.Member)
	}
	for _, t := range w.Schedule {
		s.set(t.Set).schedule(t.Member, t.Due.UnixMilli())
	}
	var res processor.WriteResult
	for _, p := range w.Park {
		// The expiry first, as the Redis store writes it: a crash between
		// the two leaves an expiry that finds nothing parked, never an
		// intent without expiry.
		s.set(p.Set).scheduleNX(processor.ParkMember(p), p.Deadline.UnixMilli())
		if s.present(p.On, now) != nil {
			res.Arrived = append(res.Arrived, p)
			continue
		}
		m := s.parked[p.On]
		if m == nil {
			m = map[string]processor.Parked{}
			s.parked[p.On] = m
		}
		if _, dup := m[p.Key]; !dup {
			m[p.Key] = p
		}
	}
	return res, nil
}

// StillParked implements processor.State.
func (s *Store) StillParked(_ context.Context, ps []processor.Parked) ([]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]bool, len(ps))
	for i, p := range ps {
		_, out[i] = s.parked[p.On][p.Key]
	}
	return out, nil
}

// DueTimers implements processor.State.
func (s *Store) DueTimers(_ context.Context, sets []string, now time.Time, limit int, leaseFor time.Duration) ([]processor.TimerRef, error) {
	if limit <= 0 {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	nowMs := now.UnixMilli()
	var out []processor.TimerRef
	for _, set := range sets {
		ts := s.timers[set]
		if ts == nil {
			continue
		}
		for _, m := range ts.due(nowMs, limit, nowMs+leaseFor.Milliseconds()) {
			out = append(out, processor.TimerRef{Set: set, Member: m.member, Due: time.UnixMilli(m.due).UTC()})
		}
	}
	return out, nil
}

// NextDue implements processor.State.
func (s *Store) NextDue(_ context.Context, sets []string) (time.Time, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best int64
	found := false
	for _, set := range sets {
		ts := s.timers[set]
		if ts == nil {
			continue
		}
		if at, ok := ts.next(); ok && (!found || at < best) {
			best, found = at, true
		}
	}
	if !found {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(best).UTC(), true, nil
}

// Commit implements processor.State.
func (s *Store) Commit(_ context.Context, c processor.Commit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	for _, k := range c.Emitted {
		s.emitted[s.hashKey(k)] = now.Add(s.opts.EmittedTTL).UnixMilli()
	}
	for _, t := range c.Acked {
		s.set(t.Set).ack(t.Member, t.Due.UnixMilli())
	}
	for _, p := range c.Unpark {
		if m := s.parked[p.On]; m != nil {
			delete(m, p.Key)
			if len(m) == 0 {
				delete(s.parked, p.On)
			}
		}
		s.set(p.Set).remove(processor.ParkMember(p))
	}
	for _, rp := range c.Rows {
		if r := s.rows[rp.RowRef]; r != nil {
			r.hist = trim(r.hist, rp.Position)
		}
	}
	return nil
}

// trim drops the entries older than the one at pos, keeping older entries of
// the same instant (so a same-millisecond change redelivered is still known).
func trim(hist []entry, pos cdc.Position) []entry {
	idx := slices.IndexFunc(hist, func(e entry) bool { return e.pos == pos })
	if idx < 0 {
		return hist
	}
	keep := idx + 1
	for keep < len(hist) {
		if c, ok := hist[keep].pos.Compare(pos); !ok || c != 0 {
			break
		}
		keep++
	}
	clear(hist[keep:])
	return hist[:keep]
}

func (s *Store) set(name string) *timerSet {
	ts := s.timers[name]
	if ts == nil {
		ts = newTimerSet()
		s.timers[name] = ts
	}
	return ts
}
