package processor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/portalmail/portalmail/processor/address"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/portalmail/portalmail/templates"
)

// batch collects the work of one Apply or Fire and resolves it with a fixed
// number of state round trips: rows (up to three levels), bands, emitted keys,
// writes.
type batch struct {
	e   *Engine
	now time.Time
	// changes is how many live changes the batch applies (0 for a Fire).
	changes int
	intents []intent
	samples []intent // usage samples waiting for the bands
	timers  []firedTimer
	rows    map[RowRef]cdc.Row
	writes  Writes
	commit  Commit
	jobs    []schemas.EmailJob
	dlq     []DeadLetter
	counts  Stats
	// parking maps the parks of the current round of finish to their intents;
	// parked counts the parks state accepted.
	parking map[parkRef]intent
	parked  int
	// rowJSON encodes each reference row once for the batch's job data.
	rowJSON templates.RowJSON
	// dataBuf is reused for each job's data JSON (emit copies it out), and
	// subject for each subject.
	dataBuf []byte
	subject bytes.Buffer
	// from is each From header the batch formatted, by the brand's name;
	// brands each partner's branding, by the id its row was read by.
	from   map[string]string
	brands map[string]templates.Branding
}

// stats returns the batch's counts, scheduled and parked included.
func (b *batch) stats() Stats {
	s := b.counts
	s.TimersScheduled, s.Parked = len(b.writes.Schedule), b.parked
	return s
}

type firedTimer struct {
	ref TimerRef
	m   timerMember
}

func newBatch(e *Engine, now time.Time) *batch {
	return &batch{e: e, now: now, rows: map[RowRef]cdc.Row{}, parking: map[parkRef]intent{}, from: map[string]string{},
		brands:  map[string]templates.Branding{},
		rowJSON: templates.RowJSON{Keep: e.r.Columns()}}
}

func (b *batch) add(in intent) {
	if b.intents == nil && b.changes > 0 {
		// About one intent per change in a batch that mails (a batch of
		// snapshot reads mails none, and never gets here).
		b.intents = make([]intent, 0, b.changes)
	}
	b.intents = append(b.intents, in)
}

// clock is the time an intent is decided at: its change's clock in a batch
// with one per change, else the batch's now.
func (b *batch) clock(in intent) time.Time {
	if !in.at.IsZero() {
		return in.at
	}
	return b.now
}

// retryParked queues a parked intent (or sample) whose row has arrived.
func (b *batch) retryParked(p Parked) {
	var in intent
	dec := json.NewDecoder(bytes.NewReader(p.Data))
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		b.dlq = append(b.dlq, DeadLetter{Cause: cdc.Cause{Topic: p.Set, Partition: -1, Offset: -1},
			Reason: fmt.Sprintf("parked intent %s unreadable: %v", p.Key, err), Value: p.Data})
		b.commit.Unpark = append(b.commit.Unpark, p)
		return
	}
	in.from = &p
	if in.Type == "" {
		b.samples = append(b.samples, in)
		return
	}
	b.add(in)
}

// fetch reads the refs not read yet, in one round trip.
func (b *batch) fetch(ctx context.Context, want []RowRef) error {
	var refs []RowRef
	for _, r := range want {
		if r.ID == "" {
			continue
		}
		if _, done := b.rows[r]; done {
			continue
		}
		// Marked read (absent) until the reply fills it in: a ref wanted
		// twice is read once. On an error the batch is given up whole.
		b.rows[r] = nil
		refs = append(refs, r)
	}
	if len(refs) == 0 {
		return nil
	}
	rows, err := b.e.st.Rows(ctx, refs)
	if err != nil {
		return fmt.Errorf("read %d rows: %w", len(refs), err)
	}
	for i, r := range refs {
		b.rows[r] = rows[i]
	}
	b.e.hints.learn(refs, rows)
	return nil
}

// companyID is the company an intent belongs to: the row itself, its
// company_id, or (for a usage sample without one) its subscription's.
func (b *batch) companyID(in *intent) string {
	if in.Table == cdc.Companies {
		return in.ID
	}
	if id := in.Next.Str("company_id"); id != "" {
		return id
	}
	if in.Table == cdc.CVIUsage {
		return b.rows[RowRef{cdc.InteropSubscriptions, in.Next.Str("subscription_id")}].Str("company_id")
	}
	return ""
}

