package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/portalmail/portalmail/metrics"
)

// HTTPConfig is the stage's metrics and health endpoint.
type HTTPConfig struct {
	Addr       string
	LagEvery   time.Duration
	CheckLimit time.Duration
	// Pprof serves net/http/pprof's profiles under /debug/pprof/ on Addr.
	Pprof bool
	// limits bound the server's clients (opsLimits by default; tests
	// shorten them). Writes always outlast a readiness check.
	limits serverLimits
}

func (c *HTTPConfig) register(f *flags, defAddr string) {
	f.String(&c.Addr, "http-addr", defAddr, "listen address of /metrics, /healthz and /readyz (empty: no HTTP server)")
	f.Duration(&c.LagEvery, "lag-interval", 30*time.Second, "how often the consumer lag of the stage's group is computed for /metrics (0: never)")
	f.Duration(&c.CheckLimit, "ready-timeout", 2*time.Second, "timeout of each readiness check")
	f.Bool(&c.Pprof, "pprof", false, "also serve Go's CPU, heap and goroutine profiles under /debug/pprof/ on --http-addr")
}

func (c HTTPConfig) validate() error {
	if c.LagEvery < 0 || c.CheckLimit <= 0 {
		return errors.New("--lag-interval must not be negative and --ready-timeout must be positive")
	}
	return nil
}

// check is one readiness condition; nil means ready.
type check struct {
	name string
	fn   func(ctx context.Context) error
}

// health answers /healthz and /readyz. Until setChecks is called the stage
// is starting and not ready.
type health struct {
	mu      sync.Mutex
	checks  []check
	timeout time.Duration
}

func (h *health) setChecks(cs ...check) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks = cs
}

// readiness runs every check concurrently and returns the failures by name.
func (h *health) readiness(ctx context.Context) (ok []string, failed map[string]string) {
	h.mu.Lock()
	cs := h.checks
	h.mu.Unlock()
	failed = map[string]string{}
	if cs == nil {
		failed["stage"] = "starting"
		return nil, failed
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, h.timeout)
			defer cancel()
			err := c.fn(cctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[c.name] = err.Error()
			} else {
				ok = append(ok, c.name)
			}
		}()
	}
	wg.Wait()
	sort.Strings(ok)
	return ok, failed
}

func (h *health) serveReady(w http.ResponseWriter, r *http.Request) {
	ok, failed := h.readiness(r.Context())
	body := struct {
		Ready    bool              `json:"ready"`
		OK       []string          `json:"ok"`
		NotReady map[string]string `json:"not_ready,omitempty"`
	}{len(failed) == 0, ok, failed}
	w.Header().Set("Content-Type", "application/json")
	if !body.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(body)
}

// handler is the stage's HTTP API.
func (h *health) handler(reg *metrics.Registry, profiles bool) http.Handler {
	mux := http.NewServeMux()
	if profiles {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("GET /metrics", reg.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", h.serveReady)
	return mux
}

// startHTTP listens on c.Addr and serves until ctx ends, then shuts down
// gracefully. The returned function waits for the shutdown. An empty address
// serves nothing.
func startHTTP(ctx context.Context, c HTTPConfig, reg *metrics.Registry, h *health, log *slog.Logger) (wait func(), err error) {
	if c.Addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return nil, err
	}
	l := c.limits.or(opsLimits)
	l.Write = max(l.Write, c.CheckLimit+5*time.Second)
	if c.Pprof {
		l.Write = max(l.Write, 5*time.Minute) // a CPU profile streams for its duration
	}
	srv := newServer("", h.handler(reg, c.Pprof), l)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server failed", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("http server listening", "addr", ln.Addr().String())
	return func() { <-done }, nil
}

// clientChecks are the readiness checks of every command that serves: Redis
// answers PING, a Kafka broker answers, the schema registry answers.
func clientChecks(rc redis.UniversalClient, cl *kgo.Client, reg *sr.Client) []check {
	return []check{
		{"redis", func(ctx context.Context) error { return rc.Ping(ctx).Err() }},
		{"kafka", cl.Ping},
		{"schema_registry", func(ctx context.Context) error {
			// GET /config: the global compatibility level, served by every
			// Confluent-compatible registry.
			for _, r := range reg.Compatibility(ctx) {
				if r.Err != nil {
					return r.Err
				}
			}
			return nil
		}},
	}
}

// stageChecks are the readiness checks of both stages: clientChecks, and
// this client is a member of its group.
func stageChecks(rc redis.UniversalClient, cl *kgo.Client, reg *sr.Client, group string) []check {
	adm := kadm.NewClient(cl)
	return append(clientChecks(rc, cl, reg),
		check{"group", func(ctx context.Context) error { return joined(ctx, adm, cl, group) }})
}

// joined reports whether cl is a member of its group, as the coordinator sees it.
func joined(ctx context.Context, adm *kadm.Client, cl *kgo.Client, group string) error {
	member, _ := cl.GroupMetadata()
	if member == "" {
		return errors.New("not joined")
	}
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return err
	}
	g, ok := gs[group]
	if !ok {
		return errors.New("group not described")
	}
	if g.Err != nil {
		return g.Err
	}
	for _, m := range g.Members {
		if m.MemberID == member {
			return nil // a rebalance in progress still counts as joined
		}
	}
	return errors.New("not a member of the group (state " + g.State + ")")
}

// opsServer is a stage's operational side: its metrics registry, its health
// and the HTTP server that serves both.
type opsServer struct {
	reg    *metrics.Registry
	health *health
	ctx    context.Context
	stop   context.CancelFunc
	wait   func()
}

// startOps starts the HTTP server of a stage (ready once watch is called).
func startOps(ctx context.Context, c HTTPConfig, log *slog.Logger) (*opsServer, error) {
	o := &opsServer{reg: metrics.NewRegistry(), health: &health{timeout: c.CheckLimit}}
	o.ctx, o.stop = context.WithCancel(ctx)
	wait, err := startHTTP(o.ctx, c, o.reg, o.health, log)
	if err != nil {
		o.stop()
		return nil, fmt.Errorf("--http-addr: %w", err)
	}
	o.wait = wait
	return o, nil
}

// watch makes readiness follow the stage's Redis, Kafka client, registry and
// group, and exports the group's lag every lagEvery (0: not at all).
// extra are the stage's own conditions (the process stage's last batch).
func (o *opsServer) watch(rc redis.UniversalClient, cl *kgo.Client, reg *sr.Client, group string, lagEvery time.Duration, log *slog.Logger, extra ...check) {
	o.health.setChecks(append(stageChecks(rc, cl, reg, group), extra...)...)
	if lagEvery > 0 {
		go o.reg.RunLag(o.ctx, kadm.NewClient(cl), group, lagEvery, log)
	}
}

// close stops the server and waits for it.
func (o *opsServer) close() { o.stop(); o.wait() }
