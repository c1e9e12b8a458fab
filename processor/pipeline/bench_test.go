package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/portalmail/portalmail/examples"
	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/processor/simulate"
	"github.com/portalmail/portalmail/processor/stream"
	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/portalmail/portalmail/state/memory"
	"github.com/portalmail/portalmail/templates"
)

// BenchmarkProcessStage measures the process stage end to end: 20,000 mixed
// CDC changes already on 6 partitions of the (kfake) broker, consumed,
// applied against Redis (REDIS_URL: a real redis-server) and produced as jobs
// in transactions of up to 1000 records. Reports changes/s and the p99 of
// the per-transaction latency.
func BenchmarkProcessStage(b *testing.B) {
	const n = 20000
	for range b.N {
		b.StopTimer()
		r := newRig(b, 6)
		r.produce(r.base()...)
		var recs []*kgo.Record
		for i := range n {
			switch i % 10 {
			case 0, 1, 2, 3: // usage samples (no capacity row: parked? no — under the bands)
				recs = append(recs, r.row("service.public.cvi_usage", "c", map[string]any{"id": fmt.Sprintf("u%d", i), "company_id": "c-acme", "subscription_id": "s1", "concurrent_calls": 1}))
			case 4, 5, 6: // end-user edits: no email
				recs = append(recs, r.row("service.public.end_users", "u", map[string]any{"id": fmt.Sprintf("e%d", i%500), "company_id": "c-acme", "email": "u@acme.test", "display_name": fmt.Sprintf("U %d", i), "status": "active", "classic": false}))
			case 7, 8: // company edits: no email
				recs = append(recs, r.row("portal.public.companies", "u", map[string]any{"id": "c-globex", "partner_id": "p-resell", "name": "Globex", "status": "active", "contact_email": "ops@globex.test"}))
			default: // new endpoints: 2 emails each
				recs = append(recs, r.endpoints(i, 1)...)
			}
		}
		r.produce(r.row("portal.public.interop_subscriptions", "c", map[string]any{"id": "s1", "company_id": "c-acme", "kind": "teams_cvi", "status": "active", "concurrent_call_licenses": 1000}))
		for i := 0; i < len(recs); i += 1000 {
			r.produce(recs[i:min(i+1000, len(recs))]...)
		}
		var mu sync.Mutex
		var lat []time.Duration
		consumed := 0
		done := make(chan struct{})
		start := time.Now()
		b.StartTimer()
		p := r.startProcess("bench", func(c *stream.ProcessConfig) {
			c.MaxPollRecords = 1000
			c.OnBatch = func(s stream.BatchStats) {
				mu.Lock()
				defer mu.Unlock()
				if s.Records > 0 {
					lat = append(lat, s.Took)
				}
				consumed += s.Records
				if consumed >= n+5 && done != nil {
					close(done)
					done = nil
				}
			}
		})
		<-waitOr(done, 5*time.Minute)
		elapsed := time.Since(start)
		b.StopTimer()
		p.stop(b)
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(n)/elapsed.Seconds(), "changes/s")
		if len(lat) > 0 {
			b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-txn-ms")
		}
	}
}

// BenchmarkSendStage measures the send stage: 5,000 jobs on the jobs topic
// delivered to the Mailgun HTTP fake (no rate limit), each claimed and marked
// in Redis, with a delivery record per job. The jobs are the ones the
// process stage emits for the bundled sample (every email type, template data
// and no bodies), cycled with fresh keys: send renders each, as in
// production. Reports emails/s.
func BenchmarkSendStage(b *testing.B) {
	const n = 5000
	sample := sampleJobs(b)
	for range b.N {
		b.StopTimer()
		r := newRig(b, 6)
		var recs []*kgo.Record
		// Each pass over the sample is other emails: their data differs
		// from the last pass's (the subject numbered), while the jobs of one
		// email to several recipients still share theirs, as process
		// writes them (send renders such an email once).
		passData := map[string]string{}
		for i := range n {
			job := sample[i%len(sample)]
			if i%len(sample) == 0 {
				clear(passData)
			}
			job.Key = fmt.Sprintf("%s|bench%d", job.Key, i)
			d, ok := passData[job.Data]
			if !ok {
				d = numberedData(b, job.Data, i/len(sample))
				passData[job.Data] = d
			}
			job.Data = d
			v, err := r.env.Serde.EncodeJob(job)
			if err != nil {
				b.Fatal(err)
			}
			recs = append(recs, &kgo.Record{Topic: "portalmail.email-jobs", Key: []byte(job.CompanyID), Value: v})
		}
		for i := 0; i < n; i += 1000 {
			r.produce(recs[i:min(i+1000, n)]...)
		}
		start := time.Now()
		b.StartTimer()
		s := r.startSend("bench", nil, func(c *stream.SendConfig) { c.Concurrency = 32 })
		eventually(b, "every job delivered", func() bool { return r.outcomes()[schemas.OutcomeSent] >= n })
		elapsed := time.Since(start)
		b.StopTimer()
		s.stop(b)
		b.ReportMetric(float64(n)/elapsed.Seconds(), "emails/s")
	}
}

// numberedData is job data with the pass number added to its subject.
func numberedData(b *testing.B, data string, pass int) string {
	b.Helper()
	j, err := templates.ParseJobData([]byte(data))
	if err != nil {
		b.Fatal(err)
	}
	j.Data.Subject = fmt.Sprintf("%s (%d)", j.Data.Subject, pass)
	raw, err := j.AppendJSON(nil)
	if err != nil {
		b.Fatal(err)
	}
	return string(raw)
}

// sampleJobs are the jobs the engine emits for the bundled sample, as the
// process stage writes them (template data, no rendered bodies).
func sampleJobs(b *testing.B) []schemas.EmailJob {
	b.Helper()
	tmpl, err := templates.Parse()
	if err != nil {
		b.Fatal(err)
	}
	eng, err := processor.New(catalog.Default(), memory.New(memory.Options{}), tmpl, processor.Config{})
	if err != nil {
		b.Fatal(err)
	}
	var jobs []schemas.EmailJob
	err = simulate.Run(context.Background(), eng, cdc.NewDecoder(cdc.DecoderConfig{}), bytes.NewReader(examples.Sample), time.Time{},
		simulate.Sink{Email: func(e simulate.Email) error { jobs = append(jobs, e.Job); return nil }})
	if err != nil {
		b.Fatal(err)
	}
	if len(jobs) == 0 || jobs[0].Data == "" || jobs[0].HTML != "" {
		b.Fatalf("the sample's jobs are not as process emits them: %d jobs", len(jobs))
	}
	return jobs
}

func waitOr(ch chan struct{}, d time.Duration) <-chan struct{} {
	out := make(chan struct{})
	go func() {
		select {
		case <-ch:
		case <-time.After(d):
		case <-context.Background().Done():
		}
		close(out)
	}()
	return out
}
