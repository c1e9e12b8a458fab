package state

import (
	"context"
	"fmt"
	"strconv"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/redis/go-redis/v9"
)

// Bands implements processor.State: one band script call per key
// (scripts/bands.lua) with that key's samples in order, all in one pipeline
// (one round trip). Per sample at position P with X = Percent, against the
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
	// One op per key, its samples in batch order.
	byKey := make(map[string]int, len(samples))
	var ops []op
	var members [][]int // per op, its samples
	for i, sm := range samples {
		k, ok := byKey[sm.Key]
		if !ok {
			k = len(ops)
			byKey[sm.Key] = k
			ops = append(ops, op{script: scriptBands, keys: []string{s.bandKey(sm.Key)}, args: append([]any(nil), head...)})
			members = append(members, nil)
		}
		ops[k].args = append(ops[k].args, sm.Position.String(), strconv.Itoa(sm.Percent))
		members[k] = append(members[k], i)
	}
	cmds, err := s.run(ctx, ops)
	if err != nil {
		return nil, err
	}
	out := make([]processor.BandResult, len(samples))
	for k, cmd := range cmds {
		codes, err := cmd.(*redis.Cmd).Int64Slice()
		if err != nil || len(codes) != len(members[k]) {
			return nil, fmt.Errorf("state: bands of %s: %d results for %d samples: %v", samples[members[k][0]].Key, len(codes), len(members[k]), err)
		}
		for j, i := range members[k] {
			out[i] = processor.BandResult{Usage: codes[j] == 1, Over: codes[j] == 2}
		}
	}
	return out, nil
}
