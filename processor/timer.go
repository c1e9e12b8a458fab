package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/schemas/cdc"
)

// timerMember is the identity of one timer in its set: a JSON array
// ["t", type, table, id, days].
type timerMember struct {
	Type  catalog.TypeID
	Table string
	ID    string
	Days  int
}

func (m timerMember) String() string {
	var buf [128]byte // the string is the only allocation when it fits
	b := append(buf[:0], `["t",`...)
	b = cdc.AppendJSONString(b, string(m.Type))
	b = append(b, ',')
	b = cdc.AppendJSONString(b, m.Table)
	b = append(b, ',')
	b = cdc.AppendJSONString(b, m.ID)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(m.Days), 10)
	return string(append(b, ']'))
}

// ParkMember is the timer-set member that carries the expiry of parked intent
// p: the JSON array ["p", p.On.Table, p.On.ID, p.Key] (HTML characters are not
// escaped). Write.Park adds it to p.Set's timers at p.Deadline and
// Commit.Unpark removes it. Pure function, deterministic.
func ParkMember(p Parked) string {
	var buf [256]byte // the string is the only allocation when it fits
	b := append(buf[:0], `["p",`...)
	b = cdc.AppendJSONString(b, p.On.Table)
	b = append(b, ',')
	b = cdc.AppendJSONString(b, p.On.ID)
	b = append(b, ',')
	b = cdc.AppendJSONString(b, p.Key)
	return string(append(b, ']'))
}

// drainMember is the timer-set member that releases the rest of the intents
// parked on ref: ["d", table, id].
func drainMember(ref RowRef) string {
	var buf [128]byte // the string is the only allocation when it fits
	b := append(buf[:0], `["d",`...)
	b = cdc.AppendJSONString(b, ref.Table)
	b = append(b, ',')
	b = cdc.AppendJSONString(b, ref.ID)
	return string(append(b, ']'))
}

