package e2e

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// instance is one process-stage instance of a run and its incarnations: a
// crashed instance is started again with the same transactional id, as an
// orchestrator restarts a crashed pod, and the run goes on.
type instance struct {
	idx  int
	incs []*stage // incarnations; the last is the current one
	// from is the first incarnation of the timed phase and base its CPU
	// time when the phase began (mark).
	from int
	base time.Duration
}

func (in *instance) current() *stage { return in.incs[len(in.incs)-1] }

// supervisor starts a run's instances and restarts crashed ones, at most
// max times in all.
type supervisor struct {
	start   func(idx, incarnation int) (*stage, error)
	max     int
	mu      sync.Mutex
	insts   []*instance
	crashes []string
}

func (s *supervisor) startAll(n int) error {
	for i := range n {
		st, err := s.start(i+1, 0)
		if err != nil {
			return err
		}
		s.insts = append(s.insts, &instance{idx: i + 1, incs: []*stage{st}})
	}
	return nil
}

// check restarts every instance whose process has exited; it fails once
// more than max restarts were needed.
func (s *supervisor) check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range s.insts {
		cur := in.current()
		if !cur.exited() {
			continue
		}
		s.crashes = append(s.crashes, fmt.Sprintf("%s after %.1f s (peak RSS %s): %s", cur.name, cur.ran().Seconds(), mib(cur.final().HWM), cur.why()))
		if len(s.crashes) > s.max {
			return fmt.Errorf("%d crashes (more than %d restarts); the last: %s", len(s.crashes), s.max, s.crashes[len(s.crashes)-1])
		}
		st, err := s.start(in.idx, len(in.incs))
		if err != nil {
			return err
		}
		in.incs = append(in.incs, st)
	}
	return nil
}

// mark begins the timed phase: peaks are reset and CPU counted from here.
func (s *supervisor) mark() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range s.insts {
		in.from = len(in.incs) - 1
		cur := in.current()
		_ = resetPeak(cur.pid())
		if st, err := cur.stat(); err == nil {
			in.base = st.CPU
		}
	}
}

// usage is, per instance, the CPU time since mark (every incarnation's) and
// the highest peak RSS of the incarnations since mark.
func (s *supervisor) usage() []ProcStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ProcStat
	for _, in := range s.insts {
		var u ProcStat
		for i, st := range in.incs[in.from:] {
			var p ProcStat
			if st.exited() {
				p = st.final()
			} else if cur, err := st.stat(); err == nil {
				p = cur
			}
			if i == 0 {
				p.CPU -= in.base
			}
			u.CPU += p.CPU
			u.HWM = max(u.HWM, p.HWM)
			u.RSS = p.RSS
		}
		out = append(out, u)
	}
	return out
}

// stopAll stops every live process.
func (s *supervisor) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range s.insts {
		if cur := in.current(); !cur.exited() {
			cur.stop()
		}
	}
}

// pids are the current processes' pids.
func (s *supervisor) pids() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, in := range s.insts {
		out = append(out, in.current().pid())
	}
	return out
}

// ran is how long the process ran (until now, or until it exited).
func (s *stage) ran() time.Duration {
	if s.exited() && s.cmd.ProcessState != nil {
		return s.ended.Sub(s.started)
	}
	return time.Since(s.started)
}

// final is the CPU time and peak RSS of an exited process (rusage).
func (s *stage) final() ProcStat {
	ps := s.cmd.ProcessState
	if ps == nil {
		return ProcStat{}
	}
	p := ProcStat{CPU: ps.UserTime() + ps.SystemTime()}
	if ru, ok := rusage(ps); ok {
		p.HWM = ru << 10
	}
	return p
}

// why is how the process ended: its exit status and the first line of a Go
// panic or fatal error in its log, if any.
func (s *stage) why() string {
	status := "exited"
	if s.cmd.ProcessState != nil {
		status = s.cmd.ProcessState.String()
	}
	f, err := os.Open(s.log)
	if err != nil {
		return status
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var where string
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") {
			where = line
			// the first frame below "goroutine N [running]:" names the function
			for i := 0; i < 4 && sc.Scan(); i++ {
				if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, "/") {
					where += " at " + l
					break
				}
			}
			break
		}
	}
	if where == "" {
		return status
	}
	return status + ": " + where
}
