package workload

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// WriteJSONL generates cfg's workload into w as `portalmail simulate`'s
// input: one JSON object per line, {"topic": ..., "key": <key JSON>,
// "value": <Debezium envelope JSON>}. It returns the summary and the SHA-256
// of what it wrote.
func WriteJSONL(w io.Writer, cfg Config) (Summary, string, error) {
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 1<<20)
	line := make([]byte, 0, 4096)
	sum, err := Generate(cfg, func(r Record) error {
		line = append(line[:0], `{"topic":`...)
		line = appendString(line, r.Topic)
		line = append(line, `,"key":`...)
		line = append(line, r.Key...)
		line = append(line, `,"value":`...)
		line = append(line, r.Value...)
		line = append(line, "}\n"...)
		_, err := bw.Write(line)
		return err
	})
	if err != nil {
		return sum, "", err
	}
	if err := bw.Flush(); err != nil {
		return sum, "", err
	}
	return sum, hex.EncodeToString(h.Sum(nil)), nil
}

// Meta is the sidecar of a generated file (FILE.meta.json): what was
// generated, so that a reader knows where the snapshot ends.
type Meta struct {
	Summary
	// SHA256 is the digest of the JSON-lines file.
	SHA256 string
	// Lines is the number of lines (records) in the file.
	Lines int
}

// WriteFile generates cfg's workload into path and its Meta into
// path+".meta.json".
func WriteFile(path string, cfg Config) (Meta, error) {
	f, err := os.Create(path)
	if err != nil {
		return Meta{}, fmt.Errorf("workload: %w", err)
	}
	sum, digest, err := WriteJSONL(f, cfg)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Meta{}, fmt.Errorf("workload: write %s: %w", path, err)
	}
	m := Meta{Summary: sum, SHA256: digest, Lines: sum.Snapshot + sum.Changes}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	if err := os.WriteFile(path+".meta.json", append(b, '\n'), 0o644); err != nil {
		return m, fmt.Errorf("workload: %w", err)
	}
	return m, nil
}

// ReadMeta reads path+".meta.json".
func ReadMeta(path string) (Meta, error) {
	b, err := os.ReadFile(path + ".meta.json")
	if err != nil {
		return Meta{}, fmt.Errorf("workload: %w (generate the file with `pmbench gen`)", err)
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("workload: %s.meta.json: %w", path, err)
	}
	return m, nil
}

// FileRecord is one line of a JSON-lines workload file, its key and value
// kept as the raw JSON bytes a Kafka record carries.
type FileRecord struct {
	Topic string          `json:"topic"`
	Key   json.RawMessage `json:"key"`
	Value json.RawMessage `json:"value"`
}

// ReadJSONL reads every line of a workload file.
func ReadJSONL(path string) ([]FileRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("workload: %w", err)
	}
	defer f.Close()
	var out []FileRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		var r FileRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("workload: %s line %d: %w", path, n, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("workload: read %s: %w", path, err)
	}
	return out, nil
}
