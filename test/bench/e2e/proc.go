package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat
// (100 on every Linux architecture the project runs on; `getconf CLK_TCK`).
const clockTicks = 100

// ProcStat is what /proc says about one process at one moment.
type ProcStat struct {
	// CPU is user + system time since the process started.
	CPU time.Duration
	// HWM is the peak resident set size (VmHWM) since the start or the last
	// ResetPeak; RSS is the current one (VmRSS).
	HWM, RSS int64
}

// readStat reads /proc/<pid>/stat and /proc/<pid>/status.
func readStat(pid int) (ProcStat, error) {
	var s ProcStat
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields are counted after its closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return s, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	s.CPU = time.Duration(ut+st) * time.Second / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmHWM" && k != "VmRSS") {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if k == "VmHWM" {
			s.HWM = kb << 10
		} else {
			s.RSS = kb << 10
		}
	}
	return s, nil
}

// resetPeak resets the process's VmHWM to its current RSS (Linux clear_refs
// 5), so that a later VmHWM is the peak of the phase that follows.
func resetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// loadAvg is the 1-minute load average.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// stage is one portalmail OS process.
type stage struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	// last is the final /proc reading, taken just before the process is stopped.
	last           ProcStat
	started, ended time.Time
}

// startStage runs bin with args, its output appended to dir/name.log.
func startStage(bin, dir, name string, args ...string) (*stage, error) {
	path := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &stage{name: name, cmd: cmd, log: path, done: make(chan struct{}), started: time.Now()}
	go func() { _ = cmd.Wait(); s.ended = time.Now(); f.Close(); close(s.done) }()
	return s, nil
}

func (s *stage) pid() int { return s.cmd.Process.Pid }

// exited reports whether the process has ended.
func (s *stage) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *stage) stat() (ProcStat, error) { return readStat(s.pid()) }

// stop reads the final stats, then stops the process gracefully (SIGTERM),
// killing it after 30 s.
func (s *stage) stop() {
	if st, err := s.stat(); err == nil {
		s.last = st
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// tail is the end of the stage's log, for error messages.
func (s *stage) tail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// rusage is the peak RSS in kilobytes of an exited process: an upper bound,
// since Go starts children with vfork and ru_maxrss then includes the
// driver's resident set before the exec (live processes are read from
// VmHWM instead).
func rusage(ps *os.ProcessState) (int64, bool) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return 0, false
	}
	return ru.Maxrss, true
}

// cpuOf is the CPU time of pid, 0 when it cannot be read (pid 0: unknown).
func cpuOf(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	s, err := readStat(pid)
	if err != nil {
		return 0
	}
	return s.CPU
}
