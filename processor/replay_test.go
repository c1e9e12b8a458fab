package processor_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/schemas/cdc"
)

// The tests here pin the replay model of docs/design.md ("Replays"): what
// real Debezium and aborted Kafka transactions do to the engine.

func endUser(id, status string, extra cdc.Row) cdc.Row {
	r := cdc.Row{"id": id, "company_id": "c-acme", "email": id + "@acme.example", "display_name": "User " + id,
		"status": status, "classic": false, "password_set_at": nil, "recovery_requested_at": nil,
		"twofa_reset_at": nil, "trial_expires_at": nil, "activation_token": "tok-" + id}
	for k, v := range extra {
		r[k] = v
	}
	return r
}

// TestAbortedBatchOfManyChangesToOneRowReplaysExactly: however many changes
// of one row an aborted transaction held, the retry derives exactly the same
// emails (keys), and nothing is lost.
func TestAbortedBatchOfManyChangesToOneRowReplaysExactly(t *testing.T) {
	for _, n := range []int{5, 10, 50} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			h := newHarness(t)
			h.seed()
			batch := []cdc.Change{h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp1", "2027-06-30", nil))}
			for q := 1; q < n; q++ {
				batch = append(batch, h.change(cdc.LicensePlans, cdc.OpUpdate, plan("lp1", "2027-06-30", cdc.Row{"quantity": int64(10 + q)})))
			}
			// An end user invited and activated within the same poll.
			batch = append(batch,
				h.change(cdc.EndUsers, cdc.OpCreate, endUser("eu1", "invited", nil)),
				h.change(cdc.EndUsers, cdc.OpUpdate, endUser("eu1", "active", cdc.Row{"password_set_at": "2026-01-05T10:01:00Z"})))
			first := h.applyNoCommit(t0, batch...)
			wantTypes := map[string]int{"order.new": 4, "order.quantity_change": 4 * (n - 1), "service.user_activate": 1, "service.user_welcome": 1}
			if got := countTypes(first.Jobs); fmt.Sprint(got) != fmt.Sprint(wantTypes) {
				t.Fatalf("first attempt: %v, want %v", got, wantTypes)
			}
			// The transaction aborts; the batch is polled again, twice.
			for attempt := range 2 {
				again := h.applyNoCommit(t0, batch...)
				if a, b := join(keys(first.Jobs)), join(keys(again.Jobs)); a != b {
					t.Fatalf("attempt %d derived other keys:\n%s\n%s", attempt+2, a, b)
				}
				if again.Stats.Stale != 0 {
					t.Fatalf("attempt %d: %d changes taken as stale", attempt+2, again.Stats.Stale)
				}
			}
			h.commit(first)
			if out := h.apply(t0, batch...); len(out.Jobs) != 0 {
				t.Fatalf("after the commit, a redelivery mailed: %v", summary(out.Jobs))
			}
		})
	}
}

func countTypes(jobs []schemas.EmailJob) map[string]int {
	m := map[string]int{}
	for _, j := range jobs {
		m[j.Type]++
	}
	return m
}

// TestRedeliveredOlderChangeKeepsTheTimersOfTheNewest: change A sets a date to
// X, change B moves it to Y, then A alone arrives again. The timers stay on
// Y (they follow the newest image), for every timer-driven type.
func TestRedeliveredOlderChangeKeepsTheTimersOfTheNewest(t *testing.T) {
	tests := []struct {
		typ         string
		table       string
		row         func(date string) cdc.Row
		x, y        string
		yDue, xDue  string // a due time of Y's series, and of X's that Y does not share
		wantSubject string
	}{{
		typ: "renewal.expires_in", table: cdc.LicensePlans,
		row: func(d string) cdc.Row { return plan("lp1", d, nil) },
		x:   "2026-03-01", y: "2026-04-01", yDue: "2026-02-15T09:00:00Z", xDue: "2026-01-15T09:00:00Z",
		wantSubject: "Acme Corp license plan expires in 45 days",
	}, {
		typ: "trial.company_reminder", table: cdc.Companies,
		row: func(d string) cdc.Row {
			c := (&harness{}).acme()
			c["status"], c["trial_expires_at"] = "trial", d
			return c
		},
		x: "2026-02-10T12:00:00Z", y: "2026-03-10T12:00:00Z", yDue: "2026-02-15T09:00:00Z", xDue: "2026-01-18T09:00:00Z",
		wantSubject: "Trial reminder - Acme Corp",
	}, {
		typ: "trial.user_reminder", table: cdc.EndUsers,
		row: func(d string) cdc.Row { return endUser("eu1", "active", cdc.Row{"trial_expires_at": d}) },
		x:   "2026-02-10T12:00:00Z", y: "2026-03-10T12:00:00Z", yDue: "2026-02-15T09:00:00Z", xDue: "2026-01-18T09:00:00Z",
		wantSubject: "Trial reminder",
	}, {
		typ: "account.portal_expiry_warning", table: cdc.PortalUsers,
		row: func(d string) cdc.Row {
			return cdc.Row{"id": "pu1", "email": "pu1@direct.example", "full_name": "Pat", "partner_id": "p-direct",
				"status": "active", "last_login_at": d}
		},
		x: "2026-01-05T08:00:00Z", y: "2026-02-05T08:00:00Z", yDue: "2026-07-05T09:00:00Z", xDue: "2026-06-04T09:00:00Z",
		wantSubject: "Your Pexip Partner Portal account will expire in 30 days",
	}}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			h := newHarness(t)
			h.seed()
			op := cdc.OpCreate
			if tt.table == cdc.Companies {
				op = cdc.OpUpdate
			}
			a := h.change(tt.table, op, tt.row(tt.x))
			b := h.change(tt.table, cdc.OpUpdate, tt.row(tt.y))
			h.apply(t0, a)
			h.apply(t0, b)
			// A is redelivered (a connector restart): replay or stale, the
			// timers must not move back to X.
			again := a
			again.Cause.Offset += 1000
			h.apply(t0, again)
			if out := h.fire(day(tt.xDue)); len(out.Jobs) != 0 {
				t.Fatalf("a timer of the old date fired: %v", summary(out.Jobs))
			}
			out := h.fire(day(tt.yDue))
			var got []string
			for _, j := range out.Jobs {
				if j.Type == tt.typ {
					got = append(got, j.Subject)
				}
			}
			if len(got) == 0 || got[0] != tt.wantSubject {
				t.Fatalf("at %s: %v, want %q", tt.yDue, summary(out.Jobs), tt.wantSubject)
			}
		})
	}
}

