// Package simulate runs the engine over a file of CDC records with a simulated
// clock: the clock follows each record's ts_ms, timers due before a record fire
// before it is applied (in due order), and after the last record the clock
// runs on to a given time. Nothing is sent; every email that would be sent is
// reported once per idempotency key.
//
// This is what `portalmail simulate` runs, and how the scenario tests drive
// the engine.
package simulate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/schemas/cdc"
)

// Record is one input line: {"topic": "...", "key": <any JSON>, "value": <Debezium envelope JSON or null>}.
type Record struct {
	Topic string          `json:"topic"`
	Key   json.RawMessage `json:"key"`
	Value json.RawMessage `json:"value"`
}

// Email is one output line.
type Email struct {
	Key       string    `json:"key"`
	Type      string    `json:"type"`
	To        string    `json:"to"`
	Name      string    `json:"name,omitempty"`
	Role      string    `json:"role"`
	Subject   string    `json:"subject"`
	CompanyID string    `json:"company_id"`
	At        time.Time `json:"at"`
	// Job is the full job (not printed).
	Job schemas.EmailJob `json:"-"`
}

// DeadLetter is one input record (or timer) that went to the DLQ.
type DeadLetter struct {
	Line   int    `json:"line,omitempty"`
	Topic  string `json:"topic"`
	Reason string `json:"reason"`
}

// Decoder decodes one record (cdc.Decoder implements it).
type Decoder interface {
	Decode(ctx context.Context, topic string, partition int32, offset int64, key, value []byte) (cdc.Change, error)
}

// Sink receives the simulation's output as it happens.
type Sink struct {
	Email      func(Email) error
	DeadLetter func(DeadLetter) error
}

// Run reads JSON lines from in and drives eng with a simulated clock until the
// input ends, then runs the clock on to until (if it is later). It returns an
// error only when the input cannot be read or state fails; undecodable lines,
// and lines longer than MaxLine, are reported to sink.DeadLetter and skipped.
// A UTF-8 byte order mark at the start of the input is ignored.
func Run(ctx context.Context, eng *processor.Engine, dec Decoder, in io.Reader, until time.Time, sink Sink) error {
	s := &run{eng: eng, sink: sink, sent: map[string]bool{}, sets: map[string]bool{}}
	lines := newLineReader(in, MaxLine)
	for {
		raw, tooLong, err := lines.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read input: %w", err)
		}
		line := lines.n
		if tooLong {
			if err := s.dead(DeadLetter{Line: line, Reason: fmt.Sprintf("line longer than %d bytes", MaxLine)}); err != nil {
				return err
			}
			continue
		}
		if len(trimSpace(raw)) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(raw, &rec); err != nil {
			if err := s.dead(DeadLetter{Line: line, Reason: "not a JSON record: " + err.Error()}); err != nil {
				return err
			}
			continue
		}
		ch, err := dec.Decode(ctx, rec.Topic, 0, int64(line-1), keyBytes(rec.Key), valueBytes(rec.Value))
		if err != nil {
			if err := s.dead(DeadLetter{Line: line, Topic: rec.Topic, Reason: err.Error()}); err != nil {
				return err
			}
			continue
		}
		s.sets[processor.TimerSet(rec.Topic, 0)] = true
		// Timers due before the record fire first, each at its due time.
		if err := s.fireUntil(ctx, ch.TsMs); err != nil {
			return err
		}
		if ch.TsMs.After(s.clock) {
			s.clock = ch.TsMs
		}
		out, err := eng.Apply(ctx, s.clock, []cdc.Change{ch})
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		for i := range out.DLQ {
			out.DLQ[i].Cause.Offset = int64(line - 1)
		}
		if err := s.emit(ctx, out, line); err != nil {
			return err
		}
	}
	if until.After(s.clock) {
		return s.fireUntil(ctx, until)
	}
	return nil
}

type run struct {
	eng   *processor.Engine
	sink  Sink
	clock time.Time
	sent  map[string]bool
	sets  map[string]bool
}

// fireUntil fires every timer due at or before t, in due order, the clock
// stepping to each due time.
func (s *run) fireUntil(ctx context.Context, t time.Time) error {
	sets := make([]string, 0, len(s.sets))
	for set := range s.sets {
		sets = append(sets, set)
	}
	sort.Strings(sets)
	var last time.Time
	stuck := 0
	for {
		next, ok, err := s.eng.NextDue(ctx, sets)
		if err != nil {
			return err
		}
		if !ok || next.After(t) {
			return nil
		}
		if next.Equal(last) {
			if stuck++; stuck > 3 {
				return fmt.Errorf("timer due %s does not clear", next.Format(time.RFC3339))
			}
		} else {
			stuck = 0
		}
		last = next
		if next.After(s.clock) {
			s.clock = next
		}
		out, err := s.eng.Fire(ctx, s.clock, sets)
		if err != nil {
			return err
		}
		if err := s.emit(ctx, out, 0); err != nil {
			return err
		}
	}
}

func (s *run) emit(ctx context.Context, out processor.Output, line int) error {
	for _, j := range out.Jobs {
		if s.sent[j.Key] {
			continue
		}
		s.sent[j.Key] = true
		if s.sink.Email != nil {
			err := s.sink.Email(Email{Key: j.Key, Type: j.Type, To: j.To.Address, Name: j.To.Name, Role: j.To.Role,
				Subject: j.Subject, CompanyID: j.CompanyID, At: j.CreatedAt.UTC(), Job: j})
			if err != nil {
				return err
			}
		}
	}
	for _, d := range out.DLQ {
		if err := s.dead(DeadLetter{Line: line, Topic: d.Cause.Topic, Reason: d.Reason}); err != nil {
			return err
		}
	}
	return s.eng.Commit(ctx, out.Commit)
}

func (s *run) dead(d DeadLetter) error {
	if s.sink.DeadLetter == nil {
		return nil
	}
	return s.sink.DeadLetter(d)
}

func keyBytes(k json.RawMessage) []byte {
	if len(k) == 0 || string(k) == "null" {
		return nil
	}
	var str string
	if json.Unmarshal(k, &str) == nil {
		return []byte(str)
	}
	return k
}

func valueBytes(v json.RawMessage) []byte {
	if len(v) == 0 || string(v) == "null" {
		return nil
	}
	return v
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}
