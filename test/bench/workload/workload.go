// Package workload generates the mixed CDC stream of issue 10, deterministically
// from a seed: a Debezium snapshot (op "r") of the Partner Portal and Pexip
// Service tables, then a stream of changes in a fixed mix, as Debezium 3.x's
// PostgreSQL connector writes them with the JsonConverter (plain JSON, or with
// the {"schema", "payload"} wrapper).
//
// # The default workload
//
// Snapshot, 80,050 rows: 50 partners, 20,000 companies, one license plan per
// company (20,000), 5,000 portal users, 5,000 interop subscriptions, 15,000
// end users, 15,000 endpoints. Then 300,000 changes: 35 % endpoint
// enable/disable, 20 % usage samples, 15 % end-user changes, 10 %
// license-plan changes, 10 % company changes, 5 % portal-user logins, 5 %
// team rooms. The sub-kinds of each (and so the emails the catalog derives,
// about 1.2 per change, and the timer emails over the stream's time span,
// about 1,500) are documented on the generator functions and counted in
// Summary.Kinds.
//
// # Shape
//
// Records come in stream order. Every record's key is {"id": ...}, so a row's
// changes stay in one partition, except cvi_usage's, keyed
// {"subscription_id": ...} as the connector configurations portalmail ships
// set it (message.key.columns), so a subscription's samples stay in order. Positions are PostgreSQL's: every snapshot
// row carries the snapshot's LSN and transaction, each change a new
// transaction at an increasing LSN (source.lsn, source.sequence), its commit
// time (source.ts_ms/ts_us/ts_ns) spread evenly over Config.Span after
// Config.Start, the envelope's ts_ms a few milliseconds later. Updates carry
// no before image (PostgreSQL's default replica identity).
//
// The stream is built so that the emails it produces do not depend on the
// order in which a consumer reads its partitions: transitions depend only on
// a row's own earlier changes (one partition), company edits never change an
// address, and each usage subscription gets at most one sample above its
// bands (so hysteresis cannot be reordered). The process stage, reading 78
// partitions in any order, must therefore emit exactly the transition emails
// `portalmail simulate` emits for the file.
package workload

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Config describes a workload. Default returns issue 10's.
type Config struct {
	// Seed makes the workload: equal configurations give byte-identical records.
	Seed uint64
	// Start is the end of the snapshot and the start of the changes; Span
	// is how long the changes take (their commit times are spread evenly).
	Start time.Time
	Span  time.Duration
	// Wrap writes keys and values inside the JsonConverter's
	// {"schema": ..., "payload": ...} wrapper (schemas.enable=true).
	Wrap bool

	// Snapshot sizes. Every company has one license plan.
	Partners, Companies, PortalUsers, Subscriptions, EndUsers, Endpoints int
	// Changes is the number of changes after the snapshot.
	Changes int
}

// Default is the workload of issue 10.
func Default() Config {
	return Config{
		Seed: 1, Start: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), Span: 30 * 24 * time.Hour,
		Partners: 50, Companies: 20000, PortalUsers: 5000, Subscriptions: 5000, EndUsers: 15000, Endpoints: 15000,
		Changes: 300000,
	}
}

// SnapshotRows is how many snapshot records the configuration gives.
func (c Config) SnapshotRows() int {
	return c.Partners + 2*c.Companies + c.PortalUsers + c.Subscriptions + c.EndUsers + c.Endpoints
}

// Validate reports a configuration the generator cannot build.
func (c Config) Validate() error {
	switch {
	case c.Partners < 10 || c.Partners%10 != 0:
		return fmt.Errorf("workload: partners must be a positive multiple of 10, not %d", c.Partners)
	case c.Companies < c.Partners || c.PortalUsers < 20*c.Partners || c.Subscriptions < 10 || c.EndUsers < 20 || c.Endpoints < 1:
		return fmt.Errorf("workload: snapshot too small (companies at least the partners, portal users 20 per partner, subscriptions 10, end users 20, endpoints 1)")
	case c.Changes < 0 || c.Span <= 0 || c.Start.IsZero():
		return fmt.Errorf("workload: changes, span and start must be set")
	}
	return nil
}

// Phase says whether a record belongs to the snapshot or to the changes.
type Phase int

// Phases of the stream.
const (
	Snapshot Phase = iota + 1
	Changes
)

