package cdc

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	row := Row{
		"text": "a \"quoted\" \\ line\nwith\ttabs \x01 <tags> & é \u2028 end", "int": int64(-9007199254740993),
		"bool": true, "nil": nil, "arr": []string{"x", "y\"z"}, "num": json.Number("12.5"),
		"any": []any{"p", "q"}, "bad": string([]byte{0xff, 'a'}),
	}
	got, err := row.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	var a, b map[string]any
	dec := json.NewDecoder(bytes.NewReader(got))
	dec.UseNumber()
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("invalid JSON %s: %v", got, err)
	}
	want, _ := json.Marshal(row)
	dec = json.NewDecoder(bytes.NewReader(want))
	dec.UseNumber()
	if err := dec.Decode(&b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("AppendJSON decoded to\n%#v\nencoding/json to\n%#v", a, b)
	}
}

// TestAppendJSONOfMatchesAppendJSONColumns encodes rows by a sorted list of
// columns and by a filter over all of them, and wants the same bytes.
func TestAppendJSONOfMatchesAppendJSONColumns(t *testing.T) {
	row := Row{"a": "x", "b": int64(2), "c": nil, "d": []string{"p"}, "e": true, "é": "u", "z": json.Number("1.5")}
	notArray := func(_ string, v any) bool { _, isArr := v.([]string); return !isArr }
	for _, tt := range []struct {
		row  Row
		cols []string
		keep func(string, any) bool
	}{
		{row, []string{"a", "b", "c", "d", "e", "z", "é"}, nil},
		{row, []string{"a", "d", "missing", "z"}, notArray},
		{row, []string{"d"}, notArray},
		{row, nil, nil},
		{Row{}, []string{"a"}, nil},
		{nil, []string{"a"}, nil},
	} {
		in := map[string]bool{}
		for _, c := range tt.cols {
			in[c] = true
		}
		want, err := tt.row.AppendJSONColumns([]byte("pre"), func(c string, v any) bool { return in[c] && (tt.keep == nil || tt.keep(c, v)) })
		if err != nil {
			t.Fatal(err)
		}
		got, err := tt.row.AppendJSONOf([]byte("pre"), tt.cols, tt.keep)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%v of %v: AppendJSONOf %s, AppendJSONColumns %s", tt.cols, tt.row, got, want)
		}
	}
	if _, err := (Row{"a": Unavailable}).AppendJSONOf(nil, []string{"a"}, nil); err == nil {
		t.Error("an unmerged placeholder was encoded")
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("plain")
	f.Add("\x00\"\\\u2029\xff")
	f.Fuzz(func(t *testing.T, s string) {
		var back string
		if err := json.Unmarshal(AppendJSONString(nil, s), &back); err != nil {
			t.Fatalf("invalid JSON for %q: %v", s, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("%q round-tripped to %q, encoding/json gives %q", s, back, wantBack)
		}
	})
}

// FuzzAppendJSONStringHTML wants the bytes json.Marshal writes for any string.
func FuzzAppendJSONStringHTML(f *testing.F) {
	f.Add("plain")
	f.Add("<a href=\"x\">&amp;</a>\b\f\n\r\t\x00\x1f\x7f\u2028\u2029\xff\xe2\x80 é")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := AppendJSONStringHTML(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: AppendJSONStringHTML %s, json.Marshal %s", s, got, want)
		}
	})
}
