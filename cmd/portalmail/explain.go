package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/portalmail/portalmail/state"
)

// Explanation is what `portalmail explain` reports about one company.
type Explanation struct {
	Company  cdc.Row             `json:"company"`
	Partner  cdc.Row             `json:"partner"`
	Entities map[string][]string `json:"entities"`
	Timers   []ExplainedTimer    `json:"pending_timers"`
	Bands    map[string]any      `json:"usage_bands"`
	Parked   map[string]string   `json:"parked_intents"`
	Emails   []ExplainedEmail    `json:"recent_emails"`
	// Positions are, per row ("table/id"), the source positions its history
	// holds, newest first; more than one means changes not yet known to be
	// committed. A row whose changes keep coming stale shows here why.
	Positions map[string][]string `json:"positions"`
	// Truncates are the tables truncated, with the truncate's position.
	Truncates map[string]string `json:"truncates,omitempty"`
}

// ExplainedTimer is one pending timer of the company's rows.
type ExplainedTimer struct {
	Type   string    `json:"type"`
	Entity string    `json:"entity"`
	Days   int       `json:"days"`
	Due    time.Time `json:"due"`
	Set    string    `json:"set"`
}

// ExplainedEmail is one job emitted for the company.
type ExplainedEmail struct {
	At      time.Time `json:"at"`
	Type    string    `json:"type"`
	To      string    `json:"to"`
	Subject string    `json:"subject"`
	Key     string    `json:"key"`
}

func runExplain(ctx context.Context, env *environ, args []string) error {
	var k KafkaConfig
	var log LogConfig
	var company, redisURL string
	var since time.Duration
	var asJSON bool
	f := newFlags("explain", "explain --company ID [flags]", env)
	k.register(f)
	log.register(f)
	f.String(&company, "company", "", "company id to explain")
	f.StringOrFile(&redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis holding the process stage's state")
	f.Duration(&since, "since", 30*24*time.Hour, "how far back to list the emails emitted for the company")
	f.Bool(&asJSON, "json", false, "print the explanation as JSON")
	err := f.load(args, func() error {
		errs := []error{k.validate(), log.validate()}
		if company == "" {
			errs = append(errs, errors.New("--company is required"))
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return err
	}
	rc, err := state.Open(ctx, redisURL)
	if err != nil {
		return err
	}
	defer rc.Close()
	x, err := explainState(ctx, state.New(rc, state.Options{}), company)
	if err != nil {
		return err
	}
	opts, err := k.clientOpts(log.logger(env.stderr))
	if err != nil {
		return err
	}
	reg, err := k.registry()
	if err != nil {
		return err
	}
	if x.Emails, err = recentEmails(ctx, opts, reg, k.JobsTopic, company, time.Now().Add(-since)); err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(x)
	}
	return printExplanation(env, company, x)
}

// explainState gathers what state holds about a company.
func explainState(ctx context.Context, st *state.Store, company string) (Explanation, error) {
	x := Explanation{Entities: map[string][]string{}, Bands: map[string]any{}, Parked: map[string]string{}, Positions: map[string][]string{}}
	rows, err := st.Rows(ctx, []processor.RowRef{{Table: cdc.Companies, ID: company}})
	if err != nil {
		return x, err
	}
	x.Company = rows[0]
	if id := x.Company.Str("partner_id"); id != "" {
		if rows, err = st.Rows(ctx, []processor.RowRef{{Table: cdc.Partners, ID: id}}); err != nil {
			return x, err
		}
		x.Partner = rows[0]
	}
	mine := map[processor.RowRef]bool{{Table: cdc.Companies, ID: company}: true}
	for table, cols := range cdc.Contract {
		if _, ok := cols["company_id"]; !ok {
			continue
		}
		rows, err := st.TableRows(ctx, table, "company_id", company)
		if err != nil {
			return x, err
		}
		for _, r := range rows {
			mine[processor.RowRef{Table: table, ID: r.Str("id")}] = true
			x.Entities[table] = append(x.Entities[table], r.Str("id"))
			if table == cdc.InteropSubscriptions {
				b, err := st.BandOf(ctx, r.Str("id"))
				if err != nil {
					return x, err
				}
				x.Bands[r.Str("id")] = b
			}
		}
		sort.Strings(x.Entities[table])
	}
	timers, err := st.AllTimers(ctx)
	if err != nil {
		return x, err
	}
	for _, t := range timers {
		info, err := processor.DescribeTimer(t.Member)
		if err != nil || info.Kind != "timer" || !mine[processor.RowRef{Table: info.Table, ID: info.ID}] {
			continue
		}
		x.Timers = append(x.Timers, ExplainedTimer{Type: string(info.Type), Entity: info.Table + "/" + info.ID, Days: info.Days, Due: t.Due, Set: t.Set})
	}
	sort.Slice(x.Timers, func(i, j int) bool { return x.Timers[i].Due.Before(x.Timers[j].Due) })
	refs := make([]processor.RowRef, 0, len(mine))
	for ref := range mine {
		refs = append(refs, ref)
	}
	positions, err := st.Positions(ctx, refs)
	if err != nil {
		return x, err
	}
	for i, ref := range refs {
		if len(positions[i]) > 0 {
			x.Positions[ref.Table+"/"+ref.ID] = positions[i]
		}
	}
	if x.Truncates, err = st.Truncates(ctx); err != nil {
		return x, err
	}
	parked, err := st.ParkedOn(ctx, cdc.Companies, company)
	if err != nil {
		return x, err
	}
	for key, deadline := range parked {
		x.Parked[key] = "waits for this company until " + deadline.Format(time.RFC3339)
	}
	return x, nil
}

// recentEmails reads the jobs topic (keyed by company) from since to its end.
func recentEmails(ctx context.Context, opts []kgo.Opt, reg *sr.Client, topic, company string, since time.Time) ([]ExplainedEmail, error) {
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(since.UnixMilli())))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	jobs := newAvroReader(reg)
	var out []ExplainedEmail
	for {
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		n := 0
		var decodeErr error
		fs.EachRecord(func(r *kgo.Record) {
			n++
			if string(r.Key) != company || decodeErr != nil {
				return
			}
			m, err := jobs.record(ctx, r.Value)
			if errors.Is(err, sr.ErrBadHeader) {
				return // not a job record
			}
			if err != nil {
				decodeErr = err
				return
			}
			to, _ := m["to"].(map[string]any)
			e := ExplainedEmail{At: r.Timestamp.UTC()}
			e.Type, _ = m["type"].(string)
			e.Subject, _ = m["subject"].(string)
			e.Key, _ = m["key"].(string)
			e.To, _ = to["address"].(string)
			out = append(out, e)
		})
		if decodeErr != nil {
			return out, fmt.Errorf("decode job: %w", decodeErr)
		}
		if n == 0 {
			return out, nil
		}
	}
}

