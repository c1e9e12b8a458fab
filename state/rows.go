package state

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/redis/go-redis/v9"
)

// ApplyChanges implements processor.State with scripts/apply*.lua: per
// change, the compare-and-set against the row's history (see
// processor.State.ApplyChanges and scripts/common.lua for the layout).
// Every position not yet trimmed by Commit.Rows is replayable, however many
// changes of one row a batch held; a truncate of a table makes its rows
// stored at older positions absent, in constant time (one field of the
// truncate hash, compared on every read).
//
// On standalone Redis and Sentinel, one script call applies a chunk of
// applyChunk changes (and reads the truncate hash itself); on Cluster, where
// a script may only touch one hash slot, the truncate hash is read first and
// each change is one script call, all in one pipeline.
//
// Applied results carry the change's own image as Next and Head (not sent
// back); Prev is decoded only for updates without a before image, the one
// case the engine derives transitions from it. Images come back decoded
// with json.Number for numbers and []any for arrays (see cdc.Row).
//
// Cost: one round trip (two on Cluster; one more the first time a node sees
// a script). On error, any prefix of the batch may have been applied;
// retrying the batch turns those into Replays.
func (s *Store) ApplyChanges(ctx context.Context, changes []processor.RowChange) ([]processor.ApplyResult, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	enc, err := s.encodeChanges(changes)
	if err != nil {
		return nil, err
	}
	delTTL := strconv.FormatInt(durMillis(s.opts.DeletedRetention), 10)
	parkChunk := strconv.Itoa(s.opts.ParkChunk)
	var ops []op
	if s.perKeyScripts() {
		trunc, err := s.truncPositions(ctx)
		if err != nil {
			return nil, err
		}
		ops = make([]op, len(enc))
		for i, e := range enc {
			if e.truncate {
				ops[i] = op{script: scriptTruncate, keys: []string{s.truncKey()}, args: []any{e.table, e.pos}}
				if truncApplies(trunc, e.table, changes[i].Position) {
					trunc[e.table] = e.pos
				}
				continue
			}
			ops[i] = op{script: scriptApply, keys: []string{e.row, e.parked},
				args: []any{e.pos, e.img, e.set, e.ttl, delTTL, trunc[e.table], parkChunk, e.freshArg(), e.trim}}
		}
	} else {
		// One script call per chunk: the per-call cost of EVALSHA dominates
		// a single compare-and-set, and a chunk keeps Redis busy ~1 ms at most.
		for lo := 0; lo < len(enc); lo += applyChunk {
			chunk := enc[lo:min(lo+applyChunk, len(enc))]
			keys := make([]string, 0, 1+2*len(chunk))
			args := make([]any, 0, 2+7*len(chunk))
			keys = append(keys, s.truncKey())
			args = append(args, delTTL, parkChunk)
			truncates := false
			for _, e := range chunk {
				kind := "c"
				if e.fresh {
					kind = "n"
				}
				if e.truncate {
					kind = "t"
					truncates = true
				}
				keys = append(keys, e.row, e.parked)
				args = append(args, kind, e.table, e.pos, e.img, e.set, e.ttl, e.trim)
			}
			o := op{script: scriptApplyMany, keys: keys, args: args}
			if !truncates {
				o.shared = keys[:1] // read only: chunks without a truncate are independent through it
			}
			ops = append(ops, o)
		}
	}
	cmds, err := s.run(ctx, ops)
	if err != nil {
		return nil, err
	}
	replies, err := s.scriptReplies(cmds, len(changes), "apply")
	if err != nil {
		return nil, err
	}
	out := make([]processor.ApplyResult, len(changes))
	for i, ch := range changes {
		vals, _ := replies[i].([]any)
		r, err := decodeApply(vals, ch, enc[i].img)
		if err != nil {
			return nil, fmt.Errorf("state: apply %s %s: %w", ch.Table, ch.ID, err)
		}
		out[i] = r
	}
	return out, nil
}

// applyChunk is how many changes one apply_many call carries.
const applyChunk = 250

