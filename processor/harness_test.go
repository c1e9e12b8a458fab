package processor_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/portalmail/portalmail/state"
	"github.com/portalmail/portalmail/templates"
)

// harness is an engine over real state: the Redis at REDIS_URL (a real
// redis-server in CI), else a fresh miniredis.
type harness struct {
	t      testing.TB
	eng    *processor.Engine
	store  *state.Store
	tmpl   *templates.Set
	cfg    processor.Config
	rounds *atomic.Int64 // Redis round trips
	pos    int64
	offset int64
}

// t0 is the scenarios' clock start: 2026-01-05T10:00:00Z.
var t0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

type roundHook struct{ n *atomic.Int64 }

func (h roundHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h roundHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h roundHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	return newHarnessConfig(t, processor.Config{})
}

// newHarnessConfig is newHarness with engine settings (Links are set here).
func newHarnessConfig(t testing.TB, cfg processor.Config) *harness {
	t.Helper()
	var rc *redis.Client
	if url := os.Getenv("REDIS_URL"); url != "" {
		opt, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		rc = redis.NewClient(opt)
	} else {
		mr := miniredis.RunT(t)
		rc = redis.NewClient(&redis.Options{Addr: mr.Addr()})
	}
	t.Cleanup(func() { rc.Close() })
	rounds := &atomic.Int64{}
	rc.AddHook(roundHook{rounds})
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "test-" + hex.EncodeToString(b)
	store := state.New(rc, state.Options{Prefix: prefix})
	t.Cleanup(func() { deleteKeys(rc, prefix+":*") })
	tmpl, err := templates.Parse()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Links = map[catalog.Site]string{
		catalog.SitePortal: "https://portal.test", catalog.SiteService: "https://service.test", catalog.SiteAnalytics: "https://analytics.test",
	}
	eng, err := processor.New(catalog.Default(), store, tmpl, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, eng: eng, store: store, tmpl: tmpl, cfg: cfg, rounds: rounds, pos: 1000}
}

