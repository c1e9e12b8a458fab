package processor

import (
	"math"
	"math/bits"

	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/schemas/cdc"
)

// collectSamples queues the change as a usage sample if its table carries a
// Threshold trigger.
func (e *Engine) collectSamples(b *batch, ch cdc.Change, next cdc.Row) {
	for _, t := range e.byTable[ch.Table] {
		if _, ok := t.Trigger.(catalog.Threshold); ok {
			in := intentFromChange(t, ch, nil, next)
			in.Type = "" // decided by the bands
			if b.samples == nil {
				b.samples = make([]intent, 0, max(b.changes/4, 16))
			}
			b.samples = append(b.samples, in)
			return
		}
	}
}

// thresholds are a table's Threshold types, by level.
type thresholds struct {
	th      catalog.Threshold
	byLevel map[catalog.Level]*entry
}

// thresholdTypes returns the catalog's Threshold types for a table, by level
// (computed once, in New).
func (e *Engine) thresholdTypes(table string) (catalog.Threshold, map[catalog.Level]*entry) {
	t := e.thresholds[table]
	return t.th, t.byLevel
}

// maxPercent is where percent saturates: far above every band line, and
// small enough for any int.
const maxPercent = math.MaxInt32

// percent is floor(100 × value / capacity), saturating at maxPercent; ok is
// false below the minimum capacity or for a negative value. The product is
// computed in 128 bits: 100 × a value near 2^62 must not wrap around into a
// small percentage.
func percent(th catalog.Threshold, sampleRow, capacityRow cdc.Row) (int, bool) {
	capacity, ok := capacityRow.Int(th.CapacityField)
	if !ok || capacity < int64(th.MinCapacity) || capacity <= 0 {
		return 0, false
	}
	v, ok := sampleRow.Int(th.Value)
	if !ok || v < 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(100, uint64(v))
	if hi >= uint64(capacity) {
		return maxPercent, true // the quotient does not even fit 64 bits
	}
	q, _ := bits.Div64(hi, lo, uint64(capacity))
	return int(min(q, maxPercent)), true
}

// Affinity names what a change must be applied in order with, and so on one
// worker of a batch split across workers: its row; for a usage sample, the
// capacity row whose band it moves (samples of one subscription are banded
// in source order only within one Apply); for a TRUNCATE, and any change of
// a table truncated in the same batch (truncated true), its table.
func (e *Engine) Affinity(ch cdc.Change, truncated bool) string {
	if ch.Op == cdc.OpTruncate || truncated {
		return ch.Table
	}
	if th, byLevel := e.thresholdTypes(ch.Table); len(byLevel) > 0 {
		return th.CapacityTable + "\x00" + ch.After.Str(th.CapacityRef)
	}
	return ch.Table + "\x00" + ch.ID
}