// appendNeeds appends to dst the rows an intent's recipients and branding
// come from, as far as the rows read so far tell, and where they do not
// yet, as the engine's hints guess (refHints): a guess only adds a row to
// read, and the next round reads what the rows themselves name.
func (b *batch) appendNeeds(dst []RowRef, in *intent) []RowRef {
	companyID := ""
	if in.Table == cdc.CVIUsage {
		sub := RowRef{cdc.InteropSubscriptions, in.Next.Str("subscription_id")}
		dst = append(dst, sub)
		if _, read := b.rows[sub]; !read {
			companyID = b.e.hints.get(sub)
		}
	}
	if companyID == "" {
		companyID = b.companyID(in)
	}
	company := RowRef{cdc.Companies, companyID}
	dst = append(dst, company)
	partnerID := in.Next.Str("partner_id")
	if in.Table != cdc.Companies || partnerID == "" {
		row, read := b.rows[company]
		if id := row.Str("partner_id"); id != "" {
			partnerID = id
		} else if !read {
			if id := b.e.hints.get(company); id != "" {
				partnerID = id
			}
		}
	}
	dst = append(dst, RowRef{cdc.Partners, partnerID})
	if t, ok := b.e.types[in.Type]; ok && hasRole(t.Recipients, catalog.RoleOrderingUser) {
		dst = append(dst, RowRef{cdc.PortalUsers, in.Next.Str("updated_by_user_id")})
	}
	return dst
}

func hasRole(r catalog.Recipients, role catalog.Role) bool { return slices.Contains(r.Roles, role) }

// leadsOn reports whether any of the rows unread is one that can name a
// further row an intent needs (a subscription its company, a company its
// partner): an intent waiting only for partners and users is settled once
// those are read.
func leadsOn(unread []RowRef) bool {
	for _, r := range unread {
		if r.Table == cdc.InteropSubscriptions || r.Table == cdc.Companies {
			return true
		}
	}
	return false
}

// fetchNeeds reads the rows the intents (and samples) need: each round can
// reveal a further reference (sample → subscription → company → partner), so
// it repeats until nothing new is needed, at most three round trips. An
// intent whose rows are all read, or will be with this round's but for
// ones that name no further row (leadsOn), is settled and left out of the
// rounds after.
func (b *batch) fetchNeeds(ctx context.Context, intents, samples []intent) error {
	open := make([]*intent, 0, len(intents)+len(samples))
	for i := range intents {
		open = append(open, &intents[i])
	}
	for i := range samples {
		open = append(open, &samples[i])
	}
	var want []RowRef
	for range 3 {
		want = want[:0]
		still := open[:0]
		for _, in := range open {
			n := len(want)
			want = b.appendNeeds(want, in)
			unread := want[:n]
			for _, r := range want[n:] {
				if _, read := b.rows[r]; !read && r.ID != "" {
					unread = append(unread, r)
				}
			}
			want = unread
			if leadsOn(want[n:]) {
				still = append(still, in)
			}
		}
		if len(want) == 0 {
			return nil
		}
		if err := b.fetch(ctx, want); err != nil {
			return err
		}
		open = still
	}
	return nil
}

// resolve finds an intent's rows, or the first missing one.
func (b *batch) resolve(in intent) (refs, *RowRef) {
	var r refs
	var missing *RowRef
	need := func(ref RowRef) cdc.Row {
		if ref.ID == "" {
			return nil
		}
		row := b.rows[ref]
		if row == nil && missing == nil {
			missing = &ref
		}
		return row
	}
	r.companyID = b.companyID(&in)
	if in.Table == cdc.Companies {
		r.company = in.Next
	} else {
		r.company = need(RowRef{cdc.Companies, r.companyID})
	}
	partnerID := r.company.Str("partner_id")
	if partnerID == "" {
		partnerID = in.Next.Str("partner_id")
	}
	r.partner, r.partnerID = need(RowRef{cdc.Partners, partnerID}), partnerID
	if t, ok := b.e.types[in.Type]; ok && hasRole(t.Recipients, catalog.RoleOrderingUser) {
		r.user = need(RowRef{cdc.PortalUsers, in.Next.Str("updated_by_user_id")})
	}
	if in.Table == cdc.CVIUsage {
		r.subscription = b.rows[RowRef{cdc.InteropSubscriptions, in.Next.Str("subscription_id")}]
	}
	return r, missing
}

