package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// command is one subcommand.
type command struct {
	name  string
	short string
	run   func(ctx context.Context, env *environ, args []string) error
}

// environ is what a subcommand may touch of the outside world.
type environ struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func commands() []command {
	return []command{
		{"demo", "the whole pipeline on embedded Kafka, schema registry, Redis and Mailgun, fed the bundled sample", runDemo},
		{"process", "run the process stage: CDC topics → engine → email jobs (a consumer group)", runProcess},
		{"send", "run the send stage: email jobs → Mailgun → delivery records (a consumer group)", runSend},
		{"webhooks", "serve Mailgun's event webhooks; record each verified event as a delivery update", runWebhooks},
		{"dlq", "list the DLQ with reasons (dlq list), or re-feed chosen entries after a fix (dlq replay)", runDLQ},
		{"lag", "consumer-group lag per partition of both stages", runLag},
		{"explain", "what state holds about one company: rows, pending timers, usage bands, parked intents, emails emitted", runExplain},
		{"simulate", "run the engine over a file of CDC records with a simulated clock; print the emails", runSimulate},
		{"catalog", "print the catalog of email types as a markdown table", runCatalog},
		{"preview", "serve a page that renders every email type with sample data and a partner's branding", runPreview},
	}
}

// run dispatches to a subcommand; it is main without the process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	env := &environ{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, env, args[1:])
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("portalmail turns database changes of the Partner Portal and the Pexip Service into emails.\n\nUsage: portalmail <command> [flags]   (portalmail <command> -h for its flags)\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-10s %s\n", c.name, c.short)
	}
	b.WriteString("\nEvery flag can also be set by an environment variable PORTALMAIL_<FLAG> (upper case, - as _).\n")
	fmt.Fprint(w, b.String())
}
