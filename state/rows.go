package state

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/redis/go-redis/v9"
)

// ApplyChanges implements processor.State: one apply script per change
// (scripts/apply.lua), all in one pipeline, hence in order per row — two
// changes of one row in one batch see each other.
//
// Per change, with position P (canonical decimal) and image I (ch.After as
// JSON; "null" for cdc.OpDelete or a nil After):
//   - the row has no history, or P is newer than its head: Applied, I is
//     pushed, Prev is the old head image, Next is ch.After;
//   - P is one of the RowHistory newest stored positions: Replay, Next is the
//     image stored at P and Prev the one stored before it (nil if none);
//   - otherwise Stale (Prev, Next and Parked nil).
//
// Applied and Replay results with a non-nil Next carry the row's parked
// intents; they stay parked until Commit.Unpark. Rows of UsageTable expire
// UsageTTL after their last applied change. Images come back decoded with
// json.Number for numbers and []any for arrays (see cdc.Row).
//
// Cost: one round trip (two the first time a Redis node sees the script).
// On error, any prefix of the batch may have been applied; retrying the
// batch turns those into Replays.
func (s *Store) ApplyChanges(ctx context.Context, changes []cdc.Change) ([]processor.ApplyResult, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	keep := strconv.Itoa(s.opts.RowHistory)
	usageTTL := strconv.FormatInt(durMillis(s.opts.UsageTTL), 10)
	type enc struct {
		row, parked, pos, img, ttl string
	}
	encoded := make([]enc, len(changes))
	for i, ch := range changes {
		img := []byte("null")
		if ch.Op != cdc.OpDelete && ch.After != nil {
			var err error
			if img, err = ch.After.AppendJSON(nil); err != nil {
				return nil, fmt.Errorf("state: encode %s %s: %w", ch.Table, ch.ID, err)
			}
		}
		ttl := "0"
		if ch.Table == UsageTable {
			ttl = usageTTL
		}
		encoded[i] = enc{s.rowKey(ch.Table, ch.ID), s.parkedKey(ch.Table, ch.ID), strconv.FormatInt(ch.Position, 10), string(img), ttl}
	}
	var ops []op
	if s.perKeyScripts() {
		ops = make([]op, len(changes))
		for i, e := range encoded {
			ops[i] = op{script: scriptApply, keys: []string{e.row, e.parked}, args: []any{e.pos, e.img, keep, e.ttl}}
		}
	} else {
		// One script call per chunk: the per-call cost of EVALSHA dominates
		// a single compare-and-set, and a chunk keeps Redis busy ~1 ms at most.
		for lo := 0; lo < len(encoded); lo += applyChunk {
			chunk := encoded[lo:min(lo+applyChunk, len(encoded))]
			keys := make([]string, 0, 2*len(chunk))
			args := make([]any, 0, 1+3*len(chunk))
			args = append(args, keep)
			for _, e := range chunk {
				keys = append(keys, e.row, e.parked)
				args = append(args, e.pos, e.img, e.ttl)
			}
			ops = append(ops, op{script: scriptApplyMany, keys: keys, args: args})
		}
	}
	cmds, err := s.run(ctx, ops)
	if err != nil {
		return nil, err
	}
	var replies []any
	if s.perKeyScripts() {
		replies = make([]any, len(cmds))
		for i, cmd := range cmds {
			replies[i] = cmd.(*redis.Cmd).Val()
		}
	} else {
		replies = make([]any, 0, len(changes))
		for _, cmd := range cmds {
			vals, err := cmd.(*redis.Cmd).Slice()
			if err != nil {
				return nil, fmt.Errorf("state: apply: %w", err)
			}
			replies = append(replies, vals...)
		}
	}
	if len(replies) != len(changes) {
		return nil, fmt.Errorf("state: apply returned %d results for %d changes", len(replies), len(changes))
	}
	out := make([]processor.ApplyResult, len(changes))
	for i, ch := range changes {
		vals, _ := replies[i].([]any)
		r, err := decodeApply(vals, ch, encoded[i].img)
		if err != nil {
			return nil, fmt.Errorf("state: apply %s %s: %w", ch.Table, ch.ID, err)
		}
		out[i] = r
	}
	return out, nil
}

