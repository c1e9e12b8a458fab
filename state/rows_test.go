package state

import (
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/schemas/cdc"
)

const tCompanies = "portal.public.companies"

func chg(table, id string, pos int64, after cdc.Row) cdc.Change {
	op := cdc.OpUpdate
	if after == nil {
		op = cdc.OpDelete
	}
	return cdc.Change{Table: table, ID: id, Op: op, After: after, Position: pos}
}

func company(id, status string) cdc.Row {
	return cdc.Row{"id": id, "status": status, "quantity": int64(12), "optional_notifications": []string{"trial"}}
}

func apply(t *testing.T, s *Store, chs ...cdc.Change) []processor.ApplyResult {
	t.Helper()
	res, err := s.ApplyChanges(context.Background(), chs)
	if err != nil {
		t.Fatalf("ApplyChanges: %v", err)
	}
	if len(res) != len(chs) {
		t.Fatalf("ApplyChanges: %d results for %d changes", len(res), len(chs))
	}
	return res
}

// status of an image, "<nil>" for none.
func status(r cdc.Row) string {
	if r == nil {
		return "<nil>"
	}
	return r.Str("status")
}

type want struct {
	out        processor.Outcome
	prev, next string // statuses, "<nil>" for nil
}

func check(t *testing.T, label string, got processor.ApplyResult, w want) {
	t.Helper()
	if got.Outcome != w.out || status(got.Prev) != w.prev || status(got.Next) != w.next {
		t.Errorf("%s: got %v prev=%s next=%s, want %v prev=%s next=%s",
			label, got.Outcome, status(got.Prev), status(got.Next), w.out, w.prev, w.next)
	}
}

