package simulate_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/processor/simulate"
	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/portalmail/portalmail/state"
	"github.com/portalmail/portalmail/templates"
)

func record(topic, id string, lsn int64, after map[string]any) string {
	b, _ := json.Marshal(map[string]any{"topic": topic, "key": map[string]any{"id": id}, "value": map[string]any{
		"op": "c", "after": after, "ts_ms": 1767607200000, "source": map[string]any{"lsn": lsn, "ts_ms": 1767607200000}}})
	return string(b)
}

// TestHostileInputLines: a UTF-8 BOM before line 1 is accepted; a line over
// MaxLine is one dead letter and the run goes on to the end (no error: the
// CLI exits 0).
func TestHostileInputLines(t *testing.T) {
	partner := func(id string, lsn int64) string {
		return record("portal.public.partners", id, lsn, map[string]any{"id": id, "name": "P " + id, "type": "direct", "contact_email": "partner@" + id + ".example"})
	}
	company := func(id, partner string, lsn int64) string {
		return record("portal.public.companies", id, lsn, map[string]any{"id": id, "partner_id": partner, "name": "C " + id, "status": "trial",
			"trial_expires_at": "2026-03-01T00:00:00Z", "contact_email": "it@" + id + ".example"})
	}
	huge := `{"topic":"portal.public.partners","key":{"id":"big"},"value":{"op":"c","after":{"id":"big","name":"` + strings.Repeat("x", 17<<20) + `"}}}`
	cases := []struct {
		name     string
		lines    []string
		deadLine int // the one dead letter's line, 0 for none
	}{
		{"BOM before line 1", []string{"\xEF\xBB\xBF" + partner("p1", 10), company("c1", "p1", 11), partner("p2", 12), company("c2", "p2", 13)}, 0},
		{"17 MB line", []string{partner("p1", 10), company("c1", "p1", 11), huge, partner("p2", 12), company("c2", "p2", 13)}, 3},
		{"both, CRLF", []string{"\xEF\xBB\xBF" + partner("p1", 10) + "\r", company("c1", "p1", 11) + "\r", huge + "\r", partner("p2", 12), company("c2", "p2", 13)}, 3},
	}
	for _, c := range cases {
		eng := newEngine(t)
		var emails []string
		var dead []simulate.DeadLetter
		input := strings.Join(c.lines, "\n") + "\n"
		err := simulate.Run(context.Background(), eng, cdc.NewDecoder(cdc.DecoderConfig{}), strings.NewReader(input), time.Time{}, simulate.Sink{
			Email:      func(e simulate.Email) error { emails = append(emails, e.Type+" "+e.To); return nil },
			DeadLetter: func(d simulate.DeadLetter) error { dead = append(dead, d); return nil },
		})
		if err != nil {
			t.Errorf("%s: Run: %v", c.name, err)
			continue
		}
		if got := strings.Join(emails, ","); got != "trial.company_created partner@p1.example,trial.company_created partner@p2.example" {
			t.Errorf("%s: emails %s", c.name, got)
		}
		switch {
		case c.deadLine == 0 && len(dead) != 0:
			t.Errorf("%s: dead letters %+v", c.name, dead)
		case c.deadLine != 0 && (len(dead) != 1 || dead[0].Line != c.deadLine || !strings.Contains(dead[0].Reason, "line longer than")):
			t.Errorf("%s: dead letters %+v, want line %d only", c.name, dead, c.deadLine)
		}
	}
}

func newEngine(t *testing.T) *processor.Engine {
	t.Helper()
	st := state.New(redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()}), state.Options{})
	tmpl, err := templates.Parse()
	if err != nil {
		t.Fatal(err)
	}
	eng, err := processor.New(catalog.Default(), st, tmpl, processor.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}
