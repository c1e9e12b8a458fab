// Package examples holds the bundled sample: a year of Partner Portal and
// Pexip Service changes as Debezium JSON records, in the simulate input
// format, exercising every email type. The demo feeds it; the README runs it
// through `portalmail simulate`.
package examples

import _ "embed"

// Sample is sample.jsonl.
//
//go:embed sample.jsonl
var Sample []byte