// instance is another engine with the harness's catalog, templates and
// configuration over st: a second process instance (st wrapping h.store
// shares its state).
func (h *harness) instance(st processor.State) *processor.Engine {
	h.t.Helper()
	eng, err := processor.New(catalog.Default(), st, h.tmpl, h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return eng
}

// change builds a change at the next source position (topic partition 0).
func (h *harness) change(table string, op cdc.Op, after cdc.Row) cdc.Change {
	h.pos += 10
	h.offset++
	id := after.Str("id")
	ch := cdc.Change{Table: table, Op: op, ID: id, After: after, Position: cdc.Position{Kind: cdc.LSN, N: h.pos},
		SourceTime: t0, TsMs: t0, Cause: cdc.Cause{Topic: table, Partition: 0, Offset: h.offset}}
	if op == cdc.OpDelete {
		ch.Before, ch.After = after, nil
	}
	return ch
}

// apply runs one batch at now and commits its output.
func (h *harness) apply(now time.Time, chs ...cdc.Change) processor.Output {
	h.t.Helper()
	out := h.applyNoCommit(now, chs...)
	h.commit(out)
	return out
}

func (h *harness) applyNoCommit(now time.Time, chs ...cdc.Change) processor.Output {
	h.t.Helper()
	out, err := h.eng.Apply(context.Background(), now, chs)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *harness) commit(out processor.Output) {
	h.t.Helper()
	if err := h.eng.Commit(context.Background(), out.Commit); err != nil {
		h.t.Fatal(err)
	}
}

// fire fires the timers of every table's partition-0 set at now and commits.
func (h *harness) fire(now time.Time) processor.Output {
	h.t.Helper()
	var sets []string
	for table := range cdc.Contract {
		sets = append(sets, processor.TimerSet(table, 0))
	}
	sort.Strings(sets)
	out, err := h.eng.Fire(context.Background(), now, sets)
	if err != nil {
		h.t.Fatal(err)
	}
	h.commit(out)
	return out
}

// seed applies the reference rows most tests need, as snapshot reads.
func (h *harness) seed() {
	h.t.Helper()
	out := h.apply(t0,
		h.change(cdc.Partners, cdc.OpRead, cdc.Row{"id": "p-direct", "name": "Direct Partner AS", "type": "direct",
			"contact_email": "partner@direct.example", "optional_notifications": []string{"trial", "interop", "service"},
			"order_recipients": []string{"orders@direct.example"}, "trial_activity_recipients": []string{"trials@direct.example"},
			"otj_distribution_list": []string{"otj@direct.example"}, "brand_name": "Direct Video", "primary_color": "#0055aa"}),
		h.change(cdc.Partners, cdc.OpRead, cdc.Row{"id": "p-resell", "name": "Small Reseller", "type": "reseller",
			"distributor_id": "p-dist", "contact_email": "partner@resell.example"}),
		h.change(cdc.Companies, cdc.OpRead, h.acme()),
		h.change(cdc.Companies, cdc.OpRead, cdc.Row{"id": "c-globex", "partner_id": "p-resell", "name": "Globex",
			"status": "active", "contact_email": "ops@globex.example",
			"partner_account_manager_email": "ram@resell.example", "pexip_account_manager_email": "pam@pexip.example"}),
		h.change(cdc.PortalUsers, cdc.OpRead, cdc.Row{"id": "u-buyer", "email": "buyer@direct.example",
			"full_name": "Bea Buyer", "partner_id": "p-direct", "status": "active"}),
	)
	if len(out.Jobs) != 0 {
		h.t.Fatalf("snapshot reads mailed: %v", summary(out.Jobs))
	}
}

func (h *harness) acme() cdc.Row {
	return cdc.Row{"id": "c-acme", "partner_id": "p-direct", "name": "Acme Corp", "status": "active",
		"contact_email": "it@acme.example", "optional_notifications": []string{"service"},
		"partner_account_manager_email": "am@direct.example", "pexip_account_manager_email": "pam@pexip.example"}
}

// plan is a license plan row of c-acme ending on end (a date).
func plan(id, end string, extra cdc.Row) cdc.Row {
	r := cdc.Row{"id": id, "company_id": "c-acme", "product": "Enterprise", "billing_period": "monthly",
		"quantity": int64(10), "end_date": end, "renewal": "unset", "status": "active",
		"includes_otj": false, "invoiced": false, "updated_by_user_id": "u-buyer"}
	for k, v := range extra {
		r[k] = v
	}
	return r
}

// summary renders jobs as sorted "type to subject" lines.
func summary(jobs []schemas.EmailJob) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.Type+" "+j.To.Address+" "+j.Subject)
	}
	sort.Strings(out)
	return out
}

func keys(jobs []schemas.EmailJob) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.Key)
	}
	sort.Strings(out)
	return out
}

func types(jobs []schemas.EmailJob) []string {
	seen := map[string]bool{}
	var out []string
	for _, j := range jobs {
		if !seen[j.Type] {
			seen[j.Type] = true
			out = append(out, j.Type)
		}
	}
	sort.Strings(out)
	return out
}

func join(s []string) string { return strings.Join(s, ",") }

// deleteKeys removes a test's keys from a shared Redis.
func deleteKeys(rc *redis.Client, pattern string) {
	ctx := context.Background()
	iter := rc.Scan(ctx, 0, pattern, 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 1000 {
			rc.Unlink(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		rc.Unlink(ctx, batch...)
	}
}

// rendered renders a job's bodies from its template data, as the send stage
// does.
func rendered(t testing.TB, j schemas.EmailJob) schemas.EmailJob {
	t.Helper()
	tmpl, err := scenarioTemplates()
	if err != nil {
		t.Fatal(err)
	}
	html, text, _, err := tmpl.RenderJobData([]byte(j.Data))
	if err != nil {
		t.Fatalf("render %s: %v", j.Key, err)
	}
	j.HTML, j.Text = html, text
	return j
}
