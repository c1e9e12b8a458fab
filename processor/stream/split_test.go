package stream

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestSplitPartitions: every record lands in exactly one share, a
// partition's records in one share and in their order, and the shares are
// balanced by records.
func TestSplitPartitions(t *testing.T) {
	var recs []*kgo.Record
	sizes := map[string]int{"a/0": 50, "a/1": 30, "b/0": 20, "b/1": 20, "c/0": 10}
	for i := range 60 { // interleaved, as a poll returns them
		for _, tp := range []string{"a/0", "a/1", "b/0", "b/1", "c/0"} {
			if i < sizes[tp] {
				var topic string
				var part int32
				fmt.Sscanf(tp, "%1s/%d", &topic, &part)
				recs = append(recs, &kgo.Record{Topic: topic, Partition: part, Offset: int64(i)})
			}
		}
	}
	for _, n := range []int{1, 2, 3, 8} {
		shares := splitPartitions(recs, n)
		if want := min(n, len(sizes)); len(shares) != want {
			t.Fatalf("n=%d: %d shares, want %d", n, len(shares), want)
		}
		where := map[string]int{}
		total := 0
		for i, sh := range shares {
			last := map[string]int64{}
			for _, r := range sh {
				tp := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
				if w, ok := where[tp]; ok && w != i {
					t.Fatalf("n=%d: partition %s in shares %d and %d", n, tp, w, i)
				}
				where[tp] = i
				if o, ok := last[tp]; ok && r.Offset != o+1 {
					t.Fatalf("n=%d: %s out of order: %d after %d", n, tp, r.Offset, o)
				}
				last[tp] = r.Offset
			}
			total += len(sh)
		}
		if total != len(recs) {
			t.Fatalf("n=%d: %d records in the shares, want %d", n, total, len(recs))
		}
		if n == 2 && (len(shares[0]) != 70 || len(shares[1]) != 60) {
			t.Fatalf("n=2: shares of %d and %d records, want 70 and 60", len(shares[0]), len(shares[1]))
		}
	}
	if got := splitPartitions(nil, 2); len(got) != 1 || len(got[0]) != 0 {
		t.Fatalf("no records: %v", got)
	}
}
