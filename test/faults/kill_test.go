package faults

import (
	"testing"
	"time"
)

// TestProcessKill9MidStream: kill -9 of the process instance while changes
// flow (its transaction left open), restarted with the same transactional id:
// every expected email exactly once.
func TestProcessKill9MidStream(t *testing.T) {
	const n = 2000
	e := newEnv(t, 3)
	e.startSend("send-1")
	p := e.startProcess("process-1", "--batch-size", "20")
	e.produce(e.base()...)
	go e.produce(e.endpoints(0, n)...)
	waitFor(t, "the first emails", 60*time.Second, func() bool { got, _ := e.sent(); return len(got) >= 200 })
	p.kill()
	killedAt := time.Now()
	got, _ := e.sent()
	if len(got) >= 2*n {
		t.Fatalf("every email was out before the kill: not mid-stream")
	}
	t.Logf("killed process-1 (kill -9) with %d of %d emails sent", len(got), 2*n)
	e.startProcess("process-1", "--batch-size", "20")
	waitFor(t, "every email", 3*time.Minute, func() bool { got, _ := e.sent(); return len(got) >= 2*n })
	t.Logf("FIGURES %s: every email out %s after the kill", t.Name(), time.Since(killedAt).Round(100*time.Millisecond))
	e.checkExactly(endpointEmails(0, n), n+2, time.Minute)
}

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