// Record is one Kafka record of the stream.
type Record struct {
	Topic string // Debezium's topic under the default prefixes, e.g. "portal.public.companies"
	Key   []byte // JSON: {"id": ...} ({"subscription_id": ...} for cvi_usage), wrapped when Config.Wrap
	Value []byte // JSON Debezium envelope, wrapped when Config.Wrap
	Op    string // "r", "c" or "u"
	Phase Phase
	// At is the change's commit time (source.ts_ms).
	At time.Time
}

// Summary counts what Generate produced.
type Summary struct {
	Config   Config
	Snapshot int
	Changes  int
	// Records counts records by topic and op ("portal.public.companies" → "u" → n).
	Records map[string]map[string]int
	// Kinds counts the changes by kind and sub-kind ("endpoint.disable" → n).
	Kinds map[string]int
}

func (s *Summary) count(r Record, kind string) {
	if s.Records[r.Topic] == nil {
		s.Records[r.Topic] = map[string]int{}
	}
	s.Records[r.Topic][r.Op]++
	if r.Phase == Snapshot {
		s.Snapshot++
		return
	}
	s.Changes++
	s.Kinds[kind]++
}

// Generate builds the workload and hands every record, in stream order, to
// emit; it stops at emit's first error.
func Generate(cfg Config, emit func(Record) error) (Summary, error) {
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	g := newGen(cfg, emit)
	if err := g.snapshot(); err != nil {
		return g.sum, err
	}
	if err := g.changes(); err != nil {
		return g.sum, err
	}
	return g.sum, nil
}

// gen holds the rows as they are at the point of the stream being generated.
type gen struct {
	cfg  Config
	rng  *rand.Rand
	emit func(Record) error
	sum  Summary
	env  map[*table]*envelope

	lsn, lastLSN, txID int64
	now                time.Time // commit time of the record being generated

	partners      []row
	companies     []row
	plans         []row
	portalUsers   []row
	subs          []row
	endUsers      []row
	endpoints     []row
	rooms         []row
	usageSeq      int
	snapCompanies int // companies of the snapshot (changes target only those)

	usersOf   [][]int     // per partner: indices of active portal users who log in and order
	trialCos  *set        // companies in status trial
	invited   *set        // end users in status invited
	trialEUs  []int       // end users with a trial expiry
	cviSubs   []int       // teams_cvi subscriptions
	activeTVs *set        // team rooms active
	idleTVs   *set        // team rooms inactive
	hot       map[int]int // usage-change ordinal → the subscription that gets its one high sample then
}

func newGen(cfg Config, emit func(Record) error) *gen {
	g := &gen{
		cfg: cfg, emit: emit, rng: rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15)),
		sum: Summary{Config: cfg, Records: map[string]map[string]int{}, Kinds: map[string]int{}},
		env: map[*table]*envelope{}, lsn: 24_000_000, txID: 780,
		trialCos: newSet(), invited: newSet(), activeTVs: newSet(), idleTVs: newSet(), hot: map[int]int{},
	}
	for _, t := range tables() {
		g.env[t] = newEnvelope(t, cfg.Wrap)
	}
	return g
}

// put emits one record of t.
func (g *gen) put(t *table, op string, after row, phase Phase, snapMark string, kind string) error {
	src := source{at: g.now, snapshot: snapMark, txID: g.txID, lsn: g.lsn, lastLSN: g.lastLSN}
	src.emitted = g.now.Add(time.Duration(3+g.rng.IntN(40)) * time.Millisecond)
	e := g.env[t]
	id, _ := after[t.key()].(string)
	r := Record{Topic: t.topic, Key: e.key(id), Value: e.value(op, nil, after, src), Op: op, Phase: phase, At: g.now}
	g.sum.count(r, kind)
	return g.emit(r)
}

// ----------------------------------------------------------------- snapshot

// Shares of the snapshot that shape the timer emails over the stream's span
// (with the default 30-day span): plans ending 3–75 days after the start
// with renewal unset (45/30/15/3-day reminders), trial companies and trial
// end users expiring 7–60 days after it (23/7-day reminders), and dormant
// portal users whose 150-day inactivity warning falls in the span.
const (
	expiringPlansPer10k   = 200 // of the plans with renewal unset
	expiringTrialsPer1000 = 50  // of the trial companies
	trialEndUsersPer1000  = 67  // of the end users have a trial expiry ...
	expiringEUTrialsPer1k = 200 // ... and of those, this many expire in the window
	dormantPer1000        = 25  // of the active portal users
)

