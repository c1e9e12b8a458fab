package simulate

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestLineReader(t *testing.T) {
	const max = 10
	cases := []struct {
		name, in string
		want     []string // "!" marks a line reported too long
	}{
		{"plain", "a\nb\n", []string{"a", "b"}},
		{"no final newline", "a\nb", []string{"a", "b"}},
		{"CRLF", "a\r\nb\r\n", []string{"a", "b"}},
		{"BOM first", "\xEF\xBB\xBFa\nb\n", []string{"a", "b"}},
		{"BOM only", "\xEF\xBB\xBF", []string{""}},
		{"BOM later is data", "a\n\xEF\xBB\xBFb\n", []string{"a", "\xEF\xBB\xBFb"}},
		{"empty input", "", nil},
		{"blank lines", "\n\n", []string{"", ""}},
		{"exactly the limit", strings.Repeat("x", max) + "\n", []string{strings.Repeat("x", max)}},
		{"one over the limit", strings.Repeat("x", max+1) + "\nok\n", []string{"!", "ok"}},
		{"far over, last line", "ok\n" + strings.Repeat("x", 200_000), []string{"ok", "!"}},
		{"far over, in the middle", "a\n" + strings.Repeat("x", 200_000) + "\nb\n", []string{"a", "!", "b"}},
	}
	for _, c := range cases {
		for _, slow := range []bool{false, true} {
			var in io.Reader = strings.NewReader(c.in)
			if slow {
				in = iotest.OneByteReader(in)
			}
			lr := newLineReader(in, max)
			var got []string
			for {
				line, tooLong, err := lr.next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if tooLong {
					got = append(got, "!")
				} else {
					got = append(got, string(line))
				}
				if lr.n != len(got) {
					t.Errorf("%s: line number %d after %d lines", c.name, lr.n, len(got))
				}
			}
			if strings.Join(got, "|") != strings.Join(c.want, "|") || len(got) != len(c.want) {
				t.Errorf("%s (one byte at a time: %v): lines %q, want %q", c.name, slow, got, c.want)
			}
		}
	}
	broken := newLineReader(iotest.ErrReader(errors.New("disk on fire")), max)
	if _, _, err := broken.next(); err == nil || err == io.EOF {
		t.Errorf("read error: %v", err)
	}
}
