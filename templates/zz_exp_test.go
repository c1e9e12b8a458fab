package templates

import (
	"bytes"
	"syscall"
	"testing"
	"time"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestExpCPU(t *testing.T) {
	s := mustSet(t)
	for _, id := range []string{"order.new", "account.portal_activate", "trial.user_extended"} {
		d := sample(id)
		const n = 20000
		best := time.Duration(1 << 62)
		for r := 0; r < 3; r++ {
			c0 := cpuNow()
			for i := 0; i < n; i++ {
				s.Render(NameOf(id), d)
			}
			if c := (cpuNow() - c0) / n; c < best {
				best = c
			}
		}
		t.Logf("%s: %v CPU per render", id, best)
	}
}

func TestExpSplit(t *testing.T) {
	s := mustSet(t)
	d := sample("order.new")
	d.Brand = normalize(d.Brand)
	p := s.pairs["order_new"]
	var b bytesBuffer
	for _, part := range []string{"html", "text"} {
		const n = 20000
		best := time.Duration(1 << 62)
		for r := 0; r < 3; r++ {
			c0 := cpuNow()
			for i := 0; i < n; i++ {
				b.Reset()
				if part == "html" {
					p.html.ExecuteTemplate(&b, "layout", &d)
				} else {
					p.text.ExecuteTemplate(&b, "layout", &d)
				}
			}
			if c := (cpuNow() - c0) / n; c < best {
				best = c
			}
		}
		t.Logf("%s: %v", part, best)
	}
}
type bytesBuffer = bytes.Buffer
