// Package statetest is the conformance suite of processor.State: the
// behaviour every implementation (the Redis store of package state, the
// in-memory store of package state/memory) must show, run against each of
// them by their tests with Run.
//
// It covers what the engine relies on: apply outcomes by source position
// (applied, replay of every position not yet committed, stale), trimming at
// commit, timers' newest image (Head), first-set history, truncates, deletes,
// atomic parking, usage bands, timers and leases, emitted markers. Expiry
// (TTLs) depends on each implementation's clock and is tested by each.
package statetest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/schemas/cdc"
)

// Open returns a fresh, empty State for one test.
type Open func(t *testing.T) processor.State

// Run runs every conformance test against the implementation open returns.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, processor.State)
	}{
		{"ApplyOutcomes", testApplyOutcomes},
		{"ReplayOfAnyLengthUntilCommit", testReplayOfAnyLength},
		{"TrimKeepsNewerPositions", testTrimKeepsNewer},
		{"PositionsThatPrefixOthers", testPositionPrefixes},
		{"HeadIsTheNewestImage", testHead},
		{"PositionsOfDifferentKinds", testUnordered},
		{"SameInstantDifferentImage", testSameInstant},
		{"FirstSetHistory", testFirstSet},
		{"CreateStartsFirstSetAfresh", testCreateStartsAfresh},
		{"DeleteAndRecreate", testDelete},
		{"Truncate", testTruncate},
		{"RowsAreIndependent", testRowsIndependent},
		{"RowImagesRoundTrip", testRoundTrip},
		{"ParkingIsAtomicWithArrival", testParking},
		{"ManyParkedAreReleasedInChunks", testParkChunks},
		{"Bands", testBands},
		{"BandPositions", testBandPositions},
		{"BandsOfManyKeys", testBandsManyKeys},
		{"Timers", testTimers},
		{"TimerLeasesAndNextDue", testLeases},
		{"Emitted", testEmitted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

var ctx = context.Background()

const (
	companies = cdc.Companies
	endUsers  = cdc.EndUsers
)

// lsn is an LSN position.
func lsn(n int64) cdc.Position { return cdc.Position{Kind: cdc.LSN, N: n} }

// ms is a millisecond position with an image digest.
func ms(n int64, img string) cdc.Position {
	return cdc.Position{Kind: cdc.SourceMillis, N: n, Image: img}
}

func company(id, status string) cdc.Row {
	return cdc.Row{"id": id, "status": status, "quantity": int64(12), "optional_notifications": []string{"trial"}}
}

// upd is an update of companies/id at pos to status ("" deletes).
func upd(id string, pos cdc.Position, status string) processor.RowChange {
	ch := cdc.Change{Table: companies, ID: id, Op: cdc.OpUpdate, Position: pos}
	if status == "" {
		ch.Op = cdc.OpDelete
	} else {
		ch.After = company(id, status)
	}
	return processor.RowChange{Change: ch}
}

func truncate(table string, pos cdc.Position) processor.RowChange {
	return processor.RowChange{Change: cdc.Change{Table: table, Op: cdc.OpTruncate, Position: pos}}
}

func apply(t *testing.T, st processor.State, chs ...processor.RowChange) []processor.ApplyResult {
	t.Helper()
	res, err := st.ApplyChanges(ctx, chs)
	if err != nil {
		t.Fatalf("ApplyChanges: %v", err)
	}
	if len(res) != len(chs) {
		t.Fatalf("ApplyChanges: %d results for %d changes", len(res), len(chs))
	}
	return res
}

func commit(t *testing.T, st processor.State, c processor.Commit) {
	t.Helper()
	if err := st.Commit(ctx, c); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// Committed is the Commit of the newest position of each row in chs (as
// the engine commits a transaction); truncates commit no row.
func Committed(chs ...processor.RowChange) processor.Commit {
	var c processor.Commit
	seen := map[processor.RowRef]int{}
	for _, ch := range chs {
		if ch.Op == cdc.OpTruncate {
			continue
		}
		ref := processor.RowRef{Table: ch.Table, ID: ch.ID}
		rp := processor.RowPosition{RowRef: ref, Position: ch.Position}
		if i, ok := seen[ref]; ok {
			c.Rows[i] = rp
			continue
		}
		seen[ref] = len(c.Rows)
		c.Rows = append(c.Rows, rp)
	}
	return c
}

// status of an image, "-" for none.
func status(r cdc.Row) string {
	if r == nil {
		return "-"
	}
	return r.Str("status")
}

// describe renders a result as "outcome prev>next head=H [unordered]".
func describe(r processor.ApplyResult) string {
	s := fmt.Sprintf("%v %s>%s head=%s", r.Outcome, status(r.Prev), status(r.Next), status(r.Head))
	if r.Unordered {
		s += " unordered"
	}
	return s
}

func expect(t *testing.T, label string, got []processor.ApplyResult, want ...string) {
	t.Helper()
	var g []string
	for _, r := range got {
		g = append(g, describe(r))
	}
	if strings.Join(g, " | ") != strings.Join(want, " | ") {
		t.Errorf("%s:\n got %s\nwant %s", label, strings.Join(g, " | "), strings.Join(want, " | "))
	}
}

func rows(t *testing.T, st processor.State, refs ...processor.RowRef) []cdc.Row {
	t.Helper()
	out, err := st.Rows(ctx, refs)
	if err != nil {
		t.Fatalf("Rows: %v", err)
	}
	return out
}

func ref(table, id string) processor.RowRef { return processor.RowRef{Table: table, ID: id} }

func testApplyOutcomes(t *testing.T, st processor.State) {
	expect(t, "create", apply(t, st, upd("c1", lsn(10), "trial")), "applied ->trial head=trial")
	expect(t, "update", apply(t, st, upd("c1", lsn(20), "active")), "applied trial>active head=active")
	expect(t, "redelivered", apply(t, st, upd("c1", lsn(20), "active")), "replay trial>active head=active")
	expect(t, "older held position", apply(t, st, upd("c1", lsn(10), "trial")), "replay ->trial head=active")
	expect(t, "older unknown position", apply(t, st, upd("c1", lsn(15), "inactive")), "stale ->- head=active")
	commit(t, st, Committed(upd("c1", lsn(20), "active")))
	expect(t, "trimmed away", apply(t, st, upd("c1", lsn(10), "trial")), "stale ->- head=active")
	expect(t, "the committed head again", apply(t, st, upd("c1", lsn(20), "active")), "replay ->active head=active")
	expect(t, "next", apply(t, st, upd("c1", lsn(30), "trial_ended")), "applied active>trial_ended head=trial_ended")
	if got := status(rows(t, st, ref(companies, "c1"))[0]); got != "trial_ended" {
		t.Errorf("Rows = %s", got)
	}
}

// testReplayOfAnyLength: an aborted batch with many changes of one row
// replays every one of them with its own pair, however many there are.
func testReplayOfAnyLength(t *testing.T, st processor.State) {
	expect(t, "seed", apply(t, st, upd("c1", lsn(5), "s0")), "applied ->s0 head=s0")
	commit(t, st, Committed(upd("c1", lsn(5), "s0")))
	const n = 40
	var batch []processor.RowChange
	var want []string
	for i := 1; i <= n; i++ {
		batch = append(batch, upd("c1", lsn(int64(5+i)), fmt.Sprintf("s%d", i)))
		want = append(want, fmt.Sprintf("applied s%d>s%d head=s%d", i-1, i, i))
	}
	expect(t, "first attempt", apply(t, st, batch...), want...)
	// The Kafka transaction aborted: no Commit. The batch comes again, with
	// one more change polled behind it.
	var replay []string
	for i := 1; i <= n; i++ {
		replay = append(replay, fmt.Sprintf("replay s%d>s%d head=s%d", i-1, i, n))
	}
	again := append(slices.Clone(batch), upd("c1", lsn(int64(5+n+1)), "last"))
	replay = append(replay, fmt.Sprintf("applied s%d>last head=last", n))
	expect(t, "retry", apply(t, st, again...), replay...)
	commit(t, st, Committed(again...))
	expect(t, "after commit", apply(t, st, batch[0], batch[n-1]), "stale ->- head=last", "stale ->- head=last")
}

// testTrimKeepsNewer: a commit trims only what is older than its position;
// changes applied after it (by the partition's next owner, say) stay
// replayable.
func testTrimKeepsNewer(t *testing.T, st processor.State) {
	apply(t, st, upd("c1", lsn(1), "a"), upd("c1", lsn(2), "b"), upd("c1", lsn(3), "c"), upd("c1", lsn(4), "d"))
	commit(t, st, Committed(upd("c1", lsn(2), "b")))
	expect(t, "after a commit of 2", apply(t, st, upd("c1", lsn(1), "a"), upd("c1", lsn(2), "b"), upd("c1", lsn(3), "c"), upd("c1", lsn(4), "d")),
		"stale ->- head=d", "replay ->b head=d", "replay b>c head=d", "replay c>d head=d")
	commit(t, st, processor.Commit{Rows: []processor.RowPosition{{RowRef: ref(companies, "c1"), Position: lsn(99)}}})
	expect(t, "a commit of an unknown position trims nothing", apply(t, st, upd("c1", lsn(3), "c")), "replay b>c head=d")
}

// testPositionPrefixes: a held position that another's text begins or ends
// with (lsn:1, lsn:10, lsn:100, lsn:1000) is its own position, not a replay
// of the other: the Redis store finds a new change's position in the
// history's index by a string search.
func testPositionPrefixes(t *testing.T, st processor.State) {
	apply(t, st, upd("c1", lsn(1), "a"), upd("c1", lsn(100), "b"), upd("c1", lsn(1000), "c"))
	expect(t, "a position between held ones", apply(t, st, upd("c1", lsn(10), "x")), "stale ->- head=c")
	expect(t, "the middle one", apply(t, st, upd("c1", lsn(100), "b")), "replay a>b head=c")
	expect(t, "the oldest", apply(t, st, upd("c1", lsn(1), "a")), "replay ->a head=c")
	expect(t, "newer, the newest's text as a prefix", apply(t, st, upd("c1", lsn(10000), "d")), "applied c>d head=d")
	expect(t, "the former newest", apply(t, st, upd("c1", lsn(1000), "c")), "replay b>c head=d")
}

// testHead: timers follow the newest image whatever the outcome.
func testHead(t *testing.T, st processor.State) {
	apply(t, st, upd("c1", lsn(10), "x"), upd("c1", lsn(20), "y"))
	commit(t, st, Committed(upd("c1", lsn(20), "y")))
	expect(t, "old change redelivered", apply(t, st, upd("c1", lsn(10), "x")), "stale ->- head=y")
	apply(t, st, upd("c1", lsn(30), "z"))
	expect(t, "replay of a held one", apply(t, st, upd("c1", lsn(20), "y")), "replay ->y head=z")
}

// testUnordered: positions of different kinds are never compared; such a
// change is applied in arrival order and says so.
func testUnordered(t *testing.T, st processor.State) {
	apply(t, st, upd("c1", lsn(1<<40), "by-lsn"))
	res := apply(t, st, upd("c1", ms(1772360130123, "aa"), "by-ms"))
	expect(t, "ms after lsn", res, "applied by-lsn>by-ms head=by-ms unordered")
	expect(t, "its redelivery", apply(t, st, upd("c1", ms(1772360130123, "aa"), "by-ms")), "replay by-lsn>by-ms head=by-ms")
	expect(t, "lsn after ms", apply(t, st, upd("c1", lsn(5), "small-lsn")), "applied by-ms>small-lsn head=small-lsn unordered")
	expect(t, "the first lsn again", apply(t, st, upd("c1", lsn(1<<40), "by-lsn")), "replay ->by-lsn head=small-lsn")
}

// testSameInstant: without an LSN two changes in one millisecond are two
// changes; the same one again is a replay, also after a commit.
func testSameInstant(t *testing.T, st processor.State) {
	off := upd("c1", ms(1000, "off"), "disabled")
	on := upd("c1", ms(1000, "on"), "enabled")
	apply(t, st, upd("c1", ms(999, "x"), "enabled"))
	expect(t, "two in one ms", apply(t, st, off, on), "applied enabled>disabled head=disabled", "applied disabled>enabled head=enabled unordered")
	commit(t, st, Committed(off, on))
	expect(t, "both redelivered after the commit", apply(t, st, off, on), "replay ->disabled head=enabled", "replay disabled>enabled head=enabled")
	expect(t, "older ms", apply(t, st, upd("c1", ms(998, "y"), "x")), "stale ->- head=enabled")
}

// testFirstSet: the first-set columns a row ever had are kept across its
// history, so clearing and setting again is not a first time.
func testFirstSet(t *testing.T, st processor.State) {
	user := func(pos int64, set bool) processor.RowChange {
		r := cdc.Row{"id": "u1", "email": "u@x.example", "password_set_at": nil}
		var cols []string
		if set {
			r["password_set_at"] = "2026-01-05T10:00:00Z"
			cols = []string{"password_set_at"}
		}
		return processor.RowChange{Change: cdc.Change{Table: endUsers, ID: "u1", Op: cdc.OpUpdate, After: r, Position: lsn(pos)}, Set: cols}
	}
	prevSet := func(res []processor.ApplyResult) string {
		var out []string
		for _, r := range res {
			s := slices.Clone(r.PrevSet)
			sort.Strings(s)
			out = append(out, "["+strings.Join(s, ",")+"]")
		}
		return strings.Join(out, " ")
	}
	res := apply(t, st, user(1, false), user(2, true), user(3, false), user(4, true))
	if got := prevSet(res); got != "[] [] [password_set_at] [password_set_at]" {
		t.Errorf("PrevSet = %s", got)
	}
	res = apply(t, st, user(2, true), user(4, true)) // replays of the aborted batch
	if got := prevSet(res); got != "[] [password_set_at]" {
		t.Errorf("replayed PrevSet = %s", got)
	}
	commit(t, st, Committed(user(4, true)))
	if got := prevSet(apply(t, st, user(5, false), user(6, true))); got != "[password_set_at] [password_set_at]" {
		t.Errorf("after commit PrevSet = %s", got)
	}
}

// testCreateStartsAfresh: an INSERT of a row state holds (its delete or
// truncate not seen yet: a truncate's record comes from another partition)
// starts its first-set history afresh; replays and later changes follow it.
func testCreateStartsAfresh(t *testing.T, st processor.State) {
	user := func(pos int64, op cdc.Op, set bool) processor.RowChange {
		r := cdc.Row{"id": "u9", "email": "u9@x.example", "password_set_at": nil}
		var cols []string
		if set {
			r["password_set_at"] = "2026-01-05T10:00:00Z"
			cols = []string{"password_set_at"}
		}
		return processor.RowChange{Change: cdc.Change{Table: endUsers, ID: "u9", Op: op, After: r, Position: lsn(pos)}, Set: cols}
	}
	prevSet := func(res []processor.ApplyResult) string {
		var out []string
		for _, r := range res {
			out = append(out, "["+strings.Join(r.PrevSet, ",")+"]")
		}
		return strings.Join(out, " ")
	}
	first := []processor.RowChange{user(1, cdc.OpCreate, false), user(2, cdc.OpUpdate, true), user(3, cdc.OpUpdate, false)}
	if got := prevSet(apply(t, st, first...)); got != "[] [] [password_set_at]" {
		t.Errorf("first life: PrevSet = %s", got)
	}
	commit(t, st, Committed(first...))
	again := []processor.RowChange{user(10, cdc.OpCreate, false), user(11, cdc.OpUpdate, true), user(12, cdc.OpUpdate, false)}
	if got := prevSet(apply(t, st, again...)); got != "[] [] [password_set_at]" {
		t.Errorf("created again: PrevSet = %s, want the first life forgotten", got)
	}
	if got := prevSet(apply(t, st, again[:2]...)); got != "[] []" {
		t.Errorf("created again, replayed: PrevSet = %s", got)
	}
	commit(t, st, Committed(again...))
	if got := prevSet(apply(t, st, user(13, cdc.OpUpdate, true))); got != "[password_set_at]" {
		t.Errorf("after the second life's commit: PrevSet = %s", got)
	}
}

func testDelete(t *testing.T, st processor.State) {
	// Prev of a delete is not specified (the engine derives nothing from it).
	noPrev := func(res []processor.ApplyResult) []processor.ApplyResult {
		for i := range res {
			if res[i].Next == nil {
				res[i].Prev = nil
			}
		}
		return res
	}
	expect(t, "lifecycle", noPrev(apply(t, st, upd("c1", lsn(1), "a"), upd("c1", lsn(2), ""), upd("c1", lsn(3), "b"))),
		"applied ->a head=a", "applied ->- head=-", "applied ->b head=b")
	apply(t, st, upd("c1", lsn(4), ""))
	if r := rows(t, st, ref(companies, "c1"))[0]; r != nil {
		t.Errorf("deleted row read as %v", r)
	}
	expect(t, "delete redelivered", noPrev(apply(t, st, upd("c1", lsn(4), ""))), "replay ->- head=-")
	expect(t, "recreated", apply(t, st, upd("c1", lsn(5), "c")), "applied ->c head=c")
}

// testTruncate: a truncate forgets the table's older rows; a row inserted
// after it is new; a change older than it that comes after it still gets
// its transition; other tables are untouched.
func testTruncate(t *testing.T, st processor.State) {
	apply(t, st, upd("c1", lsn(10), "a"), upd("c2", lsn(11), "b"))
	user := processor.RowChange{Change: cdc.Change{Table: endUsers, ID: "u1", Op: cdc.OpCreate, After: cdc.Row{"id": "u1", "status": "active"}, Position: lsn(12)}}
	apply(t, st, user)
	expect(t, "truncate", apply(t, st, truncate(companies, lsn(20))), "applied ->- head=-")
	got := rows(t, st, ref(companies, "c1"), ref(companies, "c2"), ref(endUsers, "u1"))
	if got[0] != nil || got[1] != nil || status(got[2]) != "active" {
		t.Fatalf("after truncate Rows = %v", got)
	}
	expect(t, "truncate redelivered", apply(t, st, truncate(companies, lsn(20))), "replay ->- head=-")
	expect(t, "an older truncate", apply(t, st, truncate(companies, lsn(15))), "stale ->- head=-")
	// Changes from before the truncate whose records come after it (the
	// truncate's record is on another partition): each gets its transition,
	// against the image before it, and the row stays absent.
	expect(t, "changes from before the truncate, late", apply(t, st, upd("c1", lsn(10), "a"), upd("c2", lsn(12), "late")),
		"replay ->a head=-", "applied b>late head=-")
	expect(t, "a late change redelivered", apply(t, st, upd("c2", lsn(12), "late")), "replay b>late head=-")
	if got := rows(t, st, ref(companies, "c2")); got[0] != nil {
		t.Fatalf("after a late change Rows = %v", got)
	}
	expect(t, "a row inserted after it", apply(t, st, upd("c2", lsn(30), "new")), "applied ->new head=new")
	expect(t, "in one batch: truncate then insert", apply(t, st, upd("c3", lsn(31), "x"), truncate(companies, lsn(40)), upd("c3", lsn(41), "y")),
		"applied ->x head=x", "applied ->- head=-", "applied ->y head=y")
	expect(t, "in one batch: truncate then a late change", apply(t, st, truncate(companies, lsn(50)), upd("c3", lsn(45), "z"), upd("c4", lsn(46), "w")),
		"applied ->- head=-", "applied y>z head=-", "applied ->w head=-")
	if got := rows(t, st, ref(companies, "c1"), ref(companies, "c2"), ref(companies, "c3"), ref(companies, "c4")); got[0] != nil || got[1] != nil || got[2] != nil || got[3] != nil {
		t.Fatalf("after the second truncate Rows = %v", got)
	}
	expect(t, "the late changes redelivered", apply(t, st, upd("c3", lsn(45), "z"), upd("c4", lsn(46), "w")),
		"replay y>z head=-", "replay ->w head=-")
	expect(t, "a row inserted after the second truncate", apply(t, st, upd("c3", lsn(51), "v")), "applied ->v head=v")
}

func testRowsIndependent(t *testing.T, st processor.State) {
	res := apply(t, st, upd("c1", lsn(10), "a"), upd("c2", lsn(5), "b"), upd("c1", lsn(7), "stale"), upd("c2", lsn(6), "b2"))
	expect(t, "two rows", res, "applied ->a head=a", "applied ->b head=b", "stale ->- head=a", "applied b>b2 head=b2")
	got := rows(t, st, ref(companies, "c1"), ref(companies, "c2"), ref(companies, "nope"), ref(endUsers, "c1"))
	if status(got[0]) != "a" || status(got[1]) != "b2" || got[2] != nil || got[3] != nil {
		t.Errorf("Rows = %v", got)
	}
}

// testRoundTrip: every value type a row holds reads back to what the
// accessors return for the original.
func testRoundTrip(t *testing.T, st processor.State) {
	orig := cdc.Row{"id": "c1", "name": "Ünïcode \"quoted\" <b>&", "quantity": int64(1) << 62, "enabled": true,
		"off": false, "none": nil, "list": []string{"a@x.example", "b@x.example"}, "empty": []string{},
		"at": "2026-03-01T10:15:30.123456Z", "never": "infinity"}
	apply(t, st, processor.RowChange{Change: cdc.Change{Table: companies, ID: "c1", Op: cdc.OpCreate, After: orig, Position: lsn(1)}})
	got := rows(t, st, ref(companies, "c1"))[0]
	for col := range orig {
		if got.Str(col) != orig.Str(col) || got.Has(col) != orig.Has(col) || !reflect.DeepEqual(got.Strings(col), orig.Strings(col)) && len(orig.Strings(col)) > 0 {
			t.Errorf("column %s: got %#v, want %#v", col, got[col], orig[col])
		}
	}
	if n, ok := got.Int("quantity"); !ok || n != 1<<62 {
		t.Errorf("quantity = %d, %v", n, ok)
	}
	if at, ok := got.Time("never"); !ok || !at.Equal(cdc.Forever) {
		t.Errorf("infinity read back as %v", at)
	}
}

func parked(on processor.RowRef, key string) processor.Parked {
	return processor.Parked{On: on, Key: key, Data: []byte(`{"intent":"` + key + `"}`), Set: "t/0",
		Deadline: time.Date(2026, 1, 6, 10, 0, 0, 0, time.UTC)}
}

func write(t *testing.T, st processor.State, w processor.Writes) processor.WriteResult {
	t.Helper()
	res, err := st.Write(ctx, w)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return res
}

// testParking: a park succeeds only while its row is absent, so an intent
// can never wait for a row that already arrived.
func testParking(t *testing.T, st processor.State) {
	c1, c2 := ref(companies, "c1"), ref(companies, "c2")
	p1, p2 := parked(c1, "i1"), parked(c2, "i2")
	apply(t, st, upd("c2", lsn(5), "active"))
	res := write(t, st, processor.Writes{Park: []processor.Parked{p1, p2}})
	if len(res.Arrived) != 1 || res.Arrived[0].Key != "i2" {
		t.Fatalf("Arrived = %+v, want i2 (its row is present)", res.Arrived)
	}
	still, err := st.StillParked(ctx, []processor.Parked{p1, p2})
	if err != nil || !still[0] || still[1] {
		t.Fatalf("StillParked = %v, %v", still, err)
	}
	// Parking again keeps the first data and deadline.
	again := p1
	again.Data, again.Deadline = []byte("other"), p1.Deadline.Add(time.Hour)
	write(t, st, processor.Writes{Park: []processor.Parked{again}})
	// The expiry is a timer of the set at the deadline; a refused park's
	// expiry is written too (the engine unparks what arrived, and an expiry
	// that finds nothing parked is dropped: StillParked).
	due, err := st.DueTimers(ctx, []string{"t/0"}, p1.Deadline.Add(2*time.Hour), 10, time.Minute)
	if err != nil || members(due) != processor.ParkMember(p1)+"@10:00,"+processor.ParkMember(p2)+"@10:00" {
		t.Fatalf("park expiry timers = %s, %v", members(due), err)
	}
	got := apply(t, st, upd("c1", lsn(6), "trial"))[0]
	if len(got.Parked) != 1 || got.Parked[0].Key != "i1" || string(got.Parked[0].Data) != string(p1.Data) ||
		!got.Parked[0].Deadline.Equal(p1.Deadline) || got.Parked[0].Set != "t/0" || got.Parked[0].On != c1 {
		t.Fatalf("the arriving row returned %+v", got.Parked)
	}
	// Until unparked, a replay returns it again; a delete does not.
	if got := apply(t, st, upd("c1", lsn(6), "trial"))[0]; len(got.Parked) != 1 {
		t.Fatalf("replay returned %+v", got.Parked)
	}
	if got := apply(t, st, upd("c1", lsn(7), ""))[0]; len(got.Parked) != 0 {
		t.Fatalf("delete returned %+v", got.Parked)
	}
	commit(t, st, processor.Commit{Unpark: []processor.Parked{p1, p2}})
	if still, _ := st.StillParked(ctx, []processor.Parked{p1}); still[0] {
		t.Fatal("still parked after Unpark")
	}
	if due, _ := st.DueTimers(ctx, []string{"t/0"}, p1.Deadline.Add(3*time.Hour), 10, time.Minute); len(due) != 0 {
		t.Fatalf("park expiry survived Unpark: %+v", due)
	}
	// A deleted row is absent: parking on it works.
	if res := write(t, st, processor.Writes{Park: []processor.Parked{p1}}); len(res.Arrived) != 0 {
		t.Fatalf("park on a deleted row refused: %+v", res.Arrived)
	}
	// A truncated row is absent too.
	apply(t, st, truncate(companies, lsn(50)))
	if res := write(t, st, processor.Writes{Park: []processor.Parked{p2}}); len(res.Arrived) != 0 {
		t.Fatalf("park on a truncated row refused: %+v", res.Arrived)
	}
	// A change from before the truncate, coming after it, leaves the row
	// absent: it releases nothing, and the intent stays parked.
	if got := apply(t, st, upd("c2", lsn(20), "late"))[0]; got.Outcome != processor.Applied || len(got.Parked) != 0 || got.Head != nil {
		t.Fatalf("a late change of a truncated row: %s, parked %+v", describe(got), got.Parked)
	}
	if still, err := st.StillParked(ctx, []processor.Parked{p2}); err != nil || !still[0] {
		t.Fatalf("StillParked after a late change = %v, %v", still, err)
	}
}

// testParkChunks: a row thousands of intents wait for releases about
// ParkChunk (500) of them when it arrives; Parked drains the rest in chunks
// until none remain; every intent comes out.
func testParkChunks(t *testing.T, st processor.State) {
	c1 := ref(companies, "c1")
	const n = 1700
	var ps []processor.Parked
	for i := range n {
		ps = append(ps, parked(c1, fmt.Sprintf("i%04d", i)))
	}
	write(t, st, processor.Writes{Park: ps})
	res := apply(t, st, upd("c1", lsn(1), "active"))[0]
	if len(res.Parked) < 100 || len(res.Parked) > 1000 || !res.MoreParked {
		t.Fatalf("arrival released %d (more %v), want a chunk of about 500 and more", len(res.Parked), res.MoreParked)
	}
	seen := map[string]bool{}
	take := func(got []processor.Parked) {
		for _, p := range got {
			seen[p.Key] = true
		}
		commit(t, st, processor.Commit{Unpark: got})
	}
	take(res.Parked)
	for round := 0; ; round++ {
		got, more, err := st.Parked(ctx, c1, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 1000 {
			t.Fatalf("a drain returned %d", len(got))
		}
		take(got)
		if !more {
			break
		}
		if round > 20 {
			t.Fatal("the drain does not end")
		}
	}
	if len(seen) != n {
		t.Fatalf("%d of %d intents released", len(seen), n)
	}
	if got, more, _ := st.Parked(ctx, c1, 500); len(got) != 0 || more {
		t.Fatalf("after the drain: %d, more %v", len(got), more)
	}
}

func bands(t *testing.T, st processor.State, key string, samples ...processor.BandSample) string {
	t.Helper()
	for i := range samples {
		samples[i].Key = key
	}
	res, err := st.Bands(ctx, catalog.Bands{}, samples)
	if err != nil {
		t.Fatalf("Bands: %v", err)
	}
	var out []string
	for _, r := range res {
		switch {
		case r.Over:
			out = append(out, "over")
		case r.Usage:
			out = append(out, "usage")
		default:
			out = append(out, "-")
		}
	}
	return strings.Join(out, " ")
}

// testBands: the hysteresis of DESIGN.md, sample by sample.
func testBands(t *testing.T, st processor.State) {
	tests := []struct {
		name     string
		percents []int
		want     string
	}{
		{"rise through 80", []int{50, 79, 80, 85, 99}, "- - usage - -"},
		{"re-arm below 70", []int{80, 75, 81, 69, 80}, "usage - - - usage"},
		{"over above 100", []int{90, 101, 120, 95, 101}, "usage over - - -"},
		{"over re-arms at 90", []int{101, 91, 101, 90, 101}, "over - - - over"},
		{"both at once sends over only", []int{150, 65, 85}, "over - usage"},
		{"exactly 100 is usage", []int{100, 100}, "usage -"},
	}
	for i, tt := range tests {
		var samples []processor.BandSample
		for j, p := range tt.percents {
			samples = append(samples, processor.BandSample{Position: lsn(int64(j + 1)), Percent: p})
		}
		if got := bands(t, st, fmt.Sprintf("s%d", i), samples...); got != tt.want {
			t.Errorf("%s: %v gave %s, want %s", tt.name, tt.percents, got, tt.want)
		}
	}
}

func testBandPositions(t *testing.T, st processor.State) {
	s := func(p cdc.Position, pct int) processor.BandSample {
		return processor.BandSample{Position: p, Percent: pct}
	}
	if got := bands(t, st, "k", s(lsn(10), 85), s(lsn(10), 85), s(lsn(5), 85), s(lsn(20), 60), s(lsn(10), 85)); got != "usage usage - - usage" {
		t.Errorf("replays and late samples: %s", got)
	}
	// A sample that cannot be ordered is evaluated in arrival order.
	if got := bands(t, st, "k", s(ms(5, "a"), 85)); got != "usage" {
		t.Errorf("unordered sample: %s", got)
	}
	// A band remembers the results of its last 16 positions: of 17, a
	// replay of the first is late news, one of the second gets its result.
	var run []processor.BandSample
	for i := int64(1); i <= 17; i++ {
		pct := 50
		switch i {
		case 1:
			pct = 85 // usage
		case 2:
			pct = 101 // over
		}
		run = append(run, s(lsn(i), pct))
	}
	if got := bands(t, st, "w", run...); !strings.HasPrefix(got, "usage over - -") {
		t.Fatalf("17 samples: %s", got)
	}
	if got := bands(t, st, "w", s(lsn(1), 85), s(lsn(2), 101), s(lsn(17), 50)); got != "- over -" {
		t.Errorf("replays of the 17th, 16th and newest positions: %s, want - over -", got)
	}
}

// testBandsManyKeys: the samples of many keys in one call, interleaved
// (more keys than a store may put in one script call), each key's evaluated
// in its own order against its own band, and a replay of the whole call
// gets the same results.
func testBandsManyKeys(t *testing.T, st processor.State) {
	const keys = 601
	// Key k's samples: usage then over for even k; nothing then usage for odd k.
	pcts := func(k int) [2]int {
		if k%2 == 0 {
			return [2]int{85, 101}
		}
		return [2]int{50, 90}
	}
	var samples []processor.BandSample
	for round := range 2 {
		for k := range keys {
			// Rounds interleave the keys in different orders.
			kk := k
			if round == 1 {
				kk = keys - 1 - k
			}
			samples = append(samples, processor.BandSample{Key: fmt.Sprintf("many-%d", kk),
				Position: lsn(int64(10 + round)), Percent: pcts(kk)[round]})
		}
	}
	for call := range 2 {
		res, err := st.Bands(ctx, catalog.Bands{}, samples)
		if err != nil {
			t.Fatalf("Bands: %v", err)
		}
		for i, sm := range samples {
			var k int
			fmt.Sscanf(sm.Key, "many-%d", &k)
			round := i / keys
			want := processor.BandResult{}
			switch {
			case k%2 == 0 && round == 0:
				want.Usage = true
			case k%2 == 0:
				want.Over = true
			case round == 1:
				want.Usage = true
			}
			if res[i] != want {
				t.Fatalf("call %d: sample %d (%s, %d%%): %+v, want %+v", call, i, sm.Key, sm.Percent, res[i], want)
			}
		}
	}
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func members(refs []processor.TimerRef) string {
	var out []string
	for _, r := range refs {
		out = append(out, r.Member+"@"+r.Due.UTC().Format("15:04"))
	}
	return strings.Join(out, ",")
}

func testTimers(t *testing.T, st processor.State) {
	day := at("2026-01-05T00:00:00Z")
	h := func(n int) time.Time { return day.Add(time.Duration(n) * time.Hour) }
	tr := func(m string, due time.Time) processor.TimerRef {
		return processor.TimerRef{Set: "s/1", Member: m, Due: due}
	}
	write(t, st, processor.Writes{Schedule: []processor.TimerRef{tr("b", h(9)), tr("a", h(9)), tr("c", h(10)), tr("gone", h(8))}})
	write(t, st, processor.Writes{Cancel: []processor.TimerRef{tr("gone", time.Time{})}, Schedule: []processor.TimerRef{tr("c", h(11))}})
	due, err := st.DueTimers(ctx, []string{"s/1"}, h(10), 10, 5*time.Hour)
	if err != nil || members(due) != "a@09:00,b@09:00" {
		t.Fatalf("due at 10:00 = %s, %v", members(due), err)
	}
	if due, _ := st.DueTimers(ctx, []string{"s/1"}, h(10), 10, time.Hour); len(due) != 0 {
		t.Fatalf("leased timers returned again: %s", members(due))
	}
	if due, _ := st.DueTimers(ctx, []string{"s/1"}, h(12), 1, 10*time.Hour); members(due) != "c@11:00" {
		t.Fatalf("limit 1 at 12:00 = %s", members(due))
	}
	// a's and b's leases run out at 15:00: they come back; ack removes a for good.
	if due, _ := st.DueTimers(ctx, []string{"s/1"}, h(16), 10, time.Hour); members(due) != "a@09:00,b@09:00" {
		t.Fatalf("after the lease = %s", members(due))
	}
	commit(t, st, processor.Commit{Acked: []processor.TimerRef{tr("a", h(9))}})
	// b was moved while leased: the ack of its old due time keeps it.
	write(t, st, processor.Writes{Schedule: []processor.TimerRef{tr("b", h(20))}})
	commit(t, st, processor.Commit{Acked: []processor.TimerRef{tr("b", h(9)), tr("c", h(11))}})
	if due, _ := st.DueTimers(ctx, []string{"s/1"}, h(30), 10, time.Hour); members(due) != "b@20:00" {
		t.Fatalf("after acks = %s", members(due))
	}
	if due, _ := st.DueTimers(ctx, []string{"other/0"}, h(30), 10, time.Hour); len(due) != 0 {
		t.Fatalf("another set = %s", members(due))
	}
	// Several sets in one call: each set's timers in due order, set by set,
	// the limit per set, every ref naming its set.
	write(t, st, processor.Writes{Schedule: []processor.TimerRef{
		{Set: "m/0", Member: "x", Due: h(31)}, {Set: "m/0", Member: "y", Due: h(32)},
		{Set: "m/1", Member: "z", Due: h(31)}, {Set: "m/2", Member: "late", Due: h(50)}}})
	due, err = st.DueTimers(ctx, []string{"m/1", "m/0", "m/2", "m/3"}, h(40), 1, time.Hour)
	var got []string
	for _, r := range due {
		got = append(got, r.Set+":"+r.Member)
	}
	if err != nil || strings.Join(got, ",") != "m/1:z,m/0:x" {
		t.Fatalf("due of several sets = %v, %v", got, err)
	}
	// Cancelled and scheduled again, later: due at the new time only (the
	// in-memory store once returned it at the old one).
	again := func(m string, due time.Time) processor.TimerRef {
		return processor.TimerRef{Set: "r/0", Member: m, Due: due}
	}
	write(t, st, processor.Writes{Schedule: []processor.TimerRef{again("re", h(41))}})
	write(t, st, processor.Writes{Cancel: []processor.TimerRef{again("re", time.Time{})}})
	write(t, st, processor.Writes{Schedule: []processor.TimerRef{again("re", h(50))}})
	if due, _ := st.DueTimers(ctx, []string{"r/0"}, h(45), 10, time.Hour); len(due) != 0 {
		t.Fatalf("rescheduled timer due at its cancelled time: %s", members(due))
	}
	if next, ok, _ := st.NextDue(ctx, []string{"r/0"}); !ok || !next.Equal(h(50)) {
		t.Fatalf("NextDue of the rescheduled timer = %v %v, want %v", next, ok, h(50))
	}
	if due, _ := st.DueTimers(ctx, []string{"r/0"}, h(51), 10, time.Hour); members(due) != "re@02:00" {
		t.Fatalf("rescheduled timer at 51h = %s", members(due))
	}
	// Many cancels over two sets in one Writes (one of a member never
	// scheduled), one of the members scheduled again in the same Writes:
	// that one stays, at its new time; the others are gone.
	write(t, st, processor.Writes{Schedule: []processor.TimerRef{
		{Set: "c/0", Member: "k1", Due: h(60)}, {Set: "c/0", Member: "k2", Due: h(60)},
		{Set: "c/1", Member: "k3", Due: h(60)}, {Set: "c/1", Member: "k4", Due: h(61)}}})
	write(t, st, processor.Writes{
		Cancel: []processor.TimerRef{{Set: "c/0", Member: "k1"}, {Set: "c/1", Member: "k3"}, {Set: "c/0", Member: "never"},
			{Set: "c/1", Member: "k4"}, {Set: "c/0", Member: "k2"}},
		Schedule: []processor.TimerRef{{Set: "c/1", Member: "k4", Due: h(62)}}})
	due, err = st.DueTimers(ctx, []string{"c/0", "c/1"}, h(70), 10, time.Hour)
	got = got[:0]
	for _, r := range due {
		got = append(got, r.Set+":"+r.Member+"@"+r.Due.UTC().Format("15:04"))
	}
	if err != nil || strings.Join(got, ",") != "c/1:k4@14:00" {
		t.Fatalf("after cancelling four of them = %v, %v; want [c/1:k4@14:00]", got, err)
	}
	// One member scheduled twice in one Writes: the later of the two wins.
	write(t, st, processor.Writes{Schedule: []processor.TimerRef{{Set: "c/2", Member: "d", Due: h(65)}, {Set: "c/2", Member: "d", Due: h(64)}}})
	if due, _ := st.DueTimers(ctx, []string{"c/2"}, h(70), 10, time.Hour); members(due) != "d@16:00" {
		t.Fatalf("scheduled at 65h then 64h in one Writes: %s, want d@16:00", members(due))
	}
}

func testLeases(t *testing.T, st processor.State) {
	day := at("2026-01-05T00:00:00Z")
	h := func(n int) time.Time { return day.Add(time.Duration(n) * time.Hour) }
	if _, ok, err := st.NextDue(ctx, []string{"x/0"}); ok || err != nil {
		t.Fatalf("empty NextDue ok=%v err=%v", ok, err)
	}
	write(t, st, processor.Writes{Schedule: []processor.TimerRef{{Set: "x/0", Member: "m1", Due: h(9)}, {Set: "x/1", Member: "m2", Due: h(12)}}})
	next, ok, err := st.NextDue(ctx, []string{"x/0", "x/1"})
	if err != nil || !ok || !next.Equal(h(9)) {
		t.Fatalf("NextDue = %v %v %v", next, ok, err)
	}
	if due, _ := st.DueTimers(ctx, []string{"x/0"}, h(9), 10, 5*time.Hour); len(due) != 1 {
		t.Fatalf("due = %v", due)
	}
	// Leased until 14:00: it counts at 14:00, after m2.
	if next, _, _ := st.NextDue(ctx, []string{"x/0", "x/1"}); !next.Equal(h(12)) {
		t.Fatalf("NextDue with a lease = %v", next)
	}
	if next, _, _ := st.NextDue(ctx, []string{"x/0"}); !next.Equal(h(14)) {
		t.Fatalf("NextDue of the leased set = %v", next)
	}
	// Many leased timers before an unleased one: it is still found.
	var sched []processor.TimerRef
	for i := range 300 {
		sched = append(sched, processor.TimerRef{Set: "y/0", Member: fmt.Sprintf("l%03d", i), Due: h(1)})
	}
	write(t, st, processor.Writes{Schedule: sched})
	if due, _ := st.DueTimers(ctx, []string{"y/0"}, h(2), 1000, 10*time.Hour); len(due) != 300 {
		t.Fatalf("leased %d of 300", len(due))
	}
	write(t, st, processor.Writes{Schedule: []processor.TimerRef{{Set: "y/0", Member: "free", Due: h(3)}}})
	if due, _ := st.DueTimers(ctx, []string{"y/0"}, h(4), 5, time.Hour); members(due) != "free@03:00" {
		t.Fatalf("behind 300 leased: %s", members(due))
	}
}

func testEmitted(t *testing.T, st processor.State) {
	keys := []string{"k1", "k|2", "{k3}"}
	got, err := st.Emitted(ctx, keys)
	if err != nil || slices.Contains(got, true) {
		t.Fatalf("before commit: %v %v", got, err)
	}
	commit(t, st, processor.Commit{Emitted: keys[:2]})
	if got, _ := st.Emitted(ctx, keys); !reflect.DeepEqual(got, []bool{true, true, false}) {
		t.Fatalf("after commit: %v", got)
	}
	// A batch's worth of keys, a few emitted before, in its first and last
	// few hundred and none in between (a store may count keys in chunks).
	many := make([]string, 1200)
	want := make([]bool, len(many))
	var marked []string
	for i := range many {
		many[i] = fmt.Sprintf("batch|%d", i)
		if i == 3 || i == 499 || i == 1100 || i == 1199 {
			want[i] = true
			marked = append(marked, many[i])
		}
	}
	commit(t, st, processor.Commit{Emitted: marked})
	got, err = st.Emitted(ctx, many)
	if err != nil || !reflect.DeepEqual(got, want) {
		var at []int
		for i, g := range got {
			if g {
				at = append(at, i)
			}
		}
		t.Fatalf("1,200 keys, 4 emitted: emitted at %v (%v), want at [3 499 1100 1199]", at, err)
	}
}
