package state

import (
	"context"
	"testing"
	"time"

	"github.com/portalmail/portalmail/processor"
)

var t0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

func at(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }

func tm(set, member string, due time.Time) processor.TimerRef {
	return processor.TimerRef{Set: set, Member: member, Due: due}
}

func members(ts []processor.TimerRef) []string {
	out := []string{}
	for _, t := range ts {
		out = append(out, t.Member)
	}
	return out
}

func sameMembers(a []processor.TimerRef, want ...string) bool {
	got := members(a)
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

func TestTimers(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	const set = "portal-0"
	lease := 10 * time.Hour
	write := func(w processor.Writes) {
		t.Helper()
		if err := s.Write(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	due := func(now time.Time, limit int, want ...string) []processor.TimerRef {
		t.Helper()
		got, err := s.DueTimers(ctx, set, now, limit, lease)
		if err != nil {
			t.Fatal(err)
		}
		if !sameMembers(got, want...) {
			t.Fatalf("DueTimers(%v, %d) = %v, want %v", now, limit, members(got), want)
		}
		for _, r := range got {
			if r.Set != set || r.Due.Location() != time.UTC {
				t.Fatalf("timer %+v: want set %s, UTC", r, set)
			}
		}
		return got
	}

	write(processor.Writes{Schedule: []processor.TimerRef{
		tm(set, "c", at(3)), tm(set, "a", at(1)), tm(set, "b", at(2)), tm(set, "d", at(4)), tm(set, "e", at(30)),
		tm("other", "z", at(0)),
	}})
	// move d earlier, cancel c
	write(processor.Writes{Schedule: []processor.TimerRef{tm(set, "d", at(2).Add(time.Minute))}, Cancel: []processor.TimerRef{tm(set, "c", time.Time{})}})

	due(at(0), 10)
	got := due(at(2), 1, "a")
	if !got[0].Due.Equal(at(1)) {
		t.Errorf("a due %v, want %v", got[0].Due, at(1))
	}
	// a is leased: not returned again while the lease runs
	due(at(4), 10, "b", "d")
	due(at(4), 10)
	due(at(11), 10)
	// leases run out (a's at 12, b's and d's at 14)
	due(at(12), 10, "a")
	due(at(14), 10, "b", "d")
	// ack removes (acking with the due time it fired at)
	if err := s.Commit(ctx, processor.Commit{Acked: []processor.TimerRef{tm(set, "a", at(1)), tm(set, "b", at(2))}}); err != nil {
		t.Fatal(err)
	}
	// d is re-scheduled while in flight: the ack of its old due keeps it
	write(processor.Writes{Schedule: []processor.TimerRef{tm(set, "d", at(20))}})
	if err := s.Commit(ctx, processor.Commit{Acked: []processor.TimerRef{tm(set, "d", at(2).Add(time.Minute))}}); err != nil {
		t.Fatal(err)
	}
	due(at(19), 10)
	got = due(at(31), 10, "d", "e")
	if !got[0].Due.Equal(at(20)) || !got[1].Due.Equal(at(30)) {
		t.Errorf("due times %v %v", got[0].Due, got[1].Due)
	}
	if err := s.Commit(ctx, processor.Commit{Acked: got}); err != nil {
		t.Fatal(err)
	}
	due(at(100), 10)
	// the other set is untouched
	if o, err := s.DueTimers(ctx, "other", at(0), 10, lease); err != nil || !sameMembers(o, "z") {
		t.Errorf("other set: %v, %v", members(o), err)
	}
	if o, _ := s.DueTimers(ctx, "other", at(0), 0, lease); o != nil {
		t.Errorf("limit 0 returned %v", o)
	}
}

func TestDueTimersManyLeased(t *testing.T) {
	// More leased timers in front than the script's scan chunk.
	s, _ := newTestStore(t)
	ctx := context.Background()
	var w processor.Writes
	for i := 0; i < 300; i++ {
		w.Schedule = append(w.Schedule, tm("s", "m"+time.Duration(i).String(), t0.Add(time.Duration(i)*time.Second)))
	}
	if err := s.Write(ctx, w); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Hour)
	first, err := s.DueTimers(ctx, "s", now, 250, time.Minute)
	if err != nil || len(first) != 250 {
		t.Fatalf("first = %d, %v", len(first), err)
	}
	rest, err := s.DueTimers(ctx, "s", now, 250, time.Minute)
	if err != nil || len(rest) != 50 {
		t.Fatalf("rest = %d, %v", len(rest), err)
	}
	if !rest[0].Due.Equal(t0.Add(250*time.Second)) || !rest[49].Due.Equal(t0.Add(299*time.Second)) {
		t.Errorf("rest spans %v..%v", rest[0].Due, rest[49].Due)
	}
	for i := 1; i < len(first); i++ {
		if first[i].Due.Before(first[i-1].Due) {
			t.Fatalf("not in due order at %d", i)
		}
	}
}

func TestNextDue(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	check := func(sets []string, want time.Time, wantOK bool) {
		t.Helper()
		got, ok, err := s.NextDue(ctx, sets)
		if err != nil || ok != wantOK || (ok && !got.Equal(want)) {
			t.Fatalf("NextDue(%v) = %v %v %v, want %v %v", sets, got, ok, err, want, wantOK)
		}
	}
	check([]string{"a", "b"}, time.Time{}, false)
	check(nil, time.Time{}, false)
	if err := s.Write(ctx, processor.Writes{Schedule: []processor.TimerRef{tm("a", "x", at(5)), tm("a", "y", at(7)), tm("b", "z", at(3)), tm("c", "w", at(1))}}); err != nil {
		t.Fatal(err)
	}
	check([]string{"a"}, at(5), true)
	check([]string{"a", "b", "empty"}, at(3), true)
	// A leased timer counts at its lease expiry.
	if _, err := s.DueTimers(ctx, "b", at(3), 10, 10*time.Hour); err != nil {
		t.Fatal(err)
	}
	check([]string{"b"}, at(13), true)
	check([]string{"a", "b"}, at(5), true)
	if _, err := s.DueTimers(ctx, "a", at(5), 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	check([]string{"a"}, at(6), true) // x leased until 6, y due at 7
	if _, err := s.DueTimers(ctx, "a", at(5), 1, 3*time.Hour); err != nil {
		t.Fatal(err) // y is not due yet at 5: nothing leased
	}
	check([]string{"a"}, at(6), true)
	check([]string{"c", "a"}, at(1), true)
}