// encoded is one change as the scripts take it.
type encoded struct {
	truncate                          bool
	table, row, parked, pos, img, set string
	ttl                               string
	// trim is the row's deferred trim position ("" none), done before the
	// change (Options.TrimDelay).
	trim string
	// fresh: the change is an INSERT (op c), so the row starts afresh and
	// the first-set columns of its history before do not count.
	fresh bool
}

// freshArg is fresh as apply.lua's ARGV[8].
func (e encoded) freshArg() string {
	if e.fresh {
		return "1"
	}
	return "0"
}

func (s *Store) encodeChanges(changes []processor.RowChange) ([]encoded, error) {
	usageTTL := strconv.FormatInt(durMillis(s.opts.UsageTTL), 10)
	out := make([]encoded, len(changes))
	var buf []byte // each image is encoded here, then copied into its string
	for i, ch := range changes {
		e := encoded{table: ch.Table, pos: ch.Position.String(), ttl: "0", fresh: ch.Op == cdc.OpCreate}
		if ch.Op == cdc.OpTruncate {
			e.truncate, e.row, e.parked, e.img = true, s.truncKey(), s.truncKey(), "null"
			out[i] = e
			continue
		}
		if e.pos == "" {
			return nil, fmt.Errorf("state: %s %s: change without a position", ch.Table, ch.ID)
		}
		img := "null"
		switch {
		case ch.Op == cdc.OpDelete || ch.After == nil:
		case ch.Image != nil:
			// Encoded by the decoder and never changed after: shared, not copied.
			img = unsafe.String(unsafe.SliceData(ch.Image), len(ch.Image))
		default:
			var err error
			if buf, err = ch.After.AppendJSON(buf[:0]); err != nil {
				return nil, fmt.Errorf("state: encode %s %s: %w", ch.Table, ch.ID, err)
			}
			img = string(buf)
		}
		if ch.Table == UsageTable {
			e.ttl = usageTTL
		}
		e.row, e.parked, e.img, e.set = s.rowKey(ch.Table, ch.ID), s.parkedKey(ch.Table, ch.ID), img, strings.Join(ch.Set, ",")
		if s.trims != nil {
			e.trim = s.trims.take(e.row) // the row's first change here takes it
		}
		out[i] = e
	}
	return out, nil
}

// truncApplies mirrors pm_truncate: would a truncate of table at p be
// recorded over what trunc holds?
func truncApplies(trunc map[string]string, table string, p cdc.Position) bool {
	cur, ok := trunc[table]
	if !ok {
		return true
	}
	if cur == p.String() {
		return false
	}
	q, err := cdc.ParsePosition(cur)
	if err != nil {
		return true
	}
	c, ordered := p.Compare(q)
	return !ordered || c > 0
}

// truncPositions reads the truncate hash: table -> position text.
func (s *Store) truncPositions(ctx context.Context) (map[string]string, error) {
	m, err := s.c.HGetAll(ctx, s.truncKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("state: redis hgetall truncates: %w", err)
	}
	return m, nil
}

// perKeyScripts reports whether multi-key scripts must stay within one hash
// slot (Redis Cluster), so batches are pipelines of single-row scripts.
func (s *Store) perKeyScripts() bool {
	_, cluster := s.c.(*redis.ClusterClient)
	return cluster || s.opts.SingleRowScripts
}

