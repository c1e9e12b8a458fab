package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
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
	// Every line's date is the email's due time (the job's at): the lines
	// are exactly simulate's emails, by date, type and subject.
	var got []string
	line := regexp.MustCompile(`^(\d{4}-\d\d-\d\d)  (\S+) +→ `)
	for _, l := range strings.Split(out, "\n") {
		if m := line.FindStringSubmatch(l); m != nil {
			got = append(got, m[1]+" "+m[2])
		}
	}
	sim, _, err := runCLI(t, nil, "simulate", "--input", "../../examples/sample.jsonl", "--until", "2027-01-31")
	if err != nil {
		t.Fatal(err)
	}
	var fromSim []string
	for _, l := range strings.Split(strings.TrimSpace(sim), "\n") {
		var e struct {
			Type string    `json:"type"`
			At   time.Time `json:"at"`
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		fromSim = append(fromSim, e.At.Format("2006-01-02")+" "+e.Type)
	}
	for i := 1; i < len(got); i++ {
		if got[i][:10] < got[i-1][:10] {
			t.Errorf("line %d is dated before the line above it: %q after %q", i, got[i], got[i-1])
		}
	}
	sort.Strings(got)
	sort.Strings(fromSim)
	if !slices.Equal(got, fromSim) {
		t.Errorf("demo lines (date, type) differ from simulate's:\n got %d %q\nwant %d %q", len(got), got, len(fromSim), fromSim)
	}
}

func TestInvalidConfigListsEveryProblem(t *testing.T) {
	_, _, err := runCLI(t, map[string]string{"PORTALMAIL_MAILGUN_REGION": "mars"},
		"send", "--brokers", "", "--sasl-mechanism", "GSSAPI", "--log-format", "xml", "--concurrency", "0", "--compression", "brotli")
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	for _, want := range []string{"--brokers is required", "GSSAPI", "--log-format", "domain is required", "API key is required", "mars", "--concurrency", `--compression "brotli"`} {
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

// TestHelpNamesEveryFlagOfACommand: `help <command>` prints that command's
// usage on stdout, every command has one, and unknown commands fail.
func TestHelpNamesEveryFlagOfACommand(t *testing.T) {
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			out, _, err := runCLI(t, nil, "help", c.name)
			if err != nil {
				t.Fatal(err)
			}
			if c.name != "help" && c.name != "version" && !strings.HasPrefix(out, "Usage: portalmail "+c.name) {
				t.Fatalf("help %s:\n%s", c.name, out)
			}
		})
	}
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"help", "simulate"}, []string{"--input", "PORTALMAIL_INPUT", "--until", "--zone"}},
		{[]string{"help", "send"}, []string{"--mailgun-api-key-file", "PORTALMAIL_MAILGUN_API_KEY_FILE", "--http-addr", "default \":9091\""}},
		{[]string{"help", "dlq"}, []string{"Usage: portalmail dlq list", "Usage: portalmail dlq replay", "--offsets"}},
		{[]string{"help"}, []string{"Commands:", "version", "help <command>"}},
	}
	for _, tt := range tests {
		out, _, err := runCLI(t, nil, tt.args...)
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: no %q in\n%s", tt.args, w, out)
			}
		}
	}
	if _, _, err := runCLI(t, nil, "help", "nosuch"); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("help nosuch: %v", err)
	}
}

// TestFlagErrorComesAfterTheUsage: the usage goes to stderr, the error is
// returned (main prints it last) and not printed before the usage.
func TestFlagErrorComesAfterTheUsage(t *testing.T) {
	for _, args := range [][]string{{"simulate", "--bogus"}, {"catalog", "extra"}, {"send", "--rate-limit", "fast"}} {
		_, stderr, err := runCLI(t, nil, args...)
		if err == nil {
			t.Fatalf("%v: no error", args)
		}
		if !strings.HasPrefix(stderr, "Usage: portalmail "+args[0]) {
			t.Errorf("%v: stderr does not start with the usage:\n%s", args, stderr)
		}
		if strings.Contains(stderr, err.Error()) {
			t.Errorf("%v: the error %q is printed before the usage", args, err)
		}
	}
}

func TestVersion(t *testing.T) {
	out, _, err := runCLI(t, nil, "version")
	if err != nil || !regexp.MustCompile(`^portalmail \S+, (revision [0-9a-f]+|revision unknown).*, go1\.`).MatchString(out) {
		t.Fatalf("version: %v %q", err, out)
	}
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abc"}, {Key: "vcs.time", Value: "2026-11-30T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	if got, want := buildVersion(info, true), "portalmail v1.4.0, revision 0123abc of 2026-11-30T10:00:00Z, with local changes, go1.26.8"; got != want {
		t.Errorf("buildVersion = %q, want %q", got, want)
	}
}

// TestRedisURLFromAFile: --redis-url, then PORTALMAIL_REDIS_URL, then the
// file named by --redis-url-file / PORTALMAIL_REDIS_URL_FILE, then the default.
func TestRedisURLFromAFile(t *testing.T) {
	file := t.TempDir() + "/url"
	if err := writeFile(file, "redis://:s3cret@redis.example:6379/0\n"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"default", nil, nil, "redis://127.0.0.1:6379/0"},
		{"file by env", map[string]string{"PORTALMAIL_REDIS_URL_FILE": file}, nil, "redis://:s3cret@redis.example:6379/0"},
		{"file by flag", nil, []string{"--redis-url-file", file}, "redis://:s3cret@redis.example:6379/0"},
		{"env wins over the file", map[string]string{"PORTALMAIL_REDIS_URL_FILE": file, "PORTALMAIL_REDIS_URL": "redis://env:1/0"}, nil, "redis://env:1/0"},
		{"flag wins over the file", nil, []string{"--redis-url-file", file, "--redis-url", "redis://flag:1/0"}, "redis://flag:1/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c ProcessConfig
			f := newFlags("process", "process", &environ{getenv: func(k string) string { return tt.env[k] }, stderr: &bytes.Buffer{}})
			c.register(f)
			if err := f.parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if c.RedisURL != tt.want {
				t.Errorf("redis URL %q, want %q", c.RedisURL, tt.want)
			}
		})
	}
	var c ProcessConfig
	f := newFlags("process", "process", &environ{getenv: func(string) string { return "" }, stderr: &bytes.Buffer{}})
	c.register(f)
	if err := f.parse([]string{"--redis-url-file", "/nonexistent"}); err == nil || !strings.Contains(err.Error(), "--redis-url-file") {
		t.Errorf("missing file: %v", err)
	}
}
