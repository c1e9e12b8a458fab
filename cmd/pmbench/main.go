// Command pmbench generates issue 10's CDC workload and measures portalmail
// end to end on a real broker (see docs/benchmarks.md).
//
//	pmbench gen --out FILE [--seed N] [--wrap] ...   write the workload as simulate input
//	pmbench produce --input FILE --brokers B ...     produce a workload file to Kafka
//	pmbench e2e --input FILE --bin PORTALMAIL ...    the end-to-end runs (scripts/bench-e2e.sh)
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pmbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: pmbench gen|produce|e2e [flags]")
	}
	switch args[0] {
	case "gen":
		return runGen(args[1:])
	case "produce":
		return runProduce(ctx, args[1:])
	case "e2e":
		return runE2E(ctx, args[1:])
	}
	return fmt.Errorf("unknown command %q (want gen, produce or e2e)", args[0])
}