func (g *gen) days(from, to float64) time.Duration {
	return time.Duration((from + g.rng.Float64()*(to-from)) * float64(24*time.Hour))
}

func (g *gen) snapshot() error {
	c := g.cfg
	// Debezium reads the snapshot in one transaction at one LSN, table by
	// table, over a few minutes before the stream starts.
	rows := c.SnapshotRows()
	step := 5 * time.Millisecond
	g.now = c.Start.Add(-time.Duration(rows+1) * step)
	created := c.Start.AddDate(-2, 0, 0)
	g.buildPartners(created)
	g.buildCompanies(created)
	g.buildPlans(created)
	g.buildPortalUsers(created)
	g.buildSubscriptions(created)
	g.buildEndUsers(created)
	g.buildEndpoints(created)
	g.snapCompanies = len(g.companies)

	type batch struct {
		t    *table
		rows []row
	}
	all := []batch{{&tPartners, g.partners}, {&tCompanies, g.companies}, {&tLicensePlans, g.plans},
		{&tPortalUsers, g.portalUsers}, {&tInteropSubscriptions, g.subs}, {&tEndUsers, g.endUsers}, {&tEndpoints, g.endpoints}}
	n := 0
	for bi, b := range all {
		for i, r := range b.rows {
			mark := "true"
			switch {
			case n == 0:
				mark = "first"
			case n == rows-1:
				mark = "last"
			case i == 0:
				mark = "first_in_data_collection"
			case i == len(b.rows)-1 && bi < len(all)-1:
				mark = "last_in_data_collection"
			}
			if err := g.put(b.t, "r", r, Snapshot, mark, ""); err != nil {
				return err
			}
			n++
			g.now = g.now.Add(step)
		}
	}
	g.lastLSN = g.lsn
	return nil
}

func pid(i int) string { return fmt.Sprintf("p-%02d", i) }

// buildPartners: a tenth distributors, two tenths resellers under a
// distributor (no partner account manager on order and renewal emails),
// the rest direct; a third opted into trial, interop, service and renewal
// emails, a third into service ones, a third into none; half have a second
// order recipient and a trial-activity list.
func (g *gen) buildPartners(created time.Time) {
	for i := range g.cfg.Partners {
		id := pid(i)
		dom := id + ".example"
		r := row{"id": id, "name": fmt.Sprintf("Partner %02d AS", i), "type": "direct",
			"contact_email": "partner@" + dom, "otj_distribution_list": []string{"otj@" + dom},
			"order_recipients": []string{"orders@" + dom}, "trial_activity_recipients": []string{},
			"brand_name": fmt.Sprintf("Brand %02d", i), "logo_url": "https://cdn." + dom + "/logo.png",
			"primary_color": fmt.Sprintf("#%06x", (i*2654435761)&0xffffff), "from_name": fmt.Sprintf("Partner %02d", i),
			"reply_to": "support@" + dom, "created_at": created, "updated_at": created}
		switch i % 10 {
		case 0:
			r["type"] = "distributor"
		case 2, 3:
			r["type"], r["distributor_id"] = "reseller", pid(i/10*10)
		}
		switch i % 3 {
		case 0:
			r["optional_notifications"] = []string{"trial", "interop", "service", "renewal"}
		case 1:
			r["optional_notifications"] = []string{"service"}
		default:
			r["optional_notifications"] = []string{}
		}
		if i%2 == 0 {
			r["order_recipients"] = []string{"orders@" + dom, "sales@" + dom}
			r["trial_activity_recipients"] = []string{"trials@" + dom}
		}
		g.partners = append(g.partners, r)
	}
}

func cid(i int) string { return fmt.Sprintf("c-%05d", i) }

// buildCompanies: company i belongs to partner i mod partners; a tenth are
// in trial (expiring 7–60 days after the start for expiringTrialsPer1000 of
// them, else 60–365 days).
func (g *gen) buildCompanies(created time.Time) {
	for i := range g.cfg.Companies {
		p := i % g.cfg.Partners
		pdom := pid(p) + ".example"
		r := row{"id": cid(i), "partner_id": pid(p), "name": fmt.Sprintf("Company %05d", i), "status": "active",
			"contact_email": "it@" + cid(i) + ".example", "optional_notifications": []string{},
			"partner_account_manager_email": fmt.Sprintf("am%d@%s", i%3, pdom),
			"pexip_account_manager_email":   fmt.Sprintf("pam%d@pexip.example", i%20),
			"created_at":                    created, "updated_at": created}
		switch i % 4 {
		case 0:
			r["optional_notifications"] = []string{"trial", "service"}
		case 1:
			r["optional_notifications"] = []string{"service"}
		}
		if i%10 == 3 {
			r["status"] = "trial"
			if g.rng.IntN(1000) < expiringTrialsPer1000 {
				r["trial_expires_at"] = g.cfg.Start.Add(g.days(7, 60))
			} else {
				r["trial_expires_at"] = g.cfg.Start.Add(g.days(60, 365))
			}
			g.trialCos.add(i)
		}
		g.companies = append(g.companies, r)
	}
}

