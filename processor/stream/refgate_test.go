package stream

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRefGateOpensOncePolledToTheEnd: the gate opens when this instance has
// polled every reference partition up to its target, not before, and
// resumes the held topics then (without waiting for the group's commit).
func TestRefGateOpensOncePolledToTheEnd(t *testing.T) {
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1")) // never dialled
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	g := newRefGate([]string{"companies"}, []string{"companies", "plans"}, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)))
	g.polled = map[topicPartition]int64{}
	g.target = kadm.ListedOffsets{"companies": {
		0: {Topic: "companies", Partition: 0, Offset: 10},
		1: {Topic: "companies", Partition: 1, Offset: 5},
		2: {Topic: "companies", Partition: 2, Offset: 0}, // empty
	}}
	cl.PauseFetchTopics("plans")
	rec := func(topic string, p int32, off int64) *kgo.Record {
		return &kgo.Record{Topic: topic, Partition: p, Offset: off}
	}
	g.polledRecords(cl, []*kgo.Record{rec("companies", 0, 9), rec("plans", 1, 100), rec("companies", 1, 3)}, time.Now())
	if g.open {
		t.Fatal("open with partition 1 polled to 4 of 5")
	}
	g.polledRecords(cl, []*kgo.Record{rec("companies", 1, 4)}, time.Now())
	if !g.open {
		t.Fatal("still closed with every reference partition polled to its end")
	}
	if paused := cl.PauseFetchTopics(); len(paused) != 0 {
		t.Fatalf("still paused: %v", paused)
	}
}