// applyChunk is how many changes one apply_many call carries.
const applyChunk = 250

// perKeyScripts reports whether multi-key scripts must stay within one hash
// slot (Redis Cluster), so batches are pipelines of single-row scripts.
func (s *Store) perKeyScripts() bool {
	_, cluster := s.c.(*redis.ClusterClient)
	return cluster || s.opts.SingleRowScripts
}

// decodeApply decodes the apply script's answer. On Applied, Next is the
// change's own image (not sent back); Prev is decoded only for updates
// without a before image, the one case the engine derives transitions from it.
func decodeApply(vals []any, ch cdc.Change, img string) (processor.ApplyResult, error) {
	ref := processor.RowRef{Table: ch.Table, ID: ch.ID}
	var r processor.ApplyResult
	var err error
	if len(vals) != 4 {
		return r, fmt.Errorf("apply script returned %d values", len(vals))
	}
	code, _ := vals[0].(int64)
	switch code {
	case 1:
		r.Outcome = processor.Applied
	case 2:
		r.Outcome = processor.Replay
	case 3:
		r.Outcome = processor.Stale
		return r, nil
	default:
		return r, fmt.Errorf("apply script returned outcome %v", vals[0])
	}
	prev, _ := vals[1].(string)
	next, _ := vals[2].(string)
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
	} else if r.Next, err = decodeRow(next); err != nil {
		return r, err
	}
	flat, _ := vals[3].([]any)
	for j := 0; j+1 < len(flat); j += 2 {
		k, _ := flat[j].(string)
		v, _ := flat[j+1].(string)
		r.Parked = append(r.Parked, decodePark(ref, k, v))
	}
	return r, nil
}

// decodeRow decodes a stored image: nil for "" (none) and "null" (deleted).
func decodeRow(s string) (cdc.Row, error) {
	if s == "" || s == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var row cdc.Row
	if err := dec.Decode(&row); err != nil {
		return nil, fmt.Errorf("decode stored row: %w", err)
	}
	return row, nil
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
// the row is absent, expired or deleted), decoded as in ApplyChanges. One
// pipeline of LINDEX, one round trip.
func (s *Store) Rows(ctx context.Context, refs []processor.RowRef) ([]cdc.Row, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	ops := make([]op, len(refs))
	for i, ref := range refs {
		key := s.rowKey(ref.Table, ref.ID)
		ops[i] = op{plain: func(p redis.Pipeliner) redis.Cmder { return p.LIndex(ctx, key, 0) }}
	}
	cmds, err := s.run(ctx, ops)
	if err != nil {
		return nil, err
	}
	out := make([]cdc.Row, len(refs))
	for i, cmd := range cmds {
		v, err := cmd.(*redis.StringCmd).Result()
		if err == redis.Nil {
			continue
		}
		_, img, _ := strings.Cut(v, "|")
		if out[i], err = decodeRow(img); err != nil {
			return nil, fmt.Errorf("state: row %s %s: %w", refs[i].Table, refs[i].ID, err)
		}
	}
	return out, nil
}

// Emitted implements processor.State: per key, whether Commit recorded it as
// emitted within the last EmittedTTL. One pipeline of EXISTS, one round trip.
func (s *Store) Emitted(ctx context.Context, keys []string) ([]bool, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	ops := make([]op, len(keys))
	for i, k := range keys {
		key := s.emittedKey(k)
		ops[i] = op{plain: func(p redis.Pipeliner) redis.Cmder { return p.Exists(ctx, key) }}
	}
	cmds, err := s.run(ctx, ops)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(keys))
	for i, cmd := range cmds {
		out[i] = cmd.(*redis.IntCmd).Val() > 0
	}
	return out, nil
}
