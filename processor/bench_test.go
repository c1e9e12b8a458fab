package processor_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/portalmail/portalmail/schemas/cdc"
)

// BenchmarkEngineMixed runs the engine over a mixed stream of changes in
// batches of 1000 (as the process stage polls them): usage samples, user and
// company updates that mail nobody, plan changes, new endpoints that mail, and
// portal logins that move timers. Per 1,000 changes, by i mod 20 (i the
// change's index in its batch): 400 usage samples under the bands (k < 8),
// 200 end-user edits (k < 12), 150 company edits (k < 15), 150 plan edits
// (k < 18) and 100 portal logins; then one change in mailEvery (i mod
// mailEvery = mailEvery-1, taken from the end-user edits and the logins) is a
// new endpoint (2 emails), and one in 10×mailEvery (i mod 10×mailEvery = 15,
// a plan edit) changes the quantity of plan lp-q (4 emails: ordering user,
// partner and Pexip account managers, order recipients). Two mixes:
// "mail-heavy" (mailEvery 10: 100 endpoints and 10 quantity changes per
// 1,000, 0.24 emails per change) and "typical" (mailEvery 100: 10 and 1,
// 0.024 per change: most CDC traffic mails nobody). The jobs/change metric
// reports the mix measured. Set REDIS_URL for a real redis-server
// (scripts/bench.sh does); without it the numbers are miniredis's.
func BenchmarkEngineMixed(b *testing.B) {
	for _, mix := range []struct {
		name      string
		mailEvery int
	}{{"mail-heavy", 10}, {"typical", 100}} {
		b.Run(mix.name, func(b *testing.B) { benchEngine(b, mix.mailEvery) })
	}
}

func benchEngine(b *testing.B, mailEvery int) {
	const batchSize = 1000
	h := newHarness(b)
	h.seed()
	h.apply(t0, h.change(cdc.InteropSubscriptions, cdc.OpCreate, cdc.Row{"id": "s1", "company_id": "c-acme",
		"kind": "teams_cvi", "status": "active", "concurrent_call_licenses": int64(1000)}),
		h.change(cdc.LicensePlans, cdc.OpRead, plan("lp-q", "2027-06-30", nil)))
	batches := make([][]cdc.Change, b.N)
	for n := range b.N {
		batch := make([]cdc.Change, 0, batchSize)
		for i := range batchSize {
			id := fmt.Sprintf("%d-%d", n, i)
			var ch cdc.Change
			switch k := i % 20; {
			case i%mailEvery == mailEvery-1: // new endpoints: 2 emails each
				ch = h.change(cdc.Endpoints, cdc.OpCreate, cdc.Row{"id": "ep" + id, "company_id": "c-acme", "name": "Room " + id, "enabled": true})
			case k < 8: // usage samples well under the bands
				ch = h.change(cdc.CVIUsage, cdc.OpCreate, cdc.Row{"id": "u" + id, "company_id": "c-acme", "subscription_id": "s1", "concurrent_calls": int64(100 + i%300)})
			case k < 12: // end-user profile edits: no email
				ch = h.change(cdc.EndUsers, cdc.OpUpdate, cdc.Row{"id": fmt.Sprintf("e%d", i), "company_id": "c-acme", "email": "user@acme.example", "display_name": "User " + id, "status": "active", "classic": false})
			case k < 15: // company edits: no email
				ch = h.change(cdc.Companies, cdc.OpUpdate, h.acme())
			case k < 18 && i%(10*mailEvery) == 15: // a quantity change of plan lp-q (4 emails)
				ch = h.change(cdc.LicensePlans, cdc.OpUpdate, plan("lp-q", "2027-06-30", cdc.Row{"quantity": int64(n*batchSize + i)}))
			case k < 18: // plan edits that change nothing a catalog entry watches
				ch = h.change(cdc.LicensePlans, cdc.OpUpdate, plan(fmt.Sprintf("lp%d", i%50), "2027-06-30", cdc.Row{"quantity": int64(10)}))
			default: // portal logins move the inactivity timer
				ch = h.change(cdc.PortalUsers, cdc.OpUpdate, cdc.Row{"id": fmt.Sprintf("pu%d", i), "email": "pu@direct.example", "partner_id": "p-direct", "status": "active",
					"last_login_at": t0.Add(time.Duration(n*batchSize+i) * time.Second).Format(time.RFC3339)})
			}
			batch = append(batch, ch)
		}
		batches[n] = batch
	}
	ctx := context.Background()
	jobs := 0
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	start := time.Now()
	for n := range b.N {
		out, err := h.eng.Apply(ctx, t0, batches[n])
		if err != nil {
			b.Fatal(err)
		}
		if err := h.eng.Commit(ctx, out.Commit); err != nil {
			b.Fatal(err)
		}
		jobs += len(out.Jobs)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(b.N*batchSize)/elapsed.Seconds(), "changes/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N*batchSize), "allocs/change")
	b.ReportMetric(float64(jobs)/float64(b.N*batchSize), "jobs/change")
	b.ReportMetric(float64(elapsed.Microseconds())/float64(b.N), "µs/batch")
}
