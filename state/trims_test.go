package state

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/schemas/cdc"
)

// TestDeferredTrimsQueue: a row's trim waits until the delay has passed
// (or the row count is over its bound, oldest first), a newer commit of the
// row replaces its older trim, an apply takes it, and all returns what
// still waits.
func TestDeferredTrimsQueue(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	d := newDeferredTrims(time.Minute, 3, func() time.Time { return now })
	show := func(rows, ps []string) string {
		var b []string
		for i := range rows {
			b = append(b, rows[i]+"@"+ps[i])
		}
		return strings.Join(b, " ")
	}
	if got := show(d.add([]string{"a", "b"}, []string{"1", "1"})); got != "" {
		t.Fatalf("due at once: %q", got)
	}
	now = now.Add(30 * time.Second)
	if got := show(d.add([]string{"a"}, []string{"2"})); got != "" { // replaces a@1
		t.Fatalf("due after 30s: %q", got)
	}
	if got := d.take("b"); got != "1" {
		t.Fatalf("take b = %q, want 1", got)
	}
	if got := d.take("b"); got != "" {
		t.Fatalf("take b again = %q, want none", got)
	}
	now = now.Add(31 * time.Second) // a@1 and b@1 are past the delay, but replaced and taken
	if got := show(d.add(nil, nil)); got != "" {
		t.Fatalf("due after 61s: %q", got)
	}
	now = now.Add(30 * time.Second) // a@2 is past it
	if got := show(d.add([]string{"c"}, []string{"1"})); got != "a@2" {
		t.Fatalf("due after 91s: %q, want a@2", got)
	}
	if got := show(d.add([]string{"d", "e", "f"}, []string{"1", "1", "1"})); got != "c@1" {
		t.Fatalf("four rows waiting, three at most: due %q, want the oldest, c@1", got)
	}
	if got, n := show(d.all()), d.waiting(); got != "d@1 e@1 f@1" || n != 0 {
		t.Fatalf("all = %q, %d left", got, n)
	}
}

// TestDeferredTrims: with TrimDelay a commit leaves the row's older entries
// in place, the row's next apply drops them in its own script call (no
// commit in between), a row not changed again is trimmed once the delay has
// passed, and FlushTrims trims what still waits.
func TestDeferredTrims(t *testing.T) {
	s, env := newTestStore(t, Options{TrimDelay: time.Minute})
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	s.trims.now = func() time.Time { return now }
	hist := func(id string) string {
		entries, err := env.c.LRange(ctx, s.rowKey(tCompanies, id), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		return entries[len(entries)-1] // the index of positions
	}
	row := func(id, status string) cdc.Row { return cdc.Row{"id": id, "status": status} }
	commit := func(chs ...processor.RowChange) {
		t.Helper()
		var c processor.Commit
		for _, ch := range chs {
			c.Rows = append(c.Rows, processor.RowPosition{RowRef: processor.RowRef{Table: ch.Table, ID: ch.ID}, Position: ch.Position})
		}
		if err := s.Commit(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"c1", "c2", "c3"} {
		a, b := chg(tCompanies, id, 1, row(id, "trial")), chg(tCompanies, id, 2, row(id, "active"))
		apply(t, s, a, b)
		commit(b)
		if got := hist(id); got != "lsn:2 lsn:1" {
			t.Fatalf("%s after its commit: index %q, want both entries kept", id, got)
		}
	}
	res := apply(t, s, chg(tCompanies, "c1", 3, row("c1", "canceled")))
	if res[0].Outcome != processor.Applied || res[0].Prev.Str("status") != "active" {
		t.Fatalf("c1's next change: %+v", res[0])
	}
	if got := hist("c1"); got != "lsn:3 lsn:2" { // no commit since: the apply trimmed
		t.Fatalf("c1 after its next change: index %q, want lsn:1 trimmed", got)
	}
	now = now.Add(2 * time.Minute)
	commit() // any commit runs the trims past the delay
	if got := hist("c2"); got != "lsn:2" {
		t.Fatalf("c2 past the delay: index %q, want lsn:1 trimmed", got)
	}
	if got := hist("c3"); got != "lsn:2" {
		t.Fatalf("c3 past the delay: index %q", got)
	}
	apply(t, s, chg(tCompanies, "c2", 3, row("c2", "canceled")))
	commit(chg(tCompanies, "c2", 3, nil))
	if err := s.FlushTrims(ctx); err != nil {
		t.Fatal(err)
	}
	if got := hist("c2"); got != "lsn:3" {
		t.Fatalf("c2 after FlushTrims: index %q", got)
	}
	if n := s.trims.waiting(); n != 0 {
		t.Fatalf("%d trims wait after FlushTrims", n)
	}
}