// park parks in on the missing row (keeping its first deadline).
func (b *batch) park(in intent, on RowRef) {
	if in.Deadline.IsZero() {
		in.Deadline = b.clock(in).Add(b.e.cfg.ParkFor)
	}
	if in.from != nil && in.from.On == on {
		return // still waiting for the same row: it stays parked
	}
	data, err := json.Marshal(in)
	if err != nil {
		b.dlq = append(b.dlq, DeadLetter{Cause: in.dlqCause(), Reason: fmt.Sprintf("park %s: %v", in.base(), err)})
		return
	}
	p := Parked{On: on, Key: in.base(), Data: data, Set: in.Set, Deadline: in.Deadline}
	b.writes.Park = append(b.writes.Park, p)
	b.parking[parkRef{on, p.Key}] = in
	if in.from != nil {
		b.commit.Unpark = append(b.commit.Unpark, *in.from)
	}
}

// parkRef names one park of one round of finish.
type parkRef struct {
	on  RowRef
	key string
}

// maxParkRounds bounds how often finish resolves intents whose missing row
// arrived while they were being parked.
const maxParkRounds = 4

// finish resolves everything collected into jobs, dead letters and writes.
//
// Parking is atomic against the arrival of the missing row: state refuses
// a park when the row is present (it arrived after this batch read it, on
// another instance say) and returns it; the intent is then resolved again
// with the row read afresh, in the same batch. So an intent never waits for
// a row that is already there.
func (b *batch) finish(ctx context.Context) error {
	if err := b.fireTimers(ctx); err != nil {
		return err
	}
	if err := b.fetchNeeds(ctx, b.intents, b.samples); err != nil {
		return err
	}
	intents, samples := b.intents, b.samples
	w := b.writes
	for round := 1; ; round++ {
		// Samples first: the ones over a band become intents of this round;
		// the ones whose subscription is missing park with this round.
		banded, err := b.band(ctx, samples)
		if err != nil {
			return err
		}
		// The intents' rows are read (before the loop, or at the end of the
		// round before); the banded samples' may need more.
		if err := b.fetchNeeds(ctx, banded, nil); err != nil {
			return err
		}
		intents = append(intents, banded...)
		if err := b.build(ctx, intents); err != nil {
			return err
		}
		w.Park = b.writes.Park
		b.parked += len(w.Park)
		res, err := b.e.st.Write(ctx, w)
		if err != nil {
			return fmt.Errorf("write timers and parked intents: %w", err)
		}
		w = Writes{} // timers are written once
		b.parked -= len(res.Arrived)
		if len(res.Arrived) == 0 {
			break
		}
		intents, samples = nil, nil
		for _, p := range res.Arrived {
			in := b.parking[parkRef{p.On, p.Key}]
			if round == maxParkRounds {
				b.dlq = append(b.dlq, DeadLetter{Cause: in.dlqCause(),
					Reason: fmt.Sprintf("referenced row %s/%s keeps arriving and vanishing while %s is parked", p.On.Table, p.On.ID, in.base())})
				b.commit.Unpark = append(b.commit.Unpark, p)
				continue
			}
			delete(b.rows, p.On) // read it again
			arrived := p
			in.from = &arrived
			if in.Type == "" {
				samples = append(samples, in)
			} else {
				intents = append(intents, in)
			}
		}
		b.writes.Park, b.parking = nil, map[parkRef]intent{}
		if len(intents)+len(samples) == 0 {
			break
		}
		if err := b.fetchNeeds(ctx, intents, samples); err != nil {
			return err
		}
	}
	return nil
}

// fireTimers re-checks fired timers against their rows as they are now and
// turns the ones that still apply into intents.
func (b *batch) fireTimers(ctx context.Context) error {
	if len(b.timers) == 0 {
		return nil
	}
	var refs []RowRef
	for _, ft := range b.timers {
		refs = append(refs, RowRef{ft.m.Table, ft.m.ID})
	}
	if err := b.fetch(ctx, refs); err != nil {
		return err
	}
	for _, ft := range b.timers {
		t, ok := b.e.types[ft.m.Type]
		tm, isTimer := t.Trigger.(catalog.Timer)
		if !ok || !isTimer {
			b.dlq = append(b.dlq, DeadLetter{Cause: timerCause(ft.ref.Set), Reason: "timer of unknown type " + string(ft.m.Type), Value: []byte(ft.ref.Member)})
			continue
		}
		row := b.rows[RowRef{ft.m.Table, ft.m.ID}]
		due, ok := b.e.due(tm, ft.m.Days, row)
		if !ok || !due.Equal(ft.ref.Due) {
			b.counts.TimersDropped++
			continue // re-check failed: dropped (acked)
		}
		b.counts.TimersFired++
		b.add(intent{
			Type: ft.m.Type, Table: ft.m.Table, ID: ft.m.ID,
			Cause: "due:" + ft.ref.Due.UTC().Format(time.RFC3339),
			Next:  row, Days: ft.m.Days,
			Src: schemas.Cause{Topic: ft.ref.Set, Partition: -1, Offset: -1, Op: "timer",
				SourceTime: ft.ref.Due, Table: ft.m.Table, EntityID: ft.m.ID},
			Set: ft.ref.Set,
		})
	}
	return nil
}

