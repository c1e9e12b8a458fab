package state

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/portalmail/portalmail/processor"
	"github.com/redis/go-redis/v9"
)

// Write implements processor.State, in this order:
//   - Cancel: ZREM the member from its set and drop its lease (one ZREM and
//     one HDEL per set, whatever the number of members);
//   - Schedule: ZADD the member at Due (adds, or moves a scheduled one; a
//     lease it holds is kept; one ZADD per set). Cancelling and scheduling
//     one member in the same Writes therefore leaves it scheduled;
//   - Park: ZADD NX ParkMember(p) into p.Set's timers at p.Deadline, then
//     park.lua: HSETNX the intent (Data, Set, Deadline) into its row's
//     parked hash unless the row is present, which refuses it
//     (WriteResult.Arrived). A key already parked keeps its first data and
//     deadline, so retries and replays cannot extend the bounded wait; after
//     Commit.Unpark it can be parked afresh. The expiry is written first: a
//     crash in between leaves an expiry that finds nothing parked
//     (StillParked), never an intent that waits without one.
//
// One pipeline (one round trip), plus one read of the truncate hash before
// it when there is something to park. Every step is idempotent. On error
// any subset may have been written; retry.
func (s *Store) Write(ctx context.Context, w processor.Writes) (processor.WriteResult, error) {
	var trunc map[string]string
	if len(w.Park) > 0 {
		var err error
		if trunc, err = s.truncPositions(ctx); err != nil {
			return processor.WriteResult{}, err
		}
	}
	ops := make([]op, 0, 3+2*len(w.Park))
	ops = s.timerOps(ctx, ops, w.Cancel, w.Schedule)
	first := len(ops)
	for _, pk := range w.Park {
		zkey, z := s.timerKey(pk.Set), redis.Z{Score: float64(millis(pk.Deadline)), Member: processor.ParkMember(pk)}
		rkey, hkey := s.rowKey(pk.On.Table, pk.On.ID), s.parkedKey(pk.On.Table, pk.On.ID)
		ops = append(ops,
			op{plain: func(p redis.Cmdable) redis.Cmder { return p.ZAddNX(ctx, zkey, z) }, order: []string{memberOf(zkey, z.Member.(string))}},
			op{script: scriptPark, keys: []string{rkey, hkey}, args: []any{pk.Key, encodePark(pk), trunc[pk.On.Table]},
				// park.lua reads the row and writes the intent's field:
				// the intents parked on one row are independent.
				order: []string{rkey, memberOf(hkey, pk.Key)}, shared: []string{rkey}})
	}
	cmds, err := s.run(ctx, ops)
	if err != nil {
		return processor.WriteResult{}, err
	}
	var res processor.WriteResult
	for i, pk := range w.Park {
		n, err := cmds[first+2*i+1].(*redis.Cmd).Int64()
		if err != nil {
			return processor.WriteResult{}, fmt.Errorf("state: park %s: %w", pk.Key, err)
		}
		if n == 0 {
			res.Arrived = append(res.Arrived, pk)
		}
	}
	return res, nil
}

// timerOps appends to ops the removal of the cancelled timers, then the
// scheduling of the scheduled ones: per timer set, one ZREM of its
// cancelled members and one HDEL of their leases (a set and its lease share
// a hash slot), then one ZADD of its scheduled members in their order (the
// last due time of a member given twice wins, as with one ZADD each). A
// batch that cancels and schedules many timers, most cancels of timers never
// scheduled, sends a few commands, not one or two per timer.
func (s *Store) timerOps(ctx context.Context, ops []op, cancel, schedule []processor.TimerRef) []op {
	for _, g := range bySet(cancel) {
		zkey, lkey := s.timerKey(g.set), s.leaseKey(g.set)
		members := make([]any, len(g.refs))
		fields := make([]string, len(g.refs))
		zorder := make([]string, len(g.refs))
		lorder := make([]string, len(g.refs))
		for i, t := range g.refs {
			members[i], fields[i] = t.Member, t.Member
			zorder[i], lorder[i] = memberOf(zkey, t.Member), memberOf(lkey, t.Member)
		}
		ops = append(ops,
			op{plain: func(p redis.Cmdable) redis.Cmder { return p.ZRem(ctx, zkey, members...) }, order: zorder},
			op{plain: func(p redis.Cmdable) redis.Cmder { return p.HDel(ctx, lkey, fields...) }, order: lorder})
	}
	for _, g := range bySet(schedule) {
		zkey := s.timerKey(g.set)
		zs := make([]redis.Z, len(g.refs))
		order := make([]string, len(g.refs))
		for i, t := range g.refs {
			zs[i] = redis.Z{Score: float64(millis(t.Due)), Member: t.Member}
			order[i] = memberOf(zkey, t.Member)
		}
		ops = append(ops, op{plain: func(p redis.Cmdable) redis.Cmder { return p.ZAdd(ctx, zkey, zs...) }, order: order})
	}
	return ops
}

