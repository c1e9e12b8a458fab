package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"time"
)

// SimResult is what one `portalmail simulate` run emitted.
type SimResult struct {
	Emails      int `json:"emails"`
	TimerEmails int `json:"timer_emails"`
	DeadLetters int `json:"dead_letters"`
	// Differs counts, for a --redis-url run, the emails (by key) that the
	// in-memory run over the same records did not emit, and the reverse.
	Differs *int `json:"differs_from_memory,omitempty"`
	// DiffersByType names them: "+type" only with Redis, "-type" only in memory.
	DiffersByType map[string]int `json:"differs_by_type,omitempty"`
}

// simulate runs `portalmail simulate` over the first lines records of the
// workload (all for 0) with state in memory, or in Redis at redisURL
// (flushed first), and returns its measurements and the emails it printed.
func (d *driver) simulate(ctx context.Context, redisURL string, lines int) (*RunResult, *expected, error) {
	input := d.cfg.Input
	if lines > 0 && lines < len(d.file) {
		var err error
		if input, err = d.head(lines); err != nil {
			return nil, nil, err
		}
	} else {
		lines = len(d.file)
	}
	until := d.meta.Config.Start.Add(d.meta.Config.Span).UTC().Format(time.RFC3339)
	args := []string{"simulate", "--input", input, "--until", until}
	name := "simulate (in memory)"
	if redisURL != "" {
		if err := flushRedis(ctx, redisURL); err != nil {
			return nil, nil, fmt.Errorf("flush redis: %w", err)
		}
		args = append(args, "--redis-url", redisURL)
		name = "simulate --redis-url"
	}
	if lines < len(d.file) {
		name += fmt.Sprintf(" (first %d records)", lines)
	}
	redisPIDs, _, _ := redisInfo(ctx, d.cfg.RedisURL)
	cmd := exec.CommandContext(ctx, d.cfg.Bin, args...)
	d.simSeq++
	errLog, err := os.Create(filepath.Join(d.cfg.Dir, fmt.Sprintf("simulate-%d.stderr", d.simSeq)))
	if err != nil {
		return nil, nil, err
	}
	defer errLog.Close()
	cmd.Stderr = errLog
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	before := d.sample(redisPIDs)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start simulate: %w", err)
	}
	// Peak RSS is VmHWM, polled while simulate runs: the rusage of an
	// exited child is no good here, because Go starts children with vfork,
	// whose ru_maxrss includes the driver's own resident set (the whole
	// workload file) from before the exec.
	var hwm atomic.Int64
	polled := make(chan struct{})
	stopPoll := make(chan struct{})
	go func() {
		defer close(polled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if st, err := readStat(cmd.Process.Pid); err == nil && st.HWM > hwm.Load() {
				hwm.Store(st.HWM)
			}
			select {
			case <-stopPoll:
				return
			case <-tick.C:
			}
		}
	}()
	timers := timerTypes()
	exp := newExpected()
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var perr error
	for sc.Scan() {
		var e struct{ Key, Type string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil && perr == nil {
			perr = fmt.Errorf("simulate printed %q: %w", sc.Text(), err)
		}
		exp.add(e.Key, e.Type, timers[e.Type])
	}
	// The output is read to its end: simulate is past its peak. One last
	// reading, then Wait reaps it.
	close(stopPoll)
	<-polled
	if st, err := readStat(cmd.Process.Pid); err == nil && st.HWM > hwm.Load() {
		hwm.Store(st.HWM)
	}
	if err := cmd.Wait(); err != nil {
		return nil, nil, fmt.Errorf("simulate: %w", err)
	}
	if perr != nil {
		return nil, nil, perr
	}
	elapsed := time.Since(t0)
	after := d.sample(redisPIDs)
	res := &RunResult{Name: name, Kind: "simulate", Instances: 1, Records: lines, Elapsed: elapsed,
		Rate: float64(lines) / elapsed.Seconds(), Redis: "memory"}
	if redisURL != "" {
		res.Redis = redisKind(redisURL)
	}
	usage := StageUsage{CPU: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	usage.PeakRSS = hwm.Load()
	usage.Cores = usage.CPU.Seconds() / elapsed.Seconds()
	res.Stages = []StageUsage{usage}
	res.RedisCPU, res.KafkaCPU, res.DriverCPU = after.redis-before.redis, after.kafka-before.kafka, after.driver-before.driver
	res.LoadStart, res.LoadEnd = before.load, after.load
	if redisURL != "" {
		_, res.RedisUsedMemory, _ = redisInfo(ctx, redisURL)
	}
	dead := 0
	if b, err := os.ReadFile(errLog.Name()); err == nil {
		for _, c := range b {
			if c == '\n' {
				dead++
			}
		}
	}
	res.Sim = &SimResult{Emails: exp.total, TimerEmails: exp.timers, DeadLetters: dead}
	return res, exp, nil
}

// head writes the first n lines of the workload file to a file of the run
// directory and returns its path.
func (d *driver) head(n int) (string, error) {
	path := filepath.Join(d.cfg.Dir, fmt.Sprintf("workload-first-%d.jsonl", n))
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		return path, nil
	}
	in, err := os.Open(d.cfg.Input)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.Create(path)
	if err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(out, 1<<20)
	r := bufio.NewReaderSize(in, 1<<20)
	for i := 0; i < n; i++ {
		line, err := r.ReadBytes('\n')
		if _, werr := w.Write(line); werr != nil {
			out.Close()
			return "", werr
		}
		if err != nil {
			break
		}
	}
	if err := w.Flush(); err != nil {
		out.Close()
		return "", err
	}
	return path, out.Close()
}

// simulateRedis runs simulate with --redis-url over the configured number
// of records, and (when that is not the whole file) in memory over the same
// records, and reports whether both emit the same emails.
func (d *driver) simulateRedis(ctx context.Context) error {
	n := d.cfg.SimRedisRecords
	if n <= 0 || n > len(d.file) {
		n = len(d.file)
	}
	ref := d.expect
	if n < len(d.file) {
		r, exp, err := d.simulate(ctx, "", n)
		if err != nil {
			return fmt.Errorf("simulate: %w", err)
		}
		d.results.add(d.cfg.Out, r)
		ref = exp
	}
	r, exp, err := d.simulate(ctx, d.cfg.RedisURL, n)
	if err != nil {
		return fmt.Errorf("simulate --redis-url: %w", err)
	}
	diff := 0
	byType := map[string]int{}
	count := func(a, b map[string]string, sign string) {
		for k, typ := range a {
			if _, ok := b[k]; !ok {
				diff++
				byType[sign+typ]++
			}
		}
	}
	count(exp.keys, ref.keys, "+")
	count(ref.keys, exp.keys, "-")
	count(exp.timerKeys, ref.timerKeys, "+")
	count(ref.timerKeys, exp.timerKeys, "-")
	if diff > 0 {
		r.Sim.DiffersByType = byType
	}
	r.Sim.Differs = &diff
	d.results.add(d.cfg.Out, r)
	return nil
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
