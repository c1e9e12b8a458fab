package simulate

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

var recordSeeds = []string{
	`{"topic":"portal.public.companies","key":{"id":"c1"},"value":{"op":"c","after":{"id":"c1","n":[1,2.5e-3,-0,true,false,null]}}}`,
	`{"topic":"t","key":"k","value":null}`,
	` { "value" : {"a":"\u00e9\ud83d\ude00\"\\\/\b\f\n\r\t"} , "topic" : "t\u002ex" , "extra": [[],{}] } `,
	`{"topic":"t","topic":"u","key":1,"key":null}`,
	`{}`, `[]`, `{"topic":1}`, `{"topic":"t",}`, `{"topic":"t"} x`, `{"topic":"\x01"}`, `{"topic":"t","key":01}`,
	`{"topic":"t","key":1.}`, `{"topic":"t","key":-}`, `{"topic":"t","key":tru}`, `{"topic":"\ud800x"}`, `{"topic":"a\xffb"}`,
	`{"topic":"t","value":{"a":1,}}`, `{"topic":"t","value":[1 2]}`, `{"topic":"t"`, `{"TOPIC":"t"}`, "",
}

// checkSplit holds splitRecord to encoding/json: what json refuses it
// refuses; what json takes it takes, with the same topic and the same key
// and value (member names matched exactly: json also matches other cases).
func checkSplit(t *testing.T, line []byte) {
	topic, key, value, err := splitRecord(line)
	var rec Record
	jerr := json.Unmarshal(line, &rec)
	var members map[string]json.RawMessage
	exact := json.Unmarshal(line, &members) == nil
	for k := range members {
		for _, f := range []string{"topic", "key", "value"} {
			if strings.EqualFold(k, f) && k != f {
				exact = false
			}
		}
	}
	switch {
	case jerr != nil && err == nil:
		t.Fatalf("%q: json refuses it (%v), splitRecord takes it", line, jerr)
	case jerr == nil && err != nil && exact:
		t.Fatalf("%q: json takes it, splitRecord refuses it: %v", line, err)
	case err != nil || !exact:
		return
	}
	if topic != rec.Topic {
		t.Fatalf("%q: topic %q, json %q", line, topic, rec.Topic)
	}
	same := func(name string, got []byte, want json.RawMessage) {
		if string(want) == "null" {
			want = nil
		}
		var g, w bytes.Buffer
		if got != nil {
			if err := json.Compact(&g, got); err != nil {
				t.Fatalf("%q: %s %q is not JSON: %v", line, name, got, err)
			}
		}
		if want != nil {
			_ = json.Compact(&w, want)
		}
		if g.String() != w.String() || (got == nil) != (want == nil) {
			t.Fatalf("%q: %s %q, json %q", line, name, got, want)
		}
	}
	same("key", key, rec.Key)
	same("value", value, rec.Value)
}

func TestSplitRecord(t *testing.T) {
	for _, s := range recordSeeds {
		checkSplit(t, []byte(s))
	}
	if topic, _, _, err := splitRecord([]byte(`{"topic":"a\u002fb\/c"}`)); err != nil || topic != "a/b/c" {
		t.Fatalf("escapes: %q %v", topic, err)
	}
}

func FuzzSplitRecord(f *testing.F) {
	for _, s := range recordSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) { checkSplit(t, line) })
}

// TestSplitterMakesEachTopicOnce: the lines of one input share their topic
// names (one string per topic, escaped or not), up to maxTopicNames.
func TestSplitterMakesEachTopicOnce(t *testing.T) {
	var sp splitter
	var first string
	for i := range 3 {
		topic, _, value, err := sp.split([]byte(`{"value":{"op":"c"},"topic":"portal.public.companies","key":"k"}`))
		if err != nil || topic != "portal.public.companies" || string(value) != `{"op":"c"}` {
			t.Fatalf("line %d: %q %q %v", i, topic, value, err)
		}
		if i == 0 {
			first = topic
		} else if unsafe.StringData(topic) != unsafe.StringData(first) {
			t.Fatal("the topic name was made again")
		}
	}
	if topic, _, _, err := sp.split([]byte(`{"topic":"a\u002fb"}`)); err != nil || topic != "a/b" {
		t.Fatalf("escaped: %q %v", topic, err)
	}
	for i := range maxTopicNames + 10 {
		if _, _, _, err := sp.split([]byte(`{"topic":"t` + strconv.Itoa(i) + `"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if len(sp.topics) > maxTopicNames {
		t.Fatalf("%d topic names kept", len(sp.topics))
	}
}
