package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/portalmail/portalmail/test/bench/workload"
)

// Machine describes where the benchmark ran.
type Machine struct {
	Cores        int     `json:"cores"`
	CPU          string  `json:"cpu"`
	MemoryGiB    float64 `json:"memory_gib"`
	Go           string  `json:"go"`
	Redis        string  `json:"redis"`
	Kafka        string  `json:"kafka"`
	LoadAtStart  float64 `json:"load_at_start"`
	PortalmailAt string  `json:"portalmail_commit"`
}

// Results are every run of one benchmark, as results.json holds them.
type Results struct {
	Started  time.Time      `json:"started"`
	Machine  Machine        `json:"machine"`
	Input    string         `json:"input"`
	Workload WorkloadEmails `json:"workload"`
	Runs     []*RunResult   `json:"runs"`
	meta     workload.Meta
}

// StageUsage is what one OS process used during the timed phase.
type StageUsage struct {
	CPU time.Duration `json:"cpu"`
	// Cores is CPU over the elapsed time.
	Cores float64 `json:"cores"`
	// PeakRSS is VmHWM over the timed phase (warm: reset when it starts;
	// cold, send, simulate: since the process started); RSS at its end.
	PeakRSS int64 `json:"peak_rss"`
	RSS     int64 `json:"rss"`
}

// RunResult is one measured run.
type RunResult struct {
	Name       string        `json:"name"`
	Kind       string        `json:"kind"` // process, send, simulate, peer
	Instances  int           `json:"instances"`
	Partitions int           `json:"partitions"`
	Redis      string        `json:"redis"`
	Records    int           `json:"records"` // records (cold), changes (warm), jobs (send), lines (simulate) timed
	Elapsed    time.Duration `json:"elapsed"`
	Rate       float64       `json:"rate"`
	// ProduceTook is how long producing the timed records took (warm, latency).
	ProduceTook     time.Duration `json:"produce_took,omitempty"`
	Stages          []StageUsage  `json:"stages"`
	RedisCPU        time.Duration `json:"redis_cpu"`
	KafkaCPU        time.Duration `json:"kafka_cpu"`
	DriverCPU       time.Duration `json:"driver_cpu"`
	LoadStart       float64       `json:"load_start"`
	LoadEnd         float64       `json:"load_end"`
	RedisUsedMemory int64         `json:"redis_used_memory,omitempty"`
	Jobs            *JobCheck     `json:"jobs,omitempty"`
	Latency         *Latency      `json:"latency,omitempty"`
	Send            *SendCheck    `json:"send,omitempty"`
	Sim             *SimResult    `json:"simulate,omitempty"`
	// PeerJobs are the jobs the Kafka Streams peer committed (one per
	// transition: the peer resolves no recipients).
	PeerJobs int `json:"peer_jobs,omitempty"`
	// PeerExpected are simulate's distinct transitions (WorkloadEmails.Intents).
	PeerExpected int `json:"peer_expected,omitempty"`
	// Crashes are the process-stage crashes of the run (each restarted).
	Crashes []string `json:"crashes,omitempty"`
	// Err says why the run did not complete.
	Err string `json:"error,omitempty"`
}

// setUsage fills the CPU and memory figures from two samples. fromStart:
// the stages started after before was taken (their CPU counts from zero).
func (r *RunResult) setUsage(before, after sample, fromStart bool) {
	secs := r.Elapsed.Seconds()
	for i, a := range after.stages {
		u := StageUsage{CPU: a.CPU, PeakRSS: a.HWM, RSS: a.RSS}
		if !fromStart && i < len(before.stages) {
			u.CPU -= before.stages[i].CPU
		}
		u.Cores = u.CPU.Seconds() / secs
		r.Stages = append(r.Stages, u)
	}
	r.RedisCPU, r.KafkaCPU, r.DriverCPU = after.redis-before.redis, after.kafka-before.kafka, after.driver-before.driver
	r.LoadStart, r.LoadEnd = before.load, after.load
}

func newResults(ctx context.Context, cfg Config, meta workload.Meta) *Results {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), LoadAtStart: loadAvg(),
		Kafka: os.Getenv("PMBENCH_KAFKA_VERSION"), PortalmailAt: os.Getenv("PMBENCH_COMMIT")}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		fmt.Sscanf(string(b), "MemTotal: %f kB", &kb)
		m.MemoryGiB = kb / (1 << 20)
	}
	_, _, m.Redis = redisInfo(ctx, cfg.RedisURL)
	return &Results{Started: time.Now().UTC(), Machine: m, Input: cfg.Input, meta: meta}
}

func (r *Results) save(path string) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err == nil {
		_ = os.WriteFile(path, append(b, '\n'), 0o644)
	}
}

