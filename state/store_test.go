package state

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/portalmail/portalmail/state/statetest"
	"github.com/redis/go-redis/v9"
)

func TestOptionsDefaults(t *testing.T) {
	got := New(nil, Options{}).Options()
	want := Options{Prefix: "pm", EmittedTTL: 30 * 24 * time.Hour, SentTTL: 30 * 24 * time.Hour,
		DeletedRetention: 7 * 24 * time.Hour, ParkChunk: 500, UsageTTL: 48 * time.Hour, TrimMaxRows: 200_000}
	if got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
	if got := New(nil, Options{DeletedRetention: time.Minute, Prefix: "x"}).Options(); got.DeletedRetention != time.Minute || got.Prefix != "x" {
		t.Errorf("options not kept: %+v", got)
	}
}

func TestParseURLs(t *testing.T) {
	tests := []struct {
		url     string
		kind    string // "simple", "cluster", "failover", "error"
		addrs   []string
		master  string
		pass    string
		db      int
		sntPass string
	}{
		{url: "redis://127.0.0.1:6390/0", kind: "simple", addrs: []string{"127.0.0.1:6390"}},
		{url: "redis://:secret@h:1/3", kind: "simple", addrs: []string{"h:1"}, pass: "secret", db: 3},
		{url: "rediss://u:p@h:6380", kind: "simple", addrs: []string{"h:6380"}, pass: "p"},
		{url: "h:6379", kind: "simple", addrs: []string{"h:6379"}},
		{url: "a:7000,b:7001, c:7002", kind: "cluster", addrs: []string{"a:7000", "b:7001", "c:7002"}},
		{url: "redis://:pw@a:7000,redis://b:7001", kind: "cluster", addrs: []string{"a:7000", "b:7001"}, pass: "pw"},
		{url: "redis+sentinel://:pw@s1:26379,s2:26380/mymaster", kind: "failover", addrs: []string{"s1:26379", "s2:26380"}, master: "mymaster", pass: "pw"},
		{url: "redis+sentinel://s1/mymaster/2?sentinel_password=sp", kind: "failover", addrs: []string{"s1:26379"}, master: "mymaster", db: 2, sntPass: "sp"},
		{url: "redis+sentinel://s1:1/m?db=5", kind: "failover", addrs: []string{"s1:1"}, master: "m", db: 5},
		{url: "redis+sentinel://s1:1", kind: "error"},
		{url: "redis+sentinel://s1:1/", kind: "error"},
		{url: "", kind: "error"},
		{url: "redis://h:x:y:z", kind: "error"},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			var (
				kind   string
				addrs  []string
				master string
				pass   string
				db     int
				sp     string
			)
			raw := tc.url
			switch {
			case tc.kind == "error":
				c, err := newClient(raw)
				if err == nil {
					_ = c.Close()
					t.Fatalf("no error")
				}
				return
			case tc.kind == "failover":
				o, err := parseSentinelURL(raw[len("redis+sentinel://"):])
				if err != nil {
					t.Fatal(err)
				}
				kind, addrs, master, pass, db, sp = "failover", o.Addrs, o.MasterName, o.Password, o.DB, o.SentinelPassword
			case tc.kind == "cluster":
				o, err := parseClusterList(raw)
				if err != nil {
					t.Fatal(err)
				}
				kind, addrs, pass = "cluster", o.Addrs, o.Password
			default:
				kind = "simple"
			}
			c, err := newClient(raw)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			switch cc := c.(type) {
			case *redis.ClusterClient:
				if kind != "cluster" {
					t.Fatalf("got a cluster client")
				}
			case *redis.Client:
				if kind == "simple" {
					o := cc.Options()
					addrs, pass, db = []string{o.Addr}, o.Password, o.DB
				}
			default:
				t.Fatalf("client type %T", c)
			}
			if kind != tc.kind || !reflect.DeepEqual(addrs, tc.addrs) || master != tc.master || pass != tc.pass || db != tc.db || sp != tc.sntPass {
				t.Errorf("got %s %v master=%q pass=%q db=%d sentinel_password=%q", kind, addrs, master, pass, db, sp)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	url := os.Getenv("REDIS_URL")
	if url == "" {
		_, env := newTestStore(t)
		url = "redis://" + env.mr.Addr() + "/0"
	}
	c, err := Open(ctx, url)
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	_ = c.Close()
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if c, err := Open(cctx, "redis://127.0.0.1:1/0"); err == nil {
		_ = c.Close()
		t.Errorf("Open of a closed port succeeded")
	}
}

// TestRoundTrips checks that every method costs one round trip whatever
// the batch size (two for a script's first use on a server).
func TestRoundTrips(t *testing.T) {
	s, env := newTestStore(t)
	ctx := context.Background()
	// The cold path (EVALSHA answered NOSCRIPT, then EVAL) runs on a fresh
	// miniredis; a real server may have the scripts cached already, and is not
	// SCRIPT FLUSHed under other users' feet.
	hook := &countHook{}
	env.c.AddHook(hook)
	const n = 500
	changes := benchChanges(n, 0)
	cost := func(name string, max int64, f func() error) {
		t.Helper()
		hook.n.Store(0)
		hook.seen = nil
		if err := f(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := hook.n.Load(); got > max {
			t.Errorf("%s: %d round trips, want <= %d: %v", name, got, max, hook.seen)
		}
	}
	applyAll := func() error { _, err := s.ApplyChanges(ctx, changes); return err }
	// On Cluster ApplyChanges reads the truncate hash first: one more.
	var extra int64
	if s.perKeyScripts() {
		extra = 1
	}
	cost("ApplyChanges, cold", 2+extra, applyAll)
	changes = benchChanges(n, 1)
	cost("ApplyChanges", 1+extra, applyAll)
	cost("ApplyChanges replay", 1+extra, applyAll)
	if env.mr != nil {
		// a flushed script cache (restart, failover) costs one more round trip
		if err := env.c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		cost("ApplyChanges after SCRIPT FLUSH", 2, func() error {
			res, err := s.ApplyChanges(ctx, changes)
			if err == nil && (res[0].Outcome != processor.Replay || res[n-1].Outcome != processor.Replay) {
				t.Errorf("after flush: %v, %v", res[0].Outcome, res[n-1].Outcome)
			}
			return err
		})
		if fmt.Sprint(hook.seen) != "[pipeline:evalsha pipeline:eval]" {
			t.Errorf("after flush: %v", hook.seen)
		}
	}

	var refs []processor.RowRef
	var keys []string
	var samples []processor.BandSample
	var w processor.Writes
	var c processor.Commit
	for i, ch := range changes {
		refs = append(refs, processor.RowRef{Table: ch.Table, ID: ch.ID})
		keys = append(keys, ch.ID)
		samples = append(samples, processor.BandSample{Key: fmt.Sprint(i % 50), Position: cdc.Position{Kind: cdc.LSN, N: int64(i + 1)}, Percent: i % 130})
		tr := processor.TimerRef{Set: fmt.Sprint("set-", i%8), Member: ch.ID, Due: t0.Add(time.Duration(i) * time.Minute)}
		w.Schedule = append(w.Schedule, tr)
		w.Park = append(w.Park, processor.Parked{On: refs[i], Key: "k" + ch.ID, Set: tr.Set, Deadline: tr.Due})
		c.Emitted = append(c.Emitted, ch.ID)
		c.Acked = append(c.Acked, tr)
		c.Unpark = append(c.Unpark, w.Park[i])
	}
	cost("Rows", 1, func() error { _, err := s.Rows(ctx, refs); return err })
	cost("Emitted", 1, func() error { _, err := s.Emitted(ctx, keys); return err })
	cost("Bands", 2, func() error { _, err := s.Bands(ctx, catalog.DefaultBands, samples); return err })
	cost("Bands, warm", 1, func() error { _, err := s.Bands(ctx, catalog.DefaultBands, samples); return err })
	// Parks read the truncate hash first.
	cost("Write, cold", 3, func() error { _, err := s.Write(ctx, w); return err })
	cost("Write", 2, func() error { _, err := s.Write(ctx, w); return err })
	cost("Write, timers only", 1, func() error { _, err := s.Write(ctx, processor.Writes{Schedule: w.Schedule}); return err })
	cost("StillParked", 1, func() error { _, err := s.StillParked(ctx, w.Park); return err })
	cost("DueTimers", 2, func() error {
		_, err := s.DueTimers(ctx, []string{"set-1"}, t0.Add(time.Hour), 100, time.Minute)
		return err
	})
	cost("NextDue", 2, func() error { _, _, err := s.NextDue(ctx, []string{"set-0", "set-1", "set-2"}); return err })
	c.Rows = statetest.Committed(changes...).Rows
	cost("Commit", 2, func() error { return s.Commit(ctx, c) })
	cost("Commit, warm", 1, func() error { return s.Commit(ctx, c) })
	cost("ClaimSend", 2, func() error { _, err := s.ClaimSend(ctx, "x", "o", time.Minute); return err })
	cost("MarkSent", 1, func() error { return s.MarkSent(ctx, "x", "id") })
}

// benchChanges builds n changes to n distinct rows of a few tables, at
// positions that grow with round.
func benchChanges(n, round int) []processor.RowChange { return benchChangesTo(n, n, round) }

// benchChangesTo builds n changes to rows distinct rows (change i to row
// i mod rows), at positions that grow with i and round.
func benchChangesTo(n, rows, round int) []processor.RowChange {
	tables := []string{"portal.public.companies", "portal.public.license_plans", "service.public.end_users", UsageTable}
	out := make([]processor.RowChange, n)
	for i := range out {
		r := i % rows
		id := fmt.Sprintf("%08d-aaaa-bbbb-cccc-%012d", r, r)
		out[i] = processor.RowChange{Change: cdc.Change{
			Table: tables[r%len(tables)], ID: id, Op: cdc.OpUpdate,
			Position: cdc.Position{Kind: cdc.LSN, N: 9_000_000_000_000_000%cdc.MaxLSN + int64(round)*1_000_000 + int64(i)},
			After: cdc.Row{
				"id": id, "company_id": "c-" + id[:8], "status": "active", "quantity": int64(round),
				"email": "user" + id[:8] + "@example.com", "optional_notifications": []string{"trial", "service"},
				"trial_expires_at": "2026-06-01T00:00:00Z", "classic": false,
			},
		}}
	}
	return out
}

func BenchmarkApplyChanges(b *testing.B) {
	for _, mode := range []struct {
		name   string
		perRow bool
	}{{"chunked", false}, {"per-row", true}} {
		b.Run(mode.name, func(b *testing.B) { benchApplyChanges(b, Options{SingleRowScripts: mode.perRow}) })
	}
}

func benchApplyChanges(b *testing.B, o Options) {
	s, _ := newTestStore(b, o)
	ctx := context.Background()
	const batch = 500
	rounds := make([][]processor.RowChange, 8)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := rounds[i%len(rounds)]
		if r == nil || i >= len(rounds) {
			r = benchChanges(batch, i)
			rounds[i%len(rounds)] = r
		}
		b.StartTimer()
		res, err := s.ApplyChanges(ctx, r)
		if err != nil {
			b.Fatal(err)
		}
		if res[0].Outcome != processor.Applied {
			b.Fatalf("outcome %v", res[0].Outcome)
		}
		// Committed as a transaction would (untimed): without it every
		// row's uncommitted history grows with b.N.
		b.StopTimer()
		if err := s.Commit(ctx, statetest.Committed(r...)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "changes/s")
}

// TestOpenErrorsShowNoSecret: whatever is wrong with a Redis URL (malformed,
// unreachable), the error names it with its user, password and query
// hidden, and quotes no part of them.
func TestOpenErrorsShowNoSecret(t *testing.T) {
	const pw = "S3cr3tPw"
	cases := []struct{ name, url, want string }{
		{"bad escape in the password", "redis://u:" + pw + "%zz@h:1/0", "redis://***@h:1/0: malformed: an invalid %-escape"},
		{"space in the password", "redis://u:S3cr3t Pw@h:1/0", "redis://***@h:1/0: malformed: an invalid character in the user or password"},
		{"control character", "redis://u:" + pw + "\x01@h:1/0", "malformed: a control character"},
		{"bad database", "rediss://u:" + pw + "@h:1/x", `redis URL rediss://***@h:1/x: redis: invalid database number: "x"`},
		{"unknown option", "redis://u:" + pw + "@h:1/0?S3cr3tPw=1", "redis URL redis://***@h:1/0?***: redis: unexpected option: ***"},
		{"sentinel bad escape", "redis+sentinel://u:" + pw + "%zz@h/m", "redis+sentinel://***@h/m: the password has an invalid %-escape"},
		{"sentinel query bad escape", "redis+sentinel://h/m?sentinel_password=" + pw + "%zz", "redis+sentinel://h/m?***: the query has an invalid %-escape"},
		{"cluster element malformed", "h1:1,redis://u:" + pw + "%zz@h2:1", "redis cluster URL ***@h2:1: address 2: malformed"},
		{"cluster, comma in the password", "redis://u:S3c,r3tPw@h2:1", "malformed"},
		{"unreachable with a password", "redis://u:" + pw + "@127.0.0.1:1/0", "redis ping redis://***@127.0.0.1:1/0: "},
		{"unreachable sentinel with a password", "redis+sentinel://127.0.0.1:1/m?sentinel_password=" + pw, "redis ping redis+sentinel://127.0.0.1:1/m?***: "},
	}
	for _, c := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		rc, err := Open(ctx, c.url)
		cancel()
		if err == nil {
			rc.Close()
			t.Errorf("%s: Open succeeded", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q, want it to hold %q", c.name, err, c.want)
		}
		for _, part := range []string{"S3c", "r3t", "Pw", "zz"} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("%s: error %q shows %q", c.name, err, part)
			}
		}
	}
	t.Logf("%d URLs", len(cases))
}

// BenchmarkApplySteady is the process stage's steady state: batches of
// 1,000 updates to rows that exist (their images about 600 bytes), each
// batch applied and then committed (its rows trimmed), as a transaction
// does. "hot" sends the batch's 1,000 changes to 4 rows (250 each between two
// commits: a row edited in a loop), whose uncommitted history every apply
// consults. Reports changes/s and Redis's own CPU per change (INFO cpu: the
// cost one Redis carries for every instance).
func BenchmarkApplySteady(b *testing.B) {
	for _, mode := range []struct {
		name   string
		perRow bool
		rows   int
	}{{"chunked", false, 1000}, {"per-row", true, 1000}, {"hot", false, 4}} {
		b.Run(mode.name, func(b *testing.B) {
			s, _ := newTestStore(b, Options{SingleRowScripts: mode.perRow})
			ctx := context.Background()
			const batch = 1000
			var applyCPU, commitCPU float64 // Redis CPU seconds of each half
			apply := func(round int) {
				chs := benchChangesTo(batch, mode.rows, round)
				for i := range chs {
					chs[i].After["notes"] = strings.Repeat("n", 300)
				}
				c0 := redisCPU(b, s)
				res, err := s.ApplyChanges(ctx, chs)
				if err != nil {
					b.Fatal(err)
				}
				if res[len(res)-1].Outcome != processor.Applied {
					b.Fatalf("outcome %v", res[len(res)-1].Outcome)
				}
				c1 := redisCPU(b, s)
				if err := s.Commit(ctx, statetest.Committed(chs...)); err != nil {
					b.Fatal(err)
				}
				applyCPU += c1 - c0
				commitCPU += redisCPU(b, s) - c1
			}
			apply(0) // the rows exist
			applyCPU, commitCPU = 0, 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				apply(i + 1)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "changes/s")
			b.ReportMetric((applyCPU+commitCPU)*1e6/float64(b.N*batch), "redis-µs/change")
			b.ReportMetric(applyCPU*1e6/float64(b.N*batch), "apply-redis-µs/change")
			b.ReportMetric(commitCPU*1e6/float64(b.N*batch), "commit-redis-µs/change")
		})
	}
}

