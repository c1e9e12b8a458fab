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
	// Clock, if set, is told every move of the simulated clock: a state
	// store that expires rows by time (memory.Options.Now) follows it.
	Clock func(time.Time)
}

// Run reads JSON lines from in and drives eng with a simulated clock until the
// input ends, then runs the clock on to until (if it is later). It returns an
// error only when the input cannot be read or state fails; undecodable lines,
// and lines longer than MaxLine, are reported to sink.DeadLetter and skipped.
// A UTF-8 byte order mark at the start of the input is ignored.
//
// Records are applied in batches of up to BatchMax (Engine.ApplyEach, each
// change at its own clock): a batch ends before the first record at or
// after the earliest timer due when it began or that its changes could
// schedule (Engine.DueBound), so every timer fires at its due time before
// the records after it, exactly as one record at a time.
func Run(ctx context.Context, eng *processor.Engine, dec Decoder, in io.Reader, until time.Time, sink Sink) error {
	s := &run{eng: eng, sink: sink, sets: map[string]bool{}, topics: map[string]bool{}}
	// Lines are read and decoded by a goroutine of their own, a chunk
	// ahead, while the engine applies the records before them.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan []decoded, 4)
	var readErr error
	go func() {
		defer close(chunks)
		readErr = decodeLines(ctx, dec, in, chunks)
	}()
	for chunk := range chunks {
		for _, d := range chunk {
			var err error
			if d.dead != nil {
				err = s.dead(ctx, *d.dead)
			} else {
				err = s.add(ctx, d.ch, d.line)
			}
			if err != nil {
				cancel()
				for range chunks { // let the reader end
				}
				return err
			}
		}
	}
	if readErr != nil {
		return readErr
	}
	if err := s.flush(ctx); err != nil {
		return err
	}
	if until.After(s.clock) {
		return s.fireUntil(ctx, until)
	}
	return nil
}

// decoded is one input line: its change, or the dead letter it makes.
type decoded struct {
	ch   cdc.Change
	line int
	dead *DeadLetter
}

// decodeLines reads and decodes the input, in order, in chunks.
func decodeLines(ctx context.Context, dec Decoder, in io.Reader, out chan<- []decoded) error {
	const chunkSize = 256
	lines := newLineReader(in, MaxLine)
	var split splitter
	chunk := make([]decoded, 0, chunkSize)
	send := func() bool {
		select {
		case out <- chunk:
			chunk = make([]decoded, 0, chunkSize)
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		raw, tooLong, err := lines.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read input: %w", err)
		}
		line := lines.n
		switch {
		case tooLong:
			chunk = append(chunk, decoded{line: line, dead: &DeadLetter{Line: line, Reason: fmt.Sprintf("line longer than %d bytes", MaxLine)}})
		case len(trimSpace(raw)) == 0:
			continue
		default:
			topic, key, value, err := split.split(raw)
			if err != nil {
				chunk = append(chunk, decoded{line: line, dead: &DeadLetter{Line: line, Reason: "not a JSON record: " + err.Error()}})
				break
			}
			ch, err := dec.Decode(ctx, topic, 0, int64(line-1), keyBytes(key), value)
			if err != nil {
				chunk = append(chunk, decoded{line: line, dead: &DeadLetter{Line: line, Topic: topic, Reason: err.Error()}})
				break
			}
			chunk = append(chunk, decoded{ch: ch, line: line})
		}
		if len(chunk) == chunkSize && !send() {
			return nil
		}
	}
	if len(chunk) > 0 {
		send()
	}
	return nil
}

// BatchMax is how many records the simulation applies at most in one batch.
const BatchMax = 1000

type run struct {
	eng   *processor.Engine
	sink  Sink
	clock time.Time
	sets  map[string]bool
	// topics are the topics of the changes added, each with its timer set in sets.
	topics map[string]bool
	// The batch being collected: its changes, their clocks and lines, and
	// the earliest timer due when it began (haveDue false: none).
	changes []cdc.Change
	clocks  []time.Time
	lines   []int
	nextDue time.Time
	haveDue bool
}

