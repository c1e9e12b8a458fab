package processor

import (
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/schemas/cdc"
)

// sample is one usage sample waiting for the band evaluation.
type sample struct {
	in intent // the sample's intent without a type; Percent is filled in
}

// collectSamples queues the change as a usage sample if its table carries a
// Threshold trigger.
func (e *Engine) collectSamples(b *batch, ch cdc.Change, next cdc.Row) {
	for _, t := range e.byTable[ch.Table] {
		if _, ok := t.Trigger.(catalog.Threshold); ok {
			in := intentFromChange(t, ch, nil, next)
			in.Type = "" // decided by the bands
			b.samples = append(b.samples, sample{in: in})
			return
		}
	}
}

// thresholdTypes returns the catalog's Threshold types for a table, by level.
func (e *Engine) thresholdTypes(table string) (th catalog.Threshold, byLevel map[catalog.Level]*entry) {
	byLevel = map[catalog.Level]*entry{}
	for _, t := range e.byTable[table] {
		if tr, ok := t.Trigger.(catalog.Threshold); ok {
			th = tr
			byLevel[tr.Level] = t
		}
	}
	return th, byLevel
}

// percent is floor(100 × value / capacity); ok is false below the minimum capacity.
func percent(th catalog.Threshold, sampleRow, capacityRow cdc.Row) (int, bool) {
	capacity, ok := capacityRow.Int(th.CapacityField)
	if !ok || capacity < int64(th.MinCapacity) || capacity <= 0 {
		return 0, false
	}
	v, ok := sampleRow.Int(th.Value)
	if !ok || v < 0 {
		return 0, false
	}
	return int(100 * v / capacity), true
}