// decodeApply decodes an apply script's answer (see scripts/apply.lua).
func decodeApply(vals []any, ch processor.RowChange, img string) (processor.ApplyResult, error) {
	var r processor.ApplyResult
	if ch.Op == cdc.OpTruncate {
		if len(vals) != 2 {
			return r, fmt.Errorf("truncate script returned %d values", len(vals))
		}
		code, _ := vals[0].(int64)
		u, _ := vals[1].(int64)
		r.Outcome, r.Unordered = processor.Outcome(code), u == 1
		if r.Outcome < processor.Applied || r.Outcome > processor.Stale {
			return r, fmt.Errorf("truncate script returned outcome %v", vals[0])
		}
		return r, nil
	}
	if len(vals) != 8 {
		return r, fmt.Errorf("apply script returned %d values", len(vals))
	}
	code, _ := vals[0].(int64)
	unordered, _ := vals[1].(int64)
	prev, _ := vals[2].(string)
	next, _ := vals[3].(string)
	head, _ := vals[4].(string)
	set, _ := vals[5].(string)
	var err error
	switch code {
	case 1:
		r.Outcome = processor.Applied
	case 2:
		r.Outcome = processor.Replay
	case 3:
		r.Outcome = processor.Stale
	default:
		return r, fmt.Errorf("apply script returned outcome %v", vals[0])
	}
	if head == "=" {
		if ch.Op != cdc.OpDelete {
			r.Head = ch.After
		}
	} else if r.Head, err = decodeRow(head); err != nil {
		return r, err
	}
	if r.Outcome == processor.Stale {
		return r, nil
	}
	r.Unordered = unordered == 1
	if set != "" {
		r.PrevSet = strings.Split(set, ",")
	}
	if ch.Op == cdc.OpUpdate && ch.Before == nil {
		if r.Outcome == processor.Applied && prev == img {
			// Same image (only columns outside the contract changed): no
			// need to decode what is already at hand.
			r.Prev = ch.After
		} else if r.Prev, err = decodeRow(prev); err != nil {
			return r, err
		}
	}
	if r.Outcome == processor.Applied {
		if ch.Op != cdc.OpDelete {
			r.Next = ch.After
		}
	} else if next == head {
		r.Next = r.Head // a replay of the newest change
	} else if r.Next, err = decodeRow(next); err != nil {
		return r, err
	}
	flat, _ := vals[6].([]any)
	r.Parked = decodeParkedList(processor.RowRef{Table: ch.Table, ID: ch.ID}, flat)
	more, _ := vals[7].(int64)
	r.MoreParked = more == 1
	return r, nil
}