func planID(i int) string { return fmt.Sprintf("lp-%05d", i) }

// buildPlans: one plan per company; two fifths with renewal unset (of which
// expiringPlansPer10k end 3–75 days after the start), two fifths renew, one
// fifth expire; 30 % monthly; a fifth not invoiced yet; a seventh with OTJ.
func (g *gen) buildPlans(created time.Time) {
	for i := range g.cfg.Companies {
		r := row{"id": planID(i), "company_id": cid(i), "product": []string{"Enterprise", "Business", "Meetings"}[i%3],
			"billing_period": "annual", "quantity": int64(5 + g.rng.IntN(200)), "renewal": "unset", "status": "active",
			"includes_otj": i%7 == 0, "invoiced": i%5 != 0, "created_at": created, "updated_at": created}
		if i%10 < 3 {
			r["billing_period"] = "monthly"
		}
		switch i % 5 {
		case 2, 3:
			r["renewal"] = "renew"
		case 4:
			r["renewal"] = "expire"
		}
		end := g.cfg.Start.Add(g.days(76, 730))
		if r["renewal"] == "unset" && g.rng.IntN(10000) < expiringPlansPer10k {
			end = g.cfg.Start.Add(g.days(3, 75))
		}
		r["end_date"] = time.Date(end.Year(), end.Month(), end.Day(), 0, 0, 0, 0, time.UTC)
		g.plans = append(g.plans, r)
	}
}

func puID(i int) string { return fmt.Sprintf("pu-%05d", i) }

// buildPortalUsers: partner users (user i of partner i mod partners); one in
// twenty invited; of the active, dormantPer1000 last logged in 120–150 days
// before the start (their inactivity warning falls due in the span: they do
// not log in again), the rest 1–119 days before (they log in during the
// stream and place orders). Runs after buildPlans, whose ordering users it
// fills in.
func (g *gen) buildPortalUsers(created time.Time) {
	g.usersOf = make([][]int, g.cfg.Partners)
	for i := range g.cfg.PortalUsers {
		p := i % g.cfg.Partners
		r := row{"id": puID(i), "email": fmt.Sprintf("user%05d@%s.example", i, pid(p)), "full_name": fmt.Sprintf("User %05d", i),
			"partner_id": pid(p), "status": "active", "created_at": created, "updated_at": created}
		switch {
		case i%20 == 7:
			r["status"], r["activation_token"] = "invited", fmt.Sprintf("tok-pu-%05d", i)
		case g.rng.IntN(1000) < dormantPer1000:
			r["last_login_at"] = g.cfg.Start.Add(-g.days(120, 150))
		default:
			r["last_login_at"] = g.cfg.Start.Add(-g.days(1, 119))
			g.usersOf[p] = append(g.usersOf[p], i)
		}
		g.portalUsers = append(g.portalUsers, r)
	}
	for i, r := range g.plans {
		r["updated_by_user_id"] = g.orderingUser(i)
	}
}

// orderingUser is a portal user of company c's partner who places orders.
func (g *gen) orderingUser(c int) string {
	us := g.usersOf[c%g.cfg.Partners]
	return puID(us[g.rng.IntN(len(us))])
}

// buildSubscriptions: subscription i belongs to company 4i mod companies;
// eight in ten teams_cvi (one in twenty of those with 5 licenses, below the
// 10 where usage mails start), one google_interop, one teams_rooms.
func (g *gen) buildSubscriptions(created time.Time) {
	for i := range g.cfg.Subscriptions {
		r := row{"id": fmt.Sprintf("is-%05d", i), "company_id": cid(4 * i % g.cfg.Companies), "status": "active",
			"concurrent_call_licenses": int64(10), "created_at": created, "updated_at": created}
		switch i % 10 {
		case 8:
			r["kind"] = "google_interop"
		case 9:
			r["kind"] = "teams_rooms"
		default:
			r["kind"] = "teams_cvi"
			if i%20 != 1 {
				r["concurrent_call_licenses"] = int64(10 + g.rng.IntN(91))
			} else {
				r["concurrent_call_licenses"] = int64(5)
			}
			g.cviSubs = append(g.cviSubs, i)
		}
		g.subs = append(g.subs, r)
	}
}

