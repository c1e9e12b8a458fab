package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portalmail/portalmail/metrics"
	"github.com/portalmail/portalmail/processor/webhooks"
	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/state"
)

// shortLimits replace the servers' timeouts in tests: clients are cut off in
// a fraction of a second instead of seconds.
var shortLimits = serverLimits{ReadHeader: 200 * time.Millisecond, Read: 400 * time.Millisecond,
	Write: 400 * time.Millisecond, Idle: 300 * time.Millisecond, MaxHeaderBytes: 4 << 10}

type nopRecorder struct{}

func (nopRecorder) Record(context.Context, schemas.EmailDelivery) error { return nil }

// startServers starts the ops server of a stage and the webhook server, as
// the commands build them, with shortLimits; it returns their addresses.
func startServers(t *testing.T) map[string]string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	ops := HTTPConfig{Addr: freeAddr(t), CheckLimit: 50 * time.Millisecond, limits: shortLimits}
	wait, err := startHTTP(ctx, ops, metrics.NewRegistry(), &health{timeout: ops.CheckLimit}, log)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	h, err := webhooks.New(webhooks.Config{SigningKey: "k", Logger: log}, state.New(rc, state.Options{}), nopRecorder{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer("", webhookMux("/webhooks/mailgun", h), shortLimits.or(webhookLimits))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		cancel()
		wait()
		_ = srv.Close()
		rc.Close()
	})
	return map[string]string{"ops": ops.Addr, "webhooks": ln.Addr().String()}
}

// heldFor writes head, then (with drip) one more byte every 20 ms, and
// returns how long the server kept the connection open, reading all it
// answers; it gives up after 3 s.
func heldFor(t *testing.T, addr, head string, drip bool) (time.Duration, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	answer := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(conn)
		answer <- string(b)
	}()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	giveUp := time.After(3 * time.Second)
	for {
		select {
		case a := <-answer:
			return time.Since(start), a
		case <-giveUp:
			return time.Since(start), "<still open>"
		case <-tick.C:
			if drip {
				_, _ = conn.Write([]byte("x"))
			}
		}
	}
}

// TestSlowClientsAreCutOff: a client that declares a 1 MB body and trickles
// it, trickles its headers, or idles on a kept-alive connection, is cut off
// by the ops and webhook servers; oversized headers are refused with 431.
func TestSlowClientsAreCutOff(t *testing.T) {
	addrs := startServers(t)
	paths := map[string]string{"ops": "/healthz", "webhooks": "/webhooks/mailgun"}
	cases := []struct {
		name  string
		head  func(path string) string
		drip  bool
		limit time.Duration // the server must have closed by then
		want  string        // the answer must hold this ("" for anything)
	}{
		{"body trickled a byte at a time", func(p string) string {
			return "POST " + p + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{"
		}, true, 2 * time.Second, ""},
		{"headers trickled", func(p string) string { return "GET " + p + " HTTP/1.1\r\nHost: x\r\nX-Slow: " }, true, 2 * time.Second, ""},
		{"idle keep-alive connection", func(p string) string { return "GET " + p + " HTTP/1.1\r\nHost: x\r\n\r\n" }, false, 2 * time.Second, "HTTP/1.1 "},
		{"oversized headers", func(p string) string {
			return "GET " + p + " HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n"
		}, false, 2 * time.Second, "431"},
	}
	for _, server := range []string{"ops", "webhooks"} {
		for _, c := range cases {
			took, answer := heldFor(t, addrs[server], c.head(paths[server]), c.drip)
			if answer == "<still open>" || took > c.limit {
				t.Errorf("%s, %s: connection held %s (%s)", server, c.name, took.Round(time.Millisecond), firstLine(answer))
			}
			if !strings.Contains(answer, c.want) {
				t.Errorf("%s, %s: answer %q, want %q", server, c.name, firstLine(answer), c.want)
			}
		}
	}
	// Well-behaved clients are served as before.
	for server, path := range paths {
		resp, err := http.Get("http://" + addrs[server] + path)
		if err != nil {
			t.Fatalf("%s: %v", server, err)
		}
		resp.Body.Close()
		if server == "ops" && resp.StatusCode != http.StatusOK {
			t.Errorf("%s%s: %d", server, path, resp.StatusCode)
		}
	}
	t.Logf("%d cases × 2 servers", len(cases))
}

func firstLine(s string) string {
	line, _, _ := bufio.NewReader(strings.NewReader(s)).ReadLine()
	return string(line)
}
