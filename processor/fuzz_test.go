package processor_test

import (
	"context"
	"testing"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/portalmail/portalmail/state/memory"
)

// FuzzCDCStream drives the engine with whole CDC streams: random
// interleavings of creates, updates, deletes, snapshot reads and
// redeliveries of a few rows, in batches that commit or abort (an aborted
// batch is applied and then consumed again, as after a failed Kafka
// transaction). Properties:
//   - no panic, no error, no dead letter (every change is well-formed);
//   - a retried batch derives exactly the keys of its aborted attempt;
//   - no key is emitted twice;
//   - redelivering any prefix of the stream, after it was committed, emits
//     no new key.
//
// `go test -fuzz FuzzCDCStream ./processor/` explores; `make test` runs it
// for a bounded time (scripts/test.sh).
func FuzzCDCStream(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87, 0x98, 0xa9, 0xba, 0xcb})
	f.Add([]byte{0x00, 0x00, 0x01, 0x01, 0xf2, 0x02, 0x03, 0xf3, 0xff, 0x04, 0x05})
	f.Add([]byte("create update delete redeliver snapshot abort commit"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 400 {
			data = data[:400]
		}
		runStream(t, data)
	})
}

// streamRows are the rows a fuzzed stream changes: each a table, an id and a
// function building its image from a 3-bit state.
var streamRows = []struct {
	table, id string
	image     func(s byte) cdc.Row
}{
	{cdc.Endpoints, "ep1", func(s byte) cdc.Row {
		return cdc.Row{"id": "ep1", "company_id": "c-acme", "name": "Room", "enabled": s&1 == 1}
	}},
	{cdc.Endpoints, "ep2", func(s byte) cdc.Row {
		return cdc.Row{"id": "ep2", "company_id": "c-acme", "name": "Room 2", "enabled": s&1 == 0}
	}},
	{cdc.LicensePlans, "lp1", func(s byte) cdc.Row {
		return plan("lp1", "2030-06-30", cdc.Row{"quantity": int64(10 + s%4),
			"billing_period": []string{"monthly", "annual"}[s>>2&1], "renewal": []string{"unset", "renew"}[s>>1&1]})
	}},
	{cdc.EndUsers, "eu1", func(s byte) cdc.Row {
		r := endUser("eu1", []string{"invited", "active", "deactivated", "active"}[s%4], nil)
		if s&4 != 0 {
			r["password_set_at"] = "2026-01-05T10:01:00Z"
		}
		return r
	}},
	{cdc.TeamVMRs, "vmr1", func(s byte) cdc.Row {
		return cdc.Row{"id": "vmr1", "company_id": "c-acme", "name": "Team", "status": []string{"active", "inactive"}[s&1]}
	}},
}

func runStream(t *testing.T, data []byte) {
	ctx := context.Background()
	st := memory.New(memory.Options{})
	eng, err := processor.New(catalog.Default(), st, scenarioMust(t), processor.Config{Links: map[catalog.Site]string{
		catalog.SitePortal: "https://portal.test", catalog.SiteService: "https://service.test", catalog.SiteAnalytics: "https://analytics.test"}})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, eng: eng, pos: 1000}
	emitted := map[string]bool{}
	apply := func(batch []cdc.Change, commit bool) processor.Output {
		out, err := eng.Apply(ctx, t0, batch)
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		if len(out.DLQ) > 0 {
			t.Fatalf("dead letter: %+v", out.DLQ[0])
		}
		if commit {
			for _, j := range out.Jobs {
				if emitted[j.Key] {
					t.Fatalf("key emitted twice: %s", j.Key)
				}
				emitted[j.Key] = true
			}
			if err := eng.Commit(ctx, out.Commit); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	seed := []cdc.Change{
		h.change(cdc.Partners, cdc.OpRead, cdc.Row{"id": "p-direct", "name": "Direct", "type": "direct", "contact_email": "partner@direct.example",
			"optional_notifications": []string{"service"}, "order_recipients": []string{"orders@direct.example"}}),
		h.change(cdc.Companies, cdc.OpRead, h.acme()),
		h.change(cdc.PortalUsers, cdc.OpRead, cdc.Row{"id": "u-buyer", "email": "buyer@direct.example", "partner_id": "p-direct", "status": "active"}),
	}
	apply(seed, true)

	var stream []cdc.Change // every change delivered, in order
	exists := make([]bool, len(streamRows))
	var batch []cdc.Change
	flush := func(abort bool) {
		if len(batch) == 0 {
			return
		}
		if abort {
			first := apply(batch, false)
			again := apply(batch, true)
			if a, b := join(keys(first.Jobs)), join(keys(again.Jobs)); a != b {
				t.Fatalf("a retried batch derived other keys:\n%s\n%s", a, b)
			}
		} else {
			apply(batch, true)
		}
		batch = nil
	}
	for _, b := range data {
		row, op, s := int(b&7)%len(streamRows), b>>3&3, b>>5
		r := streamRows[row]
		var ch cdc.Change
		switch {
		case b == 0xff:
			flush(true)
			continue
		case b == 0xfe:
			flush(false)
			continue
		case op == 3 && len(stream) > 0: // redeliver an earlier change
			ch = stream[int(s)*len(stream)/8]
			ch.Cause.Offset += 10_000
		case op == 2: // delete (or a snapshot read when absent)
			if exists[row] {
				ch = h.change(r.table, cdc.OpDelete, r.image(s))
				exists[row] = false
			} else {
				ch = h.change(r.table, cdc.OpRead, r.image(s))
				exists[row] = true
			}
		default:
			o := cdc.OpUpdate
			if !exists[row] {
				o = cdc.OpCreate
			}
			ch = h.change(r.table, o, r.image(s))
			exists[row] = true
		}
		stream = append(stream, ch)
		batch = append(batch, ch)
		if len(batch) >= 7 {
			flush(s&1 == 1)
		}
	}
	flush(false)
	for k := 1; k <= len(stream); k += max(1, len(stream)/8) {
		prefix := make([]cdc.Change, k)
		copy(prefix, stream[:k])
		for i := range prefix {
			prefix[i].Cause.Offset += 100_000
		}
		out := apply(prefix, false)
		for _, j := range out.Jobs {
			if !emitted[j.Key] {
				t.Fatalf("redelivering a prefix of %d changes emitted a new key %s", k, j.Key)
			}
		}
		if len(out.Jobs) != 0 {
			t.Fatalf("redelivering a prefix of %d changes emitted %d jobs (keys already emitted)", k, len(out.Jobs))
		}
	}
}

// scenarioMust returns the parsed templates.
func scenarioMust(t *testing.T) processor.Renderer {
	tmpl, err := scenarioTemplates()
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}
