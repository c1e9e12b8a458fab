package state

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/schemas/cdc"
)

// TestDeferredTrimsGenerations: a row's trim waits in the newer
// generation; every half delay the older one is due and the newer becomes
// it (so a trim waits half the delay to the whole of it), more than max
// rows waiting turn them early, a newer commit of a row replaces its older
// trim, an apply takes it, and all returns what still waits.
func TestDeferredTrimsGenerations(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	d := newDeferredTrims(time.Minute, 3, func() time.Time { return now })
	show := func(rows, ps []string) string {
		var b []string
		for i := range rows {
			b = append(b, rows[i]+"@"+ps[i])
		}
		slices.Sort(b)
		return strings.Join(b, " ")
	}
	step := func(label string, after time.Duration, rows, ps []string, want string) {
		t.Helper()
		now = now.Add(after)
		if got := show(d.add(rows, ps)); got != want {
			t.Fatalf("%s: due %q, want %q", label, got, want)
		}
	}
	step("a and b committed", 0, []string{"a", "b"}, []string{"1", "1"}, "")
	step("a committed again", 20*time.Second, []string{"a"}, []string{"2"}, "")
	if got := d.take("b"); got != "1" {
		t.Fatalf("take b = %q, want 1", got)
	}
	if got := d.take("b"); got != "" {
		t.Fatalf("take b again = %q, want none", got)
	}
	step("half the delay: a's generation turns older", 11*time.Second, nil, nil, "")
	step("c committed", 9*time.Second, []string{"c"}, []string{"1"}, "")
	step("half the delay again: a is due", 22*time.Second, nil, nil, "a@2")
	step("four rows waiting, three at most: they turn and are due", 0, []string{"d", "e", "f"}, []string{"1", "1", "1"}, "c@1 d@1 e@1 f@1")
	if n := d.waiting(); n != 0 {
		t.Fatalf("%d trims wait", n)
	}
	step("g committed", 0, []string{"g"}, []string{"1"}, "")
	if got, n := show(d.all()), d.waiting(); got != "g@1" || n != 0 {
		t.Fatalf("all = %q, %d left", got, n)
	}
}

// TestDeferredTrimsDrain: a due generation is trimmed a share per commit,
// at least drain rows and twice the commit's own, not in one go.
func TestDeferredTrimsDrain(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	d := newDeferredTrims(time.Minute, 1000, func() time.Time { return now })
	d.drain = 2
	rows := []string{"a", "b", "c", "d", "e", "f", "g"}
	d.add(rows, []string{"1", "1", "1", "1", "1", "1", "1"})
	now = now.Add(31 * time.Second)
	if got, _ := d.add(nil, nil); len(got) != 0 {
		t.Fatalf("the generation turned older: %d due, want 0", len(got))
	}
	now = now.Add(31 * time.Second)
	var counts []int
	for d.waiting() > 0 {
		got, _ := d.add(nil, nil)
		counts = append(counts, len(got))
	}
	if fmt.Sprint(counts) != "[2 2 2 1]" {
		t.Fatalf("due per commit %v, want [2 2 2 1]", counts)
	}
	d.add([]string{"h"}, []string{"1"}) // turns: h is in the older generation now
	now = now.Add(31 * time.Second)
	if got, _ := d.add([]string{"a", "b", "c"}, []string{"2", "2", "2"}); fmt.Sprint(got) != "[h]" {
		t.Fatalf("due with a commit of three rows: %v, want [h]", got)
	}
}

// TestDeferredTrims: with TrimDelay a commit leaves the row's older entries
// in place, the row's next apply drops them in its own script call (no
// commit in between), a row not changed again is trimmed by a commit once
// its generation has turned twice (half the delay to the whole of it), and
// FlushTrims trims what still waits.
func TestDeferredTrims(t *testing.T) {
	s, env := newTestStore(t, Options{TrimDelay: time.Minute})
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	s.trims.now, s.trims.turned = func() time.Time { return now }, now
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
	now = now.Add(31 * time.Second)
	commit() // past half the delay: c2's and c3's generation turns older
	if got := hist("c2"); got != "lsn:2 lsn:1" {
		t.Fatalf("c2 half the delay on: index %q, want both entries kept", got)
	}
	now = now.Add(31 * time.Second)
	commit() // past it again: their trims run
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
