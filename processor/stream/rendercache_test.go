package stream

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/portalmail/portalmail/templates"
)

// TestRenderCache: the jobs of one email (the same data) are rendered once
// and get what rendering gives; other data is rendered; a failure is not
// kept; the cache keeps at most its size, the oldest going first.
func TestRenderCache(t *testing.T) {
	tmpl, err := templates.Parse()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	calls := map[string]int{}
	fail := map[string]bool{}
	render := func(data []byte) (string, string, string, error) {
		mu.Lock()
		calls[string(data)]++
		bad := fail[string(data)]
		mu.Unlock()
		if bad {
			return "", "", "", errors.New("refused")
		}
		return tmpl.RenderJobData(data)
	}
	job := func(brand string) string {
		d := templates.JobData{Template: "account_portal_deactivated", Data: templates.Data{Type: "account.portal_deactivated",
			Subject: "Your account is deactivated", Brand: templates.Branding{FromName: brand}}}
		raw, err := d.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		return string(raw)
	}
	c := newRenderCache(3)
	a, b := job("A"), job("B")
	wantHTML, wantText, wantDigest, err := tmpl.RenderJobData([]byte(a))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 { // the email's jobs to four recipients
		r, err := c.render(a, render)
		if err != nil {
			t.Fatal(err)
		}
		if r.html != wantHTML || r.text != wantText || r.digest != wantDigest {
			t.Fatalf("job %d: rendering differs from RenderJobData's", i)
		}
	}
	if _, err := c.render(b, render); err != nil {
		t.Fatal(err)
	}
	if calls[a] != 1 || calls[b] != 1 {
		t.Fatalf("renders %v, want each data once", calls)
	}

	fail["bad"] = true
	for range 2 {
		if _, err := c.render("bad", render); err == nil {
			t.Fatal("a failing rendering came back without its error")
		}
	}
	if calls["bad"] != 2 {
		t.Fatalf("a failure was kept: rendered %d times, want 2", calls["bad"])
	}

	// Size 3: a, b, then c1 and c2 push a out; b is still kept.
	for i := range 2 {
		if _, err := c.render(job(fmt.Sprint("C", i)), render); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{b, a} {
		if _, err := c.render(d, render); err != nil {
			t.Fatal(err)
		}
	}
	if calls[a] != 2 || calls[b] != 1 || len(c.byKey) != 3 {
		t.Fatalf("after eviction: a rendered %d times (want 2), b %d (want 1), %d kept (want 3)", calls[a], calls[b], len(c.byKey))
	}
}
