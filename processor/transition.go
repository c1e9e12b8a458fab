package processor

import (
	"slices"

	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/schemas/cdc"
)

// deriveTransitions adds an intent for every Transition of the change's table
// that the movement from prev to next fires. prevSet are the first-set
// columns the row had ever set before next (State keeps them).
func (e *Engine) deriveTransitions(b *batch, ch cdc.Change, prev, next cdc.Row, prevSet []string) {
	for _, t := range e.byTable[ch.Table] {
		tr, ok := t.Trigger.(catalog.Transition)
		if !ok || !fires(tr, ch.Op, prev, next, prevSet) {
			continue
		}
		b.add(intentFromChange(t, ch, prev, next))
	}
}

// fires decides a Transition for one change. Creates fire on op c only;
// updates need a previous image (the before image or the one kept in state).
func fires(tr catalog.Transition, op cdc.Op, prev, next cdc.Row, prevSet []string) bool {
	for _, w := range tr.Where {
		if !w.Holds(next) {
			return false
		}
	}
	switch op {
	case cdc.OpCreate:
		if !tr.Create {
			return false
		}
		return tr.Field == "" || len(tr.To) == 0 || contains(tr.To, next.Str(tr.Field))
	case cdc.OpUpdate:
		if tr.Field == "" || prev == nil {
			return false
		}
		return moved(tr, prev, next, prevSet)
	}
	return false
}

// moved reports whether Field moved from prev to next as tr.Change says.
func moved(tr catalog.Transition, prev, next cdc.Row, prevSet []string) bool {
	switch tr.Change {
	case catalog.ValueIn:
		before, after := prev.Str(tr.Field), next.Str(tr.Field)
		if before == after {
			return false
		}
		if len(tr.To) > 0 && !contains(tr.To, after) {
			return false
		}
		return len(tr.From) == 0 || contains(tr.From, before)
	case catalog.SetOrMoved:
		after, ok := next.Time(tr.Field)
		if !ok {
			return false
		}
		before, had := prev.Time(tr.Field)
		return !had || !before.Equal(after)
	case catalog.FirstSet:
		// Once per row: not when the column was set before, even if it
		// was cleared since.
		_, had := prev.Time(tr.Field)
		_, has := next.Time(tr.Field)
		return has && !had && !slices.Contains(prevSet, tr.Field)
	case catalog.MovedLater:
		before, had := prev.Time(tr.Field)
		after, has := next.Time(tr.Field)
		return had && has && after.After(before)
	}
	return false
}
