// Package stage runs portalmail's stages as OS processes of the built binary,
// and the redis-server they share, for the suites under test/ that drive the
// real pipeline (test/debezium; test/faults has the same plumbing inline).
//
// Nothing here knows about topics or emails: a suite builds the binary once
// (Build), starts its own redis-server (StartRedis), and starts each stage
// with its flags and environment (Start). Every process writes its stdout and
// stderr to its own log file, which a suite greps (Proc.Logged) and prints
// when a test fails.
package stage

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Build compiles ./cmd/portalmail of the repository at root into dir and
// returns the binary's path.
func Build(root, dir string) (string, error) {
	bin := filepath.Join(dir, "portalmail")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/portalmail")
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/portalmail: %w", err)
	}
	return bin, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Redis is a redis-server owned by a suite: loopback, a free port,
// appendonly yes (so a restart keeps its data), its files in Dir.
type Redis struct {
	Dir, Addr string
	cmd       *exec.Cmd
}

// StartRedis starts redis-server with its files in dir and waits until it
// accepts connections.
func StartRedis(dir string) (*Redis, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("redis dir: %w", err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	r := &Redis{Dir: dir, Addr: "127.0.0.1:" + strconv.Itoa(port)}
	return r, r.Start()
}

// Start (re)starts the server on its address and directory.
func (r *Redis) Start() error {
	_, port, _ := net.SplitHostPort(r.Addr)
	r.cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", port, "--dir", r.Dir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--logfile", filepath.Join(r.Dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	for range 100 {
		if c, err := net.Dial("tcp", r.Addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s did not answer", r.Addr)
}

// Stop shuts the server down with SIGTERM (it flushes its append-only file).
func (r *Redis) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Proc is one running portalmail process.
type Proc struct {
	Name string
	// Log is the file its stdout and stderr go to (appended across restarts
	// under the same name).
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs bin with args, and env added to this process's environment,
// writing its output to dir/<name>.log.
func Start(bin, dir, name string, args, env []string) (*Proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log of %s: %w", name, err)
	}
	fmt.Fprintf(f, "==== %s: %s %s (env %s)\n", time.Now().Format(time.RFC3339Nano), name, strings.Join(args, " "), strings.Join(env, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop is a graceful shutdown (SIGTERM), as an orchestrator does it; after
// 30 s it kills.
func (p *Proc) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.Kill()
	}
}

// Lines are the lines of the process's log so far.
func (p *Proc) Lines() []string {
	f, err := os.Open(p.Log)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// Logged reports whether a line of the log contains s.
func (p *Proc) Logged(s string) bool {
	for _, l := range p.Lines() {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// Tail is the end of the log, at most n bytes.
func (p *Proc) Tail(n int) string {
	b, _ := os.ReadFile(p.Log)
	if len(b) > n {
		return "...\n" + string(b[len(b)-n:])
	}
	return string(b)
}
