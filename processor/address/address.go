// Package address owns portalmail's rule for email addresses that come from
// data (database columns, jobs on a topic): which of them may receive mail or
// stand in a Reply-To, the one form they are posted in, and how display names
// are made safe beside them. The engine applies it where recipients are
// resolved, the Mailgun edge again before posting.
//
// # The rule
//
// An address is accepted only when its canonical form is unambiguous, so that
// every parser on the way (ours, Mailgun's, the recipient's server) reads the
// same single mailbox from it. After trimming surrounding white space, it must
// be a bare addr-spec local@domain where
//
//   - the local part is a dot-atom: RFC 5322 atext characters, dots only
//     between them; no quotes, backslashes, comments, commas, semicolons,
//     angle brackets or white space (a quoted local part such as
//     "a@evil.test,x"@acme.example is refused: posted bare, its comma makes a
//     second recipient);
//   - the domain is a host name: at least two labels of ASCII letters, digits
//     and hyphens (not at either end of a label), at most 63 bytes each, the
//     last not all digits; no domain literals;
//   - it is ASCII, the local part at most 64 bytes and the whole at most 254.
//
// "Name <a@b>" is refused too: names come from their own columns. The
// canonical form is the local part as given and the domain in lower case.
package address

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalid is what every error of Canonical is (errors.Is).
var ErrInvalid = errors.New("invalid address")

// Error is an address refused by the rule. Its Reason says why without
// repeating the address (addresses are not logged above debug level).
type Error struct{ Reason string }

func (e *Error) Error() string { return ErrInvalid.Error() + ": " + e.Reason }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Length limits (RFC 5321 §4.5.3.1).
const (
	MaxLocal  = 64
	MaxLength = 254
	maxLabel  = 63
)

// MaxName is the longest display name kept, in runes; longer ones are cut.
const MaxName = 128

// asciiSpace is what Canonical trims from the ends (a stray space or line
// end in a column is no ambiguity; anything else is).
const asciiSpace = " \t\r\n"

func invalid(why string) error { return &Error{Reason: why} }

// Canonical returns the canonical form of s if s is an acceptable address
// (see the package documentation), else an *Error saying why. Surrounding ASCII white space is trimmed. An empty (or all
// white space) s is an error too: callers that
// treat "no address" differently from "a bad address" check for it first.
func Canonical(s string) (string, error) {
	s = strings.Trim(s, asciiSpace)
	if s == "" {
		return "", invalid("no address")
	}
	if len(s) > MaxLength {
		return "", invalid(fmt.Sprintf("longer than %d bytes", MaxLength))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			return "", invalid("not ASCII")
		case c == ' ' || c == '\t':
			return "", invalid("white space inside")
		case c < 0x20 || c == 0x7f:
			return "", invalid("control character")
		case c == '"' || c == '\\':
			return "", invalid("quoted or escaped local part")
		case c == ',' || c == ';':
			return "", invalid("comma or semicolon (an address list)")
		case c == '<' || c == '>':
			return "", invalid("angle brackets (a display name or route)")
		case c == '(' || c == ')':
			return "", invalid("comment")
		case c == '[' || c == ']':
			return "", invalid("domain literal")
		}
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "", invalid("no @")
	}
	local, domain := s[:at], s[at+1:]
	if strings.IndexByte(local, '@') >= 0 {
		return "", invalid("more than one @")
	}
	if err := checkLocal(local); err != nil {
		return "", err
	}
	domain = strings.ToLower(domain)
	if err := checkDomain(domain); err != nil {
		return "", err
	}
	return local + "@" + domain, nil
}

// Valid reports whether s is already in canonical form (what a job carries).
func Valid(s string) bool { return Refusal(s) == "" }

// Refusal says why s is not an address in canonical form, "" when it is: the
// reason of Canonical's error, or "not in canonical form" for an acceptable
// address written otherwise (domain not in lower case, surrounding space).
func Refusal(s string) string {
	c, err := Canonical(s)
	var bad *Error
	switch {
	case errors.As(err, &bad):
		return bad.Reason
	case err != nil:
		return err.Error()
	case c != s:
		return "not in canonical form"
	}
	return ""
}

func checkLocal(local string) error {
	switch {
	case local == "":
		return invalid("empty local part")
	case len(local) > MaxLocal:
		return invalid(fmt.Sprintf("local part longer than %d bytes", MaxLocal))
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return invalid("local part is not a dot-atom (dots)")
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; c != '.' && !atext(c) {
			return invalid("local part is not a dot-atom")
		}
	}
	return nil
}

// atext is RFC 5322's atext, ASCII only.
func atext(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

func checkDomain(domain string) error {
	if domain == "" {
		return invalid("empty domain")
	}
	if !strings.Contains(domain, ".") {
		return invalid("domain has a single label")
	}
	last := ""
	for l := range strings.SplitSeq(domain, ".") {
		last = l
		if l == "" || len(l) > maxLabel || l[0] == '-' || l[len(l)-1] == '-' {
			return invalid("domain is not a host name")
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return invalid("domain is not a host name")
			}
		}
	}
	if strings.Trim(last, "0123456789") == "" {
		return invalid("domain is an IP address")
	}
	return nil
}

// DisplayName makes s safe as the display name beside an address: control
// and format characters (bidi overrides included), line breaks and white
// space runs become one space, the characters that delimit or make up
// addresses (" \ , ; < > @) are dropped, the ends are trimmed and the result
// is cut to MaxName runes. What remains, quoted or encoded by net/mail, cannot
// be read as an address by any parser, however naive, nor pose as one.
func DisplayName(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space, n := false, 0
	for _, r := range s {
		switch {
		case r == utf8.RuneError || unicode.IsControl(r) || unicode.IsSpace(r) || unicode.Is(unicode.Cf, r):
			space = true
			continue
		case strings.ContainsRune("\"\\,;<>@", r):
			continue
		}
		if n == MaxName {
			break
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
			n++
		}
		space = false
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}
