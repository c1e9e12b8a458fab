package processor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/processor/simulate"
	"github.com/portalmail/portalmail/schemas/cdc"
)

func day(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestRedeliveredChangeMailsNothingNew(t *testing.T) {
	h := newHarness(t)
	h.seed()
	ch := h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp1", "2027-06-30", nil))
	first := h.apply(t0, ch)
	if got := join(types(first.Jobs)); got != "order.new" || len(first.Jobs) != 4 {
		t.Fatalf("first delivery: %v", summary(first.Jobs))
	}
	// Debezium redelivers after a restart: same source position, new offset.
	again := ch
	again.Cause.Offset += 1000
	if out := h.apply(t0.Add(time.Minute), again); len(out.Jobs) != 0 {
		t.Fatalf("redelivery mailed again: %v", summary(out.Jobs))
	}
}

func TestAbortedBatchReplaysWithSameKeys(t *testing.T) {
	h := newHarness(t)
	h.seed()
	batch := []cdc.Change{
		h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp1", "2027-06-30", nil)),
		h.change(cdc.LicensePlans, cdc.OpUpdate, plan("lp1", "2027-06-30", cdc.Row{"quantity": int64(25)})),
		h.change(cdc.LicensePlans, cdc.OpUpdate, plan("lp1", "2027-06-30", cdc.Row{"quantity": int64(25), "billing_period": "annual"})),
	}
	// First attempt: state is written, the Kafka transaction aborts (no Commit).
	aborted := h.applyNoCommit(t0, batch...)
	if got := join(types(aborted.Jobs)); got != "order.billing_change,order.new,order.quantity_change" {
		t.Fatalf("first attempt: %v", got)
	}
	// The same records again, now against the state the aborted attempt wrote.
	retried := h.applyNoCommit(t0, batch...)
	if a, b := join(keys(aborted.Jobs)), join(keys(retried.Jobs)); a != b {
		t.Fatalf("replay changed keys:\n%s\n%s", a, b)
	}
	h.commit(retried)
	if out := h.apply(t0, batch...); len(out.Jobs) != 0 {
		t.Fatalf("after commit the batch mailed again: %v", summary(out.Jobs))
	}
}

func TestStaleChangeIsSkipped(t *testing.T) {
	h := newHarness(t)
	h.seed()
	old := h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp1", "2027-06-30", nil))
	var newer []cdc.Change
	for q := int64(11); q < 20; q++ { // push old out of the row's history
		newer = append(newer, h.change(cdc.LicensePlans, cdc.OpUpdate, plan("lp1", "2027-06-30", cdc.Row{"quantity": q})))
	}
	h.apply(t0, old)
	h.apply(t0, newer...)
	if out := h.apply(t0, old); len(out.Jobs) != 0 {
		t.Fatalf("stale change mailed: %v", summary(out.Jobs))
	}
}

func TestSnapshotReadsNeverMailButTheirTimersFire(t *testing.T) {
	h := newHarness(t)
	h.seed()
	out := h.apply(t0, h.change(cdc.LicensePlans, cdc.OpRead, plan("lp1", "2026-03-01", nil)))
	if len(out.Jobs) != 0 {
		t.Fatalf("snapshot read mailed: %v", summary(out.Jobs))
	}
	// 2026-03-01 − 45 days = 2026-01-15, at 09:00 UTC.
	if out := h.fire(day("2026-01-15T08:59:59Z")); len(out.Jobs) != 0 {
		t.Fatalf("fired early: %v", summary(out.Jobs))
	}
	out = h.fire(day("2026-01-15T09:00:00Z"))
	want := []string{
		"renewal.expires_in am@direct.example Acme Corp license plan expires in 45 days",
		"renewal.expires_in orders@direct.example Acme Corp license plan expires in 45 days",
		"renewal.expires_in pam@pexip.example Acme Corp license plan expires in 45 days",
	}
	if got := summary(out.Jobs); join(got) != join(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	if !out.Jobs[0].CreatedAt.Equal(day("2026-01-15T09:00:00Z")) {
		t.Fatalf("created at %v", out.Jobs[0].CreatedAt)
	}
}

func TestTimerMovesWithTheDate(t *testing.T) {
	h := newHarness(t)
	h.seed()
	h.apply(t0, h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp1", "2026-03-01", nil)))
	h.apply(t0, h.change(cdc.LicensePlans, cdc.OpUpdate, plan("lp1", "2026-04-01", nil)))
	if out := h.fire(day("2026-01-15T09:00:00Z")); len(out.Jobs) != 0 {
		t.Fatalf("timer of the old date fired: %v", summary(out.Jobs))
	}
	out := h.fire(day("2026-02-15T09:00:00Z")) // 2026-04-01 − 45 d
	if got := join(types(out.Jobs)); got != "renewal.expires_in" || !strings.Contains(out.Jobs[0].Subject, "45 days") {
		t.Fatalf("moved timer: %v", summary(out.Jobs))
	}
}

func TestTimerCancelledByConfirmation(t *testing.T) {
	h := newHarness(t)
	h.seed()
	h.apply(t0, h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp1", "2026-03-01", nil)))
	out := h.apply(t0, h.change(cdc.LicensePlans, cdc.OpUpdate, plan("lp1", "2026-03-01", cdc.Row{"renewal": "renew"})))
	if got := join(types(out.Jobs)); got != "renewal.will_renew" {
		t.Fatalf("confirmation: %v", got)
	}
	for _, at := range []string{"2026-01-15T09:00:00Z", "2026-01-30T09:00:00Z", "2026-02-14T09:00:00Z", "2026-02-26T09:00:00Z"} {
		if out := h.fire(day(at)); len(out.Jobs) != 0 {
			t.Fatalf("cancelled timer fired at %s: %v", at, summary(out.Jobs))
		}
	}
}

func TestTimerRecheckedWhenItFires(t *testing.T) {
	h := newHarness(t)
	h.seed()
	h.apply(t0, h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp1", "2026-03-01", nil)))
	// The row changes behind the timers' back (on another partition: the
	// timers of partition 0 are not recomputed).
	ch := h.change(cdc.LicensePlans, cdc.OpUpdate, plan("lp1", "2026-03-01", cdc.Row{"status": "canceled", "invoiced": true}))
	ch.Cause.Partition = 7
	h.apply(t0, ch)
	if out := h.fire(day("2026-01-15T09:00:00Z")); len(out.Jobs) != 0 {
		t.Fatalf("timer fired although the plan is no longer active: %v", summary(out.Jobs))
	}
}

func TestPastTimersAreNotScheduled(t *testing.T) {
	h := newHarness(t)
	h.seed()
	// On 2026-01-05 a plan ending 2026-01-25: the 45- and 30-day timers are
	// already past, the 15-day one (2026-01-10) and the 3-day one remain.
	h.apply(t0, h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp1", "2026-01-25", nil)))
	next, ok, err := h.eng.NextDue(context.Background(), []string{"portal.public.license_plans/0"})
	if err != nil || !ok || !next.Equal(day("2026-01-10T09:00:00Z")) {
		t.Fatalf("next due %v %v %v, want 2026-01-10T09:00Z", next, ok, err)
	}
}

func TestDueTimerFiresAfterAChangeThatCameFirst(t *testing.T) {
	h := newHarness(t)
	h.seed()
	h.apply(t0, h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp1", "2026-03-01", nil)))
	// The 45-day timer falls due at 2026-01-15T09:00Z. The first batch
	// after that (the processor was busy, or down for a while) holds a
	// change of the plan that keeps its date: the batch applies it before
	// it fires the due timers, and the timer must still fire.
	now := day("2026-01-15T09:00:30Z")
	h.apply(now, h.change(cdc.LicensePlans, cdc.OpUpdate, plan("lp1", "2026-03-01", cdc.Row{"quantity": int64(12)})))
	out := h.fire(now)
	var got []string
	for _, j := range out.Jobs {
		got = append(got, j.Subject)
	}
	if len(out.Jobs) != 3 || !strings.HasSuffix(out.Jobs[0].Subject, "expires in 45 days") {
		t.Fatalf("due timer after a change of its row: %v", got)
	}
	// A timer that was never scheduled because its time had passed stays
	// unsent: a plan created on 2026-01-20 ending 2026-03-01 gets no 45-day
	// reminder, whether or not it changes afterwards.
	h.apply(day("2026-01-20T10:00:00Z"), h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp2", "2026-03-01", nil)))
	h.apply(day("2026-01-20T10:00:00Z"), h.change(cdc.LicensePlans, cdc.OpUpdate, plan("lp2", "2026-03-01", cdc.Row{"quantity": int64(12)})))
	for _, j := range h.fire(day("2026-01-20T10:00:01Z")).Jobs {
		t.Fatalf("a reminder whose time had passed when its plan appeared: %s", j.Subject)
	}
	// A date moved so that a scheduled reminder's time has passed: the
	// reminder scheduled for the old date is dropped when it comes due.
	h.apply(t0, h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp3", "2026-04-01", nil))) // 45 days: 2026-02-15
	h.apply(day("2026-01-20T10:00:00Z"), h.change(cdc.LicensePlans, cdc.OpUpdate, plan("lp3", "2026-03-01", nil)))
	for _, at := range []string{"2026-01-20T10:00:01Z", "2026-01-30T09:00:00Z", "2026-02-14T09:00:00Z", "2026-02-15T09:00:00Z"} {
		for _, j := range h.fire(day(at)).Jobs {
			if strings.Contains(j.Subject, "45 days") {
				t.Fatalf("at %s, after the date moved past its time: %s", at, j.Subject)
			}
		}
	}
}

func TestOnlyTheLatestOverdueTimerFires(t *testing.T) {
	h := newHarness(t)
	h.seed()
	h.apply(t0, h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp1", "2026-03-01", nil)))
	// The processor was down from before the 45-day timer until after the
	// 15-day one (2026-02-14): only "15 days" is sent.
	out := h.fire(day("2026-02-20T12:00:00Z"))
	for _, j := range out.Jobs {
		if !strings.HasSuffix(j.Subject, "expires in 15 days") {
			t.Fatalf("catch-up sent %q", j.Subject)
		}
	}
	if len(out.Jobs) != 3 {
		t.Fatalf("catch-up: %v", summary(out.Jobs))
	}
	if out := h.fire(day("2026-02-21T12:00:00Z")); len(out.Jobs) != 0 {
		t.Fatalf("superseded timers fired later: %v", summary(out.Jobs))
	}
	out = h.fire(day("2026-02-26T09:00:00Z"))
	if len(out.Jobs) != 3 || !strings.HasSuffix(out.Jobs[0].Subject, "expires in 3 days") {
		t.Fatalf("3-day timer: %v", summary(out.Jobs))
	}
}

func TestUsageBandsHysteresis(t *testing.T) {
	h := newHarness(t)
	h.seed()
	h.apply(t0, h.change(cdc.InteropSubscriptions, cdc.OpCreate, cdc.Row{"id": "s1", "company_id": "c-acme",
		"kind": "teams_cvi", "status": "active", "concurrent_call_licenses": int64(20)}))
	steps := []struct {
		calls int64
		want  string // the type fired, "" for none
		pct   string
	}{
		{10, "", ""},                             // 50%
		{16, "interop.teams_usage", "80%"},       // 80%: usage fires
		{17, "", ""},                             // 85%: disarmed
		{15, "", ""},                             // 75%: not below 70, stays disarmed
		{13, "", ""},                             // 65%: re-arms usage
		{18, "interop.teams_usage", "90%"},       // 90%: fires again
		{21, "interop.teams_oversubscribed", ""}, // 105%: over fires
		{22, "", ""},                             // 110%: disarmed
		{19, "", ""},                             // 95%: over not re-armed (> 90)
		{18, "", ""},                             // 90%: re-arms over (usage still disarmed)
		{21, "interop.teams_oversubscribed", ""}, // 105%: over again
		{12, "", ""},                             // 60%: re-arms both
		{24, "interop.teams_oversubscribed", ""}, // 120% from armed: over only, disarms both
		{17, "", ""},                             // 85%: usage was disarmed by the over
		{12, "", ""},                             // 60%: re-arms both
		// Extremes: 100 × calls must not wrap around int64 (2^62+18 used to
		// come out as "90% usage").
		{1<<62 + 18, "interop.teams_oversubscribed", ""}, // ~2^62 calls: over, not 90%
		{math.MaxInt64, "", ""},                          // disarmed, no overflow either
		{12, "", ""},                                     // 60%: re-arms both
		{math.MaxInt64, "interop.teams_oversubscribed", ""},
	}
	for i, s := range steps {
		out := h.apply(t0, h.change(cdc.CVIUsage, cdc.OpCreate, cdc.Row{"id": "u" + string(rune('a'+i)),
			"company_id": "c-acme", "subscription_id": "s1", "concurrent_calls": s.calls}))
		got := join(types(out.Jobs))
		if got != s.want {
			t.Fatalf("step %d (%d calls): fired %q, want %q", i, s.calls, got, s.want)
		}
		if s.pct != "" && !strings.HasPrefix(out.Jobs[0].Subject, s.pct+" usage notification") {
			t.Fatalf("step %d: subject %q", i, out.Jobs[0].Subject)
		}
		if s.want != "" && join(summary(out.Jobs)) != join([]string{
			s.want + " it@acme.example " + out.Jobs[0].Subject, s.want + " partner@direct.example " + out.Jobs[0].Subject}) {
			t.Fatalf("step %d recipients: %v", i, summary(out.Jobs))
		}
	}
}

func TestUsageBelowTenLicensesIsIgnored(t *testing.T) {
	h := newHarness(t)
	h.seed()
	h.apply(t0, h.change(cdc.InteropSubscriptions, cdc.OpCreate, cdc.Row{"id": "s1", "company_id": "c-acme",
		"kind": "teams_cvi", "status": "active", "concurrent_call_licenses": int64(9)}))
	out := h.apply(t0, h.change(cdc.CVIUsage, cdc.OpCreate, cdc.Row{"id": "x", "company_id": "c-acme", "subscription_id": "s1", "concurrent_calls": int64(20)}))
	if len(out.Jobs) != 0 {
		t.Fatalf("mailed under 10 licenses: %v", summary(out.Jobs))
	}
}

func TestMissingReferenceIsParkedAndRetriedOnArrival(t *testing.T) {
	h := newHarness(t)
	h.seed()
	p := plan("lp9", "2027-06-30", cdc.Row{"company_id": "c-late"})
	out := h.apply(t0, h.change(cdc.LicensePlans, cdc.OpCreate, p))
	if len(out.Jobs) != 0 || len(out.DLQ) != 0 {
		t.Fatalf("plan of an unknown company: jobs %v dlq %v", summary(out.Jobs), out.DLQ)
	}
	company := h.acme()
	company["id"], company["name"] = "c-late", "Late Inc"
	out = h.apply(t0.Add(time.Hour), h.change(cdc.Companies, cdc.OpCreate, company))
	if got := join(types(out.Jobs)); got != "order.new" || len(out.Jobs) != 4 {
		t.Fatalf("on arrival: %v", summary(out.Jobs))
	}
	if out.Jobs[0].CompanyID != "c-late" || !out.Jobs[0].CreatedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("job %+v", out.Jobs[0])
	}
	// Resolved: nothing is dead-lettered when the deadline passes.
	if out := h.fire(t0.Add(25 * time.Hour)); len(out.DLQ) != 0 || len(out.Jobs) != 0 {
		t.Fatalf("after resolution: jobs %v dlq %v", summary(out.Jobs), out.DLQ)
	}
}

func TestMissingReferenceIsDeadLetteredAfterTheWait(t *testing.T) {
	h := newHarness(t)
	h.seed()
	h.apply(t0, h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp9", "2027-06-30", cdc.Row{"company_id": "c-never"})))
	if out := h.fire(t0.Add(23 * time.Hour)); len(out.DLQ) != 0 {
		t.Fatalf("dead-lettered early: %v", out.DLQ)
	}
	out := h.fire(t0.Add(24 * time.Hour))
	if len(out.DLQ) != 1 || !strings.Contains(out.DLQ[0].Reason, "portal.public.companies/c-never") ||
		!strings.Contains(string(out.DLQ[0].Value), "order.new|portal.public.license_plans|lp9") {
		t.Fatalf("dlq %+v", out.DLQ)
	}
	company := h.acme()
	company["id"] = "c-never"
	if out := h.apply(t0.Add(25*time.Hour), h.change(cdc.Companies, cdc.OpCreate, company)); len(out.Jobs) != 0 {
		t.Fatalf("dead-lettered intent mailed later: %v", summary(out.Jobs))
	}
}

func TestResellerUnderDistributorGetsNoPartnerAM(t *testing.T) {
	h := newHarness(t)
	h.seed()
	out := h.apply(t0, h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp1", "2027-06-30", cdc.Row{"company_id": "c-globex", "updated_by_user_id": ""})))
	want := "order.new pam@pexip.example Order confirmation from Pexip (new)"
	if got := join(summary(out.Jobs)); got != want {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestHostileValuesAreRenderedInert(t *testing.T) {
	h := newHarness(t)
	h.seed()
	evil := h.acme()
	evil["id"], evil["status"] = "c-evil", "trial"
	evil["name"] = "<script>alert(1)</script>\r\nBcc: victim@example.com"
	h.apply(t0, h.change(cdc.Companies, cdc.OpCreate, evil))
	ended := h.acme()
	for k, v := range evil {
		ended[k] = v
	}
	ended["status"] = "trial_ended"
	out := h.apply(t0, h.change(cdc.Companies, cdc.OpUpdate, ended))
	if len(out.Jobs) == 0 {
		t.Fatal("no trial.company_ended")
	}
	for _, j := range out.Jobs {
		j = rendered(t, j)
		if strings.ContainsAny(j.Subject, "\r\n") || strings.ContainsAny(j.From+j.ReplyTo+j.To.Name, "\r\n") {
			t.Fatalf("CR/LF in a header: %q", j.Subject)
		}
		if strings.Contains(j.HTML, "<script>") {
			t.Fatal("raw <script> in the HTML body")
		}
		if !strings.Contains(j.HTML, "&lt;script&gt;") {
			t.Fatal("company name not rendered escaped")
		}
	}
}

func TestUndecodableInputIsReportedAndTheRestGoesOn(t *testing.T) {
	h := newHarness(t)
	h.seed()
	input := strings.Join([]string{
		`this is not json`,
		`{"topic":"portal.public.license_plans","key":{"id":"x"},"value":{"op":"c","after":{"id":"x","company_id":"c-acme","quantity":"lots"},"source":{"lsn":5,"ts_ms":1767607200000},"ts_ms":1767607200000}}`,
		`{"topic":"portal.public.nope","key":{"id":"x"},"value":{"op":"c","after":{"id":"x"},"source":{"lsn":6,"ts_ms":1767607200000},"ts_ms":1767607200000}}`,
		`{"topic":"portal.public.license_plans","key":{"id":"lp1"},"value":{"op":"c","before":null,"after":{"id":"lp1","company_id":"c-acme","product":"Enterprise","billing_period":"monthly","quantity":10,"end_date":20820,"renewal":"unset","status":"active","includes_otj":false,"invoiced":false,"updated_by_user_id":"u-buyer"},"source":{"lsn":7000,"ts_ms":1767607200000},"ts_ms":1767607200000}}`,
	}, "\n")
	var emails []simulate.Email
	var dead []simulate.DeadLetter
	err := simulate.Run(context.Background(), h.eng, newDecoder(), bytes.NewReader([]byte(input)), time.Time{}, simulate.Sink{
		Email:      func(e simulate.Email) error { emails = append(emails, e); return nil },
		DeadLetter: func(d simulate.DeadLetter) error { dead = append(dead, d); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 3 {
		t.Fatalf("dead letters %+v", dead)
	}
	for i, want := range []string{"not a JSON record", "quantity", "unknown topic"} {
		if !strings.Contains(dead[i].Reason, want) || dead[i].Line != i+1 {
			t.Errorf("dead letter %d: %+v, want reason with %q", i, dead[i], want)
		}
	}
	if len(emails) != 4 || emails[0].Type != "order.new" {
		t.Fatalf("emails %+v", emails)
	}
}

func TestBatchCostsAConstantNumberOfRoundTrips(t *testing.T) {
	h := newHarness(t)
	h.seed()
	var batch []cdc.Change
	for i := range 500 {
		id := "lp" + string(rune('A'+i%26)) + string(rune('a'+i/26))
		batch = append(batch, h.change(cdc.LicensePlans, cdc.OpCreate, plan(id, "2027-06-30", nil)))
	}
	h.rounds.Store(0)
	out := h.applyNoCommit(t0, batch...)
	applyRounds := h.rounds.Load()
	h.commit(out)
	if len(out.Jobs) != 2000 {
		t.Fatalf("%d jobs", len(out.Jobs))
	}
	// ApplyChanges, rows (2 levels), emitted, writes (+ one script load each on a fresh server).
	if applyRounds > 10 {
		t.Fatalf("500 changes cost %d round trips", applyRounds)
	}
	t.Logf("500 changes: %d round trips for Apply, %d with Commit", applyRounds, h.rounds.Load())
}

// holdState is a State that fails the test when anything but storing
// changes (and reading rows for TOASTed columns) is asked of it before
// ready is closed, and closes stored once a batch is stored.
type holdState struct {
	processor.State
	t      *testing.T
	ready  chan struct{}
	stored chan struct{}
}

func (s *holdState) early(what string) {
	select {
	case <-s.ready:
	default:
		s.t.Errorf("%s before the hold was released", what)
	}
}

func (s *holdState) ApplyChanges(ctx context.Context, chs []processor.RowChange) ([]processor.ApplyResult, error) {
	res, err := s.State.ApplyChanges(ctx, chs)
	close(s.stored)
	return res, err
}

func (s *holdState) Emitted(ctx context.Context, keys []string) ([]bool, error) {
	s.early("Emitted")
	return s.State.Emitted(ctx, keys)
}

func (s *holdState) Write(ctx context.Context, w processor.Writes) (processor.WriteResult, error) {
	s.early("Write")
	return s.State.Write(ctx, w)
}

func (s *holdState) Bands(ctx context.Context, rules catalog.Bands, samples []processor.BandSample) ([]processor.BandResult, error) {
	s.early("Bands")
	return s.State.Bands(ctx, rules, samples)
}

// failingApply is a State whose ApplyChanges fails.
type failingApply struct{ processor.State }

func (failingApply) ApplyChanges(context.Context, []processor.RowChange) ([]processor.ApplyResult, error) {
	return nil, errors.New("redis: connection refused")
}

// TestApplyAfterStoresFirstAndResolvesOnceReleased: ApplyAfter stores its
// changes at once and asks state nothing else before its hold is released;
// then it resolves against state as it is by then. An intent the hold says
// is being unparked is not released again.
func TestApplyAfterStoresFirstAndResolvesOnceReleased(t *testing.T) {
	h := newHarness(t)
	h.seed()
	h.apply(t0, h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp9", "2027-06-30", cdc.Row{"company_id": "c-late"})))
	company := h.acme()
	company["id"], company["name"] = "c-late", "Late Inc"
	arrives := h.change(cdc.Companies, cdc.OpCreate, company)

	st := &holdState{State: h.store, t: t, ready: make(chan struct{}), stored: make(chan struct{})}
	eng := h.instance(st)
	type result struct {
		out processor.Output
		err error
	}
	done := make(chan result, 1)
	var storedCalls atomic.Int32
	signalled := make(chan struct{})
	stored := func() {
		if storedCalls.Add(1) == 1 {
			close(signalled)
		}
	}
	go func() {
		out, err := eng.ApplyAfter(context.Background(), t0.Add(time.Hour), []cdc.Change{arrives}, processor.Hold{Ready: st.ready, Stored: stored})
		done <- result{out, err}
	}()
	<-st.stored
	// Stored is called while the call still holds (a guard, not a wait:
	// the call cannot return before ready is closed).
	select {
	case <-signalled:
	case r := <-done:
		t.Fatalf("returned while held: %v", r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("Stored not called while held")
	}
	rows, err := h.store.Rows(context.Background(), []processor.RowRef{{Table: cdc.Companies, ID: "c-late"}})
	if err != nil || rows[0].Str("name") != "Late Inc" {
		t.Fatalf("held: the company is not stored: %v %v", rows, err)
	}
	// The parked plan resolves against state as it is when the hold is released.
	renamed := h.acme()
	renamed["id"], renamed["name"] = "c-late", "Late Inc (renamed)"
	h.apply(t0, h.change(cdc.Companies, cdc.OpUpdate, renamed))
	close(st.ready)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := join(types(r.out.Jobs)); got != "order.new" || len(r.out.Jobs) != 4 {
		t.Fatalf("released: %v", summary(r.out.Jobs))
	}
	if d := r.out.Jobs[0].Data; !strings.Contains(d, "Late Inc (renamed)") {
		t.Fatalf("resolved before the hold was released: %s", d)
	}
	if n := storedCalls.Load(); n != 1 {
		t.Fatalf("Stored called %d times", n)
	}
	// A call whose changes cannot be stored still calls Stored, once.
	storedCalls.Store(0)
	broken := h.instance(failingApply{h.store})
	if _, err := broken.ApplyAfter(context.Background(), t0, []cdc.Change{arrives}, processor.Hold{Stored: func() { storedCalls.Add(1) }}); err == nil {
		t.Fatal("a failing store: no error")
	}
	if n := storedCalls.Load(); n != 1 {
		t.Fatalf("failed call: Stored called %d times", n)
	}

	// Another company arrives while the release of the intent waiting for
	// it is still being recorded (an earlier batch released it): nothing
	// is released twice.
	h.apply(t0, h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp10", "2027-06-30", cdc.Row{"company_id": "c-later"})))
	company = h.acme()
	company["id"], company["name"] = "c-later", "Later Inc"
	arrives = h.change(cdc.Companies, cdc.OpCreate, company)
	unparking := func(p processor.Parked) bool { return p.On == processor.RowRef{Table: cdc.Companies, ID: "c-later"} }
	out, err := h.eng.ApplyAfter(context.Background(), t0.Add(time.Hour), []cdc.Change{arrives}, processor.Hold{Unparking: unparking})
	if err != nil || len(out.Jobs) != 0 {
		t.Fatalf("released again while unparking: %v %v", summary(out.Jobs), err)
	}
	// The control: replayed without the hold, the change releases the
	// intent (still parked: nothing was committed).
	out, err = h.eng.ApplyAfter(context.Background(), t0.Add(time.Hour), []cdc.Change{arrives}, processor.Hold{})
	if err != nil || join(types(out.Jobs)) != "order.new" || len(out.Jobs) != 4 {
		t.Fatalf("replayed without the hold: %v %v", summary(out.Jobs), err)
	}
}

// TestRowHintsSaveARoundTripButNeverDecide: an engine that has read a
// company reads its partner along with it the next time (one round trip
// fewer), and a hint that no longer holds (the company moved to another
// partner) costs that round trip back but changes nothing derived: the
// jobs equal those of an engine without hints.
func TestRowHintsSaveARoundTripButNeverDecide(t *testing.T) {
	h := newHarness(t)
	h.seed()
	h.apply(t0, h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp-warm", "2027-06-30", nil))) // loads the scripts
	eng := h.instance(h.store)
	n := 0
	plans := func() []cdc.Change {
		var chs []cdc.Change
		for range 20 {
			n++
			chs = append(chs, h.change(cdc.LicensePlans, cdc.OpCreate, plan(fmt.Sprintf("lp-h%d", n), "2027-06-30", nil)))
		}
		return chs
	}
	apply := func(eng *processor.Engine, chs []cdc.Change) (processor.Output, int64) {
		t.Helper()
		h.rounds.Store(0)
		out, err := eng.Apply(context.Background(), t0, chs)
		if err != nil {
			t.Fatal(err)
		}
		return out, h.rounds.Load()
	}
	out, cold := apply(eng, plans())
	h.commit(out)
	out, hinted := apply(eng, plans())
	h.commit(out)
	if hinted != cold-1 || len(out.Jobs) != 80 {
		t.Fatalf("round trips: %d without hints, %d with (want one fewer); %d jobs", cold, hinted, len(out.Jobs))
	}

	moved := h.acme()
	moved["partner_id"] = "p-resell"
	h.apply(t0, h.change(cdc.Companies, cdc.OpUpdate, moved))
	batch := plans()
	stale, staleRounds := apply(eng, batch)
	fresh, freshRounds := apply(h.instance(h.store), batch) // a replay: the same keys
	if staleRounds != freshRounds {
		t.Errorf("a stale hint: %d round trips, %d without hints", staleRounds, freshRounds)
	}
	if len(stale.Jobs) == 0 || len(stale.Jobs) != len(fresh.Jobs) {
		t.Fatalf("jobs: %d with a stale hint, %d without", len(stale.Jobs), len(fresh.Jobs))
	}
	for i := range stale.Jobs {
		s, f := stale.Jobs[i], fresh.Jobs[i]
		if s.Key != f.Key || s.To != f.To || s.Subject != f.Subject || s.Data != f.Data {
			t.Fatalf("job %d differs:\nstale hint %+v\nno hint    %+v", i, s, f)
		}
	}
	if got := join(summary(stale.Jobs)); strings.Contains(got, "orders@direct.example") || strings.Contains(got, "am@direct.example") {
		t.Fatalf("the moved company's jobs go to the old partner's lists: %v", summary(stale.Jobs))
	}
}
