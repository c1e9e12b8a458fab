package simulate

import (
	"fmt"
	"unicode/utf8"
)

// AppendJSON appends the email's output line, without its newline: the bytes
// encoding/json's Encoder writes for it (HTML characters escaped), without
// its reflection. A time that RFC 3339 cannot hold is an error, as there.
func (e Email) AppendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, `{"key":`...)
	dst = appendString(dst, e.Key)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, e.Type)
	dst = append(dst, `,"to":`...)
	dst = appendString(dst, e.To)
	if e.Name != "" {
		dst = append(dst, `,"name":`...)
		dst = appendString(dst, e.Name)
	}
	dst = append(dst, `,"role":`...)
	dst = appendString(dst, e.Role)
	dst = append(dst, `,"subject":`...)
	dst = appendString(dst, e.Subject)
	dst = append(dst, `,"company_id":`...)
	dst = appendString(dst, e.CompanyID)
	dst = append(dst, `,"at":"`...)
	dst, err := e.At.AppendText(dst)
	if err != nil {
		return nil, fmt.Errorf("email %s: %w", e.Key, err)
	}
	return append(dst, `"}`...), nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as encoding/json quotes a string by default: `"`
// and `\` escaped, \b \f \n \r \t in short form, other control characters
// and < > & as \u00XX, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
