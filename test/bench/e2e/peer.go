package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/portalmail/portalmail/processor/catalog"
)

// The Kafka Streams peer (test/bench/peer/Peer.java) is issue 10's yardstick:
// the stage a team would build instead of `portalmail process`, measured on
// the same broker, workload and modes (cold and warm), so the ratio the issue
// sets (twice the peer's best) is measured on the machine of the day.

// peerRules is the catalog as Peer.java reads it (rules.json): the
// transitions, the usage threshold and the band lines.
type peerRules struct {
	Transitions []peerTransition `json:"transitions"`
	Threshold   peerThreshold    `json:"threshold"`
	Bands       peerBands        `json:"bands"`
}

type peerTransition struct {
	Type   string     `json:"type"`
	Table  string     `json:"table"`
	Create bool       `json:"create"`
	Field  string     `json:"field,omitempty"`
	Change string     `json:"change"`
	From   []string   `json:"from"`
	To     []string   `json:"to"`
	Where  []peerCond `json:"where"`
}

type peerCond struct {
	Field string   `json:"field"`
	In    []string `json:"in"`
	Not   bool     `json:"not"`
}

type peerThreshold struct {
	Table         string `json:"table"`
	Value         string `json:"value"`
	CapacityRef   string `json:"capacity_ref"`
	CapacityTable string `json:"capacity_table"`
	CapacityField string `json:"capacity_field"`
	MinCapacity   int    `json:"min_capacity"`
	UsageType     string `json:"usage_type"`
	OverType      string `json:"over_type"`
}

type peerBands struct {
	UsageAt            int `json:"usage_at"`
	UsageRearmBelow    int `json:"usage_rearm_below"`
	OverAbove          int `json:"over_above"`
	OverRearmAtOrBelow int `json:"over_rearm_at_or_below"`
}

var changeNames = map[catalog.ChangeKind]string{
	catalog.ValueIn: "value_in", catalog.SetOrMoved: "set_or_moved", catalog.FirstSet: "first_set", catalog.MovedLater: "moved_later",
}

// rulesOf exports the catalog's transitions and its one usage threshold.
func rulesOf(types []catalog.EmailType) (peerRules, error) {
	r := peerRules{Bands: peerBands{catalog.DefaultBands.UsageAt, catalog.DefaultBands.UsageRearmBelow,
		catalog.DefaultBands.OverAbove, catalog.DefaultBands.OverRearmAtOrBelow}}
	for _, t := range types {
		switch tr := t.Trigger.(type) {
		case catalog.Transition:
			p := peerTransition{Type: string(t.ID), Table: tr.Table, Create: tr.Create, Field: tr.Field,
				Change: changeNames[tr.Change], From: tr.From, To: tr.To}
			for _, w := range tr.Where {
				p.Where = append(p.Where, peerCond{Field: w.Field, In: w.In, Not: w.Not})
			}
			r.Transitions = append(r.Transitions, p)
		case catalog.Threshold:
			if r.Threshold.Table != "" && r.Threshold.Table != tr.Table {
				return r, fmt.Errorf("peer: a second usage threshold table %s", tr.Table)
			}
			r.Threshold.Table, r.Threshold.Value, r.Threshold.CapacityRef = tr.Table, tr.Value, tr.CapacityRef
			r.Threshold.CapacityTable, r.Threshold.CapacityField, r.Threshold.MinCapacity = tr.CapacityTable, tr.CapacityField, tr.MinCapacity
			switch tr.Level {
			case catalog.LevelUsage:
				r.Threshold.UsageType = string(t.ID)
			case catalog.LevelOver:
				r.Threshold.OverType = string(t.ID)
			}
		}
	}
	if r.Threshold.UsageType == "" || r.Threshold.OverType == "" {
		return r, fmt.Errorf("peer: the catalog has no usage threshold of both levels")
	}
	return r, nil
}

// preparePeer writes rules.json and compiles Peer.java into the benchmark
// directory, once: the runs then start a JVM with nothing to compile.
func (d *driver) preparePeer(ctx context.Context) error {
	if d.peerClasses != "" {
		return nil
	}
	rules, err := rulesOf(catalog.Default())
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(rules, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Join(d.cfg.Dir, "peer")
	if err := os.MkdirAll(filepath.Join(dir, "classes"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), b, 0o644); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "javac", "-nowarn", "-cp", d.cfg.PeerClasspath, "-d", filepath.Join(dir, "classes"),
		filepath.Join(d.cfg.PeerSource, "Peer.java")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("peer: javac: %v: %s", err, out)
	}
	d.peerClasses = filepath.Join(dir, "classes")
	return nil
}