func printExplanation(env *environ, company string, x Explanation) error {
	w := env.stdout
	if x.Company == nil {
		fmt.Fprintf(w, "company %s: not in state (no change of it has been processed)\n", company)
	} else {
		fmt.Fprintf(w, "company %s: %s, status %s, contact %s, opted into %v\n", company, x.Company.Str("name"),
			x.Company.Str("status"), x.Company.Str("contact_email"), x.Company.Strings("optional_notifications"))
	}
	if x.Partner != nil {
		fmt.Fprintf(w, "partner %s: %s (%s%s), opted into %v\n", x.Partner.Str("id"), x.Partner.Str("name"), x.Partner.Str("type"),
			map[bool]string{true: " under " + x.Partner.Str("distributor_id"), false: ""}[x.Partner.Str("distributor_id") != ""],
			x.Partner.Strings("optional_notifications"))
	}
	var tables []string
	for t := range x.Entities {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		fmt.Fprintf(w, "rows of %s: %s\n", t, strings.Join(x.Entities[t], ", "))
	}
	var rows []string
	for r := range x.Positions {
		rows = append(rows, r)
	}
	sort.Strings(rows)
	for _, r := range rows {
		ps := x.Positions[r]
		note := ""
		if len(ps) > 1 {
			note = fmt.Sprintf(" (%d changes not yet known to be committed)", len(ps)-1)
		}
		fmt.Fprintf(w, "position of %s: %s%s\n", r, ps[0], note)
	}
	for t, p := range x.Truncates {
		fmt.Fprintf(w, "table %s truncated at %s: its rows stored before are forgotten\n", t, p)
	}
	fmt.Fprintf(w, "pending timers: %d\n", len(x.Timers))
	for _, t := range x.Timers {
		fmt.Fprintf(w, "  %s  %s  %s (%d days)\n", t.Due.Format(time.RFC3339), t.Type, t.Entity, t.Days)
	}
	for id, b := range x.Bands {
		fmt.Fprintf(w, "usage band of %s: %+v\n", id, b)
	}
	for k, v := range x.Parked {
		fmt.Fprintf(w, "parked: %s %s\n", k, v)
	}
	fmt.Fprintf(w, "emails emitted: %d\n", len(x.Emails))
	for _, e := range x.Emails {
		fmt.Fprintf(w, "  %s  %-34s %s  %s\n", e.At.Format(time.RFC3339), e.Type, e.To, e.Subject)
	}
	return nil
}