func TestApplyChanges(t *testing.T) {
	const n = "<nil>"
	type step struct {
		batch []cdc.Change
		want  []want
	}
	c := func(pos int64, st string) cdc.Change {
		if st == "" {
			return chg(tCompanies, "c1", pos, nil)
		}
		return chg(tCompanies, "c1", pos, company("c1", st))
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"create then update", []step{
			{[]cdc.Change{c(10, "trial")}, []want{{processor.Applied, n, "trial"}}},
			{[]cdc.Change{c(20, "active")}, []want{{processor.Applied, "trial", "active"}}},
		}},
		{"replay of head returns stored pair", []step{
			{[]cdc.Change{c(10, "trial"), c(20, "active")}, []want{{processor.Applied, n, "trial"}, {processor.Applied, "trial", "active"}}},
			// the replayed record carries another image: the stored one wins
			{[]cdc.Change{c(20, "inactive")}, []want{{processor.Replay, "trial", "active"}}},
			{[]cdc.Change{c(10, "whatever")}, []want{{processor.Replay, n, "trial"}}},
		}},
		{"two changes to one row in one batch", []step{
			{[]cdc.Change{c(1, "trial"), c(2, "active"), c(2, "active"), c(1, "trial")},
				[]want{{processor.Applied, n, "trial"}, {processor.Applied, "trial", "active"}, {processor.Replay, "trial", "active"}, {processor.Replay, n, "trial"}}},
		}},
		{"stale", []step{
			{[]cdc.Change{c(100, "trial"), c(50, "active"), c(99, "active")}, []want{{processor.Applied, n, "trial"}, {processor.Stale, n, n}, {processor.Stale, n, n}}},
			{[]cdc.Change{c(101, "active")}, []want{{processor.Applied, "trial", "active"}}},
		}},
		{"older position still in history replays its own pair", []step{
			{[]cdc.Change{c(1, "a"), c(2, "b"), c(3, "c"), c(4, "d"), c(5, "e")}, []want{
				{processor.Applied, n, "a"}, {processor.Applied, "a", "b"}, {processor.Applied, "b", "c"},
				{processor.Applied, "c", "d"}, {processor.Applied, "d", "e"}}},
			// RowHistory 4: positions 5,4,3,2 replay with their previous image
			{[]cdc.Change{c(3, "x"), c(2, "x"), c(4, "x"), c(5, "x")}, []want{
				{processor.Replay, "b", "c"}, {processor.Replay, "a", "b"}, {processor.Replay, "c", "d"}, {processor.Replay, "d", "e"}}},
			// position 1 is only kept as 2's previous image: older than the history
			{[]cdc.Change{c(1, "x")}, []want{{processor.Stale, n, n}}},
			{[]cdc.Change{c(6, "f")}, []want{{processor.Applied, "e", "f"}}},
			{[]cdc.Change{c(2, "x"), c(3, "x")}, []want{{processor.Stale, n, n}, {processor.Replay, "b", "c"}}},
		}},
		{"position between stored ones is stale", []step{
			{[]cdc.Change{c(10, "a"), c(20, "b"), c(15, "x")}, []want{{processor.Applied, n, "a"}, {processor.Applied, "a", "b"}, {processor.Stale, n, n}}},
		}},
		{"delete", []step{
			// Prev is only decoded for updates: a delete derives no transition.
			{[]cdc.Change{c(1, "trial"), c(2, "")}, []want{{processor.Applied, n, "trial"}, {processor.Applied, n, n}}},
			{[]cdc.Change{c(2, "")}, []want{{processor.Replay, n, n}}},
			{[]cdc.Change{c(3, "active")}, []want{{processor.Applied, n, "active"}}},
		}},
		{"delete of unknown row", []step{
			{[]cdc.Change{c(7, "")}, []want{{processor.Applied, n, n}}},
			{[]cdc.Change{c(7, "")}, []want{{processor.Replay, n, n}}},
		}},
		{"LSNs beyond 2^53 compare exactly", []step{
			// 2^53 and 2^53+1 are the same float64
			{[]cdc.Change{c(9007199254740992, "a"), c(9007199254740993, "b")}, []want{{processor.Applied, n, "a"}, {processor.Applied, "a", "b"}}},
			{[]cdc.Change{c(9007199254740992, "x"), c(9007199254740991, "x")}, []want{{processor.Replay, n, "a"}, {processor.Stale, n, n}}},
			{[]cdc.Change{c(9223372036854775806, "c"), c(9223372036854775807, "d"), c(9223372036854775806, "x")},
				[]want{{processor.Applied, "b", "c"}, {processor.Applied, "c", "d"}, {processor.Replay, "b", "c"}}},
		}},
		{"numbers of different lengths", []step{
			{[]cdc.Change{c(999, "a"), c(1000, "b"), c(99, "x"), c(10000, "c")},
				[]want{{processor.Applied, n, "a"}, {processor.Applied, "a", "b"}, {processor.Stale, n, n}, {processor.Applied, "b", "c"}}},
		}},
		{"negative positions", []step{
			{[]cdc.Change{c(-10, "a"), c(-2, "b"), c(-11, "x"), c(0, "c"), c(3, "d")},
				[]want{{processor.Applied, n, "a"}, {processor.Applied, "a", "b"}, {processor.Stale, n, n}, {processor.Applied, "b", "c"}, {processor.Applied, "c", "d"}}},
		}},
	}
	for _, tc := range tests {
		for _, perRow := range []bool{false, true} { // chunked scripts, and Cluster's one per row
			t.Run(tc.name+map[bool]string{false: "/chunked", true: "/per-row"}[perRow], func(t *testing.T) {
				s, _ := newTestStore(t, Options{SingleRowScripts: perRow})
				for i, st := range tc.steps {
					res := apply(t, s, st.batch...)
					for j, w := range st.want {
						check(t, "step "+strconv.Itoa(i)+" change "+strconv.Itoa(j), res[j], w)
					}
				}
			})
		}
	}
}

