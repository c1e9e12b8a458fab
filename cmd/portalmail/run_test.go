package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
)

func runCLI(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), err
}

// TestDemo is the README's promise: the whole pipeline on embedded parts,
// every email of the sample sent once, the poison record dead-lettered (twice:
// it is redelivered too), the redelivered jobs suppressed.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes ~10 s")
	}
	out, _, err := runCLI(t, nil, "demo")
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`portalmail demo: 113 emails sent, 2 dead-lettered, 5 duplicates suppressed \(59 CDC records, 59 redelivered: 0 new emails from them\)`)
	if !want.MatchString(out) {
		t.Fatalf("demo summary not found in:\n%s", out[max(0, len(out)-500):])
	}
	if n := strings.Count(out, "\n2026-") + strings.Count(out, "\n2027-"); n < 100 {
		t.Fatalf("only %d email lines printed", n)
	}
}

func TestInvalidConfigListsEveryProblem(t *testing.T) {
	_, _, err := runCLI(t, map[string]string{"PORTALMAIL_MAILGUN_REGION": "mars"},
		"send", "--brokers", "", "--sasl-mechanism", "GSSAPI", "--log-format", "xml", "--concurrency", "0")
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	for _, want := range []string{"--brokers is required", "GSSAPI", "--log-format", "domain is required", "API key is required", "mars", "--concurrency"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	_, _, err = runCLI(t, nil, "process", "--zone", "Mars/Base", "--park-for", "-1h", "--batch-size", "0",
		"--max-recipients", "0", "--from-address", `"noreply,x"@mail.example`)
	for _, want := range []string{"Mars/Base", "--park-for", "--batch-size", "--max-recipients", "--from-address: quoted"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("process error does not mention %q: %v", want, err)
		}
	}
}

func TestSecretsComeFromFilesAndStayOutOfHelp(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/key"
	if err := writeFile(file, "key-from-file\n"); err != nil {
		t.Fatal(err)
	}
	var c SendConfig
	f := newFlags("send", "send", &environ{getenv: func(k string) string {
		return map[string]string{"PORTALMAIL_MAILGUN_API_KEY_FILE": file, "PORTALMAIL_SASL_PASSWORD": "hunter2"}[k]
	}, stderr: &bytes.Buffer{}})
	c.register(f)
	if err := f.parse(nil); err != nil {
		t.Fatal(err)
	}
	if c.Mailgun.APIKey != "key-from-file" || c.Kafka.SASLPassword != "hunter2" {
		t.Fatalf("secrets: %q %q", c.Mailgun.APIKey, c.Kafka.SASLPassword)
	}
	var help bytes.Buffer
	printDefaults(&help, f.FlagSet)
	if strings.Contains(help.String(), "hunter2") || strings.Contains(help.String(), "key-from-file") {
		t.Fatal("help output shows a secret")
	}
	for _, want := range []string{"--mailgun-api-key-file", "PORTALMAIL_MAILGUN_API_KEY", "--brokers", "--rate-limit"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("help lacks %s", want)
		}
	}
}

func TestSimulateAndCatalog(t *testing.T) {
	out, errOut, err := runCLI(t, nil, "simulate", "--input", "../../examples/sample.jsonl", "--until", "2027-01-31")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out, "\n"); n != 113 {
		t.Fatalf("%d emails, want 113", n)
	}
	if strings.Count(errOut, `"dlq"`) != 1 {
		t.Fatalf("stderr: %s", errOut)
	}
	if _, _, err := runCLI(t, nil, "simulate", "--input", "/nonexistent"); err == nil {
		t.Fatal("unreadable input: exit status 0")
	}
	out, _, err = runCLI(t, nil, "catalog")
	if err != nil || strings.Count(out, "\n| ") != 47 {
		t.Fatalf("catalog: %v\n%s", err, out)
	}
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

// TestSimulateSurvivesHostileLines: the bundled sample saved with a BOM and
// a 17 MB line in the middle still mails every one of its emails; the long
// line is one dead letter on stderr and the exit status is 0.
func TestSimulateSurvivesHostileLines(t *testing.T) {
	sample, err := os.ReadFile("../../examples/sample.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(sample), "\n")
	huge := `{"topic":"portal.public.partners","key":{"id":"x"},"value":{"op":"c","after":{"name":"` + strings.Repeat("x", 17<<20) + "\"}}}\n"
	hostile := "\xEF\xBB\xBF" + strings.Join(lines[:10], "") + huge + strings.Join(lines[10:], "")
	file := t.TempDir() + "/hostile.jsonl"
	if err := writeFile(file, hostile); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runCLI(t, nil, "simulate", "--input", file, "--until", "2027-01-31")
	if err != nil {
		t.Fatalf("exit status not 0: %v", err)
	}
	if n := strings.Count(out, "\n"); n != 113 {
		t.Errorf("%d emails, want the sample's 113", n)
	}
	if strings.Count(errOut, `"dlq"`) != 2 || strings.Count(errOut, "line longer than") != 1 || !strings.Contains(errOut, `"line":11`) {
		t.Errorf("stderr: %s", errOut)
	}
}
