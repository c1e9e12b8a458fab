package simulate

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// MaxLine is the longest input line read; a longer one is one dead letter
// and the run goes on.
const MaxLine = 16 << 20

// bom is the UTF-8 byte order mark some editors and exports put first.
var bom = []byte("\xEF\xBB\xBF")

// lineReader reads the input's lines, a UTF-8 BOM at its very start dropped.
// A line longer than max is not kept: its bytes are discarded up to the next
// newline and it is reported as too long.
type lineReader struct {
	r    *bufio.Reader
	max  int
	n    int // number of the line last returned, from 1
	buf  []byte
	read bool // something was read (the BOM is only looked for first)
}

func newLineReader(in io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(in, 64*1024), max: max}
}

// next returns the next line without its line end (\n or \r\n), or tooLong (and no
// bytes) for a line over the limit. At the end of the input it returns
// io.EOF; any other error is the input's.
func (l *lineReader) next() (line []byte, tooLong bool, err error) {
	l.buf = l.buf[:0]
	got := false
	for {
		chunk, err := l.r.ReadSlice('\n')
		if len(chunk) > 0 {
			got = true
			if !l.read {
				chunk = bytes.TrimPrefix(chunk, bom)
				l.read = true
			}
			if !tooLong && len(l.buf)+len(chunk) > l.max+1 { // +1: the newline
				tooLong, l.buf = true, l.buf[:0]
			}
			if !tooLong {
				l.buf = append(l.buf, chunk...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && got:
			err = nil
		case err != nil:
			return nil, false, err
		}
		l.n++
		if tooLong {
			return nil, true, nil
		}
		line = bytes.TrimSuffix(l.buf, []byte("\n"))
		return bytes.TrimSuffix(line, []byte("\r")), false, nil
	}
}