// setRefs are the timer refs of one set, in their order.
type setRefs struct {
	set  string
	refs []processor.TimerRef
}

// bySet groups refs by set, the sets in the order they first appear.
func bySet(refs []processor.TimerRef) []setRefs {
	var out []setRefs
	at := map[string]int{}
	for _, t := range refs {
		i, ok := at[t.Set]
		if !ok {
			i = len(out)
			at[t.Set] = i
			out = append(out, setRefs{set: t.Set})
		}
		out[i].refs = append(out[i].refs, t)
	}
	return out
}

// Parked implements processor.State with scripts/parked.lua (one round trip).
func (s *Store) Parked(ctx context.Context, on processor.RowRef, limit int) ([]processor.Parked, bool, error) {
	cmds, err := s.run(ctx, []op{{script: scriptParked, keys: []string{s.parkedKey(on.Table, on.ID)}, args: []any{strconv.Itoa(max(1, limit))}}})
	if err != nil {
		return nil, false, err
	}
	vals, err := cmds[0].(*redis.Cmd).Slice()
	if err != nil || len(vals) != 2 {
		return nil, false, fmt.Errorf("state: parked on %s/%s: %v", on.Table, on.ID, err)
	}
	flat, _ := vals[0].([]any)
	more, _ := vals[1].(int64)
	return decodeParkedList(on, flat), more == 1, nil
}

// StillParked implements processor.State: HEXISTS per intent, one round trip.
func (s *Store) StillParked(ctx context.Context, ps []processor.Parked) ([]bool, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	ops := make([]op, len(ps))
	for i, pk := range ps {
		hkey, field := s.parkedKey(pk.On.Table, pk.On.ID), pk.Key
		ops[i] = op{plain: func(p redis.Cmdable) redis.Cmder { return p.HExists(ctx, hkey, field) }}
	}
	cmds, err := s.run(ctx, ops)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(ps))
	for i, cmd := range cmds {
		out[i] = cmd.(*redis.BoolCmd).Val()
	}
	return out, nil
}

// DueTimers implements processor.State with one script call (one round
// trip): the members of set scored at or before now whose lease is absent or
// expired (lease expiry <= now), in due order (ties by member), at most
// limit of them (none when limit <= 0). Each returned timer is leased until
// now+leaseFor, so concurrent callers never get the same timer while the
// lease runs; Commit.Acked (or Write.Cancel) drops the lease. Leases are
// judged against the caller's now, not Redis's clock, so a simulated clock
// works. Due times come back in UTC at millisecond precision.
func (s *Store) DueTimers(ctx context.Context, sets []string, now time.Time, limit int, leaseFor time.Duration) ([]processor.TimerRef, error) {
	if limit <= 0 || len(sets) == 0 {
		return nil, nil
	}
	nowMs := millis(now)
	args := []any{strconv.FormatInt(nowMs, 10), strconv.Itoa(limit), strconv.FormatInt(nowMs+leaseFor.Milliseconds(), 10)}
	// One script call per set on Cluster; otherwise one for all of them
	// (due_many.lua): a stage asks for every set it owns in every batch,
	// and most have nothing due.
	var ops []op
	if s.perKeyScripts() {
		ops = make([]op, len(sets))
		for i, set := range sets {
			ops[i] = op{script: scriptDue, keys: []string{s.timerKey(set), s.leaseKey(set)}, args: args}
		}
	} else {
		keys := make([]string, 0, 2*len(sets))
		for _, set := range sets {
			keys = append(keys, s.timerKey(set), s.leaseKey(set))
		}
		ops = []op{{script: scriptDueMany, keys: keys, args: args}}
	}
	cmds, err := s.run(ctx, ops)
	if err != nil {
		return nil, err
	}
	replies, err := s.scriptReplies(cmds, len(sets), "due timers")
	if err != nil {
		return nil, err
	}
	var out []processor.TimerRef
	for i, set := range sets {
		vals, err := stringSlice(replies[i])
		if err != nil {
			return nil, fmt.Errorf("state: due timers of %s: %w", set, err)
		}
		for j := 0; j+1 < len(vals); j += 2 {
			score, err := strconv.ParseFloat(vals[j+1], 64)
			if err != nil {
				return nil, fmt.Errorf("state: due timers of %s: score %q: %w", set, vals[j+1], err)
			}
			out = append(out, processor.TimerRef{Set: set, Member: vals[j], Due: fromMillis(int64(score))})
		}
	}
	return out, nil
}

