package main

import (
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// Garbage collector defaults of the long-running stages, unless GOGC or
// GOMEMLIMIT are set in the environment (which always win):
//
//   - GOGC 200: the stages' live heap is small (tens of MiB) and their
//     garbage short-lived, so collecting at twice the live heap instead of
//     once cut the process stage's CPU by ~15 % (docs/benchmarks.md);
//   - a soft memory limit of 80 % of the container's cgroup limit
//     (memory.max, cgroup v2), when there is one: the collector works harder
//     as the heap nears it instead of letting the container be killed.
const (
	defaultGOGC     = 200
	memLimitPercent = 80
)

// simulateMemLimit is simulate's soft memory limit unless GOMEMLIMIT is set
// (or a container allows less): a dry run keeps every live row in memory
// and reads ahead of the engine, and without a limit its heap grows to
// twice the live state between collections (~360 MiB on the benchmark
// workload, 245 MiB with the limit, 270 MiB with GOGC off below it,
// docs/benchmarks.md). Past the limit the
// collector runs more often, at most half the CPU (the runtime's cap), so a
// larger input is slower, never killed by it.
//
// Under that limit simulate collects only as the heap nears it (GOGC off),
// unless GOGC is set: a heap that is mostly live rows gains nothing from
// collecting at twice the live heap, and the collections it skips were
// 7–10 % of a run's time (docs/benchmarks.md).
const simulateMemLimit = 256 << 20

// tuneSimulateGC applies simulate's soft memory limit, and turns the
// proportional collector off when GOGC is not set. With GOMEMLIMIT set it
// changes nothing: without a limit GOGC off would let the heap grow without
// bound.
func tuneSimulateGC(getenv func(string) string) {
	if getenv("GOMEMLIMIT") != "" {
		return
	}
	limit := int64(simulateMemLimit)
	if c, _, ok := containerSoftLimit(); ok && c < limit {
		limit = c
	}
	debug.SetMemoryLimit(limit)
	if getenv("GOGC") == "" {
		debug.SetGCPercent(-1)
	}
}

// cgroupMemoryMax is where cgroup v2 exposes the container's memory limit.
var cgroupMemoryMax = "/sys/fs/cgroup/memory.max"

// tuneGC applies the defaults above and logs what it set.
func tuneGC(getenv func(string) string, log *slog.Logger) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
		log.Debug("GOGC not set: collecting at 200 % of the live heap", "gogc", defaultGOGC)
	}
	if getenv("GOMEMLIMIT") != "" {
		return
	}
	if limit, max, ok := containerSoftLimit(); ok {
		debug.SetMemoryLimit(limit)
		log.Info("GOMEMLIMIT not set: soft memory limit at 80 % of the container's", "limit_bytes", limit, "cgroup_max_bytes", max)
	}
}

// containerSoftLimit is 80 % of the container's memory limit, and the limit,
// false when there is none.
func containerSoftLimit() (limit, max int64, ok bool) {
	max, ok = cgroupLimit(cgroupMemoryMax)
	return max / 100 * memLimitPercent, max, ok
}

// cgroupLimit reads a cgroup v2 memory.max file: false when there is none
// or it says "max" (no limit).
func cgroupLimit(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}
