package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"io"
	"os"
	"runtime"
	"testing"
)

// BenchmarkSimulateWorkload runs `portalmail simulate` in process over the
// file named by PORTALMAIL_BENCH_INPUT (a workload of `pmbench gen`; skipped
// without it), its output hashed, not written. It reports records/s, the
// allocations and bytes of a run (-benchmem) and its collections, and logs
// the output's md5, which a change that keeps the emails keeps:
//
//	go run ./cmd/pmbench gen --out /tmp/workload.jsonl --seed 1
//	PORTALMAIL_BENCH_INPUT=/tmp/workload.jsonl go test -run XXX \
//	    -bench SimulateWorkload -benchtime 1x -benchmem -v ./cmd/portalmail
func BenchmarkSimulateWorkload(b *testing.B) {
	in := os.Getenv("PORTALMAIL_BENCH_INPUT")
	if in == "" {
		b.Skip("PORTALMAIL_BENCH_INPUT names no workload file")
	}
	data, err := os.ReadFile(in)
	if err != nil {
		b.Fatal(err)
	}
	records := bytes.Count(data, []byte{'\n'})
	data = nil
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for b.Loop() {
		h := md5.New()
		env := &environ{getenv: os.Getenv, stdout: h, stderr: io.Discard}
		if err := runSimulate(context.Background(), env, []string{"--input", in}); err != nil {
			b.Fatal(err)
		}
		b.Logf("output md5 %x", h.Sum(nil))
	}
	runtime.ReadMemStats(&m1)
	b.ReportMetric(float64(records*b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(m1.NumGC-m0.NumGC)/float64(b.N), "GCs/op")
}