func euID(i int) string { return fmt.Sprintf("eu-%05d", i) }

// buildEndUsers: spread over the companies; one in twenty invited, one in
// twenty deactivated; a tenth classic; trialEndUsersPer1000 have a trial
// expiry (expiringEUTrialsPer1k of those 7–60 days after the start).
func (g *gen) buildEndUsers(created time.Time) {
	for i := range g.cfg.EndUsers {
		r := g.endUser(i, i*7919%g.cfg.Companies, created)
		switch i % 20 {
		case 5:
			r["status"], r["activation_token"] = "invited", fmt.Sprintf("tok-eu-%05d", i)
			g.invited.add(i)
		case 6:
			r["status"], r["password_set_at"] = "deactivated", created
		default:
			r["password_set_at"] = created
			if g.rng.IntN(1000) < trialEndUsersPer1000 {
				if g.rng.IntN(1000) < expiringEUTrialsPer1k {
					r["trial_expires_at"] = g.cfg.Start.Add(g.days(7, 60))
				} else {
					r["trial_expires_at"] = g.cfg.Start.Add(g.days(61, 200))
				}
				g.trialEUs = append(g.trialEUs, i)
			}
		}
		g.endUsers = append(g.endUsers, r)
	}
}

func (g *gen) endUser(i, company int, created time.Time) row {
	return row{"id": euID(i), "company_id": cid(company), "email": fmt.Sprintf("eu%05d@%s.example", i, cid(company)),
		"display_name": fmt.Sprintf("End User %05d", i), "status": "active", "classic": i%10 == 9,
		"created_at": created, "updated_at": created}
}

// buildEndpoints: spread over the companies, four in five enabled.
func (g *gen) buildEndpoints(created time.Time) {
	for i := range g.cfg.Endpoints {
		g.endpoints = append(g.endpoints, row{"id": fmt.Sprintf("ep-%05d", i), "company_id": cid(i * 104729 % g.cfg.Companies),
			"name": fmt.Sprintf("Room system %05d", i), "enabled": i%5 != 0, "created_at": created, "updated_at": created})
	}
}

// ----------------------------------------------------------------- changes

// The change mix: kinds and their shares in thousandths.
var mix = []struct {
	kind  string
	share int
}{
	{"endpoint", 350}, {"usage", 200}, {"end_user", 150}, {"plan", 100}, {"company", 100}, {"login", 50}, {"team_room", 50},
}

func (g *gen) changes() error {
	n := g.cfg.Changes
	kinds := make([]string, 0, n)
	usage := 0
	for _, m := range mix {
		k := n * m.share / 1000
		if m.kind == "endpoint" {
			k = n - n*650/1000 // the remainder, so the kinds add up to n
		}
		if m.kind == "usage" {
			usage = k
		}
		for range k {
			kinds = append(kinds, m.kind)
		}
	}
	g.rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	g.planHotSamples(usage)
	u := 0
	for i, k := range kinds {
		// (in float64: Span × i overflows int64 nanoseconds beyond ~3,500 changes of a 30-day span)
		g.now = g.cfg.Start.Add(time.Duration(float64(g.cfg.Span) * float64(i+1) / float64(n))).Truncate(time.Millisecond)
		g.txID++
		g.lsn += int64(120 + g.rng.IntN(480))
		var err error
		switch k {
		case "endpoint":
			err = g.endpointToggle()
		case "usage":
			err = g.usageSample(u)
			u++
		case "end_user":
			err = g.endUserChange()
		case "plan":
			err = g.planChange()
		case "company":
			err = g.companyChange()
		case "login":
			err = g.login()
		case "team_room":
			err = g.teamRoomChange()
		}
		if err != nil {
			return err
		}
		g.lastLSN = g.lsn
	}
	return nil
}

// update emits an update of r (already changed) with updated_at now.
func (g *gen) update(t *table, r row, kind string) error {
	if _, ok := r["updated_at"]; ok {
		r["updated_at"] = g.now
	}
	return g.put(t, "u", r.clone(), Changes, "false", kind)
}