func mib(b int64) string { return fmt.Sprintf("%d MiB", b>>20) }

func (r *Results) printHeader(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "bench-e2e %s: %d cores (%s), %.1f GiB, %s, Redis %s, Kafka %s, portalmail %s, load %.2f\n",
		r.Started.Format(time.RFC3339), m.Cores, m.CPU, m.MemoryGiB, m.Go, m.Redis, m.Kafka, m.PortalmailAt, m.LoadAtStart)
}

func (r *Results) printWorkload(w io.Writer) {
	s := r.meta.Summary
	r.Workload.Changes, r.Workload.Snapshot, r.Workload.SHA256 = s.Changes, s.Snapshot, r.meta.SHA256
	r.Workload.RecordsByOp, r.Workload.Kinds = s.Records, s.Kinds
	if s.Changes > 0 {
		r.Workload.PerChange = float64(r.Workload.Transition) / float64(s.Changes)
	}
	fmt.Fprintf(w, "workload %s (sha256 %.12s…): %d snapshot records + %d changes; simulate: %d emails, %d from %d transitions (%.3f per change), %d from timers\n",
		r.Input, r.meta.SHA256, s.Snapshot, s.Changes, r.Workload.Emails, r.Workload.Transition, r.Workload.Intents, r.Workload.PerChange, r.Workload.Timer)
}

// add records a run and prints its line.
func (r *Results) add(w io.Writer, run *RunResult) {
	r.Runs = append(r.Runs, run)
	fmt.Fprintln(w, run.line())
}

func (run *RunResult) unit() string {
	switch {
	case run.Kind == "send":
		return "emails"
	case run.Kind == "simulate" || strings.HasPrefix(run.Name, "cold") || strings.HasPrefix(run.Name, "peer cold"):
		return "records"
	}
	return "changes"
}

func (run *RunResult) line() string {
	var b strings.Builder
	if run.Err != "" {
		fmt.Fprintf(&b, "%s: FAILED: %s", run.Name, run.Err)
		for _, c := range run.Crashes {
			fmt.Fprintf(&b, "\n  crash: %s", c)
		}
		return b.String()
	}
	fmt.Fprintf(&b, "%s: %d %s in %.1f s = %.0f %s/s", run.Name, run.Records, run.unit(), run.Elapsed.Seconds(), run.Rate, run.unit())
	if run.Latency != nil {
		l := run.Latency
		fmt.Fprintf(&b, "; change→job p50 %s, p90 %s, p99 %s, max %s (%d jobs)", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max), l.N)
	}
	for i, s := range run.Stages {
		fmt.Fprintf(&b, "; stage %d: CPU %.1f s (%.2f cores), max RSS %s", i+1, s.CPU.Seconds(), s.Cores, mib(s.PeakRSS))
	}
	fmt.Fprintf(&b, "; redis CPU %.1f s, kafka CPU %.1f s, driver CPU %.1f s; load %.2f→%.2f",
		run.RedisCPU.Seconds(), run.KafkaCPU.Seconds(), run.DriverCPU.Seconds(), run.LoadStart, run.LoadEnd)
	if run.ProduceTook > 0 {
		fmt.Fprintf(&b, "; produced in %.1f s", run.ProduceTook.Seconds())
	}
	if run.RedisUsedMemory > 0 {
		fmt.Fprintf(&b, "; redis used_memory %s", mib(run.RedisUsedMemory))
	}
	if j := run.Jobs; j != nil {
		verdict := fmt.Sprintf("= simulate's transition emails, each once (%d usage-threshold emails among them)", j.ThresholdExpected)
		if !j.OK() {
			verdict = fmt.Sprintf("≠ simulate's: %d missing %v (%d of them usage thresholds), %d extra %v, %d duplicate records, %d timer jobs",
				j.Missing, j.MissingByType, j.ThresholdMissing, j.Extra, j.ExtraByType, j.Duplicates, j.Timer)
		}
		fmt.Fprintf(&b, "; jobs %d records (%d bytes each on average), %d keys %s", j.Records, j.Bytes/max(j.Records, 1), j.Distinct, verdict)
	}
	if run.Kind == "peer" {
		verdict := "= simulate's transitions"
		if run.PeerJobs != run.PeerExpected {
			verdict = fmt.Sprintf("≠ simulate's %d transitions", run.PeerExpected)
		}
		fmt.Fprintf(&b, "; peer jobs %d (one per transition) %s", run.PeerJobs, verdict)
	}
	if s := run.Send; s != nil {
		verdict := "each job sent once"
		if !s.OK() {
			verdict = fmt.Sprintf("NOT each once: %d duplicates, %d of %d jobs", s.Duplicates, s.Distinct, s.Jobs)
		}
		fmt.Fprintf(&b, "; mailgun %d requests, %d messages, %s", s.Requests, s.Messages, verdict)
	}
	for _, c := range run.Crashes {
		fmt.Fprintf(&b, "\n  crash (restarted): %s", c)
	}
	if s := run.Sim; s != nil {
		fmt.Fprintf(&b, "; %d emails (%d timer), %d stderr lines", s.Emails, s.TimerEmails, s.DeadLetters)
		if s.Differs != nil {
			fmt.Fprintf(&b, "; %d emails differ from the in-memory run over the same records", *s.Differs)
			if len(s.DiffersByType) > 0 {
				fmt.Fprintf(&b, " %v (+: only with Redis, -: only in memory)", s.DiffersByType)
			}
		}
	}
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