// peerRun runs the peer once in mode (cold or warm) and measures it as
// processRun measures the process stage: from its start (cold) or from the
// first timed record (warm) until its group has committed the end of every
// CDC topic and of its repartition topic.
func (d *driver) peerRun(ctx context.Context, name string, m mode) (*RunResult, error) {
	res := &RunResult{Name: name, Kind: "peer", Instances: 1, Partitions: d.cfg.Partitions, Redis: "–"}
	if err := d.preparePeer(ctx); err != nil {
		return res, err
	}
	n := d.newNames()
	app := n.id + "-peer"
	jobs := n.id + ".peer-jobs"
	internal := []string{app + "-rows-changelog", app + "-bands-changelog", app + "-usage-by-subscription-repartition"}
	topics := append(append([]string{}, n.cdc...), jobs)
	if err := d.broker.createTopics(ctx, int32(d.cfg.Partitions), topics...); err != nil {
		return res, err
	}
	defer d.broker.deleteTopics(append(topics, internal...)...)
	stateDir := filepath.Join(d.cfg.Dir, "peer", "state-"+n.id)
	defer os.RemoveAll(stateDir)
	start := func() (*stage, error) {
		return startStage("java", d.cfg.Dir, fileName(name)+"-"+n.id+"-peer",
			"-Dlog4j2.configurationFile="+filepath.Join(d.cfg.PeerSource, "log4j2.properties"),
			"-cp", d.peerClasses+":"+d.cfg.PeerClasspath, "Peer",
			"--brokers", strings.Join(d.cfg.Brokers, ","), "--app-id", app,
			"--topics", strings.Join(n.cdc, ","), "--jobs-topic", jobs,
			"--rules", filepath.Join(d.cfg.Dir, "peer", "rules.json"), "--state-dir", stateDir,
			"--portal-prefix", n.portal, "--service-prefix", n.service)
	}
	var (
		st     *stage
		err    error
		t0     time.Time
		timed  int
		before sample
	)
	alive := func() error {
		if st.exited() {
			return fmt.Errorf("the peer exited: %s", st.tail())
		}
		return nil
	}
	snap := d.meta.Snapshot
	switch m {
	case cold:
		if _, err := d.broker.produce(ctx, d.records(n, 0, len(d.file)), 0, false); err != nil {
			return res, err
		}
		before = d.sample(nil)
		t0 = time.Now()
		if st, err = start(); err != nil {
			return res, err
		}
		defer st.stop()
		timed = len(d.file)
	case warm:
		if st, err = start(); err != nil {
			return res, err
		}
		defer st.stop()
		if err := d.broker.waitMembers(ctx, app, 1, 2*time.Minute); err != nil {
			return res, fmt.Errorf("%w: %s", err, st.tail())
		}
		if _, err := d.broker.produce(ctx, d.records(n, 0, snap), 0, false); err != nil {
			return res, err
		}
		if err := d.peerCaughtUp(ctx, app, n.cdc, internal[2], alive); err != nil {
			return res, fmt.Errorf("%s: snapshot: %w", name, err)
		}
		_ = resetPeak(st.pid())
		s, _ := st.stat()
		before = d.sample(nil)
		before.stages = []ProcStat{s}
		t0 = time.Now()
		if _, err := d.broker.produce(ctx, d.records(n, snap, len(d.file)), 0, false); err != nil {
			return res, err
		}
		timed = len(d.file) - snap
	default:
		return res, fmt.Errorf("peer: mode %d not measured", m)
	}
	if err := d.peerCaughtUp(ctx, app, n.cdc, internal[2], alive); err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	t1 := time.Now()
	s, err := st.stat()
	if err != nil {
		return res, err
	}
	after := d.sample(nil)
	after.stages = []ProcStat{s}
	res.Records, res.Elapsed = timed, t1.Sub(t0)
	res.Rate = float64(timed) / res.Elapsed.Seconds()
	res.setUsage(before, after, m == cold)
	st.stop()
	count, err := countCommitted(ctx, d.cfg.Brokers, jobs)
	if err != nil {
		return res, err
	}
	res.PeerJobs, res.PeerExpected = count, len(d.expect.intents)
	return res, nil
}

// peerCaughtUp waits until the peer's group has committed the end of every
// CDC topic, then the end of its repartition topic as it is at that moment
// (the usage samples the peer forwarded to itself).
func (d *driver) peerCaughtUp(ctx context.Context, group string, cdcTopics []string, repartition string, alive func() error) error {
	ends, err := d.broker.endOffsets(ctx, cdcTopics...)
	if err != nil {
		return err
	}
	if _, err := d.broker.waitCaughtUp(ctx, group, ends, d.cfg.Timeout, alive); err != nil {
		return err
	}
	rends, err := d.broker.endOffsets(ctx, repartition)
	if err != nil {
		return err
	}
	// The peer's transactions end each partition of its repartition topic
	// with a commit marker, an offset of its own that a consumer's position
	// may not have passed: the group is done within one offset of the end.
	for _, ps := range rends {
		for p, o := range ps {
			if o.Offset > 0 {
				o.Offset--
				ps[p] = o
			}
		}
	}
	_, err = d.broker.waitCaughtUp(ctx, group, rends, d.cfg.Timeout, alive)
	return err
}

// countCommitted counts the committed records of topic (read_committed),
// reading until nothing has come for 2 s.
func countCommitted(ctx context.Context, seeds []string, topic string) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	n := 0
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		got := 0
		fs.EachRecord(func(*kgo.Record) { got++ })
		n += got
		if err := fs.Err0(); err != nil && got == 0 {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			return n, nil // nothing within 2 s: done
		}
	}
}
