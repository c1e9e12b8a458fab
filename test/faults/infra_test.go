package faults

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaScript runs scripts/kafka.sh (same run dir and port as the broker the
// suite uses: PORTALMAIL_RUN_DIR and KAFKA_PORT are inherited).
func kafkaScript(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("scripts/kafka.sh", args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = repoRoot, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kafka.sh %v: %v", args, err)
	}
}

// alive fails the test if a stage process has exited.
func alive(t *testing.T, ps ...*proc) {
	t.Helper()
	for _, p := range ps {
		select {
		case <-p.done:
			t.Errorf("%s exited instead of recovering by itself", p.name)
		default:
		}
	}
}

// TestBrokerDown30s stops the broker for 30 s mid-stream and starts it again
// on the same data: both stages, left running, recover by themselves and
// every email goes out once.
func TestBrokerDown30s(t *testing.T) {
	e := newEnv(t, 3)
	p := e.startProcess("process-1")
	s := e.startSend("send-1")
	e.produce(e.base()...)
	e.produce(e.endpoints(0, 50)...)
	waitFor(t, "the first 100 emails", 90*time.Second, func() bool { got, _ := e.sent(); return len(got) >= 100 })
	kafkaScript(t, "stop-broker")
	stopped := time.Now()
	time.Sleep(30 * time.Second)
	kafkaScript(t, "start-broker")
	t.Logf("broker was down %s", time.Since(stopped).Round(time.Second))
	back := time.Now()
	e.produce(e.endpoints(50, 50)...)
	waitFor(t, "all 200 emails", 4*time.Minute, func() bool { got, _ := e.sent(); return len(got) >= 200 })
	t.Logf("FIGURES %s: all emails out %s after the broker came back", t.Name(), time.Since(back).Round(100*time.Millisecond))
	e.checkExactly(endpointEmails(0, 100), 102, time.Minute)
	alive(t, p, s)
}

// TestRedisRestart restarts redis-server (appendonly yes, SIGTERM: the AOF is
// flushed) mid-stream, with changes arriving while it is down: nothing is
// lost and nothing sent twice; the stages, left running, retry until it is
// back.
func TestRedisRestart(t *testing.T) {
	e := newEnv(t, 3)
	redisRestart(t, e, redisSrv.stop, redisSrv.start)
}

// TestRedisClusterRestart is TestRedisRestart on a Redis Cluster of three
// masters (the state's per-slot path): every master stopped mid-stream,
// changes arriving while they are down, then the cluster started again.
func TestRedisClusterRestart(t *testing.T) {
	cl, err := startRedisCluster(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.stop()
	e := newEnv(t, 3)
	e.redis = cl.url()
	redisRestart(t, e, cl.stop, cl.start)
}

// redisRestart runs 100 changes (200 emails) through e, stopping Redis
// after the first 100 emails and starting it again 10 s later.
func redisRestart(t *testing.T, e *env, stop func(), start func() error) {
	p := e.startProcess("process-1")
	s := e.startSend("send-1")
	e.produce(e.base()...)
	e.produce(e.endpoints(0, 50)...)
	waitFor(t, "the first 100 emails", 90*time.Second, func() bool { got, _ := e.sent(); return len(got) >= 100 })
	stop()
	down := time.Now()
	e.produce(e.endpoints(50, 50)...)
	time.Sleep(10 * time.Second)
	if got, _ := e.sent(); len(got) != 100 {
		t.Errorf("%d emails sent while Redis was down", len(got)-100)
	}
	if err := start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("redis was down %s", time.Since(down).Round(time.Second))
	back := time.Now()
	waitFor(t, "all 200 emails", 3*time.Minute, func() bool { got, _ := e.sent(); return len(got) >= 200 })
	t.Logf("FIGURES %s: all emails out %s after Redis came back", t.Name(), time.Since(back).Round(100*time.Millisecond))
	e.checkExactly(endpointEmails(0, 100), 102, time.Minute)
	alive(t, p, s)
}

// TestScaleProcess1to3to1 runs 50,000 changes through 12 partitions while
// the process stage scales from 1 to 3 instances and back to 1 (the two
// extra instances leave with SIGTERM, one of them killed mid-stream with
// SIGKILL instead), with 100 inactivity timers falling due during the run:
// every email once, every timer once.
func TestScaleProcess1to3to1(t *testing.T) {
	const (
		changes   = 50000
		endpoints = 2500 // 2 emails each; the rest are edits that mail nobody
		users     = 100
	)
	e := newEnv(t, 12)
	// The inactivity timers (last login + 150 days, at 09:00 UTC) of users
	// who last logged in 149 days before tomorrow fall due tomorrow at 09:00;
	// the stages' clock is shifted to reach that 75 s into the run.
	now := time.Now().UTC()
	tomorrow := time.Date(now.Year(), now.Month(), now.Day()+1, 9, 0, 0, 0, time.UTC)
	lastLogin := tomorrow.AddDate(0, 0, -150).Add(3 * time.Hour)
	offset := tomorrow.Sub(now) - 75*time.Second
	clock := []string{"--clock-offset", offset.String()}

	e.startSend("send-1")
	e.startSend("send-2")
	p1 := e.startProcess("process-1", clock...)
	var recs []*kgo.Record
	var want []string
	for i := range users {
		id := "u-" + strconv.Itoa(i)
		addr := id + "@acme.test"
		recs = append(recs, e.row("portal.public.portal_users", "r", map[string]any{"id": id, "email": addr,
			"partner_id": "p-direct", "company_id": "c-acme", "status": "active", "last_login_at": lastLogin.Format(time.RFC3339)}))
		want = append(want, "account.portal_expiry_warning "+id+" "+addr)
	}
	e.produce(append(e.base(), recs...)...)
	var stream []*kgo.Record
	ep := 0
	for i := range changes - users - 2 {
		if i%((changes-users-2)/endpoints) == 0 && ep < endpoints {
			stream = append(stream, e.endpoints(ep, 1)...)
			ep++
			continue
		}
		stream = append(stream, e.row("service.public.end_users", "u", map[string]any{"id": fmt.Sprintf("e%d", i%5000),
			"company_id": "c-acme", "email": "user@acme.test", "display_name": fmt.Sprintf("User %d", i), "status": "active", "classic": false}))
	}
	want = append(want, endpointEmails(0, ep)...)
	sort.Strings(want)

	wave := len(stream) / 5
	start := time.Now()
	e.produce(stream[:wave]...)
	p2 := e.startProcess("process-2", clock...)
	p3 := e.startProcess("process-3", clock...)
	e.produce(stream[wave : 3*wave]...)
	waitFor(t, "a third of the emails", 3*time.Minute, func() bool { got, _ := e.sent(); return len(got) >= len(want)/3 })
	p3.kill() // one leaves abruptly
	e.produce(stream[3*wave : 4*wave]...)
	p2.stop() // one leaves gracefully
	e.produce(stream[4*wave:]...)
	waitFor(t, "every email", 6*time.Minute, func() bool { got, _ := e.sent(); return len(got) >= len(want) })
	t.Logf("FIGURES %s: %d changes through 12 partitions, 1→3→1 instances, %d emails (%d timers) in %s",
		t.Name(), changes, len(want), users, time.Since(start).Round(time.Second))
	e.checkExactly(want, changes, time.Minute)
	alive(t, p1)
}