// TestFirstSetFiresOncePerRow: a password set, cleared and set again sends
// one welcome.
func TestFirstSetFiresOncePerRow(t *testing.T) {
	h := newHarness(t)
	h.seed()
	h.apply(t0, h.change(cdc.EndUsers, cdc.OpCreate, endUser("eu1", "invited", nil)))
	set := func(v any) processor.Output {
		return h.apply(t0, h.change(cdc.EndUsers, cdc.OpUpdate, endUser("eu1", "active", cdc.Row{"password_set_at": v})))
	}
	if got := join(types(set("2026-01-05T10:01:00Z").Jobs)); got != "service.user_welcome" {
		t.Fatalf("first set: %q", got)
	}
	if out := set(nil); len(out.Jobs) != 0 {
		t.Fatalf("cleared: %v", summary(out.Jobs))
	}
	if out := set("2026-02-01T10:00:00Z"); len(out.Jobs) != 0 {
		t.Fatalf("set again: %v", summary(out.Jobs))
	}
}

// TestSameMillisecondWithoutLSN: without an LSN, an endpoint disabled and
// re-enabled within one millisecond mails both; redelivering both mails
// nothing more.
func TestSameMillisecondWithoutLSN(t *testing.T) {
	h := newHarness(t)
	h.seed()
	d := newDecoder()
	rec := func(enabled bool, offset int64) cdc.Change {
		v := fmt.Sprintf(`{"op": "%s", "after": {"id": "ep1", "company_id": "c-acme", "name": "Room", "enabled": %t},
			"source": {"ts_ms": 1767607200123}, "ts_ms": 1767607200200}`, map[bool]string{true: "u", false: "u"}[enabled], enabled)
		ch, err := d.Decode(context.Background(), "service.public.endpoints", 0, offset, nil, []byte(v))
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	create, err := d.Decode(context.Background(), "service.public.endpoints", 0, 1, nil,
		[]byte(`{"op": "c", "after": {"id": "ep1", "company_id": "c-acme", "name": "Room", "enabled": true}, "source": {"ts_ms": 1767607100000}, "ts_ms": 1767607100001}`))
	if err != nil {
		t.Fatal(err)
	}
	h.apply(t0, create)
	off, on := rec(false, 2), rec(true, 3)
	out := h.apply(t0, off, on)
	if got := join(types(out.Jobs)); got != "service.endpoint_disabled,service.endpoint_enabled" || len(out.Jobs) != 4 {
		t.Fatalf("disable and re-enable in one ms: %v", summary(out.Jobs))
	}
	if out.Stats.Unordered != 1 {
		t.Errorf("the re-enable (same instant, another image) was not counted as unordered: %+v", out.Stats)
	}
	if out := h.apply(t0, rec(false, 20), rec(true, 21)); len(out.Jobs) != 0 {
		t.Fatalf("redelivery mailed: %v", summary(out.Jobs))
	}
}

// TestPositionsOfDifferentKindsAreNotCompared: a row positioned by LSN takes
// a later change positioned by time (and back), in arrival order, counted.
func TestPositionsOfDifferentKindsAreNotCompared(t *testing.T) {
	h := newHarness(t)
	h.seed()
	ep := func(enabled bool, pos cdc.Position) cdc.Change {
		ch := h.change(cdc.Endpoints, cdc.OpUpdate, cdc.Row{"id": "ep1", "company_id": "c-acme", "name": "Room", "enabled": enabled})
		ch.Position = pos
		return ch
	}
	created := ep(true, cdc.Position{Kind: cdc.LSN, N: 1 << 40})
	created.Op = cdc.OpCreate
	h.apply(t0, created)
	out := h.apply(t0, ep(false, cdc.Position{Kind: cdc.SourceMillis, N: 1767607200000, Image: "a"}))
	if got := join(types(out.Jobs)); got != "service.endpoint_disabled" || out.Stats.Unordered != 1 {
		t.Fatalf("a time-positioned change after an LSN one: %v %+v", summary(out.Jobs), out.Stats)
	}
	out = h.apply(t0, ep(true, cdc.Position{Kind: cdc.LSN, N: 5}))
	if got := join(types(out.Jobs)); got != "service.endpoint_enabled" || out.Stats.Unordered != 1 {
		t.Fatalf("a small LSN after a time: %v %+v", summary(out.Jobs), out.Stats)
	}
}

// TestStaleChangesAreCounted: a change older than what state holds is
// skipped, and says so.
func TestStaleChangesAreCounted(t *testing.T) {
	h := newHarness(t)
	h.seed()
	old := h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp1", "2027-06-30", nil))
	newer := h.change(cdc.LicensePlans, cdc.OpUpdate, plan("lp1", "2027-06-30", cdc.Row{"quantity": int64(30)}))
	h.apply(t0, old, newer)
	stale := old
	stale.Position.N++ // between what was committed and trimmed away
	if out := h.apply(t0, stale); len(out.Jobs) != 0 || out.Stats.Stale != 1 {
		t.Fatalf("stale change: %v %+v", summary(out.Jobs), out.Stats)
	}
}

// TestTruncateForgetsTheTable: a truncate drops the table's rows (their
// timers fire nothing), mails nothing, and a row inserted after it is new.
func TestTruncateForgetsTheTable(t *testing.T) {
	h := newHarness(t)
	h.seed()
	created := h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp1", "2026-03-01", nil))
	h.apply(t0, created)
	h.pos += 10
	trunc := cdc.Change{Table: cdc.LicensePlans, Op: cdc.OpTruncate, Position: cdc.Position{Kind: cdc.LSN, N: h.pos},
		Cause: cdc.Cause{Topic: cdc.LicensePlans, Partition: 1, Offset: 99}}
	out := h.apply(t0, trunc)
	if len(out.Jobs) != 0 || len(out.DLQ) != 0 || out.Stats.Truncates != 1 {
		t.Fatalf("truncate: jobs %v dlq %v stats %+v", summary(out.Jobs), out.DLQ, out.Stats)
	}
	if out := h.fire(day("2026-01-15T09:00:00Z")); len(out.Jobs) != 0 || out.Stats.TimersDropped == 0 {
		t.Fatalf("a truncated row's timer: %v %+v", summary(out.Jobs), out.Stats)
	}
	// The old create redelivered: older than the truncate, nothing.
	if out := h.apply(t0, created); len(out.Jobs) != 0 {
		t.Fatalf("pre-truncate change redelivered: %v", summary(out.Jobs))
	}
	out = h.apply(t0, h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp1", "2026-09-01", nil)))
	if got := join(types(out.Jobs)); got != "order.new" || len(out.Jobs) != 4 {
		t.Fatalf("the row inserted after the truncate: %v", summary(out.Jobs))
	}
}

// TestChangesFromBeforeATruncateStillMail: Debezium sends a TRUNCATE without
// a key, so its record can come before older changes of the table's rows on
// other partitions (here: in the batch before theirs). Those changes
// happened: each mails its transition, against the image before it; the row
// stays absent (its timers fire nothing); a redelivery mails nothing again.
func TestChangesFromBeforeATruncateStillMail(t *testing.T) {
	h := newHarness(t)
	h.seed()
	ep := h.change(cdc.Endpoints, cdc.OpCreate, cdc.Row{"id": "ep1", "company_id": "c-acme", "name": "Room", "enabled": false})
	created := h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp1", "2026-03-01", nil))
	h.apply(t0, ep, created)
	enabled := h.change(cdc.Endpoints, cdc.OpUpdate, cdc.Row{"id": "ep1", "company_id": "c-acme", "name": "Room", "enabled": true})
	more := h.change(cdc.LicensePlans, cdc.OpUpdate, plan("lp1", "2026-03-01", cdc.Row{"quantity": int64(30)}))
	h.pos += 10
	truncs := []cdc.Change{
		{Table: cdc.Endpoints, Op: cdc.OpTruncate, Position: cdc.Position{Kind: cdc.LSN, N: h.pos}, Cause: cdc.Cause{Topic: cdc.Endpoints, Partition: 2, Offset: 7}},
		{Table: cdc.LicensePlans, Op: cdc.OpTruncate, Position: cdc.Position{Kind: cdc.LSN, N: h.pos}, Cause: cdc.Cause{Topic: cdc.LicensePlans, Partition: 2, Offset: 9}},
	}
	h.apply(t0, truncs...)
	batch := []cdc.Change{enabled, more}
	first := h.applyNoCommit(t0, batch...)
	if got := types(first.Jobs); len(first.Jobs) != 6 || !slices.Contains(got, "service.endpoint_enabled") ||
		!slices.Contains(got, "order.quantity_change") || first.Stats.Stale != 0 {
		t.Fatalf("changes from before the truncate, in the batch after it: %v %+v", summary(first.Jobs), first.Stats)
	}
	// The batch again (its transaction aborted): the same jobs, same keys.
	again := h.apply(t0, batch...)
	if a, b := join(keys(first.Jobs)), join(keys(again.Jobs)); a != b {
		t.Fatalf("replayed batch keys differ:\n%s\n%s", a, b)
	}
	if out := h.apply(t0, batch...); len(out.Jobs) != 0 {
		t.Fatalf("a committed batch redelivered mailed: %v", summary(out.Jobs))
	}
	if out := h.fire(day("2026-01-15T09:00:00Z")); len(out.Jobs) != 0 {
		t.Fatalf("a truncated row's timer, after a late change: %v", summary(out.Jobs))
	}
	if out := h.apply(t0, h.change(cdc.Endpoints, cdc.OpCreate, cdc.Row{"id": "ep1", "company_id": "c-acme", "name": "Room", "enabled": true})); join(types(out.Jobs)) != "service.endpoint_enabled" {
		t.Fatalf("the endpoint created again after the truncate: %v", summary(out.Jobs))
	}
}

// TestATruncateComesFirstInItsBatch: in one batch, a row created again
// after a TRUNCATE can come before the truncate's record (another
// partition). The INSERT makes the row new whatever state has seen: a
// password set after the truncate is set for the first time again (a
// welcome), and a change from before the truncate still mails.
func TestATruncateComesFirstInItsBatch(t *testing.T) {
	h := newHarness(t)
	h.seed()
	user := func(op cdc.Op, status string, extra cdc.Row) cdc.Change {
		return h.change(cdc.EndUsers, op, endUser("eu1", status, extra))
	}
	h.apply(t0, user(cdc.OpCreate, "active", cdc.Row{"password_set_at": "2026-01-01T08:00:00Z"}),
		h.change(cdc.EndUsers, cdc.OpCreate, endUser("eu2", "active", nil)))
	before := h.change(cdc.EndUsers, cdc.OpUpdate, endUser("eu2", "active", cdc.Row{"twofa_reset_at": "2026-01-05T10:00:00Z"}))
	h.pos += 10
	trunc := cdc.Change{Table: cdc.EndUsers, Op: cdc.OpTruncate, Position: cdc.Position{Kind: cdc.LSN, N: h.pos},
		Cause: cdc.Cause{Topic: cdc.EndUsers, Partition: 2, Offset: 40}}
	again := user(cdc.OpCreate, "invited", nil)
	welcome := user(cdc.OpUpdate, "active", cdc.Row{"password_set_at": "2026-01-05T10:05:00Z"})
	// Partition order in the batch: eu1's partition, then the truncate's,
	// then eu2's.
	out := h.apply(t0, again, welcome, trunc, before)
	got := types(out.Jobs)
	sort.Strings(got)
	if want := "service.user_activate,service.user_twofa_reset,service.user_welcome"; join(got) != want || out.Stats.Truncates != 1 {
		t.Fatalf("got %s, want %s: %v %+v", join(got), want, summary(out.Jobs), out.Stats)
	}
}

// TestATruncateInALaterBatchStillWelcomes: the converse order across
// batches. A user who had set a password is truncated away, created again
// and sets a password again; the truncate's record (on a partition of its
// own) comes a batch after the new rows'. The INSERT starts the row's
// first-set history afresh, so the second password still welcomes.
func TestATruncateInALaterBatchStillWelcomes(t *testing.T) {
	h := newHarness(t)
	h.seed()
	user := func(op cdc.Op, status string, extra cdc.Row) cdc.Change {
		return h.change(cdc.EndUsers, op, endUser("eu1", status, extra))
	}
	h.apply(t0, user(cdc.OpCreate, "invited", nil))
	if got := join(types(h.apply(t0, user(cdc.OpUpdate, "active", cdc.Row{"password_set_at": "2026-01-01T08:00:00Z"})).Jobs)); got != "service.user_welcome" {
		t.Fatalf("first password: %s", got)
	}
	h.pos += 10
	trunc := cdc.Change{Table: cdc.EndUsers, Op: cdc.OpTruncate, Position: cdc.Position{Kind: cdc.LSN, N: h.pos},
		Cause: cdc.Cause{Topic: cdc.EndUsers, Partition: 2, Offset: 40}}
	out := h.apply(t0, user(cdc.OpCreate, "invited", nil), user(cdc.OpUpdate, "active", cdc.Row{"password_set_at": "2026-01-05T10:05:00Z"}))
	got := types(out.Jobs)
	sort.Strings(got)
	if want := "service.user_activate,service.user_welcome"; join(got) != want {
		t.Fatalf("created again before the truncate's record: got %s, want %s: %v", join(got), want, summary(out.Jobs))
	}
	if out := h.apply(t0, trunc); len(out.Jobs) != 0 || out.Stats.Truncates != 1 {
		t.Fatalf("the truncate, a batch later: %v %+v", summary(out.Jobs), out.Stats)
	}
}

// TestUnavailableValuesComeFromTheStoredImage: an update that leaves a
// TOASTed column unchanged keeps its value (the partner keeps its OTJ list).
func TestUnavailableValuesComeFromTheStoredImage(t *testing.T) {
	h := newHarness(t)
	h.seed()
	list := make([]string, 40) // under --max-recipients
	for i := range list {
		list[i] = fmt.Sprintf("otj%03d@direct.example", i)
	}
	partner := cdc.Row{"id": "p-direct", "name": "Direct Partner AS", "type": "direct", "contact_email": "partner@direct.example",
		"otj_distribution_list": list, "brand_name": "Direct Video"}
	h.apply(t0, h.change(cdc.Partners, cdc.OpUpdate, partner))
	renamed := cdc.Row{"id": "p-direct", "name": "Direct Partner ASA", "type": "direct", "contact_email": "partner@direct.example",
		"otj_distribution_list": cdc.Unavailable, "brand_name": cdc.Unavailable}
	out := h.apply(t0, h.change(cdc.Partners, cdc.OpUpdate, renamed))
	if out.Stats.Unresolved != 0 {
		t.Fatalf("unresolved: %+v", out.Stats)
	}
	rows, err := h.store.Rows(context.Background(), []processor.RowRef{{Table: cdc.Partners, ID: "p-direct"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := rows[0]; got.Str("name") != "Direct Partner ASA" || len(got.Strings("otj_distribution_list")) != 40 || got.Str("brand_name") != "Direct Video" {
		t.Fatalf("stored partner: name %q, %d list entries, brand %q", got.Str("name"), len(got.Strings("otj_distribution_list")), got.Str("brand_name"))
	}
	out = h.apply(t0, h.change(cdc.OTJLicenses, cdc.OpCreate, cdc.Row{"id": "otj1", "company_id": "c-acme", "plan_id": "lp1", "created_at": "2026-01-05T10:00:00Z"}))
	if len(out.Jobs) != 40 {
		t.Fatalf("otj.license_added went to %d recipients, want 40", len(out.Jobs))
	}
	// A value no image holds is left out, and counted.
	out = h.apply(t0, h.change(cdc.Partners, cdc.OpUpdate, cdc.Row{"id": "p-new", "name": "New", "reply_to": cdc.Unavailable}))
	if out.Stats.Unresolved != 1 {
		t.Fatalf("unresolved = %d, want 1", out.Stats.Unresolved)
	}
}

// TestTheMergedImageIsStored: the image a decoder encoded beside the change
// (cdc.Change.Image) is of the image before its unchanged TOASTed values are
// merged in: the store keeps the merged image, not that one.
func TestTheMergedImageIsStored(t *testing.T) {
	h := newHarness(t)
	h.seed()
	partner := cdc.Row{"id": "p-direct", "name": "Direct Partner AS", "type": "direct", "contact_email": "partner@direct.example", "brand_name": "Direct Video"}
	h.apply(t0, h.change(cdc.Partners, cdc.OpUpdate, partner))
	ch := h.change(cdc.Partners, cdc.OpUpdate, cdc.Row{"id": "p-direct", "name": "Direct Partner ASA", "type": "direct",
		"contact_email": "partner@direct.example", "brand_name": cdc.Unavailable})
	unmerged := cdc.Row{"id": "p-direct", "name": "Direct Partner ASA", "type": "direct", "contact_email": "partner@direct.example"}
	var err error
	if ch.Image, err = unmerged.AppendJSON(nil); err != nil {
		t.Fatal(err)
	}
	h.apply(t0, ch)
	rows, err := h.store.Rows(context.Background(), []processor.RowRef{{Table: cdc.Partners, ID: "p-direct"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := rows[0]; got.Str("name") != "Direct Partner ASA" || got.Str("brand_name") != "Direct Video" {
		t.Fatalf("stored partner: name %q, brand %q; want the merged image", got.Str("name"), got.Str("brand_name"))
	}
}

// TestInfiniteDatesKeepTheRow: 'infinity' schedules no timer but the row is
// kept and its other transitions work; '-infinity' is long past.
func TestInfiniteDatesKeepTheRow(t *testing.T) {
	h := newHarness(t)
	h.seed()
	company := h.acme()
	company["id"], company["status"], company["trial_expires_at"] = "c-inf", "trial", "infinity"
	out := h.apply(t0, h.change(cdc.Companies, cdc.OpCreate, company))
	if got := join(types(out.Jobs)); got != "trial.company_created" || len(out.DLQ) != 0 {
		t.Fatalf("create with an infinite trial: %v %v", summary(out.Jobs), out.DLQ)
	}
	if _, ok, _ := h.eng.NextDue(context.Background(), []string{processor.TimerSet(cdc.Companies, 0)}); ok {
		t.Fatal("'infinity' scheduled a timer")
	}
	ended := h.acme()
	for k, v := range company {
		ended[k] = v
	}
	ended["status"], ended["trial_expires_at"] = "trial_ended", "-infinity"
	if got := join(types(h.apply(t0, h.change(cdc.Companies, cdc.OpUpdate, ended)).Jobs)); got != "trial.company_ended" {
		t.Fatalf("trial ended: %q", got)
	}
	// A trial moved from a date to 'infinity' is extended, with no end date.
	u := endUser("eu1", "active", cdc.Row{"trial_expires_at": "2026-02-01T00:00:00Z"})
	h.apply(t0, h.change(cdc.EndUsers, cdc.OpCreate, u))
	out = h.apply(t0, h.change(cdc.EndUsers, cdc.OpUpdate, endUser("eu1", "active", cdc.Row{"trial_expires_at": "infinity"})))
	if got := join(types(out.Jobs)); got != "trial.user_extended" || !strings.Contains(rendered(t, out.Jobs[0]).Text, "no end date") {
		t.Fatalf("extended to infinity: %v %q", summary(out.Jobs), rendered(t, out.Jobs[0]).Text)
	}
}

// TestSideRecordsAreIgnoredAndCounted: heartbeats, transaction metadata and
// logical decoding messages are neither changes nor dead letters.
func TestSideRecordsAreIgnoredAndCounted(t *testing.T) {
	h := newHarness(t)
	out := h.apply(t0, cdc.Change{Op: cdc.OpIgnore, Ignored: cdc.IgnoredHeartbeat}, cdc.Change{Op: cdc.OpIgnore, Ignored: cdc.IgnoredTransaction})
	if out.Stats.Ignored != 2 || len(out.DLQ) != 0 || len(out.Jobs) != 0 {
		t.Fatalf("%+v", out)
	}
}

// hookState runs before() once, just before the first Write that parks.
type hookState struct {
	processor.State
	before func()
}

func (s *hookState) Write(ctx context.Context, w processor.Writes) (processor.WriteResult, error) {
	if len(w.Park) > 0 && s.before != nil {
		f := s.before
		s.before = nil
		f()
	}
	return s.State.Write(ctx, w)
}

// TestParkOrResolveIsAtomicAcrossInstances: instance X reads a plan's company,
// finds it missing and parks the order; instance Y applies the company
// between X's read and X's park. The order must go out once, now, not wait
// for a dead letter 24 h later.
func TestParkOrResolveIsAtomicAcrossInstances(t *testing.T) {
	h := newHarness(t)
	h.seed()
	hooked := &hookState{State: h.store}
	x := h.instance(hooked)
	company := h.acme()
	company["id"], company["name"] = "c-late", "Late Inc"
	companyChange := h.change(cdc.Companies, cdc.OpCreate, company)
	var fromY processor.Output
	hooked.before = func() {
		// Y is h.eng, over the same store, on another partition.
		fromY = h.apply(t0, companyChange)
	}
	out, err := x.Apply(context.Background(), t0, []cdc.Change{h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp9", "2027-06-30", cdc.Row{"company_id": "c-late"}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Commit(context.Background(), out.Commit); err != nil {
		t.Fatal(err)
	}
	all := append(out.Jobs, fromY.Jobs...)
	var orders []string
	for _, j := range all {
		if j.Type == "order.new" {
			orders = append(orders, j.To.Address)
		}
	}
	sort.Strings(orders)
	if got := strings.Join(orders, ","); got != "am@direct.example,buyer@direct.example,orders@direct.example,pam@pexip.example" {
		t.Fatalf("order.new went to %q (X: %v, Y: %v)", got, summary(out.Jobs), summary(fromY.Jobs))
	}
	if out.Stats.Parked != 0 {
		t.Fatalf("X parked %d intents although the row had arrived", out.Stats.Parked)
	}
	// Nothing waits: no dead letter when the deadline passes.
	if out := h.fire(t0.Add(25 * time.Hour)); len(out.DLQ) != 0 {
		t.Fatalf("dead letter after the wait: %v", out.DLQ)
	}
}

// TestManyParkedIntentsAreReleasedInChunks: a row that 1,100 changes waited
// for releases them in chunks (about 500 per batch: the first with its
// arrival, the rest by Fire), not all in one batch; every email goes out
// once, and nothing is left waiting for a dead letter.
func TestManyParkedIntentsAreReleasedInChunks(t *testing.T) {
	h := newHarness(t)
	h.seed()
	const n = 1100
	var plans []cdc.Change
	for i := range n {
		plans = append(plans, h.change(cdc.LicensePlans, cdc.OpCreate, plan(fmt.Sprintf("lp%04d", i), "2027-06-30", cdc.Row{"company_id": "c-late"})))
	}
	if out := h.apply(t0, plans...); len(out.Jobs) != 0 || out.Stats.Parked != n {
		t.Fatalf("parked %d of %d, jobs %d", out.Stats.Parked, n, len(out.Jobs))
	}
	company := h.acme()
	company["id"], company["name"] = "c-late", "Late Inc"
	out := h.apply(t0.Add(time.Minute), h.change(cdc.Companies, cdc.OpCreate, company))
	keysSeen := map[string]bool{}
	count := func(out processor.Output) int {
		for _, j := range out.Jobs {
			if keysSeen[j.Key] {
				t.Fatalf("key emitted twice: %s", j.Key)
			}
			keysSeen[j.Key] = true
		}
		return len(out.Jobs) / 4
	}
	first := count(out)
	if first == 0 || first > 1000 {
		t.Fatalf("the arrival released %d intents at once", first)
	}
	batches := 1
	for released := first; released < n; batches++ {
		out := h.fire(t0.Add(time.Minute + time.Duration(batches)*time.Second)) // the clock moves on
		got := count(out)
		if got == 0 || got > 1000 {
			t.Fatalf("drain %d released %d", batches, got)
		}
		released += got
		if batches > 10 {
			t.Fatal("the drain does not end")
		}
	}
	if len(keysSeen) != 4*n {
		t.Fatalf("%d emails, want %d", len(keysSeen), 4*n)
	}
	if out := h.fire(t0.Add(25 * time.Hour)); len(out.DLQ) != 0 || len(out.Jobs) != 0 {
		t.Fatalf("after the drain: %d jobs, dlq %v", len(out.Jobs), out.DLQ)
	}
	t.Logf("1,100 parked intents released in %d batches", batches)
}

// TestUsageSamplesOfOneBatchAreBandedInSourceOrder: samples of one
// subscription from different partitions arrive in one batch out of order;
// they are evaluated in source order, so the re-arming sample before the
// firing one still counts.
func TestUsageSamplesOfOneBatchAreBandedInSourceOrder(t *testing.T) {
	h := newHarness(t)
	h.seed()
	h.apply(t0, h.change(cdc.InteropSubscriptions, cdc.OpCreate, cdc.Row{"id": "s1", "company_id": "c-acme",
		"kind": "teams_cvi", "status": "active", "concurrent_call_licenses": int64(20)}))
	sample := func(id string, calls int64, partition int32) cdc.Change {
		ch := h.change(cdc.CVIUsage, cdc.OpCreate, cdc.Row{"id": id, "company_id": "c-acme", "subscription_id": "s1", "concurrent_calls": calls})
		ch.Cause.Partition = partition
		return ch
	}
	if got := join(types(h.apply(t0, sample("u1", 16, 0)).Jobs)); got != "interop.teams_usage" {
		t.Fatalf("80%%: %q", got)
	}
	rearm := sample("u2", 13, 1) // 65%: re-arms
	fire := sample("u3", 18, 2)  // 90%: fires
	out := h.apply(t0, fire, rearm)
	if got := join(types(out.Jobs)); got != "interop.teams_usage" || !strings.HasPrefix(out.Jobs[0].Subject, "90%") {
		t.Fatalf("re-arm and fire in one batch, fire polled first: %v", summary(out.Jobs))
	}
}

// TestOneBatchCarriesAKeyOnce: the process stage merges a batch's Apply and
// Fire outputs; an intent released twice before the commit (by its row's
// arrival and by a drain still due from an aborted attempt) goes out once.
func TestOneBatchCarriesAKeyOnce(t *testing.T) {
	h := newHarness(t)
	h.seed()
	const n = 700 // more than one chunk
	var plans []cdc.Change
	for i := range n {
		plans = append(plans, h.change(cdc.LicensePlans, cdc.OpCreate, plan(fmt.Sprintf("lp%04d", i), "2027-06-30", cdc.Row{"company_id": "c-late"})))
	}
	h.apply(t0, plans...)
	company := h.acme()
	company["id"], company["name"] = "c-late", "Late Inc"
	arrival := h.change(cdc.Companies, cdc.OpCreate, company)
	// First attempt: applied, drain scheduled, transaction aborted (no commit).
	h.applyNoCommit(t0, arrival)
	// The retry: Apply releases the first chunk again, and Fire (the drain
	// is due now) would release it once more before any commit.
	ctx := context.Background()
	later := t0.Add(time.Second)
	out, err := h.eng.Apply(ctx, later, []cdc.Change{arrival})
	if err != nil {
		t.Fatal(err)
	}
	var sets []string
	for table := range cdc.Contract {
		sets = append(sets, processor.TimerSet(table, 0))
	}
	fired, err := h.eng.Fire(ctx, later, sets)
	if err != nil {
		t.Fatal(err)
	}
	merged := out.Merge(fired)
	seen := map[string]bool{}
	for _, j := range merged.Jobs {
		if seen[j.Key] {
			t.Fatalf("key %s twice in one transaction's output", j.Key)
		}
		seen[j.Key] = true
	}
	if len(merged.Jobs) == 0 {
		t.Fatal("nothing released")
	}
}

// TestUsageBeforeItsSubscriptionIsParked: a usage sample whose subscription
// is not known yet (its topic lags, or a cold start reads cvi_usage first)
// waits for it and is banded on its arrival, once.
func TestUsageBeforeItsSubscriptionIsParked(t *testing.T) {
	h := newHarness(t)
	h.seed()
	out := h.apply(t0, h.change(cdc.CVIUsage, cdc.OpCreate, cdc.Row{"id": "early",
		"company_id": "c-acme", "subscription_id": "s-late", "concurrent_calls": int64(19)}))
	if len(out.Jobs) != 0 || len(out.DLQ) != 0 || out.Stats.Parked != 1 {
		t.Fatalf("sample before its subscription: jobs %v dlq %v parked %d", summary(out.Jobs), out.DLQ, out.Stats.Parked)
	}
	out = h.apply(t0.Add(time.Minute), h.change(cdc.InteropSubscriptions, cdc.OpCreate, cdc.Row{"id": "s-late",
		"company_id": "c-acme", "kind": "teams_cvi", "status": "active", "concurrent_call_licenses": int64(20)}))
	// The subscription's own email (authorize) and the sample's, 95%.
	if got := join(types(out.Jobs)); got != "interop.teams_authorize,interop.teams_usage" || len(out.Jobs) != 3 {
		t.Fatalf("on the subscription's arrival: %v", summary(out.Jobs))
	}
	if last := out.Jobs[len(out.Jobs)-1]; !strings.HasPrefix(last.Subject, "95% usage notification") {
		t.Fatalf("subject %q", last.Subject)
	}
	if out := h.fire(t0.Add(25 * time.Hour)); len(out.DLQ) != 0 || len(out.Jobs) != 0 {
		t.Fatalf("after resolution: jobs %v dlq %v", summary(out.Jobs), out.DLQ)
	}
}

// TestUsageParkRefusedAsItsSubscriptionArrives: the subscription arrives
// (through another instance) between the sample's read and its park; the
// sample is banded in the same batch instead of waiting.
func TestUsageParkRefusedAsItsSubscriptionArrives(t *testing.T) {
	h := newHarness(t)
	h.seed()
	hooked := &hookState{State: h.store}
	x := h.instance(hooked)
	sub := h.change(cdc.InteropSubscriptions, cdc.OpCreate, cdc.Row{"id": "s-late",
		"company_id": "c-acme", "kind": "teams_cvi", "status": "active", "concurrent_call_licenses": int64(20)})
	var fromY processor.Output
	hooked.before = func() { fromY = h.apply(t0, sub) }
	out, err := x.Apply(context.Background(), t0, []cdc.Change{h.change(cdc.CVIUsage, cdc.OpCreate, cdc.Row{"id": "early",
		"company_id": "c-acme", "subscription_id": "s-late", "concurrent_calls": int64(21)})})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Commit(context.Background(), out.Commit); err != nil {
		t.Fatal(err)
	}
	if got := join(types(out.Jobs)) + " / " + join(types(fromY.Jobs)); got != "interop.teams_oversubscribed / interop.teams_authorize" || len(out.Jobs) != 2 {
		t.Fatalf("X: %v, Y: %v", summary(out.Jobs), summary(fromY.Jobs))
	}
	if out.Stats.Parked != 0 {
		t.Fatalf("X parked %d samples although the subscription had arrived", out.Stats.Parked)
	}
	if out := h.fire(t0.Add(25 * time.Hour)); len(out.DLQ) != 0 || len(out.Jobs) != 0 {
		t.Fatalf("after the wait: jobs %v dlq %v", summary(out.Jobs), out.DLQ)
	}
}

// TestCommitTrimsRowsOfBatchesThatMailNothing: a batch whose changes mail
// nothing still commits their rows, so their history keeps only the newest
// entry (a company renamed again and again must not grow its history).
func TestCommitTrimsRowsOfBatchesThatMailNothing(t *testing.T) {
	h := newHarness(t)
	h.seed()
	for i := range 3 {
		acme := h.acme()
		acme["name"] = fmt.Sprintf("Acme Corp %d", i)
		if out := h.apply(t0, h.change(cdc.Companies, cdc.OpUpdate, acme)); len(out.Jobs) != 0 {
			t.Fatalf("a rename mailed: %v", summary(out.Jobs))
		}
	}
	ps, err := h.store.Positions(context.Background(), []processor.RowRef{{Table: cdc.Companies, ID: "c-acme"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps[0]) != 1 {
		t.Fatalf("c-acme's history holds %d positions after its committed renames, want 1 (the newest): %v", len(ps[0]), ps[0])
	}
}