func TestApplyKeepsOtherRowsApart(t *testing.T) {
	s, _ := newTestStore(t)
	res := apply(t, s,
		chg(tCompanies, "a", 5, company("a", "trial")),
		chg(tCompanies, "b", 1, company("b", "active")),
		chg("portal.public.partners", "a", 1, cdc.Row{"id": "a", "status": "p"}),
		// ids with the characters that the key layout escapes
		chg(tCompanies, "x}{:%y", 1, company("x}{:%y", "odd")),
		chg(tCompanies, "x", 1, company("x", "plain")),
	)
	for i, r := range res {
		if r.Outcome != processor.Applied || r.Prev != nil {
			t.Errorf("change %d: %v prev %v, want applied without prev", i, r.Outcome, r.Prev)
		}
	}
	rows, err := s.Rows(context.Background(), []processor.RowRef{
		{Table: tCompanies, ID: "x}{:%y"}, {Table: tCompanies, ID: "x"}, {Table: "portal.public.partners", ID: "a"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if status(rows[0]) != "odd" || status(rows[1]) != "plain" || status(rows[2]) != "p" {
		t.Errorf("rows: %v", rows)
	}
}

func TestRowImagesRoundTrip(t *testing.T) {
	s, _ := newTestStore(t)
	in := cdc.Row{
		"id": "c1", "name": "Acme", "quantity": int64(9007199254740993), "classic": true,
		"contact_email": nil, "optional_notifications": []string{"trial", "interop"},
		"trial_expires_at": "2026-01-02T03:04:05Z",
	}
	res := apply(t, s, chg(tCompanies, "c1", 1, in))
	rows, err := s.Rows(context.Background(), []processor.RowRef{{Table: tCompanies, ID: "c1"}, {Table: tCompanies, ID: "missing"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, got := range []cdc.Row{res[0].Next, rows[0]} {
		if n, ok := got.Int("quantity"); !ok || n != 9007199254740993 {
			t.Errorf("quantity = %v (%T), want exact 9007199254740993", got["quantity"], got["quantity"])
		}
		// res[0].Next is the change's own image; rows[0] was read back.
		if _, isNum := got["quantity"].(json.Number); i == 1 && !isNum {
			t.Errorf("quantity decoded as %T, want json.Number", got["quantity"])
		}
		if !got.Bool("classic") || got.Str("name") != "Acme" || got.Has("contact_email") ||
			!reflect.DeepEqual(got.Strings("optional_notifications"), []string{"trial", "interop"}) {
			t.Errorf("row = %#v", got)
		}
		if ts, ok := got.Time("trial_expires_at"); !ok || !ts.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
			t.Errorf("trial_expires_at = %v", got["trial_expires_at"])
		}
	}
	if rows[1] != nil {
		t.Errorf("missing row = %v, want nil", rows[1])
	}
}

func TestRowsAfterDelete(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	ref := []processor.RowRef{{Table: tCompanies, ID: "c1"}}
	apply(t, s, chg(tCompanies, "c1", 1, company("c1", "trial")))
	rows, err := s.Rows(ctx, ref)
	if err != nil || status(rows[0]) != "trial" {
		t.Fatalf("Rows = %v, %v", rows, err)
	}
	apply(t, s, chg(tCompanies, "c1", 2, nil))
	rows, err = s.Rows(ctx, ref)
	if err != nil || rows[0] != nil {
		t.Fatalf("Rows after delete = %v, %v; want [nil]", rows, err)
	}
	// A delete is stored whatever After says.
	d := chg(tCompanies, "c1", 3, company("c1", "ghost"))
	d.Op = cdc.OpDelete
	if res := apply(t, s, d); res[0].Outcome != processor.Applied || res[0].Next != nil {
		t.Fatalf("delete with an After image: %+v", res[0])
	}
	if rows, _ = s.Rows(ctx, ref); rows[0] != nil {
		t.Fatalf("Rows = %v, want [nil]", rows)
	}
	if rows, err = s.Rows(ctx, nil); err != nil || rows != nil {
		t.Fatalf("Rows(nil) = %v, %v", rows, err)
	}
}

func TestUsageRowsExpire(t *testing.T) {
	s, env := newTestStore(t, Options{UsageTTL: time.Hour})
	ctx := context.Background()
	apply(t, s,
		chg(UsageTable, "u1", 1, cdc.Row{"id": "u1", "concurrent_calls": int64(3)}),
		chg(tCompanies, "c1", 1, company("c1", "trial")))
	ttl, err := env.c.PTTL(ctx, s.rowKey(UsageTable, "u1")).Result()
	if err != nil || ttl <= 0 || ttl > time.Hour {
		t.Errorf("usage row TTL = %v, %v; want (0, 1h]", ttl, err)
	}
	ttl, err = env.c.PTTL(ctx, s.rowKey(tCompanies, "c1")).Result()
	if err != nil || ttl >= 0 {
		t.Errorf("company row TTL = %v, %v; want none", ttl, err)
	}
}

func TestKeyLayout(t *testing.T) {
	s, env := newTestStore(t)
	ctx := context.Background()
	p := s.Options().Prefix
	apply(t, s, chg(tCompanies, "c1", 42, company("c1", "trial")))
	entries, err := env.c.LRange(ctx, p+":{r:portal.public.companies:c1}", 0, -1).Result()
	if err != nil || len(entries) != 1 || entries[0][:3] != "42|" {
		t.Errorf("history = %q, %v", entries, err)
	}
	if err := s.Commit(ctx, processor.Commit{Emitted: []string{"k1"}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := env.c.Exists(ctx, p+":{k:k1}").Result(); n != 1 {
		t.Errorf("emitted marker %s:{k:k1} missing", p)
	}
	due := time.UnixMilli(1_700_000_000_000)
	if err := s.Write(ctx, processor.Writes{Schedule: []processor.TimerRef{{Set: "portal-3", Member: "m", Due: due}}}); err != nil {
		t.Fatal(err)
	}
	if sc, err := env.c.ZScore(ctx, p+":{t:portal-3}", "m").Result(); err != nil || sc != 1_700_000_000_000 {
		t.Errorf("timer score = %v, %v", sc, err)
	}
	if got := ParkMember(processor.Parked{On: processor.RowRef{Table: tCompanies, ID: "c<1>"}, Key: "i&1"}); got != `["p","portal.public.companies","c<1>","i&1"]` {
		t.Errorf("ParkMember = %s", got)
	}
}

func TestEmitted(t *testing.T) {
	s, env := newTestStore(t, Options{EmittedTTL: time.Hour})
	ctx := context.Background()
	if err := s.Commit(ctx, processor.Commit{Emitted: []string{"a", "b"}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Emitted(ctx, []string{"a", "x", "b"})
	if err != nil || !reflect.DeepEqual(got, []bool{true, false, true}) {
		t.Fatalf("Emitted = %v, %v", got, err)
	}
	ttl, _ := env.c.TTL(ctx, s.emittedKey("a")).Result()
	if ttl <= 0 || ttl > time.Hour {
		t.Errorf("marker TTL = %v, want (0, 1h]", ttl)
	}
	// Committing again is harmless.
	if err := s.Commit(ctx, processor.Commit{Emitted: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	if env.mr != nil {
		env.advance(2 * time.Hour)
		if got, _ := s.Emitted(ctx, []string{"a"}); got[0] {
			t.Errorf("marker outlived EmittedTTL")
		}
	}
}

func TestParked(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	deadline := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	on := processor.RowRef{Table: tCompanies, ID: "c1"}
	p1 := processor.Parked{On: on, Key: "intent-1", Data: []byte(`{"type":"order.new"}`), Set: "portal-0", Deadline: deadline}
	p2 := processor.Parked{On: on, Key: "intent-2", Data: []byte("bin|ary\x00|"), Set: "set|with|bars", Deadline: deadline.Add(time.Hour)}
	if err := s.Write(ctx, processor.Writes{Park: []processor.Parked{p1, p2}}); err != nil {
		t.Fatal(err)
	}
	// Re-parking keeps the first data and deadline.
	again := p1
	again.Data, again.Deadline = []byte("other"), deadline.Add(48*time.Hour)
	if err := s.Write(ctx, processor.Writes{Park: []processor.Parked{again}}); err != nil {
		t.Fatal(err)
	}

	byKey := func(ps []processor.Parked) map[string]processor.Parked {
		m := map[string]processor.Parked{}
		for _, p := range ps {
			m[p.Key] = p
		}
		return m
	}
	res := apply(t, s, chg(tCompanies, "c1", 1, company("c1", "trial")))
	got := byKey(res[0].Parked)
	if len(got) != 2 || !reflect.DeepEqual(got["intent-1"], p1) || !reflect.DeepEqual(got["intent-2"], p2) {
		t.Fatalf("parked on apply = %#v\nwant %#v and %#v", res[0].Parked, p1, p2)
	}
	// Replays return them too; stale changes and deletes do not.
	res = apply(t, s, chg(tCompanies, "c1", 1, nil), chg(tCompanies, "c1", 0, company("c1", "x")))
	if res[0].Outcome != processor.Replay || len(res[0].Parked) != 2 || res[1].Outcome != processor.Stale || res[1].Parked != nil {
		t.Fatalf("replay/stale = %+v", res)
	}
	// The expiry timers are in their sets.
	due, err := s.DueTimers(ctx, "portal-0", deadline, 10, time.Minute)
	if err != nil || len(due) != 1 || due[0].Member != ParkMember(p1) || !due[0].Due.Equal(deadline) {
		t.Fatalf("park timers = %+v, %v", due, err)
	}
	var decoded []string
	if err := json.Unmarshal([]byte(due[0].Member), &decoded); err != nil || decoded[0] != "p" || decoded[3] != "intent-1" {
		t.Fatalf("park member %s: %v", due[0].Member, err)
	}

	if err := s.Commit(ctx, processor.Commit{Unpark: []processor.Parked{p1}}); err != nil {
		t.Fatal(err)
	}
	res = apply(t, s, chg(tCompanies, "c1", 2, company("c1", "active")))
	if len(res[0].Parked) != 1 || res[0].Parked[0].Key != "intent-2" {
		t.Fatalf("parked after unpark = %+v", res[0].Parked)
	}
	if _, ok, _ := s.NextDue(ctx, []string{"portal-0"}); ok {
		t.Errorf("park timer left after Unpark")
	}
	apply(t, s, chg(tCompanies, "c1", 3, nil))
	if err := s.Commit(ctx, processor.Commit{Unpark: []processor.Parked{p2, p2}}); err != nil {
		t.Fatal(err)
	}
	res = apply(t, s, chg(tCompanies, "c1", 4, company("c1", "active")))
	if res[0].Parked != nil {
		t.Fatalf("parked after unpark = %+v", res[0].Parked)
	}
}