// band evaluates usage samples against their bands and returns the intents
// of the ones that cross one; a sample whose capacity row is missing parks.
func (b *batch) band(ctx context.Context, samples []intent) ([]intent, error) {
	if len(samples) == 0 {
		return nil, nil
	}
	// Samples of one subscription come from any partition (cvi_usage is
	// keyed by sample id), so a batch may hold them out of order: evaluate
	// them in source order, or the later one would make the earlier late.
	slices.SortStableFunc(samples, func(x, y intent) int {
		c, ok := x.Position.Compare(y.Position)
		if !ok {
			return 0
		}
		return c
	})
	todo := make([]intent, 0, len(samples))
	bs := make([]BandSample, 0, len(samples))
	for _, s := range samples {
		th, byLevel := b.e.thresholdTypes(s.Table)
		if len(byLevel) == 0 {
			continue
		}
		subRef := RowRef{th.CapacityTable, s.Next.Str(th.CapacityRef)}
		sub := b.rows[subRef]
		if sub == nil {
			b.park(s, subRef)
			continue
		}
		pct, ok := percent(th, s.Next, sub)
		if !ok {
			if s.from != nil {
				b.commit.Unpark = append(b.commit.Unpark, *s.from)
			}
			continue
		}
		s.Percent = pct
		todo = append(todo, s)
		bs = append(bs, BandSample{Key: subRef.ID, Position: s.Position, Percent: pct})
	}
	if len(bs) == 0 {
		return nil, nil
	}
	res, err := b.e.st.Bands(ctx, b.e.cfg.Bands, bs)
	if err != nil {
		return nil, fmt.Errorf("evaluate %d usage samples: %w", len(bs), err)
	}
	var out []intent
	for i, in := range todo {
		_, byLevel := b.e.thresholdTypes(in.Table)
		var t *entry
		switch {
		case res[i].Over:
			t = byLevel[catalog.LevelOver]
		case res[i].Usage:
			t = byLevel[catalog.LevelUsage]
		}
		if t == nil {
			if in.from != nil {
				b.commit.Unpark = append(b.commit.Unpark, *in.from)
			}
			continue
		}
		in.Type = t.ID
		out = append(out, in)
	}
	return out, nil
}

// pending is one intent resolved to recipients, waiting for the emitted check.
type pending struct {
	in *intent // in the intents build was given
	t  *entry
	r  refs
	to []schemas.Recipient
	// keys are the index of each recipient's job key in the batch's keys
	// (build), and of whether it was emitted before.
	keys []int
}

