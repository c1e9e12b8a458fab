package cdc

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"testing"
)

// BenchmarkDecodeWorkload decodes records of the file named by
// PORTALMAIL_BENCH_INPUT (a workload of `pmbench gen`; skipped without it)
// as the process stage does, images encoded: a sixth of its first 80,050
// lines (the snapshot) and the 29,950 after them (changes), in turn:
//
//	PORTALMAIL_BENCH_INPUT=/tmp/workload.jsonl go test -run XXX \
//	    -bench DecodeWorkload -benchtime 200000x -benchmem ./schemas/cdc
func BenchmarkDecodeWorkload(b *testing.B) {
	in := os.Getenv("PORTALMAIL_BENCH_INPUT")
	if in == "" {
		b.Skip("PORTALMAIL_BENCH_INPUT names no workload file")
	}
	f, err := os.Open(in)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	type record struct {
		Topic string          `json:"topic"`
		Value json.RawMessage `json:"value"`
	}
	var recs []record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan() && n <= 110000; n++ {
		if n%6 != 0 && n <= 80050 {
			continue
		}
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			b.Fatal(err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	d := NewDecoder(DecoderConfig{Images: true})
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r := recs[i%len(recs)]
		if _, err := d.Decode(ctx, r.Topic, 0, int64(i), []byte(`"k"`), r.Value); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
