package faults

import (
	"strings"
	"testing"
	"time"
)

// TestProcessKill9MidStream: kill -9 of the process instance while changes
// flow, inside an open Kafka transaction: the instance holds each
// transaction open for 1 s after its jobs are flushed (the hidden test hook
// PORTALMAIL_FAULT_HOLD_BEFORE_COMMIT), and the kill comes right after it
// logged holding one, which the test checks from its log. Restarted with
// the same transactional id: every expected email exactly once.
func TestProcessKill9MidStream(t *testing.T) {
	const n = 2000
	e := newEnv(t, 3)
	e.startSend("send-1")
	hold := []string{"PORTALMAIL_FAULT_HOLD_BEFORE_COMMIT=1s"}
	p := e.startWithEnv("process-1", hold, "process", "--group", e.id+"-process", "--transactional-id", e.id+"-process-1",
		"--portal-prefix", e.id+"portal", "--service-prefix", e.id+"service", "--tick", "100ms", "--batch-size", "100")
	e.produce(e.base()...)
	e.produce(e.endpoints(0, n)...)
	// 2,000 changes in transactions of 100, each held 1 s: kill right after
	// the fifth is held open (others committed before it, many to come).
	waitFor(t, "the fifth transaction held open", 90*time.Second, func() bool { return countLogged(p, logHolding) >= 5 })
	p.kill()
	killedAt := time.Now()
	if last := lastLine(p); !strings.Contains(last, logHolding) {
		t.Fatalf("the kill did not land inside the open transaction: the log ends with %q", last)
	}
	got, _ := e.sent()
	if len(got) >= 2*n {
		t.Fatalf("every email was out before the kill: not mid-stream")
	}
	t.Logf("killed process-1 (kill -9) inside an open transaction, with %d of %d emails sent; last log line: %s", len(got), 2*n, lastLine(p))
	e.startProcess("process-1", "--batch-size", "20")
	waitFor(t, "every email", 3*time.Minute, func() bool { got, _ := e.sent(); return len(got) >= 2*n })
	t.Logf("FIGURES %s: every email out %s after the kill", t.Name(), time.Since(killedAt).Round(100*time.Millisecond))
	// The kill landed before the commit of the open transaction (and after
	// the markers of every committed one): no job reaches the topic twice,
	// so the sender has nothing to suppress.
	if f := e.checkExactly(endpointEmails(0, n), n+2, time.Minute); f.duplicates != 0 {
		t.Errorf("%d duplicate jobs reached the sender (suppressed there): the process stage emitted keys twice", f.duplicates)
	}
}

// logHolding is what the process stage logs when the fault hook holds a
// transaction open.
const logHolding = "fault: holding transaction open"

// TestMailgunDown60s: the Mailgun fake refuses connections for 60 s; the
// send stage retries and, once it is back, every email goes out once.
func TestMailgunDown60s(t *testing.T) {
	e := newEnv(t, 3)
	e.startProcess("process-1")
	e.startSend("send-1")
	e.produce(e.base()...)
	e.produce(e.endpoints(0, 50)...)
	waitFor(t, "the first 100 emails", 60*time.Second, func() bool { got, _ := e.sent(); return len(got) >= 100 })
	e.mg.Down()
	e.produce(e.endpoints(50, 50)...)
	time.Sleep(60 * time.Second)
	if got, _ := e.sent(); len(got) != 100 {
		t.Fatalf("%d emails while Mailgun was down", len(got)-100)
	}
	e.mg.Up()
	up := time.Now()
	waitFor(t, "all 200 emails", 6*time.Minute, func() bool { got, _ := e.sent(); return len(got) >= 200 })
	t.Logf("FIGURES %s: sending resumed, all emails out %s after Mailgun came back", t.Name(), time.Since(up).Round(100*time.Millisecond))
	e.checkExactly(endpointEmails(0, 100), 102, time.Minute)
}
