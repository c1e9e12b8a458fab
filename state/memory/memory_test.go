package memory_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/portalmail/portalmail/state/memory"
	"github.com/portalmail/portalmail/state/statetest"
)

func TestConformance(t *testing.T) {
	statetest.Run(t, func(t *testing.T) processor.State { return memory.New(memory.Options{}) })
}

// clock is a settable clock.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// TestExpiry: deleted rows, usage rows and emitted markers expire by the
// store's clock.
func TestExpiry(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)}
	st := memory.New(memory.Options{Now: c.Now})
	lsn := func(n int64) cdc.Position { return cdc.Position{Kind: cdc.LSN, N: n} }
	ch := func(table, id string, pos int64, op cdc.Op) processor.RowChange {
		r := processor.RowChange{Change: cdc.Change{Table: table, ID: id, Op: op, Position: lsn(pos)}}
		if op != cdc.OpDelete {
			r.After = cdc.Row{"id": id}
		}
		return r
	}
	if _, err := st.ApplyChanges(ctx, []processor.RowChange{
		ch(cdc.Companies, "c1", 1, cdc.OpCreate), ch(cdc.Companies, "c1", 2, cdc.OpDelete),
		ch(cdc.Companies, "c2", 3, cdc.OpCreate), ch(cdc.CVIUsage, "u1", 4, cdc.OpCreate),
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(ctx, processor.Commit{Emitted: []string{"k"}}); err != nil {
		t.Fatal(err)
	}
	c.now = c.now.Add(49 * time.Hour)
	rows, _ := st.Rows(ctx, []processor.RowRef{{Table: cdc.CVIUsage, ID: "u1"}, {Table: cdc.Companies, ID: "c2"}})
	if rows[0] != nil || rows[1] == nil {
		t.Fatalf("after 49h: usage row %v, company %v", rows[0], rows[1])
	}
	c.now = c.now.Add(6 * 24 * time.Hour)
	res, _ := st.ApplyChanges(ctx, []processor.RowChange{ch(cdc.Companies, "c1", 1, cdc.OpCreate)})
	if res[0].Outcome != processor.Applied {
		t.Fatalf("a deleted row older than the retention is forgotten: got %v", res[0].Outcome)
	}
	c.now = c.now.Add(30 * 24 * time.Hour)
	if got, _ := st.Emitted(ctx, []string{"k"}); got[0] {
		t.Fatal("emitted marker outlived its TTL")
	}
}

// TestExpiredRowsAreSwept: rows that expire (usage samples, deleted rows)
// leave the store when their time passes although nothing reads them
// again, so a long simulation's memory follows its live rows.
func TestExpiredRowsAreSwept(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)}
	st := memory.New(memory.Options{Now: c.Now})
	var chs []processor.RowChange
	for i := range 1000 {
		chs = append(chs, processor.RowChange{Change: cdc.Change{Table: cdc.CVIUsage, ID: fmt.Sprint("u", i), Op: cdc.OpCreate,
			Position: cdc.Position{Kind: cdc.LSN, N: int64(i + 1)}, After: cdc.Row{"id": fmt.Sprint("u", i)}}})
	}
	chs = append(chs, processor.RowChange{Change: cdc.Change{Table: cdc.Companies, ID: "c1", Op: cdc.OpCreate,
		Position: cdc.Position{Kind: cdc.LSN, N: 5000}, After: cdc.Row{"id": "c1"}}})
	if _, err := st.ApplyChanges(ctx, chs); err != nil {
		t.Fatal(err)
	}
	if n := st.Len(); n != 1001 {
		t.Fatalf("%d rows stored, want 1001", n)
	}
	c.now = c.now.Add(49 * time.Hour)
	if _, err := st.ApplyChanges(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if n := st.Len(); n != 1 {
		t.Fatalf("after the usage TTL %d rows are left, want the company only", n)
	}
}