// endpointToggle: an endpoint is disabled or enabled again (2 emails:
// partner and customer).
func (g *gen) endpointToggle() error {
	r := g.endpoints[g.rng.IntN(len(g.endpoints))]
	on := !r["enabled"].(bool)
	r["enabled"] = on
	kind := "endpoint.disable"
	if on {
		kind = "endpoint.enable"
	}
	return g.update(&tEndpoints, r, kind)
}

// planHotSamples picks, for three in four teams_cvi subscriptions, the one
// usage sample of the stream that lands in a band: two thirds at 80–100 %
// of licenses (interop.teams_usage), one third above 100 %
// (interop.teams_oversubscribed); 2 emails each where licenses >= 10. Every
// other sample stays below 66 % (which re-arms the bands).
func (g *gen) planHotSamples(usage int) {
	hot := min(len(g.cviSubs)*3/4, usage)
	subs := g.rng.Perm(len(g.cviSubs))[:hot]
	for k, ord := range g.rng.Perm(usage)[:hot] {
		g.hot[ord] = g.cviSubs[subs[k]]
	}
}

// usageSample: a new cvi_usage row for a teams_cvi subscription.
func (g *gen) usageSample(ord int) error {
	s, hot := g.hot[ord]
	if !hot {
		s = g.cviSubs[g.rng.IntN(len(g.cviSubs))]
	}
	sub := g.subs[s]
	lic := sub["concurrent_call_licenses"].(int64)
	calls := lic * int64(5+g.rng.IntN(61)) / 100
	kind := "usage.low"
	if hot {
		if g.rng.IntN(3) < 2 {
			pct := int64(80 + g.rng.IntN(21))
			calls = (lic*pct + 99) / 100
			kind = "usage.band_80"
		} else {
			calls = lic + 1 + int64(g.rng.IntN(int(lic/2)+1))
			kind = "usage.over_100"
		}
	}
	g.usageSeq++
	r := row{"id": fmt.Sprintf("cu-%07d", g.usageSeq), "company_id": sub["company_id"], "subscription_id": sub["id"],
		"concurrent_calls": calls, "sampled_at": g.now}
	return g.put(&tCVIUsage, "c", r, Changes, "false", kind)
}

// endUserChange, by weight: 35 profile edits (no email), 15 recovery
// requests, 8 2FA resets, 12 deactivations or reactivations, 15 new users
// invited, 10 invited users setting their password (welcome), 5 trials
// extended (end user and the partner's trial-activity list). One email each
// otherwise; an action that does not apply to the user drawn falls back to
// a profile edit.
func (g *gen) endUserChange() error {
	w := g.rng.IntN(100)
	switch {
	case w < 35:
	case w < 50:
		r := g.endUsers[g.rng.IntN(len(g.endUsers))]
		r["recovery_requested_at"] = g.now
		return g.update(&tEndUsers, r, "end_user.recover")
	case w < 58:
		r := g.endUsers[g.rng.IntN(len(g.endUsers))]
		r["twofa_reset_at"] = g.now
		return g.update(&tEndUsers, r, "end_user.twofa_reset")
	case w < 70:
		r := g.endUsers[g.rng.IntN(len(g.endUsers))]
		switch r["status"] {
		case "active":
			r["status"] = "deactivated"
			return g.update(&tEndUsers, r, "end_user.deactivate")
		case "deactivated":
			r["status"] = "active"
			return g.update(&tEndUsers, r, "end_user.reactivate")
		}
	case w < 85:
		i := len(g.endUsers)
		r := g.endUser(i, g.rng.IntN(g.snapCompanies), g.now)
		r["status"], r["activation_token"] = "invited", fmt.Sprintf("tok-eu-%05d", i)
		g.endUsers = append(g.endUsers, r)
		g.invited.add(i)
		return g.put(&tEndUsers, "c", r.clone(), Changes, "false", "end_user.invite")
	case w < 95:
		if i, ok := g.invited.pick(g.rng); ok {
			g.invited.remove(i)
			r := g.endUsers[i]
			r["status"], r["password_set_at"] = "active", g.now
			return g.update(&tEndUsers, r, "end_user.password_set")
		}
	default:
		if len(g.trialEUs) > 0 {
			r := g.endUsers[g.trialEUs[g.rng.IntN(len(g.trialEUs))]]
			if t, ok := r["trial_expires_at"].(time.Time); ok && r["status"] != "deactivated" {
				r["trial_expires_at"] = t.Add(14 * 24 * time.Hour)
				return g.update(&tEndUsers, r, "end_user.trial_extend")
			}
		}
	}
	i := g.rng.IntN(len(g.endUsers))
	r := g.endUsers[i]
	r["display_name"] = fmt.Sprintf("End User %05d (%d)", i, g.txID)
	return g.update(&tEndUsers, r, "end_user.edit")
}

