package memory

import (
	"container/heap"
	"slices"
)

// timerSet is one timer set: member → due time and lease, with a heap of
// (effective time, member) entries for NextDue and DueTimers. A member's
// effective time is the later of its due time and its lease expiry (it
// cannot be returned before). Heap entries go stale when a member moves or
// is removed; they are recognised by their version and skipped (lazy
// deletion). Versions come from one counter per set, so a member removed
// and scheduled again never matches an entry of its earlier life.
type timerSet struct {
	members map[string]*timer
	h       timerHeap
	seq     uint64 // the last version handed out
}

type timer struct {
	due, lease int64 // unix millis; lease 0 when not leased
	version    uint64
}

func (t *timer) effective() int64 { return max(t.due, t.lease) }

type heapEntry struct {
	at      int64
	member  string
	version uint64
}

type timerHeap []heapEntry

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].member < h[j].member
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(heapEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func newTimerSet() *timerSet { return &timerSet{members: map[string]*timer{}} }

// push records the member's current effective time in the heap.
func (ts *timerSet) push(member string, t *timer) {
	ts.seq++
	t.version = ts.seq
	heap.Push(&ts.h, heapEntry{at: t.effective(), member: member, version: t.version})
	if len(ts.h) > 64 && len(ts.h) > 4*len(ts.members) {
		ts.compact()
	}
}

// compact rebuilds the heap from the live members (bounds the stale entries).
func (ts *timerSet) compact() {
	ts.h = ts.h[:0]
	for m, t := range ts.members {
		ts.h = append(ts.h, heapEntry{at: t.effective(), member: m, version: t.version})
	}
	heap.Init(&ts.h)
}

// schedule adds member at due or moves it there (a lease it holds is kept).
func (ts *timerSet) schedule(member string, due int64) {
	t := ts.members[member]
	if t == nil {
		t = &timer{}
		ts.members[member] = t
	} else if t.due == due {
		return
	}
	t.due = due
	ts.push(member, t)
}

// scheduleNX adds member at due unless it is already scheduled.
func (ts *timerSet) scheduleNX(member string, due int64) {
	if _, ok := ts.members[member]; !ok {
		ts.schedule(member, due)
	}
}

// remove drops member and its lease.
func (ts *timerSet) remove(member string) { delete(ts.members, member) }

// ack removes member if it is still due at due (not moved meanwhile) and
// drops its lease either way.
func (ts *timerSet) ack(member string, due int64) {
	t := ts.members[member]
	if t == nil {
		return
	}
	if t.due == due {
		delete(ts.members, member)
		return
	}
	if t.lease != 0 {
		t.lease = 0
		ts.push(member, t)
	}
}

// valid pops stale heap entries off the top.
func (ts *timerSet) top() (heapEntry, bool) {
	for len(ts.h) > 0 {
		e := ts.h[0]
		if t, ok := ts.members[e.member]; ok && t.version == e.version {
			return e, true
		}
		heap.Pop(&ts.h)
	}
	return heapEntry{}, false
}

// next is the earliest effective time of any member.
func (ts *timerSet) next() (int64, bool) {
	e, ok := ts.top()
	return e.at, ok
}

type dueTimer struct {
	member string
	due    int64
}

// due leases and returns up to limit members due at or before now whose
// lease is absent or expired, in due order (ties by member), as the Redis
// store's due.lua does.
func (ts *timerSet) due(now int64, limit int, leaseUntil int64) []dueTimer {
	var cands []dueTimer
	for {
		e, ok := ts.top()
		if !ok || e.at > now {
			break
		}
		heap.Pop(&ts.h)
		cands = append(cands, dueTimer{member: e.member, due: ts.members[e.member].due})
	}
	slices.SortFunc(cands, func(a, b dueTimer) int {
		if a.due != b.due {
			if a.due < b.due {
				return -1
			}
			return 1
		}
		return cmpString(a.member, b.member)
	})
	if len(cands) > limit {
		for _, c := range cands[limit:] { // back into the heap, untouched
			t := ts.members[c.member]
			heap.Push(&ts.h, heapEntry{at: t.effective(), member: c.member, version: t.version})
		}
		cands = cands[:limit]
	}
	for _, c := range cands {
		t := ts.members[c.member]
		t.lease = leaseUntil
		ts.push(c.member, t)
	}
	return cands
}
