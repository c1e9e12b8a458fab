package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// profile records CPU profiles of the timed phase of spec with Linux perf
// (the process stage has no pprof endpoint): one of the process-stage
// instances and one of the Redis servers, software cpu-clock event at
// 499 Hz with call graphs (Go keeps frame pointers), into cfg.ProfileDir.
// The returned function stops the recording and writes `perf report`
// summaries beside the data (*.txt: flat by symbol, and with callers'
// cumulative shares). It does nothing unless cfg.ProfileDir is set and
// spec asks for a profile.
func (d *driver) profile(spec runSpec, pids, redisPIDs []int) (stop func()) {
	if d.cfg.ProfileDir == "" || !spec.profile {
		return func() {}
	}
	if _, err := exec.LookPath("perf"); err != nil {
		fmt.Fprintln(d.cfg.Out, "profile: perf not installed; no profile")
		return func() {}
	}
	_ = os.MkdirAll(d.cfg.ProfileDir, 0o755)
	type rec struct {
		cmd  *exec.Cmd
		data string
	}
	var recs []rec
	for what, ps := range map[string][]int{"process": pids, "redis": redisPIDs} {
		if len(ps) == 0 {
			continue
		}
		var list []string
		for _, p := range ps {
			list = append(list, strconv.Itoa(p))
		}
		data := filepath.Join(d.cfg.ProfileDir, fileName(spec.name)+"-"+what+".perf.data")
		cmd := exec.Command("perf", "record", "-e", "cpu-clock", "-F", "499", "-g", "-p", strings.Join(list, ","), "-o", data)
		logf, _ := os.Create(data + ".log")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(d.cfg.Out, "profile:", err)
			continue
		}
		recs = append(recs, rec{cmd, data})
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			for _, r := range recs {
				_ = r.cmd.Process.Signal(syscall.SIGINT)
				done := make(chan struct{})
				go func() { _ = r.cmd.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(60 * time.Second):
					_ = r.cmd.Process.Kill()
				}
				for suffix, args := range map[string][]string{
					".flat.txt":     {"--no-children", "--sort", "symbol", "--percent-limit", "0.3"},
					".children.txt": {"--children", "--sort", "symbol", "--percent-limit", "1", "-g", "none"},
				} {
					out, _ := exec.Command("perf", append([]string{"report", "-i", r.data, "--stdio"}, args...)...).Output()
					_ = os.WriteFile(r.data+suffix, out, 0o644)
				}
				fmt.Fprintf(d.cfg.Out, "profile: %s (perf report -i %s)\n", r.data+".flat.txt", r.data)
			}
		})
	}
}
