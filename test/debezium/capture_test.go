package debezium

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fixtureLine is one line of testdata/debezium/*.jsonl: the input format of
// `portalmail simulate` ({"topic", "key", "value"}) plus where the record
// was read (simulate ignores the extra fields).
type fixtureLine struct {
	Topic     string          `json:"topic"`
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Key       json.RawMessage `json:"key"`
	Value     json.RawMessage `json:"value"`
}

// heartbeatsKept bounds the heartbeat records written per connector (one
// arrives every heartbeat.interval.ms; a few show their shape).
const heartbeatsKept = 2

// TestCapture runs testdata/debezium/sql/<db>-before.sql, registers a
// connector with topic.prefix portal (service), runs <db>-after.sql while it
// streams, and writes every record that arrives on its topics, unmodified,
// to testdata/debezium/<db>.jsonl. The default connectors of
// scripts/debezium.sh (same prefixes) are paused meanwhile.
func TestCapture(t *testing.T) {
	if !*capture {
		t.Skip("run with -capture to rewrite testdata/debezium/*.jsonl")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, name := range []string{"portal", "service"} {
		if _, err := rest("PUT", "/connectors/"+name+"/pause", nil); err == nil {
			t.Logf("default connector %s paused", name)
			defer func() { _, _ = rest("PUT", "/connectors/"+name+"/resume", nil) }()
		}
	}
	dir := filepath.Join(repoRoot, "testdata", "debezium")
	for _, kind := range []string{"portal", "service"} {
		t.Run(kind, func(t *testing.T) {
			// The default connector of this prefix is paused, not gone: its
			// JMX metrics keep their names, so this one gets a tag of its own.
			// A connector name of its own each time: Connect keeps the
			// offsets of a deleted connector under its name.
			src := source{kind: kind, db: "capture_" + kind, prefix: kind, name: "capture_" + kind + "_" + randomID(),
				extra: map[string]string{"custom.metric.tags": "run=capture"}}
			src.create(t)
			defer src.drop()
			topics := src.topics()
			createTopics(t, cl, 3, topics...)
			start := endOffsets(t, cl, topics)
			m := newMarkers(t, src.prefix+".message")
			before, err := os.ReadFile(filepath.Join(dir, "sql", kind+"-before.sql"))
			if err != nil {
				t.Fatal(err)
			}
			mustPSQL(t, src.db, string(before))
			src.register(t)
			after, err := os.ReadFile(filepath.Join(dir, "sql", kind+"-after.sql"))
			if err != nil {
				t.Fatal(err)
			}
			mustPSQL(t, src.db, string(after))
			m.mark(t, src, "capture done")
			// let a heartbeat or two arrive
			time.Sleep(6 * time.Second)
			lines := readFrom(t, cl, start)
			var out bytes.Buffer
			beats := 0
			for _, l := range lines {
				if l.Topic == "__debezium-heartbeat."+src.prefix {
					if beats++; beats > heartbeatsKept {
						continue
					}
				}
				b, err := json.Marshal(l)
				if err != nil {
					t.Fatal(err)
				}
				out.Write(b)
				out.WriteByte('\n')
			}
			path := filepath.Join(dir, kind+".jsonl")
			if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("FIGURES %s: %d records (%d heartbeats kept of %d), %d bytes → %s", t.Name(), len(lines)-max(0, beats-heartbeatsKept),
				min(beats, heartbeatsKept), beats, out.Len(), path)
		})
	}
}

// endOffsets are the topics' end offsets per partition.
func endOffsets(t *testing.T, cl *kgo.Client, topics []string) map[string]map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatal("list end offsets:", err)
	}
	out := map[string]map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out
}

// readFrom reads every record from the given offsets up to the current end,
// in source order (see order).
func readFrom(t *testing.T, cl *kgo.Client, from map[string]map[int32]int64) []fixtureLine {
	t.Helper()
	topics := make([]string, 0, len(from))
	for tp := range from {
		topics = append(topics, tp)
	}
	to := endOffsets(t, cl, topics)
	offsets := map[string]map[int32]kgo.Offset{}
	want := 0
	for tp, ps := range from {
		offsets[tp] = map[int32]kgo.Offset{}
		for p, o := range ps {
			offsets[tp][p] = kgo.NewOffset().At(o)
			want += int(to[tp][p] - o)
		}
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(offsets))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	type rec struct{ line fixtureLine }
	var recs []rec
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for len(recs) < want {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records: %v", len(recs), want, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= to[r.Topic][r.Partition] {
				return
			}
			l := fixtureLine{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: raw(r.Key), Value: raw(r.Value)}
			recs = append(recs, rec{l})
		})
	}
	keys := make([]order, len(recs))
	type tpo struct {
		topic     string
		partition int32
		offset    int64
	}
	byPos := map[tpo]int{}
	for i, r := range recs {
		keys[i] = orderOf(r.line)
		byPos[tpo{r.line.Topic, r.line.Partition, r.line.Offset}] = i
	}
	// A tombstone follows the delete before it in its partition.
	for i, r := range recs {
		if string(r.line.Value) != "null" {
			continue
		}
		if j, ok := byPos[tpo{r.line.Topic, r.line.Partition, r.line.Offset - 1}]; ok {
			keys[i].group, keys[i].lsn, keys[i].rank = keys[j].group, keys[j].lsn, keys[j].rank
		}
	}
	idx := make([]int, len(recs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return keys[idx[a]].less(keys[idx[b]]) })
	sorted := make([]rec, len(recs))
	for i, j := range idx {
		sorted[i] = recs[j]
	}
	recs = sorted
	out := make([]fixtureLine, len(recs))
	for i, r := range recs {
		out[i] = r.line
	}
	return out
}

// raw is a record's key or value as JSON: null when absent; bytes that are
// not JSON would be quoted (JsonConverter writes only JSON).
func raw(b []byte) json.RawMessage {
	if b == nil {
		return json.RawMessage("null")
	}
	if !json.Valid(b) {
		q, _ := json.Marshal(string(b))
		return q
	}
	return json.RawMessage(b)
}

// order places a captured record in source order, which Kafka keeps only per
// partition: snapshot reads first (by topic, partition, offset), then every
// record with a source position by that position (source.lsn; a transaction
// BEGIN or END by the LSN in its id "txId:lsn"; at one LSN an END first (it
// carries the LSN where the next transaction starts), then a BEGIN, then
// the events), then the heartbeats.
type order struct {
	group, rank int
	lsn         int64
	topic       string
	partition   int32
	offset      int64
}

func (a order) less(b order) bool {
	switch {
	case a.group != b.group:
		return a.group < b.group
	case a.lsn != b.lsn:
		return a.lsn < b.lsn
	case a.rank != b.rank:
		return a.rank < b.rank
	case a.topic != b.topic:
		return a.topic < b.topic
	case a.partition != b.partition:
		return a.partition < b.partition
	}
	return a.offset < b.offset
}

func orderOf(l fixtureLine) order {
	o := order{group: 1, rank: 2, topic: l.Topic, partition: l.Partition, offset: l.Offset}
	var v struct {
		Payload struct {
			Status string
			ID     string
			Source *struct {
				LSN      int64
				Snapshot string
			}
		}
	}
	_ = json.Unmarshal(l.Value, &v)
	switch p := v.Payload; {
	case strings.HasPrefix(l.Topic, "__debezium-heartbeat."):
		o.group = 2
	case p.Source != nil && p.Source.Snapshot != "" && p.Source.Snapshot != "false":
		o.group = 0
	case p.Source != nil:
		o.lsn = p.Source.LSN
	case p.Status == "BEGIN" || p.Status == "END":
		_, lsn, _ := strings.Cut(p.ID, ":")
		o.lsn, _ = strconv.ParseInt(lsn, 10, 64)
		if o.rank = 1; p.Status == "END" {
			o.rank = 0
		}
	}
	return o
}