// NextDue implements processor.State: the earliest time at which DueTimers
// could return a timer of any of sets, ok false when they are all empty.
// That is the earliest due time, except that a leased timer counts at the
// later of its due time and its lease expiry (DueTimers cannot return it
// before), so a caller sleeping until NextDue does not spin on timers that
// are in flight. One script call per set, in one pipeline (one round trip).
func (s *Store) NextDue(ctx context.Context, sets []string) (time.Time, bool, error) {
	if len(sets) == 0 {
		return time.Time{}, false, nil
	}
	ops := make([]op, len(sets))
	for i, set := range sets {
		ops[i] = op{script: scriptNextDue, keys: []string{s.timerKey(set), s.leaseKey(set)}}
	}
	cmds, err := s.run(ctx, ops)
	if err != nil {
		return time.Time{}, false, err
	}
	var best int64
	found := false
	for _, cmd := range cmds {
		ms, err := cmd.(*redis.Cmd).Int64()
		if err == redis.Nil {
			continue
		}
		if err != nil {
			return time.Time{}, false, fmt.Errorf("state: next due: %w", err)
		}
		if !found || ms < best {
			best, found = ms, true
		}
	}
	if !found {
		return time.Time{}, false, nil
	}
	return fromMillis(best), true, nil
}

// Commit implements processor.State, in one pipeline (one round trip):
//   - Emitted: SET the key's marker with EmittedTTL (Emitted reports it);
//   - Acked: remove the timer only if it is still scheduled at the acked Due
//     (to the millisecond), i.e. not re-scheduled meanwhile; drop its lease
//     either way;
//   - Unpark: HDEL the intent from its row's parked hash, and remove
//     ParkMember from its set's timers (and its lease);
//   - Rows: trim.lua drops the row's history entries older than the
//     committed position (one script call per chunk of rows on standalone
//     Redis and Sentinel, per row on Cluster).
//
// Idempotent; on error any subset may have been written; retry.
func (s *Store) Commit(ctx context.Context, c processor.Commit) error {
	ops := make([]op, 0, len(c.Emitted)+len(c.Acked)+3*len(c.Unpark)+len(c.Rows))
	ttl := s.opts.EmittedTTL
	for _, k := range c.Emitted {
		key := s.emittedKey(k)
		ops = append(ops, op{plain: func(p redis.Cmdable) redis.Cmder { return p.Set(ctx, key, "1", ttl) }, order: []string{key}})
	}
	for _, t := range c.Acked {
		ops = append(ops, op{
			script: scriptAck,
			keys:   []string{s.timerKey(t.Set), s.leaseKey(t.Set)},
			args:   []any{t.Member, strconv.FormatInt(millis(t.Due), 10)},
			// ack.lua touches only t.Member of the set and its lease.
			order: []string{memberOf(s.timerKey(t.Set), t.Member), memberOf(s.leaseKey(t.Set), t.Member)},
		})
	}
	for _, pk := range c.Unpark {
		hkey, field := s.parkedKey(pk.On.Table, pk.On.ID), pk.Key
		zkey, lkey, member := s.timerKey(pk.Set), s.leaseKey(pk.Set), processor.ParkMember(pk)
		ops = append(ops,
			op{plain: func(p redis.Cmdable) redis.Cmder { return p.HDel(ctx, hkey, field) }, order: []string{memberOf(hkey, field)}},
			op{plain: func(p redis.Cmdable) redis.Cmder { return p.ZRem(ctx, zkey, member) }, order: []string{memberOf(zkey, member)}},
			op{plain: func(p redis.Cmdable) redis.Cmder { return p.HDel(ctx, lkey, member) }, order: []string{memberOf(lkey, member)}})
	}
	ops = append(ops, s.commitTrims(c.Rows)...)
	_, err := s.run(ctx, ops)
	return err
}

// stringSlice is a script's reply that is an array of strings (an empty
// array for nil).
func stringSlice(reply any) ([]string, error) {
	if reply == nil {
		return nil, nil
	}
	arr, ok := reply.([]any)
	if !ok {
		return nil, fmt.Errorf("reply %T, want an array", reply)
	}
	out := make([]string, len(arr))
	for i, v := range arr {
		if out[i], ok = v.(string); !ok {
			return nil, fmt.Errorf("reply element %T, want a string", v)
		}
	}
	return out, nil
}