// planChange, by weight: 50 quantity changes (order.quantity_change to the
// ordering user, the partner and Pexip account managers and the partner's
// order recipients), 8 monthly → annual (order.billing_change, same), 5
// renewal → renew and 5 → expire (renewal.will_renew / will_not_renew), 4
// renewals confirmed (renewal.renewed, otj.renewal with OTJ), 2 expired, 2
// cancellations of plans not invoiced (order.canceled), 4 new plans
// (order.new), 20 edits that mail nobody (invoicing, product name). The
// ordering user changes with every change. An action that does not apply to
// the plan drawn falls back to an edit.
func (g *gen) planChange() error {
	w := g.rng.IntN(100)
	if w >= 76 && w < 80 {
		c := g.rng.IntN(g.snapCompanies)
		i := len(g.plans)
		end := g.now.AddDate(1, 0, 0)
		r := row{"id": planID(i), "company_id": cid(c), "product": "Meetings", "billing_period": "monthly",
			"quantity": int64(1 + g.rng.IntN(50)), "end_date": time.Date(end.Year(), end.Month(), end.Day(), 0, 0, 0, 0, time.UTC),
			"renewal": "unset", "status": "active", "includes_otj": false, "invoiced": false,
			"updated_by_user_id": g.orderingUser(c), "created_at": g.now, "updated_at": g.now}
		g.plans = append(g.plans, r)
		return g.put(&tLicensePlans, "c", r.clone(), Changes, "false", "plan.new")
	}
	i := g.rng.IntN(len(g.plans))
	r := g.plans[i]
	company := 0
	fmt.Sscanf(r["company_id"].(string), "c-%d", &company)
	r["updated_by_user_id"] = g.orderingUser(company)
	active := r["status"] == "active"
	switch {
	case w < 50:
		q := r["quantity"].(int64) + int64(1+g.rng.IntN(20))*[]int64{-1, 1}[g.rng.IntN(2)]
		if q < 1 {
			q = r["quantity"].(int64) + 1
		}
		r["quantity"] = q
		return g.update(&tLicensePlans, r, "plan.quantity")
	case w < 58:
		if r["billing_period"] == "monthly" {
			r["billing_period"] = "annual"
			return g.update(&tLicensePlans, r, "plan.billing_annual")
		}
	case w < 63:
		if active && r["renewal"] != "renew" {
			r["renewal"] = "renew"
			return g.update(&tLicensePlans, r, "plan.renew")
		}
	case w < 68:
		if active && r["renewal"] != "expire" {
			r["renewal"] = "expire"
			return g.update(&tLicensePlans, r, "plan.expire")
		}
	case w < 72:
		if active && r["renewal"] == "renew" {
			r["status"] = "renewed"
			r["end_date"] = r["end_date"].(time.Time).AddDate(1, 0, 0)
			return g.update(&tLicensePlans, r, "plan.renewed")
		}
	case w < 74:
		if active {
			r["status"] = "expired"
			return g.update(&tLicensePlans, r, "plan.expired")
		}
	case w < 76:
		if active && r["invoiced"] == false {
			r["status"] = "canceled"
			return g.update(&tLicensePlans, r, "plan.canceled")
		}
	}
	if r["invoiced"] == false && g.rng.IntN(2) == 0 {
		r["invoiced"] = true
	} else {
		r["product"] = []string{"Enterprise", "Business", "Meetings", "Enterprise Plus"}[g.rng.IntN(4)]
	}
	return g.update(&tLicensePlans, r, "plan.edit")
}