// decodeParkedList decodes a flat field, value, ... list of a parked hash,
// sorted by intent key.
func decodeParkedList(ref processor.RowRef, flat []any) []processor.Parked {
	var out []processor.Parked
	for j := 0; j+1 < len(flat); j += 2 {
		k, _ := flat[j].(string)
		v, _ := flat[j+1].(string)
		out = append(out, decodePark(ref, k, v))
	}
	slices.SortFunc(out, func(a, b processor.Parked) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// decodeRow decodes a stored image (cdc.DecodeRow): nil for "" (none) and
// "null" (deleted).
func decodeRow(s string) (cdc.Row, error) {
	if s == "" || s == "null" {
		return nil, nil
	}
	return cdc.DecodeRowString(s)
}

// splitEntry splits a history entry "<position>|<set before>|<set>|<json>"
// into its position and image ("" image when malformed).
func splitEntry(e string) (pos, img string) {
	pos, rest, ok := strings.Cut(e, "|")
	if !ok {
		return e, ""
	}
	_, rest, _ = strings.Cut(rest, "|")
	_, img, _ = strings.Cut(rest, "|")
	return pos, img
}

// older reports whether pos (text) is older than the table's truncate.
func older(trunc map[string]string, table, pos string) bool {
	t, ok := trunc[table]
	if !ok {
		return false
	}
	tp, err1 := cdc.ParsePosition(t)
	p, err2 := cdc.ParsePosition(pos)
	if err1 != nil || err2 != nil {
		return false
	}
	c, ordered := p.Compare(tp)
	return ordered && c < 0
}

// encodePark is the parked hash's value: "<deadline ms>|<len(set)>|<set><data>".
func encodePark(p processor.Parked) string {
	var b strings.Builder
	b.WriteString(strconv.FormatInt(millis(p.Deadline), 10))
	b.WriteByte('|')
	b.WriteString(strconv.Itoa(len(p.Set)))
	b.WriteByte('|')
	b.WriteString(p.Set)
	b.Write(p.Data)
	return b.String()
}

// decodePark is the inverse of encodePark; a value in another format is
// returned whole as Data.
func decodePark(on processor.RowRef, key, v string) processor.Parked {
	p := processor.Parked{On: on, Key: key}
	ms, rest, ok1 := strings.Cut(v, "|")
	n, rest, ok2 := strings.Cut(rest, "|")
	deadline, err1 := strconv.ParseInt(ms, 10, 64)
	setLen, err2 := strconv.Atoi(n)
	if !ok1 || !ok2 || err1 != nil || err2 != nil || setLen < 0 || setLen > len(rest) {
		p.Data = []byte(v)
		return p
	}
	p.Deadline = fromMillis(deadline)
	p.Set = rest[:setLen]
	p.Data = []byte(rest[setLen:])
	return p
}

// Rows implements processor.State: the newest image of each ref (nil where
// the row is absent, expired, deleted or older than its table's truncate),
// decoded as in ApplyChanges. One pipeline of LINDEX and the truncate hash,
// one round trip.
func (s *Store) Rows(ctx context.Context, refs []processor.RowRef) ([]cdc.Row, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	truncKey := s.truncKey()
	ops := make([]op, 0, len(refs)+1)
	ops = append(ops, op{plain: func(p redis.Cmdable) redis.Cmder { return p.HGetAll(ctx, truncKey) }})
	for _, ref := range refs {
		key := s.rowKey(ref.Table, ref.ID)
		ops = append(ops, op{plain: func(p redis.Cmdable) redis.Cmder { return p.LIndex(ctx, key, 0) }})
	}
	cmds, err := s.run(ctx, ops)
	if err != nil {
		return nil, err
	}
	trunc := cmds[0].(*redis.MapStringStringCmd).Val()
	out := make([]cdc.Row, len(refs))
	for i, cmd := range cmds[1:] {
		v, err := cmd.(*redis.StringCmd).Result()
		if err == redis.Nil {
			continue
		}
		pos, img := splitEntry(v)
		if older(trunc, refs[i].Table, pos) {
			continue
		}
		if out[i], err = decodeRow(img); err != nil {
			return nil, fmt.Errorf("state: row %s %s: %w", refs[i].Table, refs[i].ID, err)
		}
	}
	return out, nil
}

// Emitted implements processor.State: per key, whether Commit recorded it as
// emitted within the last EmittedTTL.
//
// On standalone Redis and Sentinel one EXISTS counts the markers of up to
// existsChunk keys, and only a chunk that has some (a replay, a redelivery)
// is asked again key by key: one round trip and a few commands for a batch
// whose keys are all new, the usual case, instead of a command per key. On
// Cluster, where the markers span hash slots, it is one EXISTS per key, in
// one round trip.
func (s *Store) Emitted(ctx context.Context, keys []string) ([]bool, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = s.emittedKey(k)
	}
	out := make([]bool, len(keys))
	if s.perKeyScripts() {
		return out, s.existsEach(ctx, names, out)
	}
	ops := make([]op, 0, (len(names)+existsChunk-1)/existsChunk)
	for lo := 0; lo < len(names); lo += existsChunk {
		chunk := names[lo:min(lo+existsChunk, len(names))]
		ops = append(ops, op{plain: func(p redis.Cmdable) redis.Cmder { return p.Exists(ctx, chunk...) }})
	}
	cmds, err := s.run(ctx, ops)
	if err != nil {
		return nil, err
	}
	for c, cmd := range cmds {
		if cmd.(*redis.IntCmd).Val() == 0 {
			continue
		}
		lo := c * existsChunk
		hi := min(lo+existsChunk, len(names))
		if err := s.existsEach(ctx, names[lo:hi], out[lo:hi]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// existsChunk is how many markers one EXISTS of Emitted counts.
const existsChunk = 500

// existsEach sets out[i] to whether names[i] exists: one EXISTS per name,
// in one pipeline.
func (s *Store) existsEach(ctx context.Context, names []string, out []bool) error {
	ops := make([]op, len(names))
	for i, key := range names {
		ops[i] = op{plain: func(p redis.Cmdable) redis.Cmder { return p.Exists(ctx, key) }}
	}
	cmds, err := s.run(ctx, ops)
	if err != nil {
		return err
	}
	for i, cmd := range cmds {
		out[i] = cmd.(*redis.IntCmd).Val() > 0
	}
	return nil
}
