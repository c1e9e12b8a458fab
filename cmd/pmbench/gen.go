package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/portalmail/portalmail/test/bench/workload"
)

// runGen writes the workload file and its meta sidecar, and prints the
// composition.
func runGen(args []string) error {
	cfg := workload.Default()
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	out := fs.String("out", "", "JSON-lines file to write (simulate's input format)")
	start := fs.String("start", cfg.Start.Format(time.RFC3339), "end of the snapshot, start of the changes (RFC 3339)")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed")
	fs.DurationVar(&cfg.Span, "span", cfg.Span, "time span of the changes")
	fs.BoolVar(&cfg.Wrap, "wrap", false, "JsonConverter schema/payload wrapper on keys and values (schemas.enable=true)")
	fs.IntVar(&cfg.Partners, "partners", cfg.Partners, "partners (a multiple of 10)")
	fs.IntVar(&cfg.Companies, "companies", cfg.Companies, "companies (one license plan each)")
	fs.IntVar(&cfg.PortalUsers, "portal-users", cfg.PortalUsers, "portal users")
	fs.IntVar(&cfg.Subscriptions, "subscriptions", cfg.Subscriptions, "interop subscriptions")
	fs.IntVar(&cfg.EndUsers, "end-users", cfg.EndUsers, "end users")
	fs.IntVar(&cfg.Endpoints, "endpoints", cfg.Endpoints, "endpoints")
	fs.IntVar(&cfg.Changes, "changes", cfg.Changes, "changes after the snapshot")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("gen: --out is required")
	}
	t, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		return fmt.Errorf("gen: --start: %w", err)
	}
	cfg.Start = t.UTC()
	began := time.Now()
	m, err := workload.WriteFile(*out, cfg)
	if err != nil {
		return err
	}
	fi, _ := os.Stat(*out)
	fmt.Fprintf(os.Stderr, "gen: %s: %d records (%d snapshot, %d changes), %.1f MiB, sha256 %s, in %s\n",
		*out, m.Lines, m.Snapshot, m.Changes, float64(fi.Size())/(1<<20), m.SHA256, time.Since(began).Round(time.Millisecond))
	printSummary(m.Summary)
	return nil
}

func printSummary(s workload.Summary) {
	var topics []string
	for t := range s.Records {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	fmt.Println("records by topic and op:")
	for _, t := range topics {
		fmt.Printf("  %-38s", t)
		for _, op := range []string{"r", "c", "u"} {
			if n := s.Records[t][op]; n > 0 {
				fmt.Printf("  %s %7d", op, n)
			}
		}
		fmt.Println()
	}
	var kinds []string
	for k := range s.Kinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	fmt.Println("changes by kind:")
	for _, k := range kinds {
		fmt.Printf("  %-26s %7d  %5.2f %%\n", k, s.Kinds[k], 100*float64(s.Kinds[k])/float64(s.Changes))
	}
}