// printSummary prints the runs as the markdown tables of docs/benchmarks.md.
func (r *Results) printSummary(w io.Writer) {
	groups := map[string][]*RunResult{}
	var order []string
	for _, run := range r.Runs {
		g := strings.Fields(run.Name)[0]
		switch {
		case run.Kind == "simulate":
			g = run.Name
		case run.Kind == "peer":
			g = strings.Join(strings.Fields(run.Name)[:2], " ")
		case strings.HasPrefix(run.Name, "scaling"), strings.HasPrefix(run.Name, "cluster"), strings.HasPrefix(run.Name, "one Redis"):
			g = strings.Join(strings.Fields(run.Name)[:2], " ")
			if strings.HasPrefix(run.Name, "one Redis") {
				g = "one Redis 3×"
			}
		}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], run)
	}
	fmt.Fprintln(w, "\n| run | instances × partitions, Redis | rate (every run) | CPU of the stage (cores) | max RSS of each stage | Redis / Kafka CPU (cores) | load | exactly once |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, g := range order {
		runs := groups[g]
		var rates, cores, rss, other, load, ok []string
		for _, run := range runs {
			if run.Err != "" {
				rates, cores, rss, other = append(rates, "FAILED"), append(cores, "–"), append(rss, "–"), append(other, "–")
				load, ok = append(load, "–"), append(ok, "–")
				continue
			}
			if len(run.Crashes) > 0 {
				rates = append(rates, fmt.Sprintf("%.0f (%d crashes)", run.Rate, len(run.Crashes)))
			} else {
				rates = append(rates, fmt.Sprintf("%.0f", run.Rate))
			}
			var c float64
			var peaks []string
			for _, s := range run.Stages {
				c += s.Cores
				peaks = append(peaks, fmt.Sprintf("%d", s.PeakRSS>>20))
			}
			cores = append(cores, fmt.Sprintf("%.2f", c))
			rss = append(rss, strings.Join(peaks, "+"))
			secs := run.Elapsed.Seconds()
			other = append(other, fmt.Sprintf("%.2f / %.2f", run.RedisCPU.Seconds()/secs, run.KafkaCPU.Seconds()/secs))
			load = append(load, fmt.Sprintf("%.1f→%.1f", run.LoadStart, run.LoadEnd))
			switch {
			case run.Jobs != nil:
				v := yes(run.Jobs.OK())
				if run.Jobs.ThresholdMissing > 0 {
					v += fmt.Sprintf(" (−%d usage)", run.Jobs.ThresholdMissing)
				}
				ok = append(ok, v)
			case run.Send != nil:
				ok = append(ok, yes(run.Send.OK()))
			case run.Sim != nil && run.Sim.Differs != nil:
				ok = append(ok, yes(*run.Sim.Differs == 0))
			case run.Kind == "peer":
				ok = append(ok, fmt.Sprintf("%d jobs (%s)", run.PeerJobs, map[bool]string{true: "= transitions", false: "≠ transitions"}[run.PeerJobs == run.PeerExpected]))
			}
		}
		first := runs[0]
		fmt.Fprintf(w, "| %s | %d × %d, %s | %s %s/s | %s | %s MiB | %s | %s | %s |\n", g, first.Instances, first.Partitions, first.Redis,
			strings.Join(rates, " · "), first.unit(), strings.Join(cores, " · "), strings.Join(rss, " · "), strings.Join(other, " · "),
			strings.Join(load, " · "), strings.Join(ok, " · "))
	}
	for _, run := range r.Runs {
		if l := run.Latency; l != nil {
			fmt.Fprintf(w, "\n%s: p50 %s, p90 %s, p99 %s, max %s over %d jobs (%d unmatched)\n", run.Name, ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max), l.N, l.Unmatched)
		}
	}
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}
