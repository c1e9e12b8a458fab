package state

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/schemas/cdc"
)

// These tests cover what is particular to the Redis store: its key layout,
// its TTLs as Redis applies them, and its script cache. The behaviour every
// State shows is the conformance suite's (conformance_test.go).

var t0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

const tCompanies = "portal.public.companies"

func lsn(n int64) cdc.Position { return cdc.Position{Kind: cdc.LSN, N: n} }

func chg(table, id string, pos int64, after cdc.Row) processor.RowChange {
	op := cdc.OpUpdate
	if after == nil {
		op = cdc.OpDelete
	}
	return processor.RowChange{Change: cdc.Change{Table: table, ID: id, Op: op, After: after, Position: lsn(pos)}}
}

func apply(t *testing.T, s *Store, chs ...processor.RowChange) []processor.ApplyResult {
	t.Helper()
	res, err := s.ApplyChanges(context.Background(), chs)
	if err != nil {
		t.Fatalf("ApplyChanges: %v", err)
	}
	return res
}

// TestKeyLayout pins the layout doc.go documents.
func TestKeyLayout(t *testing.T) {
	s, env := newTestStore(t)
	ctx := context.Background()
	p := s.Options().Prefix
	ch := chg(tCompanies, "c1", 42, cdc.Row{"id": "c1", "status": "trial"})
	apply(t, s, ch, chg(tCompanies, "c1", 43, cdc.Row{"id": "c1", "status": "active"}))
	entries, err := env.c.LRange(ctx, p+":{r:portal.public.companies:c1}", 0, -1).Result()
	want := []string{`lsn:43|||{"id":"c1","status":"active"}`, `lsn:42|||{"id":"c1","status":"trial"}`, "lsn:43 lsn:42"}
	if err != nil || strings.Join(entries, "\n") != strings.Join(want, "\n") {
		t.Errorf("history = %q, %v; want %q", entries, err, want)
	}
	if err := s.Commit(ctx, processor.Commit{Emitted: []string{"k1"}, Rows: []processor.RowPosition{{RowRef: processor.RowRef{Table: tCompanies, ID: "c1"}, Position: lsn(43)}}}); err != nil {
		t.Fatal(err)
	}
	entries, _ = env.c.LRange(ctx, p+":{r:portal.public.companies:c1}", 0, -1).Result()
	if strings.Join(entries, "\n") != want[0]+"\nlsn:43" {
		t.Errorf("history after the commit = %q", entries)
	}
	if n, _ := env.c.Exists(ctx, p+":{k:k1}").Result(); n != 1 {
		t.Errorf("emitted marker %s:{k:k1} missing", p)
	}
	due := time.UnixMilli(1_700_000_000_000)
	if _, err := s.Write(ctx, processor.Writes{Schedule: []processor.TimerRef{{Set: "portal-3", Member: "m", Due: due}}}); err != nil {
		t.Fatal(err)
	}
	if sc, err := env.c.ZScore(ctx, p+":{t:portal-3}", "m").Result(); err != nil || sc != 1_700_000_000_000 {
		t.Errorf("timer score = %v, %v", sc, err)
	}
	apply(t, s, processor.RowChange{Change: cdc.Change{Table: tCompanies, Op: cdc.OpTruncate, Position: lsn(50)}})
	if v, _ := env.c.HGet(ctx, p+":{trunc}", tCompanies).Result(); v != "lsn:50" {
		t.Errorf("truncate hash = %q", v)
	}
	if got := processor.ParkMember(processor.Parked{On: processor.RowRef{Table: tCompanies, ID: "c<1>"}, Key: "i&1"}); got != `["p","portal.public.companies","c<1>","i&1"]` {
		t.Errorf("ParkMember = %s", got)
	}
}

