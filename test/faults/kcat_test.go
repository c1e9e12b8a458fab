package faults

import (
	"bytes"
	"encoding/binary"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKcatWireContract proves the wire contract with a client that is not
// franz-go: kcat produces the Debezium JSON records into the real broker, and
// kcat (read_committed) reads portalmail.email-jobs back; every job carries
// the Confluent header (magic byte 0, 4-byte schema id) and decodes with the
// schema registered for it into the expected email.
func TestKcatWireContract(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatal("kcat not installed (apt-get install kcat)")
	}
	e := newEnv(t, 3)
	recs := append(e.base(), e.endpoints(0, 10)...)
	// one kcat per topic: the records of a topic keep their order
	byTopic := map[string]*bytes.Buffer{}
	var order []string
	for _, r := range recs {
		b := byTopic[r.Topic]
		if b == nil {
			b = &bytes.Buffer{}
			byTopic[r.Topic] = b
			order = append(order, r.Topic)
		}
		b.Write(r.Key)
		b.WriteByte('\t')
		b.Write(r.Value)
		b.WriteByte('\n')
	}
	for _, topic := range order {
		cmd := exec.Command("kcat", "-P", "-b", strings.Join(brokers, ","), "-t", topic, "-K", "\t")
		cmd.Stdin = byTopic[topic]
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kcat -P %s: %v\n%s", topic, err, out)
		}
	}
	e.startProcess("process-1")
	var jobs [][]byte
	waitFor(t, "20 jobs read by kcat", 90*time.Second, func() bool {
		cmd := exec.Command("kcat", "-C", "-b", strings.Join(brokers, ","), "-t", e.jobs, "-o", "beginning", "-e",
			"-X", "isolation.level=read_committed", "-f", "%R%s")
		out, err := cmd.Output()
		if err != nil {
			return false
		}
		jobs = nil
		for len(out) >= 4 {
			n := int(binary.BigEndian.Uint32(out[:4]))
			if len(out) < 4+n {
				t.Fatalf("kcat output truncated")
			}
			jobs = append(jobs, out[4:4+n])
			out = out[4+n:]
		}
		return len(jobs) >= 20
	})
	var got []string
	for _, v := range jobs {
		if len(v) < 5 || v[0] != 0 {
			t.Fatalf("job without the Confluent header: % x", v[:min(5, len(v))])
		}
		id := binary.BigEndian.Uint32(v[1:5])
		j, err := e.serde.DecodeJob(v)
		if err != nil {
			t.Fatalf("job with schema id %d does not decode: %v", id, err)
		}
		parts := strings.Split(j.Key, "|")
		got = append(got, j.Type+" "+parts[2]+" "+j.To.Address)
	}
	sort.Strings(got)
	want := endpointEmails(0, 10)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("jobs read by kcat:\n%s", diff(want, got))
	}
	t.Logf("FIGURES %s: %d CDC records produced by kcat, %d jobs read back by kcat (%s)", t.Name(), len(recs), len(jobs), strconv.Quote("magic byte 0 + schema id"))
}
