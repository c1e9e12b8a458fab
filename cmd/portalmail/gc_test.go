package main

import (
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	dir := t.TempDir()
	limited := filepath.Join(dir, "limited")
	unlimited := filepath.Join(dir, "unlimited")
	if err := os.WriteFile(limited, []byte("536870912\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(unlimited, []byte("max\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := cgroupMemoryMax
	defer func() {
		cgroupMemoryMax = old
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
	}()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	none := func(string) string { return "" }

	cgroupMemoryMax = limited
	tuneGC(none, quiet)
	if got := debug.SetGCPercent(100); got != defaultGOGC {
		t.Fatalf("GOGC %d, want %d", got, defaultGOGC)
	}
	if got := debug.SetMemoryLimit(-1); got != 536870912/100*80 {
		t.Fatalf("memory limit %d, want 80 %% of 512 MiB", got)
	}

	// The environment wins; "max" and a missing file set no limit.
	debug.SetMemoryLimit(math.MaxInt64)
	tuneGC(func(k string) string { return map[string]string{"GOGC": "50", "GOMEMLIMIT": "1GiB"}[k] }, quiet)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC set although the environment has it: %d", got)
	}
	for _, path := range []string{unlimited, filepath.Join(dir, "missing")} {
		cgroupMemoryMax = path
		tuneGC(none, quiet)
		if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
			t.Fatalf("%s: memory limit %d set", path, got)
		}
	}
}

func TestTuneSimulateGC(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("134217728\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := cgroupMemoryMax
	oldGOGC := debug.SetGCPercent(100)
	defer func() {
		cgroupMemoryMax = old
		debug.SetMemoryLimit(math.MaxInt64)
		debug.SetGCPercent(oldGOGC)
	}()
	none := func(string) string { return "" }
	tests := []struct {
		name     string
		cgroup   string
		env      map[string]string
		want     int64
		wantGOGC int
	}{
		{"no container limit", filepath.Join(dir, "missing"), nil, simulateMemLimit, -1},
		{"a smaller container limit", small, nil, 134217728 / 100 * 80, -1},
		{"GOGC set: the limit only", small, map[string]string{"GOGC": "150"}, 134217728 / 100 * 80, 100},
		{"GOMEMLIMIT wins, GOGC stays on", small, map[string]string{"GOMEMLIMIT": "1GiB"}, math.MaxInt64, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64)
			debug.SetGCPercent(100)
			cgroupMemoryMax = tt.cgroup
			getenv := none
			if tt.env != nil {
				getenv = func(k string) string { return tt.env[k] }
			}
			tuneSimulateGC(getenv)
			if got := debug.SetMemoryLimit(-1); got != tt.want {
				t.Fatalf("memory limit %d, want %d", got, tt.want)
			}
			if got := debug.SetGCPercent(100); got != tt.wantGOGC {
				t.Fatalf("GOGC %d, want %d", got, tt.wantGOGC)
			}
		})
	}
}