// parseMember decodes a timer-set member: a timer (kind "t"), a parked
// intent's expiry (kind "p": table, id, intent key) or the drain of a row's
// parked intents (kind "d": table, id).
func parseMember(s string) (kind string, t timerMember, park Parked, err error) {
	var parts []json.RawMessage
	if err := json.Unmarshal([]byte(s), &parts); err != nil || len(parts) < 3 {
		return "", t, park, fmt.Errorf("malformed timer member %q", s)
	}
	if err := json.Unmarshal(parts[0], &kind); err != nil {
		return "", t, park, fmt.Errorf("malformed timer member %q", s)
	}
	switch kind {
	case "t":
		if len(parts) != 5 {
			return "", t, park, fmt.Errorf("malformed timer member %q", s)
		}
		var typ string
		err = firstErr(json.Unmarshal(parts[1], &typ), json.Unmarshal(parts[2], &t.Table),
			json.Unmarshal(parts[3], &t.ID), json.Unmarshal(parts[4], &t.Days))
		t.Type = catalog.TypeID(typ)
	case "p":
		if len(parts) != 4 {
			return "", t, park, fmt.Errorf("malformed timer member %q", s)
		}
		err = firstErr(json.Unmarshal(parts[1], &park.On.Table), json.Unmarshal(parts[2], &park.On.ID),
			json.Unmarshal(parts[3], &park.Key))
	case "d":
		if len(parts) != 3 {
			return "", t, park, fmt.Errorf("malformed timer member %q", s)
		}
		err = firstErr(json.Unmarshal(parts[1], &park.On.Table), json.Unmarshal(parts[2], &park.On.ID))
	default:
		err = fmt.Errorf("unknown timer kind %q", kind)
	}
	if err != nil {
		return "", t, park, fmt.Errorf("malformed timer member %q: %w", s, err)
	}
	return kind, t, park, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// due computes when a timer of tm for row falls due: Days before (or after)
// the date in DateField, at TimerHour in Zone. ok is false when the timer does
// not apply to the row (no date, or a While condition fails).
func (e *Engine) due(tm catalog.Timer, days int, row cdc.Row) (time.Time, bool) {
	if row == nil {
		return time.Time{}, false
	}
	for _, c := range tm.While {
		if !c.Holds(row) {
			return time.Time{}, false
		}
	}
	date, ok := row.Time(tm.DateField)
	if !ok || date.Equal(cdc.Forever) || date.Equal(cdc.LongAgo) {
		// 'infinity' is never: no timer; '-infinity' is long past.
		return time.Time{}, false
	}
	if _, isDate := cdc.Contract[tm.Table][tm.DateField]; isDate && cdc.Contract[tm.Table][tm.DateField] == cdc.Date {
		// A date column is a calendar day, not an instant: keep its day in the zone.
		date = time.Date(date.Year(), date.Month(), date.Day(), 0, 0, 0, 0, e.cfg.Zone)
	} else {
		date = date.In(e.cfg.Zone)
	}
	if !tm.After {
		days = -days
	}
	d := date.AddDate(0, 0, days)
	return time.Date(d.Year(), d.Month(), d.Day(), e.cfg.TimerHour, 0, 0, 0, e.cfg.Zone), true
}

// scheduleTimers (re)schedules or cancels every timer of the change's row:
// each offset of each Timer type of its table is scheduled at its due time if
// it applies and is still in the future, and cancelled if it no longer
// applies. One that applies but whose time has passed is left as it is: a
// member scheduled at that time is due and fires as overdue (a change that
// reaches the processor between the due time and the next Fire, or in the
// backlog after downtime, must not cancel it); a member scheduled at another
// time (the date moved past it) fails Fire's re-check and is dropped; and
// none is scheduled, so a reminder whose time had passed before its row
// appeared is never sent.
func (e *Engine) scheduleTimers(b *batch, ch cdc.Change, next cdc.Row, now time.Time) {
	set := TimerSet(ch.Cause.Topic, ch.Cause.Partition)
	for _, t := range e.byTable[ch.Table] {
		tm, ok := t.Trigger.(catalog.Timer)
		if !ok {
			continue
		}
		for _, days := range tm.Days {
			ref := TimerRef{Set: set, Member: timerMember{Type: t.ID, Table: ch.Table, ID: ch.ID, Days: days}.String()}
			switch due, ok := e.due(tm, days, next); {
			case !ok:
				if b.writes.Cancel == nil {
					b.writes.Cancel = make([]TimerRef, 0, max(b.changes, 16)) // about one per change
				}
				b.writes.Cancel = append(b.writes.Cancel, ref)
			case due.After(now):
				ref.Due = due
				b.writes.Schedule = append(b.writes.Schedule, ref)
			}
		}
	}
}

// Fire fires the timers of sets due at or before now. Of the overdue timers
// of one series (one type and row) only the latest fires; each is re-checked
// against the row as it is now and dropped if it no longer applies. Expired
// parked intents are dead-lettered.
func (e *Engine) Fire(ctx context.Context, now time.Time, sets []string) (Output, error) {
	b := newBatch(e, now)
	var expired []Parked  // park expiries due
	var drains []TimerRef // rows whose parked intents are released in chunks
	type series struct {
		catalog.TypeID
		table, id string
	}
	all, err := e.st.DueTimers(ctx, sets, now, e.cfg.FireLimit, e.cfg.LeaseFor)
	if err != nil {
		return Output{}, fmt.Errorf("due timers of %d sets: %w", len(sets), err)
	}
	bySet := map[string][]TimerRef{}
	for _, ref := range all {
		bySet[ref.Set] = append(bySet[ref.Set], ref)
	}
	for _, set := range sets {
		due := bySet[set]
		latest := map[series]TimerRef{}
		members := map[series]timerMember{}
		var order []series
		for _, ref := range due {
			kind, tm, park, err := parseMember(ref.Member)
			if err != nil {
				b.dlq = append(b.dlq, DeadLetter{Cause: timerCause(set), Reason: err.Error(), Value: []byte(ref.Member)})
				b.commit.Acked = append(b.commit.Acked, ref)
				continue
			}
			if kind == "p" {
				park.Set = set
				expired = append(expired, park)
				b.commit.Acked = append(b.commit.Acked, ref)
				continue
			}
			if kind == "d" {
				drains = append(drains, ref)
				b.commit.Acked = append(b.commit.Acked, ref)
				continue
			}
			b.counts.TimersDue++
			s := series{tm.Type, tm.Table, tm.ID}
			if old, ok := latest[s]; ok {
				b.counts.TimersDropped++
				if ref.Due.After(old.Due) {
					latest[s], members[s] = ref, tm
				}
				// Either way one of the two is overdue and superseded.
				b.commit.Acked = append(b.commit.Acked, old, ref)
				continue
			}
			latest[s], members[s] = ref, tm
			order = append(order, s)
		}
		for _, s := range order {
			ref := latest[s]
			b.commit.Acked = append(b.commit.Acked, ref)
			b.timers = append(b.timers, firedTimer{ref: ref, m: members[s]})
		}
	}
	if err := b.expire(ctx, expired); err != nil {
		return Output{}, err
	}
	if err := b.drain(ctx, drains); err != nil {
		return Output{}, err
	}
	if err := b.finish(ctx); err != nil {
		return Output{}, err
	}
	return Output{Jobs: b.jobs, DLQ: b.dlq, Commit: b.commit, Stats: b.stats()}, nil
}

// drain releases the next chunk of intents parked on each row of refs (drain
// members) and schedules the drain again while more remain.
func (b *batch) drain(ctx context.Context, refs []TimerRef) error {
	for _, ref := range refs {
		_, _, park, err := parseMember(ref.Member)
		if err != nil {
			return err
		}
		ps, more, err := b.e.st.Parked(ctx, park.On, b.e.cfg.DrainChunk)
		if err != nil {
			return fmt.Errorf("parked intents of %s/%s: %w", park.On.Table, park.On.ID, err)
		}
		for _, p := range ps {
			b.retryParked(p)
		}
		if more {
			// A new due time: the ack of this one keeps it.
			b.writes.Schedule = append(b.writes.Schedule, TimerRef{Set: ref.Set, Member: ref.Member, Due: b.now.Add(time.Millisecond)})
		}
	}
	return nil
}

// expire dead-letters the parked intents whose deadline passed and that are
// still parked (an expiry can outlive its intent: resolved meanwhile, or a
// park refused because its row had arrived).
func (b *batch) expire(ctx context.Context, ps []Parked) error {
	if len(ps) == 0 {
		return nil
	}
	still, err := b.e.st.StillParked(ctx, ps)
	if err != nil {
		return fmt.Errorf("check %d parked intents: %w", len(ps), err)
	}
	for i, p := range ps {
		if !still[i] {
			continue
		}
		b.counts.ParkExpired++
		b.dlq = append(b.dlq, DeadLetter{Cause: timerCause(p.Set),
			Reason: fmt.Sprintf("referenced row %s/%s did not arrive within %s", p.On.Table, p.On.ID, b.e.cfg.ParkFor),
			Value:  []byte(p.Key)})
		b.commit.Unpark = append(b.commit.Unpark, p)
	}
	return nil
}

// NextDue returns the earliest due time among sets (for simulated clocks).
func (e *Engine) NextDue(ctx context.Context, sets []string) (time.Time, bool, error) {
	return e.st.NextDue(ctx, sets)
}

func timerCause(set string) cdc.Cause { return cdc.Cause{Topic: set, Partition: -1, Offset: -1} }

// TimerInfo describes one timer-set member, for operators.
type TimerInfo struct {
	// Kind is "timer" for an email timer, "park" for a parked intent's
	// expiry, "drain" for the release of a row's remaining parked intents.
	Kind  string
	Type  catalog.TypeID
	Table string
	ID    string
	// Days is the timer's offset; ParkKey the parked intent (park only).
	Days    int
	ParkKey string
}

// DescribeTimer decodes a timer-set member.
func DescribeTimer(member string) (TimerInfo, error) {
	kind, tm, park, err := parseMember(member)
	if err != nil {
		return TimerInfo{}, err
	}
	switch kind {
	case "p":
		return TimerInfo{Kind: "park", Table: park.On.Table, ID: park.On.ID, ParkKey: park.Key}, nil
	case "d":
		return TimerInfo{Kind: "drain", Table: park.On.Table, ID: park.On.ID}, nil
	}
	return TimerInfo{Kind: "timer", Type: tm.Type, Table: tm.Table, ID: tm.ID, Days: tm.Days}, nil
}

// DueBound is the earliest time at which applying ch at clock at could
// leave a timer due: the row's timers as ch leaves it (its After image,
// the timers' While conditions aside, so the bound holds whatever they
// say) and the deadline of an intent ch could park. A caller that batches
// changes by time (the simulation) ends a batch before the first record at
// or past the bounds of the changes in it, so that no timer falls due
// inside a batch.
func (e *Engine) DueBound(ch cdc.Change, at time.Time) time.Time {
	bound := at.Add(e.cfg.ParkFor)
	for _, t := range e.byTable[ch.Table] {
		tm, ok := t.Trigger.(catalog.Timer)
		if !ok {
			continue
		}
		tm.While = nil
		for _, days := range tm.Days {
			if due, ok := e.due(tm, days, ch.After); ok && due.After(at) && due.Before(bound) {
				bound = due
			}
		}
	}
	return bound
}