// build resolves intents to recipients (or parks them), drops keys already
// emitted, renders and emits jobs. An intent left with no valid recipient, or
// with more than Config.MaxRecipients, is dead-lettered; so is every email of
// a change whose jobs together pass Config.MaxChangeOutput.
func (b *batch) build(ctx context.Context, intents []intent) error {
	ps := make([]pending, 0, len(intents))
	keys := make([]string, 0, 2*len(intents))
	seen := make(map[string]bool, 2*len(intents))
	for i := range intents {
		in := &intents[i]
		t := b.e.types[in.Type]
		r, missing := b.resolve(*in)
		if missing != nil {
			b.park(*in, *missing)
			continue
		}
		if in.from != nil {
			b.commit.Unpark = append(b.commit.Unpark, *in.from)
		}
		res := recipients(t.EmailType, *in, r)
		b.counts.RecipientsRefused += len(res.refused)
		if reason := b.refuseRecipients(t, res); reason != "" {
			b.dlq = append(b.dlq, DeadLetter{Cause: in.dlqCause(), Reason: reason})
			continue
		}
		// The recipients are kept in res.to's own array (filtered in place).
		p := pending{in: in, t: t, r: r, to: res.to[:0], keys: make([]int, 0, len(res.to))}
		base := in.base()
		for _, to := range res.to {
			k := jobKey(base, to.Address)
			if seen[k] {
				continue
			}
			seen[k] = true
			p.to = append(p.to, to)
			p.keys = append(p.keys, len(keys))
			keys = append(keys, k)
		}
		if len(p.to) > 0 {
			ps = append(ps, p)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	emitted, err := b.e.st.Emitted(ctx, keys)
	if err != nil {
		return fmt.Errorf("check %d emitted keys: %w", len(keys), err)
	}
	// Jobs are kept per change and emitted whole, or dead-lettered whole when
	// the change's output passes the cap: each job made is appended to jobs
	// and owned (owner) by its change's output, and placed in change order
	// once every change's size is known (as made, when each change's jobs
	// were made one after another and none is capped).
	type output struct {
		n, size int
		cause   cdc.Cause
	}
	var outs []output
	byChange := map[change]int{}                   // index into outs
	jobs := make([]schemas.EmailJob, 0, len(keys)) // a job per key at most
	owner := make([]int, 0, len(keys))
	madeBy := make([]int, len(ps)) // each pending's output, -1 for none
	for pi := range ps {
		p := &ps[pi]
		madeBy[pi] = -1
		n := len(jobs)
		if jobs = b.emit(p, keys, emitted, jobs); len(jobs) == n {
			continue // no job: a change is listed once it has one
		}
		c := changeOf(p.in)
		oi, known := byChange[c]
		if !known {
			oi = len(outs)
			byChange[c] = oi
			outs = append(outs, output{cause: p.in.dlqCause()})
		}
		madeBy[pi] = oi
		o := &outs[oi]
		for _, j := range jobs[n:] {
			o.size += len(j.Subject) + len(j.HTML) + len(j.Text) + len(j.Data)
			owner = append(owner, oi)
		}
		o.n += len(jobs) - n
	}
	capped := make([]bool, len(outs))
	for oi, o := range outs {
		if o.size > b.e.cfg.MaxChangeOutput {
			var types []string
			for pi := range ps {
				if madeBy[pi] == oi {
					types = append(types, string(ps[pi].t.ID))
				}
			}
			b.dlq = append(b.dlq, DeadLetter{Cause: o.cause, Reason: fmt.Sprintf(
				"output cap: %d jobs of %d bytes from one change (%s), more than %d (--max-change-output): none sent",
				o.n, o.size, strings.Join(types, ", "), b.e.cfg.MaxChangeOutput)})
			capped[oi] = true
		}
	}
	first := len(b.jobs)
	b.jobs = placeJobs(b.jobs, jobs, owner, capped)
	b.commit.Emitted = slices.Grow(b.commit.Emitted, len(b.jobs)-first)
	for _, j := range b.jobs[first:] {
		b.commit.Emitted = append(b.commit.Emitted, j.Key)
	}
	return nil
}

// placeJobs appends jobs to dst grouped by owner: owner[k] is the owner of
// jobs[k], owners numbered in the order of their first job. Owners come in
// that order, each one's jobs in the order made; the jobs of a capped owner
// are left out. When every owner's jobs were made one after another (owner
// never decreases) and none is capped, jobs is returned as it is if dst is
// empty.
func placeJobs(dst, jobs []schemas.EmailJob, owner []int, capped []bool) []schemas.EmailJob {
	grouped := !slices.Contains(capped, true)
	for k := 1; grouped && k < len(owner); k++ {
		grouped = owner[k] >= owner[k-1]
	}
	switch {
	case grouped && len(dst) == 0:
		return jobs
	case grouped:
		return append(dst, jobs...)
	}
	// at[o] is where owner o's next job goes.
	n := make([]int, len(capped))
	for _, o := range owner {
		n[o]++
	}
	at, total := make([]int, len(capped)), len(dst)
	for o := range capped {
		if !capped[o] {
			at[o], total = total, total+n[o]
		}
	}
	first := len(dst)
	dst = slices.Grow(dst, total-first)[:total]
	for k, j := range jobs {
		if o := owner[k]; !capped[o] {
			dst[at[o]] = j
			at[o]++
		}
	}
	return dst
}

// change names the source change of an intent: its record, or, for a fired
// timer (no offset), the intent itself (base).
type change struct {
	topic     string
	partition int32
	offset    int64
	base      string
}

// changeOf is the source change an intent came from.
func changeOf(in *intent) change {
	if in.Src.Offset < 0 {
		return change{offset: -1, base: in.base()}
	}
	return change{topic: in.Src.Topic, partition: in.Src.Partition, offset: in.Src.Offset}
}

// refuseRecipients is the dead-letter reason of an email whose recipients
// cannot be mailed ("" when they can): none valid, or more than the cap.
func (b *batch) refuseRecipients(t *entry, res resolved) string {
	switch {
	case len(res.to) == 0 && len(res.refused) == 0:
		return fmt.Sprintf("no valid recipient for %s: no address given", t.ID)
	case len(res.to) == 0:
		return fmt.Sprintf("no valid recipient for %s: %d refused (%s)", t.ID, len(res.refused), firstReasons(res.refused, 5))
	case len(res.to) > b.e.cfg.MaxRecipients:
		return fmt.Sprintf("too many recipients for %s: %d, at most %d (--max-recipients): none sent", t.ID, len(res.to), b.e.cfg.MaxRecipients)
	}
	return ""
}

// firstReasons joins up to n reasons and says how many more there are.
func firstReasons(reasons []string, n int) string {
	if len(reasons) <= n {
		return strings.Join(reasons, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(reasons[:n], "; "), len(reasons)-n)
}

// emit appends to dst the jobs of one intent, one per recipient not yet
// emitted: the subject rendered, the bodies' template data (the send stage
// renders them). A subject that does not render, or a link the templates
// would refuse, is dead-lettered (dst is returned as it was).
func (b *batch) emit(p *pending, keys []string, emitted []bool, dst []schemas.EmailJob) []schemas.EmailJob {
	fresh := false
	for _, k := range p.keys {
		fresh = fresh || !emitted[k]
	}
	if !fresh {
		return dst
	}
	// A partner's row is read once for the whole batch (b.rows): so is its
	// branding made once.
	brand, ok := b.brands[p.r.partnerID]
	if !ok {
		brand = templates.BrandingOf(p.r.partner)
		b.brands[p.r.partnerID] = brand
	}
	d := templates.Data{
		Type: string(p.t.ID), Brand: brand,
		Entity: p.in.Next, Previous: p.in.Prev,
		Company: p.r.company, Partner: p.r.partner, User: p.r.user, Subscription: p.r.subscription,
		Days: p.in.Days, Percent: p.in.Percent, Link: b.e.link(p.t, p.in.Next),
	}
	b.subject.Reset()
	if err := p.t.subject.Execute(&b.subject, d); err != nil {
		b.dlq = append(b.dlq, DeadLetter{Cause: p.in.dlqCause(), Reason: fmt.Sprintf("render subject of %s: %v", p.t.ID, err)})
		return dst
	}
	d.Subject = templates.SanitizeHeader(b.subject.String())
	// The bodies are rendered by the send stage from the job's data; what
	// would make rendering fail for sure is refused here.
	if err := templates.CheckLink(d.Link); err != nil {
		b.dlq = append(b.dlq, DeadLetter{Cause: p.in.dlqCause(), Reason: fmt.Sprintf("render %s: %v", p.t.ID, err)})
		return dst
	}
	// One buffer per batch for the data's JSON: data copies it out.
	raw, err := templates.JobData{Template: p.t.Template, Data: d}.AppendJSONCached(b.dataBuf[:0], &b.rowJSON)
	b.dataBuf = raw[:0]
	if err != nil {
		b.dlq = append(b.dlq, DeadLetter{Cause: p.in.dlqCause(), Reason: fmt.Sprintf("render %s: %v", p.t.ID, err)})
		return dst
	}
	data := string(raw)
	from, ok := b.from[brand.FromName]
	if !ok {
		from = (&mail.Address{Name: address.DisplayName(brand.FromName), Address: b.e.cfg.FromAddress}).String()
		b.from[brand.FromName] = from
	}
	// The reply-to is an address like any other: one that the rule refuses
	// is left out (replies go to the sender) and counted, the email goes.
	var replyTo string
	if brand.ReplyTo != "" {
		if c, err := address.Canonical(brand.ReplyTo); err == nil {
			replyTo = c
		} else {
			b.counts.ReplyToRefused++
		}
	}
	for i, to := range p.to {
		if emitted[p.keys[i]] {
			continue
		}
		dst = append(dst, schemas.EmailJob{
			Key: keys[p.keys[i]], Type: string(p.t.ID), Section: string(p.t.Section),
			CompanyID: p.r.companyID, To: to, From: from, ReplyTo: replyTo,
			Subject: d.Subject, Data: data,
			Tags:  p.t.tags,
			Cause: p.in.Src, CreatedAt: b.clock(*p.in),
		})
	}
	return dst
}
