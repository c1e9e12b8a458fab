package debezium

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portalmail/portalmail/processor/stream"
	"github.com/portalmail/portalmail/test/internal/stage"
)

func md5hex(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) }

// TestEndToEnd runs the scenario once, with nothing going wrong.
func TestEndToEnd(t *testing.T) { runScenario(t, runPlain) }

// TestEndToEndKilledInTransaction kills the process stage (SIGKILL) while it
// holds the Kafka transaction of the orders step open (after its jobs were
// flushed, before the commit), and restarts it: every email exactly once.
func TestEndToEndKilledInTransaction(t *testing.T) { runScenario(t, runKill) }

// TestEndToEndAbortedBatch aborts the transaction of the batch that holds
// 10 changes of one license plan (after Redis was written), then lets
// processing go on: every email exactly once.
func TestEndToEndAbortedBatch(t *testing.T) { runScenario(t, runAbort) }

type runMode int

const (
	runPlain runMode = iota
	runKill
	runAbort
)

const (
	logHolding  = "fault: holding transaction open"
	logAborting = "fault: aborting transaction"
)

func runScenario(t *testing.T, mode runMode) {
	start := time.Now()
	w := newWorld(t)
	sc := newScenario(start)
	mustPSQL(t, w.portal.db, sc.snapshotPortal)
	mustPSQL(t, w.service.db, sc.snapshotService)
	w.portal.register(t)
	w.service.register(t)
	w.startSend()
	p := w.startProcess(nil)
	w.sync()
	t.Logf("snapshot through the pipeline after %s", time.Since(start).Round(100*time.Millisecond))

	for i := 0; i < len(sc.steps); i++ {
		st := sc.steps[i]
		switch {
		case i+1 < len(sc.steps) && sc.steps[i+1].together:
			j := i + 1
			for j+1 < len(sc.steps) && sc.steps[j+1].together {
				j++
			}
			p = w.backlog(p, sc.steps[i:j+1]...)
			i = j
		case mode == runKill && st.kill:
			p = w.killInTransaction(p, st)
		case mode == runAbort && st.abort:
			p = w.abortBatch(p, st)
		default:
			w.exec(st)
			w.sync()
		}
		if i == len(sc.steps)-1 {
			t.Logf("%d steps through the pipeline after %s", len(sc.steps), time.Since(start).Round(100*time.Millisecond))
		}
	}

	// Time passes: the process stage comes back with its clock at day 09:01.
	p.Stop()
	offset := sc.day.Add(time.Minute).Sub(time.Now())
	w.startProcess(nil, "--clock-offset", offset.Round(time.Second).String())
	w.check(sc, start)
}

// exec runs a step's SQL.
func (w *world) exec(st step) {
	w.t.Helper()
	if st.portal != "" {
		mustPSQL(w.t, w.portal.db, st.portal)
	}
	if st.service != "" {
		mustPSQL(w.t, w.service.db, st.service)
	}
}

// delivered waits until Debezium delivered everything committed so far (the
// marker messages arrived), without waiting for the process stage.
func (w *world) delivered() {
	w.t.Helper()
	w.markSeq++
	label := fmt.Sprintf("%s-%d", w.id, w.markSeq)
	for _, s := range []source{w.portal, w.service} {
		w.marks.mark(w.t, s, label)
	}
}

var (
	recordsField = regexp.MustCompile(`records=(\d+)`)
	recordPos    = regexp.MustCompile(`decode \S+/\d+@\d+: `)
)

// faultLine is the last line of p's log containing s, and its records=N.
func faultLine(p *stage.Proc, s string) (line string, records int, last bool) {
	lines := p.Lines()
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], s) {
			if m := recordsField.FindStringSubmatch(lines[i]); m != nil {
				records, _ = strconv.Atoi(m[1])
			}
			return lines[i], records, i == len(lines)-1
		}
	}
	return "", 0, false
}