// companyChange, by weight: 83 edits of the name (no email; addresses never
// change), 2 new companies in a 30-day trial (trial.company_created to the
// partner and its trial-activity list), 8 trials extended by 30 days
// (trial.company_extended to the customer, the partner if opted in and the
// trial-activity list), 4 trials ended (trial.company_ended, same), 3 trials
// converted to active (no email).
func (g *gen) companyChange() error {
	w := g.rng.IntN(100)
	switch {
	case w < 83:
	case w < 85:
		i := len(g.companies)
		p := g.rng.IntN(g.cfg.Partners)
		r := row{"id": cid(i), "partner_id": pid(p), "name": fmt.Sprintf("Company %05d", i), "status": "trial",
			"trial_expires_at": g.now.Add(30 * 24 * time.Hour), "contact_email": "it@" + cid(i) + ".example",
			"optional_notifications": []string{"trial"}, "partner_account_manager_email": "am0@" + pid(p) + ".example",
			"pexip_account_manager_email": "pam0@pexip.example", "created_at": g.now, "updated_at": g.now}
		g.companies = append(g.companies, r)
		g.trialCos.add(i)
		return g.put(&tCompanies, "c", r.clone(), Changes, "false", "company.new_trial")
	default:
		if i, ok := g.trialCos.pick(g.rng); ok {
			r := g.companies[i]
			switch {
			case w < 93:
				r["trial_expires_at"] = r["trial_expires_at"].(time.Time).Add(30 * 24 * time.Hour)
				return g.update(&tCompanies, r, "company.trial_extend")
			case w < 97:
				g.trialCos.remove(i)
				r["status"] = "trial_ended"
				return g.update(&tCompanies, r, "company.trial_end")
			default:
				g.trialCos.remove(i)
				r["status"] = "active"
				return g.update(&tCompanies, r, "company.trial_convert")
			}
		}
	}
	i := g.rng.IntN(g.snapCompanies)
	r := g.companies[i]
	r["name"] = fmt.Sprintf("Company %05d (%d)", i, g.txID)
	return g.update(&tCompanies, r, "company.edit")
}

// login: an active, not dormant portal user logs in (moves the 150-day
// inactivity timer; no email).
func (g *gen) login() error {
	us := g.usersOf[g.rng.IntN(len(g.usersOf))]
	r := g.portalUsers[us[g.rng.IntN(len(us))]]
	r["last_login_at"] = g.now
	return g.update(&tPortalUsers, r, "login")
}

// teamRoomChange, by weight: 50 new team rooms, active
// (service.team_room_activated to the customer and the partner if opted in),
// 35 deactivated (service.team_room_deactivated, a quarter as "trial
// ended"), 15 reactivated. Until rooms exist, deactivations become new rooms.
func (g *gen) teamRoomChange() error {
	w := g.rng.IntN(100)
	switch {
	case w >= 50 && w < 85:
		if i, ok := g.activeTVs.pick(g.rng); ok {
			g.activeTVs.remove(i)
			g.idleTVs.add(i)
			r := g.rooms[i]
			r["status"], r["deactivation_reason"] = "inactive", "manual"
			if g.rng.IntN(4) == 0 {
				r["deactivation_reason"] = "trial_ended"
			}
			return g.update(&tTeamVMRs, r, "team_room.deactivate")
		}
	case w >= 85:
		if i, ok := g.idleTVs.pick(g.rng); ok {
			g.idleTVs.remove(i)
			g.activeTVs.add(i)
			r := g.rooms[i]
			r["status"], r["deactivation_reason"] = "active", nil
			return g.update(&tTeamVMRs, r, "team_room.reactivate")
		}
	}
	i := len(g.rooms)
	c := g.rng.IntN(g.snapCompanies)
	r := row{"id": fmt.Sprintf("tv-%05d", i), "company_id": cid(c), "name": fmt.Sprintf("Team room %05d", i),
		"status": "active", "deactivation_reason": nil, "created_at": g.now, "updated_at": g.now}
	g.rooms = append(g.rooms, r)
	g.activeTVs.add(i)
	return g.put(&tTeamVMRs, "c", r.clone(), Changes, "false", "team_room.new")
}

// set is a set of indices with O(1) add, remove and uniform pick.
type set struct {
	items []int
	at    map[int]int
}

func newSet() *set { return &set{at: map[int]int{}} }

func (s *set) add(i int) {
	if _, ok := s.at[i]; ok {
		return
	}
	s.at[i] = len(s.items)
	s.items = append(s.items, i)
}

func (s *set) remove(i int) {
	j, ok := s.at[i]
	if !ok {
		return
	}
	last := s.items[len(s.items)-1]
	s.items[j], s.at[last] = last, j
	s.items = s.items[:len(s.items)-1]
	delete(s.at, i)
}

func (s *set) pick(rng *rand.Rand) (int, bool) {
	if len(s.items) == 0 {
		return 0, false
	}
	return s.items[rng.IntN(len(s.items))], true
}