// add queues a decoded change, first applying the batch in hand when the
// change is at or past the timer due next (or the batch is full), and
// firing the timers due up to the change when it starts a batch.
func (s *run) add(ctx context.Context, ch cdc.Change, line int) error {
	if len(s.changes) > 0 && (len(s.changes) >= BatchMax || (s.haveDue && !ch.TsMs.Before(s.nextDue))) {
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	if !s.topics[ch.Cause.Topic] {
		s.topics[ch.Cause.Topic] = true
		s.sets[processor.TimerSet(ch.Cause.Topic, 0)] = true
	}
	if len(s.changes) == 0 {
		// Timers due before the record fire first, each at its due time.
		if err := s.fireUntil(ctx, ch.TsMs); err != nil {
			return err
		}
		next, ok, err := s.eng.NextDue(ctx, s.timerSets())
		if err != nil {
			return err
		}
		s.nextDue, s.haveDue = next, ok
	}
	s.advance(ch.TsMs)
	// A timer this change could schedule (or an intent it could park) ends
	// the batch before the first record at or past its due time.
	if b := s.eng.DueBound(ch, s.clock); !s.haveDue || b.Before(s.nextDue) {
		s.nextDue, s.haveDue = b, true
	}
	s.changes = append(s.changes, ch)
	s.clocks = append(s.clocks, s.clock)
	s.lines = append(s.lines, line)
	return nil
}

// flush applies the batch in hand.
func (s *run) flush(ctx context.Context) error {
	if len(s.changes) == 0 {
		return nil
	}
	out, err := s.eng.ApplyEach(ctx, s.clocks, s.changes)
	if err != nil {
		return fmt.Errorf("lines %d-%d: %w", s.lines[0], s.lines[len(s.lines)-1], err)
	}
	s.changes, s.clocks, s.lines = s.changes[:0], s.clocks[:0], s.lines[:0]
	return s.emit(ctx, out)
}

// advance moves the clock on to t (never back).
func (s *run) advance(t time.Time) {
	if !t.After(s.clock) {
		return
	}
	s.clock = t
	if s.sink.Clock != nil {
		s.sink.Clock(t)
	}
}

func (s *run) timerSets() []string {
	sets := make([]string, 0, len(s.sets))
	for set := range s.sets {
		sets = append(sets, set)
	}
	sort.Strings(sets)
	return sets
}

// fireUntil fires every timer due at or before t, in due order, the clock
// stepping to each due time.
func (s *run) fireUntil(ctx context.Context, t time.Time) error {
	sets := s.timerSets()
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
		s.advance(next)
		out, err := s.eng.Fire(ctx, s.clock, sets)
		if err != nil {
			return err
		}
		if err := s.emit(ctx, out); err != nil {
			return err
		}
	}
}

// emit reports an output and commits it. Every job's key is new: the
// engine drops keys it emitted before (its commits record them).
func (s *run) emit(ctx context.Context, out processor.Output) error {
	for _, j := range out.Jobs {
		if s.sink.Email != nil {
			err := s.sink.Email(Email{Key: j.Key, Type: j.Type, To: j.To.Address, Name: j.To.Name, Role: j.To.Role,
				Subject: j.Subject, CompanyID: j.CompanyID, At: j.CreatedAt.UTC(), Job: j})
			if err != nil {
				return err
			}
		}
	}
	for _, d := range out.DLQ {
		line := 0
		if d.Cause.Offset >= 0 && d.Cause.Partition == 0 {
			line = int(d.Cause.Offset) + 1 // records are decoded at offset line-1
		}
		if err := s.report(DeadLetter{Line: line, Topic: d.Cause.Topic, Reason: d.Reason}); err != nil {
			return err
		}
	}
	return s.eng.Commit(ctx, out.Commit)
}

// dead reports an input line that is not a change, after the batch before
// it, so the report keeps the input's order.
func (s *run) dead(ctx context.Context, d DeadLetter) error {
	if err := s.flush(ctx); err != nil {
		return err
	}
	return s.report(d)
}

func (s *run) report(d DeadLetter) error {
	if s.sink.DeadLetter == nil {
		return nil
	}
	return s.sink.DeadLetter(d)
}

// keyBytes is a record's key as the decoder takes it: a JSON string key is
// its text, any other key its JSON.
func keyBytes(k []byte) []byte {
	if len(k) > 0 && k[0] == '"' {
		return []byte(unquoteJSON(k))
	}
	return k
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}
