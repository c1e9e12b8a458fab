package processor

import (
	"sync"

	"github.com/portalmail/portalmail/schemas/cdc"
)

// maxRefHints bounds the hints an engine keeps: past it they start over.
const maxRefHints = 1 << 17

// refHints remember, for each interop subscription and company row a batch
// read, the row it named next: its company, its partner. An email's rows
// are read in rounds, each revealing the next reference (sample →
// subscription → company → partner); with the hints, the first round reads
// the rows they name as well, and a round that finds everything read ends
// the reading. A hint only chooses what to read: what a batch resolves
// from is always the row as state holds it, read in that batch, and a hint
// that no longer holds costs the round trip it would have saved.
type refHints struct {
	// off: the engine's State reads rows without a round trip (LocalReads),
	// so there is nothing to save and no hint is kept.
	off bool
	mu  sync.RWMutex
	m   map[RowRef]string
}

// LocalReads is implemented by a State whose reads cost no round trip (the
// in-memory store): an engine over one keeps no row hints.
type LocalReads interface {
	// LocalReads reports whether reads are local.
	LocalReads() bool
}

// get returns the id the row ref named when last read ("" if unknown).
func (h *refHints) get(ref RowRef) string {
	if h.off || ref.ID == "" {
		return ""
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.m[ref]
}

// learn records what the rows read name next.
func (h *refHints) learn(refs []RowRef, rows []cdc.Row) {
	if h.off {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, ref := range refs {
		col := ""
		switch ref.Table {
		case cdc.InteropSubscriptions:
			col = "company_id"
		case cdc.Companies:
			col = "partner_id"
		default:
			continue
		}
		id := rows[i].Str(col)
		if id == "" {
			delete(h.m, ref)
			continue
		}
		if h.m == nil || len(h.m) >= maxRefHints {
			h.m = make(map[RowRef]string, 1024)
		}
		h.m[ref] = id
	}
}
