package stream

import (
	"fmt"
	"testing"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/portalmail/portalmail/state/memory"
	"github.com/portalmail/portalmail/templates"
)

// TestSplitRows: every change lands in exactly one share; a row's changes,
// the usage samples of one subscription, and (with a TRUNCATE in the batch)
// a truncated table's changes share a worker, in their order.
func TestSplitRows(t *testing.T) {
	eng := splitEngine(t)
	var changes []cdc.Change
	for i := range 600 {
		var ch cdc.Change
		switch i % 3 {
		case 0:
			ch = cdc.Change{Table: cdc.EndUsers, ID: fmt.Sprint("eu", i%40), Op: cdc.OpUpdate}
		case 1:
			ch = cdc.Change{Table: cdc.CVIUsage, ID: fmt.Sprint("u", i), Op: cdc.OpCreate,
				After: cdc.Row{"subscription_id": fmt.Sprint("s", i%7)}}
		default:
			ch = cdc.Change{Table: cdc.Companies, ID: fmt.Sprint("c", i%25), Op: cdc.OpUpdate}
		}
		ch.Cause.Offset = int64(i)
		changes = append(changes, ch)
	}
	changes = append(changes, cdc.Change{Table: cdc.Companies, Op: cdc.OpTruncate, Cause: cdc.Cause{Offset: 600}})
	for _, workers := range []int{1, 2, 3} {
		p := &Process{cfg: ProcessConfig{Workers: workers}, eng: eng}
		shares := p.splitRows(changes, map[string]bool{cdc.Companies: true})
		if workers > 1 && len(shares) < 2 {
			t.Fatalf("workers=%d: %d shares", workers, len(shares))
		}
		where := map[string]int{}
		total := 0
		for i, sh := range shares {
			last := int64(-1)
			for _, ch := range sh {
				if ch.Cause.Offset <= last {
					t.Fatalf("workers=%d: share %d out of order", workers, i)
				}
				last = ch.Cause.Offset
				group := ch.Table + "/" + ch.ID
				switch {
				case ch.Table == cdc.CVIUsage:
					group = "band/" + ch.After.Str("subscription_id")
				case ch.Table == cdc.Companies:
					group = "truncated companies"
				}
				if w, ok := where[group]; ok && w != i {
					t.Fatalf("workers=%d: %s in shares %d and %d", workers, group, w, i)
				}
				where[group] = i
			}
			total += len(sh)
		}
		if total != len(changes) {
			t.Fatalf("workers=%d: %d changes in the shares, want %d", workers, total, len(changes))
		}
	}
}

// TestSplitRowsKeepsSharesLarge: a batch is split into no more shares than
// it has minShare changes for, so a small batch is applied by one worker.
func TestSplitRowsKeepsSharesLarge(t *testing.T) {
	eng := splitEngine(t)
	p := &Process{cfg: ProcessConfig{Workers: 4}, eng: eng}
	for _, tc := range []struct{ changes, maxShares int }{
		{1, 1}, {160, 1}, {2*minShare - 1, 1}, {2 * minShare, 2}, {3 * minShare, 3}, {4000, 4},
	} {
		var changes []cdc.Change
		for i := range tc.changes {
			changes = append(changes, cdc.Change{Table: cdc.EndUsers, ID: fmt.Sprint("eu", i), Op: cdc.OpUpdate})
		}
		shares := p.splitRows(changes, nil)
		if len(shares) > tc.maxShares || (tc.maxShares > 1 && len(shares) < 2) {
			t.Errorf("%d changes: %d shares, want at most %d (and 2 or more when more may be)", tc.changes, len(shares), tc.maxShares)
		}
	}
}

// splitEngine is an engine over an in-memory state, for its Affinity.
func splitEngine(t *testing.T) *processor.Engine {
	t.Helper()
	tmpl, err := templates.Parse()
	if err != nil {
		t.Fatal(err)
	}
	eng, err := processor.New(catalog.Default(), memory.New(memory.Options{}), tmpl, processor.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}
