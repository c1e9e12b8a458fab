package cdc

import (
	"reflect"
	"runtime"
	"testing"
)

// TestBoxerMakesTheSameInterfaces: a boxed value is the interface a
// conversion makes (type switches, comparison, reflection agree), also
// past the room given and after collections, and changing what was boxed
// changes nothing boxed.
func TestBoxerMakesTheSameInterfaces(t *testing.T) {
	b := newBoxer(1, 1, 1)
	var got, want []any
	for i := range 5 { // past the room given: the slices grow
		s := string(rune('a'+i)) + "-value"
		n := int64(1000 + i)
		arr := []string{s, "x"}
		got = append(got, b.str(s), b.int(n), b.strings(arr))
		want = append(want, s, n, arr)
	}
	runtime.GC()
	for i := range got {
		if reflect.TypeOf(got[i]) != reflect.TypeOf(want[i]) || !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("boxed %d: %#v (%T), want %#v (%T)", i, got[i], got[i], want[i], want[i])
		}
	}
	if s, ok := got[0].(string); !ok || s != "a-value" || got[0] != any("a-value") {
		t.Fatalf("type switch or comparison: %#v", got[0])
	}
	if n, ok := got[1].(int64); !ok || n != 1000 || got[1] != any(int64(1000)) {
		t.Fatalf("int64: %#v", got[1])
	}
	if _, ok := got[1].(int); ok {
		t.Fatal("an int64 boxed as int")
	}
	row := Row{"a": got[0], "n": got[1], "l": got[2]}
	if row.Str("a") != "a-value" || row.Str("n") != "1000" {
		t.Fatalf("row reads: %v", row)
	}
}

// TestDecodeRowAllocations: a stored company row decodes in a few
// allocations (the map, the arena, the boxes, its one array), not one per
// column (17 before the boxer).
func TestDecodeRowAllocations(t *testing.T) {
	row := companyRow()
	img, err := row.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got Row
	n := testing.AllocsPerRun(100, func() {
		if got, err = DecodeRow(img); err != nil {
			t.Fatal(err)
		}
	})
	if !reflect.DeepEqual(got, row) {
		t.Fatalf("decoded %#v, want %#v", got, row)
	}
	if n > 10 {
		t.Fatalf("%v allocations for a row of 11 columns", n)
	}
}
