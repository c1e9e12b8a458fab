package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPreviewBindsBeforeItAnnounces: on a busy port preview fails without
// printing a URL; on a free one the URL it prints answers at once.
func TestPreviewBindsBeforeItAnnounces(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	out, _, err := runCLI(t, nil, "preview", "--listen", busy.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "address already in use") || out != "" {
		t.Fatalf("busy port: err %v, stdout %q", err, out)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"preview", "--listen", "127.0.0.1:0"}, func(string) string { return "" }, strings.NewReader(""), stdout, &syncBuffer{})
	}()
	var url string
	waitFor(t, 10*time.Second, func() string {
		if _, rest, ok := strings.Cut(stdout.String(), "http://"); ok {
			url = "http://" + strings.Fields(rest)[0]
			return ""
		}
		return "no URL announced: " + stdout.String()
	})
	resp, err := http.Get(url + "?brand=northwind")
	if err != nil {
		t.Fatalf("announced %s but it does not answer: %v", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d", url, resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
