// Package debezium tests portalmail against the real producer of its input:
// PostgreSQL 15 → Debezium's PostgreSQL connector 3.6.1 (Kafka Connect 4.3.0,
// pgoutput, JsonConverter with schemas) → Kafka, as scripts/debezium.sh runs
// them. It holds
//
//   - TestCapture (only with -capture): runs testdata/debezium/sql/*.sql
//     through Debezium and writes what arrives, unmodified, to
//     testdata/debezium/*.jsonl, the fixtures docs/debezium.md describes;
//   - TestEndToEnd, TestEndToEndKilledInTransaction and
//     TestEndToEndAbortedBatch: one scenario of SQL against both databases,
//     driven through Debezium, `portalmail process` and `portalmail send` (OS
//     processes of the built binary) to the Mailgun fake, once plainly, once
//     with the process stage killed (SIGKILL) inside an open Kafka
//     transaction, once with a batch of 10 changes of one row aborted. Each
//     asserts every email the spec asks for exactly once and an empty DLQ.
//
// It runs only with PORTALMAIL_DEBEZIUM=1 and the servers of scripts/kafka.sh
// and scripts/debezium.sh (KAFKA_BROKERS, PG_URL, CONNECT_URL), as
// scripts/test.sh starts them; plain `go test ./...` skips it:
//
//	eval "$(scripts/kafka.sh up)"; eval "$(scripts/debezium.sh up)"
//	PORTALMAIL_DEBEZIUM=1 go test -v ./test/debezium/
//	PORTALMAIL_DEBEZIUM=1 go test -v ./test/debezium/ -run TestCapture -capture
package debezium

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portalmail/portalmail/test/internal/stage"
)

var capture = flag.Bool("capture", false, "TestCapture: rewrite testdata/debezium/*.jsonl from a real Debezium run")

var (
	bin      string // the built portalmail binary
	brokers  []string
	pgURL    string // postgresql://postgres@127.0.0.1:PORT (no database)
	connect  string // Kafka Connect's REST API
	redisSrv *stage.Redis
	repoRoot string
)

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv("PORTALMAIL_DEBEZIUM") != "1" {
		fmt.Println("debezium: skipped (set PORTALMAIL_DEBEZIUM=1 with KAFKA_BROKERS, PG_URL and CONNECT_URL; scripts/test.sh does)")
		os.Exit(0)
	}
	var missing []string
	for _, v := range []string{"KAFKA_BROKERS", "PG_URL", "CONNECT_URL"} {
		if os.Getenv(v) == "" {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "debezium: %s not set (eval \"$(scripts/kafka.sh up)\"; eval \"$(scripts/debezium.sh up)\")\n", strings.Join(missing, ", "))
		os.Exit(1)
	}
	brokers = strings.Split(os.Getenv("KAFKA_BROKERS"), ",")
	pgURL = strings.TrimSuffix(os.Getenv("PG_URL"), "/")
	connect = strings.TrimSuffix(os.Getenv("CONNECT_URL"), "/")
	wd, _ := os.Getwd()
	repoRoot = filepath.Clean(filepath.Join(wd, "..", ".."))
	tmp, err := os.MkdirTemp("", "portalmail-debezium-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "debezium:", err)
		os.Exit(1)
	}
	if bin, err = stage.Build(repoRoot, tmp); err != nil {
		fmt.Fprintln(os.Stderr, "debezium:", err)
		os.Exit(1)
	}
	if redisSrv, err = stage.StartRedis(filepath.Join(tmp, "redis")); err != nil {
		fmt.Fprintln(os.Stderr, "debezium:", err)
		os.Exit(1)
	}
	code := m.Run()
	redisSrv.Stop()
	if code == 0 {
		os.RemoveAll(tmp)
	} else {
		fmt.Fprintln(os.Stderr, "debezium: logs kept in", tmp)
	}
	os.Exit(code)
}