// waitGone polls until key no longer exists (Redis expired it), up to 5 s.
func waitGone(t *testing.T, c redis.UniversalClient, keys ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int64
		for _, k := range keys { // one key per call: keys of several slots (Cluster)
			e, err := c.Exists(context.Background(), k).Result()
			if err != nil {
				t.Fatal(err)
			}
			n += e
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %v still exist", n, keys)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestExpiries: usage rows, deleted rows and emitted markers carry their TTL
// and Redis expires them; a row that comes back after a delete loses it.
// On a real server this waits for Redis's own expiry (TTLs of 300 ms).
func TestExpiries(t *testing.T) {
	const ttl = 300 * time.Millisecond
	s, env := newTestStore(t, Options{UsageTTL: time.Hour, DeletedRetention: ttl, EmittedTTL: ttl})
	ctx := context.Background()
	apply(t, s,
		chg(UsageTable, "u1", 1, cdc.Row{"id": "u1", "concurrent_calls": int64(3)}),
		chg(tCompanies, "live", 1, cdc.Row{"id": "live"}),
		chg(tCompanies, "gone", 1, cdc.Row{"id": "gone"}), chg(tCompanies, "gone", 2, nil),
		chg(tCompanies, "back", 1, cdc.Row{"id": "back"}), chg(tCompanies, "back", 2, nil), chg(tCompanies, "back", 3, cdc.Row{"id": "back"}))
	pttl := func(key string) time.Duration {
		d, err := env.c.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := pttl(s.rowKey(UsageTable, "u1")); d <= 0 || d > time.Hour {
		t.Errorf("usage row TTL = %v; want (0, 1h]", d)
	}
	if d := pttl(s.rowKey(tCompanies, "gone")); d <= 0 || d > ttl {
		t.Errorf("deleted row TTL = %v; want (0, %v]", d, ttl)
	}
	for _, id := range []string{"live", "back"} {
		if d := pttl(s.rowKey(tCompanies, id)); d >= 0 {
			t.Errorf("row %s TTL = %v; want none", id, d)
		}
	}
	if err := s.Commit(ctx, processor.Commit{Emitted: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	if d := pttl(s.emittedKey("a")); d <= 0 || d > ttl {
		t.Errorf("marker TTL = %v, want (0, %v]", d, ttl)
	}
	if env.mr != nil {
		env.mr.FastForward(time.Second)
	}
	waitGone(t, env.c, s.rowKey(tCompanies, "gone"), s.emittedKey("a"))
	if got, _ := s.Emitted(ctx, []string{"a"}); got[0] {
		t.Error("marker outlived EmittedTTL")
	}
	n1, _ := env.c.Exists(ctx, s.rowKey(tCompanies, "live")).Result()
	n2, _ := env.c.Exists(ctx, s.rowKey(tCompanies, "back")).Result() // one key per call: Cluster
	if n := n1 + n2; n != 2 {
		t.Errorf("live rows expired: %d of 2 left", n)
	}
}

// TestDeletedRowsDoNotAccumulate: many rows created and deleted leave no
// keys behind once the retention has passed (issue: a delete's key stayed
// forever).
func TestDeletedRowsDoNotAccumulate(t *testing.T) {
	// On a real server the retention runs in real time: long enough that
	// no deleted key expires before they are counted (applying the cycles
	// takes ~0.5 s on a Cluster), short enough to wait for.
	ttl := 300 * time.Millisecond
	if os.Getenv("REDIS_URL") != "" {
		ttl = 3 * time.Second
	}
	s, env := newTestStore(t, Options{DeletedRetention: ttl})
	ctx := context.Background()
	const rows = 2000
	for cycle := range 3 {
		var batch []processor.RowChange
		for i := range rows {
			id := fmt.Sprintf("r%d", i)
			pos := int64(cycle*10 + 1)
			batch = append(batch, chg(tCompanies, id, pos, cdc.Row{"id": id}), chg(tCompanies, id, pos+1, nil))
		}
		apply(t, s, batch...)
	}
	count := func() int {
		keys, err := s.scan(ctx, s.prefix+":{r:*")
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	if n := count(); n != rows {
		t.Fatalf("%d row keys after the cycles, want %d (one per row, deleted)", n, rows)
	}
	if env.mr != nil {
		env.mr.FastForward(time.Second)
	}
	deadline := time.Now().Add(10 * time.Second)
	for count() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d deleted row keys left after the retention", count())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestScriptCacheFlushed: after SCRIPT FLUSH (a restart, a failover) every
// script still runs, by EVAL, and is cached again. It runs against a
// redis-server of its own, so that flushing does not disturb other tests
// that count round trips on the shared server; skipped without redis-server
// (plain `go test` covers the same on miniredis).
func TestScriptCacheFlushed(t *testing.T) {
	c := ownRedis(t)
	s := New(c, Options{})
	ctx := context.Background()
	hook := &countHook{}
	c.AddHook(hook)
	step := func(name string, sc *script) {
		t.Helper()
		if err := c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		hook.n.Store(0)
		hook.seen = nil
		var err error
		switch name {
		case "apply":
			_, err = s.ApplyChanges(ctx, []processor.RowChange{chg(tCompanies, "c1", 1, cdc.Row{"id": "c1"})})
		case "due":
			_, err = s.DueTimers(ctx, []string{"x/0"}, t0, 10, time.Minute)
		case "commit":
			err = s.Commit(ctx, processor.Commit{Rows: []processor.RowPosition{{RowRef: processor.RowRef{Table: tCompanies, ID: "c1"}, Position: lsn(1)}}})
		}
		if err != nil {
			t.Fatalf("%s after SCRIPT FLUSH: %v", name, err)
		}
		if fmt.Sprint(hook.seen) != "[pipeline:evalsha pipeline:eval]" {
			t.Errorf("%s after SCRIPT FLUSH: %v, want an EVALSHA refused then an EVAL", name, hook.seen)
		}
		if ok, err := c.ScriptExists(ctx, sc.sha).Result(); err != nil || !ok[0] {
			t.Fatalf("%s: script not cached again after EVAL: %v %v", name, ok, err)
		}
	}
	step("apply", scriptApplyMany)
	step("due", scriptDueMany)
	step("commit", scriptTrim)
}

// ownRedis starts a throwaway redis-server on a free loopback port.
func ownRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("REDIS_URL") != "" {
			t.Fatalf("REDIS_URL is set but redis-server is not on PATH: %v", err)
		}
		t.Skip("redis-server not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--save", "", "--appendonly", "no", "--dir", dir)
	logf, _ := os.Create(filepath.Join(dir, "redis.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait(); logf.Close() })
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	t.Cleanup(func() { c.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("redis-server did not start: %s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c
}

// TestMemoryPerRow measures what a live row costs in Redis (docs/operations.md
// quotes it): rows of the three most numerous tables, each committed (one
// history entry plus its index), on a redis-server of its own so that
// used_memory moves only with them. It logs FIGURES lines; it fails only if
// a row costs more than 2 KiB.
func TestMemoryPerRow(t *testing.T) {
	c := ownRedis(t)
	s := New(c, Options{})
	ctx := context.Background()
	used := func() int64 {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(l, "used_memory:"); ok {
				var n int64
				fmt.Sscan(v, &n)
				return n
			}
		}
		t.Fatal("no used_memory in INFO")
		return 0
	}
	rows := map[string]func(i int) cdc.Row{
		"portal.public.companies": func(i int) cdc.Row {
			return cdc.Row{"id": fmt.Sprintf("3f2a%04d-6c1e-4b7a-9d2e-%012d", i, i), "partner_id": "9b1c0d2e-1111-4a4a-8b8b-000000000001",
				"name": fmt.Sprintf("Company %d AS", i), "status": "active", "trial_expires_at": nil,
				"contact_email": fmt.Sprintf("it%d@company%d.example", i, i), "optional_notifications": []string{"service", "trial"},
				"partner_account_manager_email": "am@partner.example", "pexip_account_manager_email": "pam@pexip.example"}
		},
		"service.public.end_users": func(i int) cdc.Row {
			return cdc.Row{"id": fmt.Sprintf("7c1d%04d-6c1e-4b7a-9d2e-%012d", i, i), "company_id": "3f2a0001-6c1e-4b7a-9d2e-000000000001",
				"email": fmt.Sprintf("user%d@company.example", i), "display_name": fmt.Sprintf("User Number %d", i), "status": "active",
				"classic": false, "password_set_at": "2026-01-05T10:01:00.123456Z", "recovery_requested_at": nil, "twofa_reset_at": nil,
				"trial_expires_at": nil, "activation_token": fmt.Sprintf("tok-%032d", i)}
		},
		"service.public.endpoints": func(i int) cdc.Row {
			return cdc.Row{"id": fmt.Sprintf("e0e0%04d-6c1e-4b7a-9d2e-%012d", i, i), "company_id": "3f2a0001-6c1e-4b7a-9d2e-000000000001",
				"name": fmt.Sprintf("Meeting room %d", i), "enabled": true}
		},
	}
	const n = 20_000
	for table, row := range rows {
		before := used()
		var batch []processor.RowChange
		var commit processor.Commit
		for i := range n {
			r := row(i)
			ch := processor.RowChange{Change: cdc.Change{Table: table, ID: r.Str("id"), Op: cdc.OpRead, After: r, Position: lsn(int64(1_000_000 + i))}}
			batch = append(batch, ch)
			commit.Rows = append(commit.Rows, processor.RowPosition{RowRef: processor.RowRef{Table: table, ID: ch.ID}, Position: ch.Position})
			if len(batch) == 1000 {
				apply(t, s, batch...)
				batch = nil
			}
		}
		if err := s.Commit(ctx, commit); err != nil {
			t.Fatal(err)
		}
		per := (used() - before) / n
		t.Logf("FIGURES TestMemoryPerRow: %s: %d bytes per live row (%d rows)", table, per, n)
		if per > 2048 {
			t.Errorf("%s: %d bytes per row", table, per)
		}
	}
}
