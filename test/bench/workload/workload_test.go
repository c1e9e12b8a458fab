package workload

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/portalmail/portalmail/schemas/cdc"
)

// small is a scaled-down workload for tests.
func small() Config {
	c := Default()
	c.Partners, c.Companies, c.PortalUsers, c.Subscriptions, c.EndUsers, c.Endpoints = 10, 400, 300, 100, 300, 300
	c.Changes = 5000
	return c
}

func TestDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	_, da, err := WriteJSONL(&a, small())
	if err != nil {
		t.Fatal(err)
	}
	_, db, err := WriteJSONL(&b, small())
	if err != nil {
		t.Fatal(err)
	}
	if da != db || !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two runs with the same seed differ")
	}
	c := small()
	c.Seed = 2
	var x bytes.Buffer
	if _, dx, _ := WriteJSONL(&x, c); dx == da {
		t.Fatal("another seed gives the same workload")
	}
}

func TestCountsAndMix(t *testing.T) {
	cfg := small()
	sum, err := Generate(cfg, func(Record) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if sum.Snapshot != cfg.SnapshotRows() || sum.Changes != cfg.Changes {
		t.Fatalf("snapshot %d (want %d), changes %d (want %d)", sum.Snapshot, cfg.SnapshotRows(), sum.Changes, cfg.Changes)
	}
	if d := Default(); d.SnapshotRows() != 80050 || d.Changes != 300000 {
		t.Fatalf("default workload: %d snapshot rows, %d changes", d.SnapshotRows(), d.Changes)
	}
	byKind := map[string]int{}
	for k, n := range sum.Kinds {
		byKind[k[:indexDot(k)]] += n
	}
	for _, m := range mix {
		want := cfg.Changes * m.share / 1000
		if byKind[m.kind] != want {
			t.Errorf("%s: %d changes, want %d", m.kind, byKind[m.kind], want)
		}
	}
}

// TestTimesMoveForward: commit times never go back, the snapshot ends
// before Start and the changes span (Start, Start+Span], LSNs increase.
func TestTimesMoveForward(t *testing.T) {
	cfg := Default() // the full length: a 30-day span over 300,000 changes
	var last time.Time
	var lastLSN int64
	n := 0
	_, err := Generate(cfg, func(r Record) error {
		if r.At.Before(last) {
			t.Fatalf("record %d at %s, before the previous one at %s", n, r.At, last)
		}
		if r.Phase == Snapshot && !r.At.Before(cfg.Start) {
			t.Fatalf("snapshot record %d at %s, not before the start", n, r.At)
		}
		if r.Phase == Changes && (!r.At.After(cfg.Start) || r.At.After(cfg.Start.Add(cfg.Span))) {
			t.Fatalf("change %d at %s, outside the span", n, r.At)
		}
		var v struct {
			Source struct {
				LSN  int64 `json:"lsn"`
				TsMs int64 `json:"ts_ms"`
			} `json:"source"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		if v.Source.TsMs != r.At.UnixMilli() || v.Source.LSN < lastLSN || (r.Phase == Changes && v.Source.LSN == lastLSN) {
			t.Fatalf("record %d: ts_ms %d (at %d), lsn %d after %d", n, v.Source.TsMs, r.At.UnixMilli(), v.Source.LSN, lastLSN)
		}
		last, lastLSN = r.At, v.Source.LSN
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := cfg.Start.Add(cfg.Span); !last.Equal(want) {
		t.Errorf("the last change is at %s, want %s", last, want)
	}
}

func indexDot(s string) int {
	for i := range s {
		if s[i] == '.' {
			return i
		}
	}
	return len(s)
}

// TestDecodes: every record decodes with portalmail's own decoder, plain and
// wrapped alike, to the same change; generated columns have the contract's
// types; keys name the row.
func TestDecodes(t *testing.T) {
	for _, tb := range tables() {
		contract := cdc.Contract[tb.topic]
		if contract == nil {
			t.Fatalf("%s is not a contract table", tb.topic)
		}
		for _, c := range tb.columns {
			want, ok := contract[c.name]
			if !ok {
				if c.name != "created_at" && c.name != "updated_at" {
					t.Errorf("%s.%s is not a contract column", tb.topic, c.name)
				}
				continue
			}
			if got := map[kind]cdc.ColumnType{text: cdc.Text, integer: cdc.Integer, boolean: cdc.Boolean,
				timestamp: cdc.Timestamp, date: cdc.Date, textArray: cdc.TextArray}[c.kind]; got != want {
				t.Errorf("%s.%s: generated as %v, contract says %v", tb.topic, c.name, got, want)
			}
		}
	}
	dec := cdc.NewDecoder(cdc.DecoderConfig{})
	ctx := context.Background()
	plain := map[int]cdc.Change{}
	decode := func(wrap bool) {
		cfg := small()
		cfg.Wrap = wrap
		n := 0
		_, err := Generate(cfg, func(r Record) error {
			ch, err := dec.Decode(ctx, r.Topic, 0, int64(n), r.Key, r.Value)
			if err != nil {
				t.Fatalf("record %d (%s, wrap %v): %v\n%s", n, r.Topic, wrap, err, r.Value)
			}
			if string(ch.Op) != r.Op || ch.ID == "" || ch.ID != ch.After.Str("id") {
				t.Fatalf("record %d: op %q id %q after %v", n, ch.Op, ch.ID, ch.After)
			}
			if ch.Position.Kind != cdc.LSN {
				t.Fatalf("record %d: position %v, want an LSN", n, ch.Position)
			}
			if !wrap {
				// Keys are the row's id, but cvi_usage's the subscription
				// (message.key.columns), so its samples share a partition.
				col := "id"
				if r.Topic == "service.public.cvi_usage" {
					col = "subscription_id"
				}
				var key map[string]string
				if err := json.Unmarshal(r.Key, &key); err != nil || len(key) != 1 || key[col] == "" || key[col] != ch.After.Str(col) {
					t.Fatalf("record %d (%s): key %s, want {%q: %q}", n, r.Topic, r.Key, col, ch.After.Str(col))
				}
				plain[n] = ch
			} else if p := plain[n]; !reflect.DeepEqual(p.After, ch.After) || p.Position != ch.Position {
				t.Fatalf("record %d decodes differently wrapped:\n%v\n%v", n, p.After, ch.After)
			}
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	decode(false)
	decode(true)
}

// TestFileRoundTrip: the JSON-lines file is simulate's input format.
func TestFileRoundTrip(t *testing.T) {
	var b bytes.Buffer
	if _, _, err := WriteJSONL(&b, small()); err != nil {
		t.Fatal(err)
	}
	for i, line := range bytes.Split(bytes.TrimSpace(b.Bytes()), []byte("\n")) {
		var r FileRecord
		if err := json.Unmarshal(line, &r); err != nil || r.Topic == "" || len(r.Key) == 0 || len(r.Value) == 0 {
			t.Fatalf("line %d: %v: %s", i+1, err, line)
		}
	}
}