// redisCPU is the Redis server's CPU time so far, in seconds.
func redisCPU(b *testing.B, s *Store) float64 {
	info, err := s.c.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, l := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return total
}

// BenchmarkBands evaluates a warm batch's usage samples: 800 samples of 700
// subscriptions (most one sample a batch, as in the benchmark workload), each
// subscription's band state already holding its recent results.
func BenchmarkBands(b *testing.B) {
	s, _ := newTestStore(b)
	ctx := context.Background()
	const keys, per = 700, 800
	round := func(r int) {
		samples := make([]processor.BandSample, per)
		for i := range samples {
			samples[i] = processor.BandSample{Key: fmt.Sprintf("is-%05d", i%keys),
				Position: cdc.Position{Kind: cdc.LSN, N: int64(r*per + i + 1)}, Percent: (r*7 + i) % 120}
		}
		if _, err := s.Bands(ctx, catalog.DefaultBands, samples); err != nil {
			b.Fatal(err)
		}
	}
	for r := range recentBandResults + 1 {
		round(r) // every band remembers its full list of recent results
	}
	cpu0 := redisCPU(b, s)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		round(recentBandResults + 1 + i)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*per)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric((redisCPU(b, s)-cpu0)*1e6/float64(b.N*per), "redis-µs/sample")
}
