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
	// help are the argument lists that make run print its usage, one per
	// verb (default: just -h).
	help [][]string
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
		{"demo", "the whole pipeline on embedded Kafka, schema registry, Redis and Mailgun, fed the bundled sample", runDemo, nil},
		{"process", "run the process stage: CDC topics → engine → email jobs (a consumer group)", runProcess, nil},
		{"send", "run the send stage: email jobs → Mailgun → delivery records (a consumer group)", runSend, nil},
		{"webhooks", "serve Mailgun's event webhooks; record each verified event as a delivery update", runWebhooks, nil},
		{"dlq", "list the DLQ with reasons (dlq list), or re-feed chosen entries after a fix (dlq replay)", runDLQ,
			[][]string{{"list", "-h"}, {"replay", "-h"}}},
		{"lag", "consumer-group lag per partition of both stages", runLag, nil},
		{"explain", "what state holds about one company: rows, pending timers, usage bands, parked intents, emails emitted", runExplain, nil},
		{"simulate", "run the engine over a file of CDC records with a simulated clock; print the emails", runSimulate, nil},
		{"catalog", "print the catalog of email types as a markdown table", runCatalog, nil},
		{"preview", "serve a page that renders every email type with sample data and a partner's branding", runPreview, nil},
		{"version", "print the module version and the VCS revision it was built from", runVersion, nil},
		{"help", "this list, or every flag of one command with its environment variable: help <command>", runHelp, nil},
	}
}

// run dispatches to a subcommand; it is main without the process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	env := &environ{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return nil
	}
	if args[0] == "--version" {
		return runVersion(ctx, env, nil)
	}
	c, ok := lookup(args[0])
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	err := c.run(ctx, env, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// runHelp is `portalmail help [command]`: the command list, or the named
// command's flags, on stdout.
func runHelp(ctx context.Context, env *environ, args []string) error {
	if len(args) == 0 {
		usage(env.stdout)
		return nil
	}
	if len(args) > 1 {
		return fmt.Errorf("help takes one command, not %q", strings.Join(args, " "))
	}
	c, ok := lookup(args[0])
	if !ok {
		usage(env.stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	if c.name == "help" || c.name == "version" {
		usage(env.stdout)
		return nil
	}
	// The command prints its usage on -h to its stderr: here, stdout.
	out := &environ{getenv: env.getenv, stdin: env.stdin, stdout: env.stdout, stderr: env.stdout}
	helps := c.help
	if helps == nil {
		helps = [][]string{{"-h"}}
	}
	for i, h := range helps {
		if i > 0 {
			fmt.Fprintln(env.stdout)
		}
		if err := c.run(ctx, out, h); !errors.Is(err, flag.ErrHelp) {
			return fmt.Errorf("help %s: %v", c.name, err)
		}
	}
	return nil
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("portalmail turns database changes of the Partner Portal and the Pexip Service into emails.\n\nUsage: portalmail <command> [flags]   (portalmail help <command>, or portalmail <command> -h, for its flags)\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-10s %s\n", c.name, c.short)
	}
	b.WriteString("\nEvery flag can also be set by an environment variable PORTALMAIL_<FLAG> (upper case, - as _).\n")
	fmt.Fprint(w, b.String())
}
