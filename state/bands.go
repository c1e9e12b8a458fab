package state

import (
	"context"
	"fmt"
	"strconv"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/redis/go-redis/v9"
)

// Bands implements processor.State: one band script per sample
// (scripts/bands.lua), in one pipeline (one round trip), so samples of one
// key are evaluated in order. Per sample at position P with X = Percent,
// against the band of Key (both lines start armed):
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
// (exact beyond 2^53; one that cannot be ordered is evaluated). On error any prefix may have been evaluated; retrying
// gets the remembered results.
func (s *Store) Bands(ctx context.Context, rules catalog.Bands, samples []processor.BandSample) ([]processor.BandResult, error) {
	if len(samples) == 0 {
		return nil, nil
	}
	if rules == (catalog.Bands{}) {
		rules = catalog.DefaultBands
	}
	ops := make([]op, len(samples))
	for i, sm := range samples {
		ops[i] = op{
			script: scriptBands,
			keys:   []string{s.bandKey(sm.Key)},
			args: []any{
				sm.Position.String(), strconv.Itoa(sm.Percent),
				strconv.Itoa(rules.UsageAt), strconv.Itoa(rules.UsageRearmBelow),
				strconv.Itoa(rules.OverAbove), strconv.Itoa(rules.OverRearmAtOrBelow),
				strconv.Itoa(recentBandResults),
			},
		}
	}
	cmds, err := s.run(ctx, ops)
	if err != nil {
		return nil, err
	}
	out := make([]processor.BandResult, len(samples))
	for i, cmd := range cmds {
		code, err := cmd.(*redis.Cmd).Int64()
		if err != nil {
			return nil, fmt.Errorf("state: band %s: %w", samples[i].Key, err)
		}
		out[i] = processor.BandResult{Usage: code == 1, Over: code == 2}
	}
	return out, nil
}