// killInTransaction stops p, lets Debezium deliver st, starts an instance
// that holds every transaction carrying records open, kills it (SIGKILL)
// once its log says it holds one and the broker says it is ongoing, and
// starts a plain instance again.
func (w *world) killInTransaction(p *stage.Proc, st step) *stage.Proc {
	t := w.t
	t.Helper()
	p.Stop()
	w.exec(st)
	w.delivered()
	h := w.startProcess([]string{"PORTALMAIL_FAULT_HOLD_BEFORE_COMMIT=5m"})
	waitFor(t, "the process stage to hold a transaction open", 2*time.Minute, func() bool { return h.Logged(logHolding) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	txns, err := w.adm.DescribeTransactions(ctx, w.id+"-process")
	cancel()
	state := "unknown"
	if err == nil {
		if d, ok := txns[w.id+"-process"]; ok {
			state = d.State
		}
	}
	h.Kill()
	line, records, last := faultLine(h, logHolding)
	switch {
	case !last:
		t.Errorf("the kill did not land inside the held transaction: %q is not the last line of %s", line, h.Log)
	case state != "Ongoing":
		t.Errorf("the broker described transaction %s-process as %q, not Ongoing, when it was killed", w.id, state)
	}
	t.Logf("FIGURES %s: killed %s (SIGKILL) inside an open transaction carrying %d records (broker: %s); log: %s",
		t.Name(), h.Name, records, state, line)
	np := w.startProcess(nil)
	w.drained(3 * time.Minute)
	return np
}

// backlog stops p, runs the steps, lets Debezium deliver them, and starts
// a plain instance, which finds their records in one backlog.
func (w *world) backlog(p *stage.Proc, steps ...step) *stage.Proc {
	w.t.Helper()
	p.Stop()
	for _, st := range steps {
		w.exec(st)
	}
	w.delivered()
	np := w.startProcess(nil)
	w.drained(3 * time.Minute)
	return np
}

// abortBatch stops p, lets Debezium deliver st (10 changes of one row),
// starts an instance that aborts its first transaction carrying records,
// and lets it go on.
func (w *world) abortBatch(p *stage.Proc, st step) *stage.Proc {
	t := w.t
	t.Helper()
	p.Stop()
	w.exec(st)
	w.delivered()
	np := w.startProcess([]string{"PORTALMAIL_FAULT_ABORT=1"})
	waitFor(t, "the process stage to abort a transaction", 2*time.Minute, func() bool { return np.Logged(logAborting) })
	line, records, _ := faultLine(np, logAborting)
	if records != 10 {
		t.Errorf("the aborted transaction carried %d records, want the 10 changes of lp-ten (%s)", records, line)
	}
	t.Logf("FIGURES %s: aborted the transaction of a batch of %d records (10 changes of lp-ten); log: %s", t.Name(), records, line)
	w.drained(3 * time.Minute)
	return np
}

// check waits for the scenario's emails and the quiet after them, then
// compares: every expected email exactly once (by type, recipient and
// subject), each idempotency key once, no unavailable placeholder in any
// email, nothing in the DLQ. It logs the figures either way.
func (w *world) check(sc scenario, start time.Time) {
	t := w.t
	t.Helper()
	want, from := sc.want()
	sort.Strings(want)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if got, _ := w.sent(); len(got) >= len(want) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	last, since := -1, time.Now()
	waitFor(t, "Mailgun to be quiet for 3 s", 2*time.Minute, func() bool {
		if n := w.mg.Requests(); n != last {
			last, since = n, time.Now()
		}
		return time.Since(since) > 3*time.Second
	})
	got, perKey := w.sent()
	dls := w.deadLetters()

	wantN, gotN := count(want), count(got)
	var missing, extra []string
	missingBy, extraBy := map[string]int{}, map[string]int{}
	// Missing emails are listed per type, subject and step, with their
	// recipients (a count past 4).
	type group struct{ typ, subject, steps string }
	groups := map[group][]string{}
	for e, n := range wantN {
		if gotN[e] < n {
			typ, rest, _ := strings.Cut(e, " | ")
			to, subject, _ := strings.Cut(rest, " | ")
			g := group{typ, subject, strings.Join(uniq(from[e]), "; ")}
			for range n - gotN[e] {
				groups[g] = append(groups[g], to)
			}
			missingBy[typ] += n - gotN[e]
		}
	}
	for g, to := range groups {
		sort.Strings(to)
		list := strings.Join(to, ", ")
		if len(to) > 4 {
			list = fmt.Sprintf("%d recipients: %s, ...", len(to), strings.Join(to[:2], ", "))
		}
		missing = append(missing, fmt.Sprintf("%s %q to %s (step: %s)", g.typ, g.subject, list, g.steps))
	}
	for e, n := range gotN {
		if n > wantN[e] {
			extra = append(extra, fmt.Sprintf("%s (×%d)", e, n-wantN[e]))
			extraBy[typeOf(e)] += n - wantN[e]
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	dupKeys := 0
	for k, n := range perKey {
		if n > 1 {
			dupKeys++
			t.Errorf("idempotency key %s sent %d times", k, n)
		}
	}
	placeholders := 0
	for _, m := range w.mg.Messages() {
		if strings.Contains(m.HTML+m.Text+m.Subject+m.From+m.ReplyTo, "__debezium_unavailable_value") {
			placeholders++
		}
	}
	// DLQ entries by stage, table and reason, without the run's prefix and
	// the record's position.
	dlqBy := map[string]int{}
	for _, d := range dls {
		reason := strings.ReplaceAll(recordPos.ReplaceAllString(d.reason, ""), w.id, "")
		dlqBy[fmt.Sprintf("%s %s %s: %s", d.stage, strings.TrimPrefix(d.topic, w.id), stream.ReasonClass(d.reason), reason)]++
	}

	t.Logf("FIGURES %s: expected %d emails (%d types), got %d, missing %d %s, unexpected or duplicated %d %s, keys sent twice %d, emails with the unavailable placeholder %d, DLQ %d %s, in %s",
		t.Name(), len(want), len(typesOf(want)), len(got), sumOf(missingBy), byType(missingBy), sumOf(extraBy), byType(extraBy),
		dupKeys, placeholders, len(dls), byType(dlqBy), time.Since(start).Round(time.Second))
	for _, m := range missing {
		t.Errorf("missing: %s", m)
	}
	// For each type with missing emails, the ones sent (type|table|id|cause
	// of their keys): the missing one's row is the one not among them.
	for typ := range missingBy {
		var sentOf []string
		for k := range perKey {
			if strings.HasPrefix(k, typ+"|") {
				sentOf = append(sentOf, k[:strings.LastIndexByte(k, '|')])
			}
		}
		sort.Strings(sentOf)
		t.Logf("sent of %s: %s", typ, strings.Join(uniq(sentOf), ", "))
	}
	for _, e := range extra {
		t.Errorf("unexpected: %s", e)
	}
	if placeholders > 0 {
		t.Errorf("%d emails carry %q", placeholders, "__debezium_unavailable_value")
	}
	for r, n := range dlqBy {
		t.Errorf("DLQ: %d × %s", n, r)
	}
}

func count(l []string) map[string]int {
	m := map[string]int{}
	for _, s := range l {
		m[s]++
	}
	return m
}

func uniq(l []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range l {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func typesOf(l []string) map[string]bool {
	m := map[string]bool{}
	for _, e := range l {
		m[typeOf(e)] = true
	}
	return m
}

func sumOf(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// byType formats counts as "{a: 2, b: 1}", sorted.
func byType(m map[string]int) string {
	if len(m) == 0 {
		return "{}"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", k, m[k])
	}
	b.WriteString("}")
	return b.String()
}
