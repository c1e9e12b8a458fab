package state

import (
	"context"
	"fmt"
	"strconv"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/catalog"
)

// bandChunk is how many keys one bands_many.lua call carries.
const bandChunk = 250

// Bands implements processor.State: each key's samples in order against its
// band (scripts/bands.lua; on standalone Redis and Sentinel up to bandChunk
// keys per call, bands_many.lua), all in one pipeline (one round trip). Per
// sample at position P with X = Percent, against the
// band of Key (both lines start armed):
//   - P was evaluated before (among the band's last 16 positions): the
//     result it got then, state unchanged;
//   - P is older than the latest position evaluated: nothing fires, state
//     unchanged;
//   - else X < UsageRearmBelow re-arms usage and X <= OverRearmAtOrBelow
//     re-arms over; then X > OverAbove with over armed fires Over only and
//     disarms both, else X >= UsageAt with usage armed fires Usage and
//     disarms usage. The result is remembered for P.
//
// A zero rules value means catalog.DefaultBands. Minimum capacity and
// licensing are the caller's filter. Positions compare as in ApplyChanges
// (exact beyond 2^53; one that cannot be ordered is evaluated). On error
// any prefix of a key's samples may have been evaluated; retrying gets the
// remembered results.
func (s *Store) Bands(ctx context.Context, rules catalog.Bands, samples []processor.BandSample) ([]processor.BandResult, error) {
	if len(samples) == 0 {
		return nil, nil
	}
	if rules == (catalog.Bands{}) {
		rules = catalog.DefaultBands
	}
	head := []any{
		strconv.Itoa(rules.UsageAt), strconv.Itoa(rules.UsageRearmBelow),
		strconv.Itoa(rules.OverAbove), strconv.Itoa(rules.OverRearmAtOrBelow),
		strconv.Itoa(recentBandResults),
	}
	// Per key its samples, in batch order.
	byKey := make(map[string]int, len(samples))
	var keys []string
	var members [][]int // per key, its samples
	for i, sm := range samples {
		k, ok := byKey[sm.Key]
		if !ok {
			k = len(keys)
			byKey[sm.Key] = k
			keys = append(keys, s.bandKey(sm.Key))
			members = append(members, nil)
		}
		members[k] = append(members[k], i)
	}
	sampleArgs := func(args []any, k int) []any {
		for _, i := range members[k] {
			args = append(args, samples[i].Position.String(), strconv.Itoa(samples[i].Percent))
		}
		return args
	}
	// One script call per key on Cluster; otherwise one per chunk of keys
	// (bands_many.lua): a key has one sample or two in a batch of a steady
	// stream, and the call, not the sample, is what costs.
	var ops []op
	if s.perKeyScripts() {
		ops = make([]op, len(keys))
		for k, key := range keys {
			ops[k] = op{script: scriptBands, keys: []string{key}, args: sampleArgs(append([]any(nil), head...), k)}
		}
	} else {
		for lo := 0; lo < len(keys); lo += bandChunk {
			hi := min(lo+bandChunk, len(keys))
			args := append(make([]any, 0, len(head)+3*(hi-lo)), head...)
			for k := lo; k < hi; k++ {
				args = append(args, strconv.Itoa(len(members[k])))
				args = sampleArgs(args, k)
			}
			ops = append(ops, op{script: scriptBandsMany, keys: keys[lo:hi:hi], args: args})
		}
	}
	cmds, err := s.run(ctx, ops)
	if err != nil {
		return nil, err
	}
	replies, err := s.scriptReplies(cmds, len(keys), "bands")
	if err != nil {
		return nil, err
	}
	out := make([]processor.BandResult, len(samples))
	for k, reply := range replies {
		codes, ok := reply.([]any)
		if !ok || len(codes) != len(members[k]) {
			return nil, fmt.Errorf("state: bands of %s: %v for %d samples", samples[members[k][0]].Key, reply, len(members[k]))
		}
		for j, i := range members[k] {
			code, _ := codes[j].(int64)
			out[i] = processor.BandResult{Usage: code == 1, Over: code == 2}
		}
	}
	return out, nil
}
