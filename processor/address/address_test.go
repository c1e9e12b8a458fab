package address

import (
	"errors"
	"strings"
	"testing"
)

func TestCanonicalAccepts(t *testing.T) {
	for in, want := range map[string]string{
		"it@acme.example":                 "it@acme.example",
		"  it@acme.example\r\n":           "it@acme.example",
		"First.Last@ACME.Example":         "First.Last@acme.example",
		"o'brien+orders@sub.acme-eu.test": "o'brien+orders@sub.acme-eu.test",
		"a!#$%&'*+-/=?^_`{|}~z@x.io":      "a!#$%&'*+-/=?^_`{|}~z@x.io",
		"x@xn--bcher-kva.example":         "x@xn--bcher-kva.example",
		"1@2.example":                     "1@2.example",
	} {
		got, err := Canonical(in)
		if err != nil || got != want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", in, got, err, want)
		}
		if !Valid(want) {
			t.Errorf("Valid(%q) = false", want)
		}
		if in != want && Refusal(in) != "not in canonical form" {
			t.Errorf("Refusal(%q) = %q, want not in canonical form", in, Refusal(in))
		}
	}
}

// TestCanonicalRefuses: every form whose reading is ambiguous, or is not one
// bare mailbox, is refused with a reason that does not repeat the address.
func TestCanonicalRefuses(t *testing.T) {
	cases := []struct{ in, why string }{
		{`"attacker@evil.test,x"@acme.example`, "quoted"},
		{`"john doe"@acme.example`, "quoted"},
		{`john\ doe@acme.example`, "quoted or escaped"},
		{`a@evil.test,b@acme.example`, "comma"},
		{`a@evil.test;b@acme.example`, "semicolon"},
		{`Bob <bob@acme.example>`, "white space"},
		{`<bob@acme.example>`, "angle brackets"},
		{`bob@acme.example>`, "angle brackets"},
		{`bob(comment)@acme.example`, "comment"},
		{`bob@[192.0.2.1]`, "domain literal"},
		{`bob@192.0.2.1`, "IP address"},
		{`bob @acme.example`, "white space"},
		{"bob\t@acme.example", "white space"},
		{"bob@acme.example\r\nBcc: x@evil.test", "control character"},
		{"bob\x00@acme.example", "control character"},
		{"bøb@acme.example", "not ASCII"},
		{"bob@exämple.test", "not ASCII"},
		{"bob@acme.example\u2028", "not ASCII"},
		{"", "no address"},
		{"   ", "no address"},
		{"bob", "no @"},
		{"bob@", "empty domain"},
		{"@acme.example", "empty local part"},
		{"a@b@acme.example", "more than one @"},
		{".bob@acme.example", "dots"},
		{"bob.@acme.example", "dots"},
		{"b..ob@acme.example", "dots"},
		{"bob@localhost", "single label"},
		{"bob@acme..example", "host name"},
		{"bob@-acme.example", "host name"},
		{"bob@acme-.example", "host name"},
		{"bob@acme_eu.example", "host name"},
		{"bob@acme.example.", "host name"},
		{strings.Repeat("a", 65) + "@acme.example", "local part longer"},
		{"a@" + strings.Repeat("b", 64) + ".example", "host name"},
		{"a@" + strings.Repeat("b.", 130) + "example", "longer than 254"},
		{"mailto:bob@acme.example", "dot-atom"},
	}
	for _, c := range cases {
		got, err := Canonical(c.in)
		if err == nil {
			t.Errorf("Canonical(%q) = %q, accepted", c.in, got)
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("Canonical(%q): error %q, want one wrapping ErrInvalid saying %q", c.in, err, c.why)
		}
		if local, _, _ := strings.Cut(strings.TrimSpace(c.in), "@"); len(local) > 3 && strings.Contains(err.Error(), local) {
			t.Errorf("Canonical(%q): error %q repeats the address", c.in, err)
		}
		if Valid(c.in) || !strings.Contains(err.Error(), Refusal(c.in)) {
			t.Errorf("Valid(%q) = true or Refusal %q is not the reason", c.in, Refusal(c.in))
		}
	}
	t.Logf("%d refused forms", len(cases))
}

func TestDisplayName(t *testing.T) {
	for in, want := range map[string]string{
		"Acme Inc":                        "Acme Inc",
		"Acme, Inc":                       "Acme Inc",
		`x" <attacker@evil.test>, "y`:     "x attackerevil.test y",
		"Evil\r\nBcc: victim@example.com": "Evil Bcc: victimexample.com",
		"ceo@bank.example":                "ceobank.example",
		"  a \t\t b  ":                    "a b",
		"Ann; Bob":                        "Ann Bob",
		`back\slash`:                      "backslash",
		"Müller GmbH (EU)":                "Müller GmbH (EU)",
		"abc\u202Egnp.exe":                "abc gnp.exe",
		"line\u2028sep":                   "line sep",
		strings.Repeat("n", MaxName+50):   strings.Repeat("n", MaxName),
		"\x00\x01":                        "",
	} {
		if got := DisplayName(in); got != want {
			t.Errorf("DisplayName(%q) = %q, want %q", in, got, want)
		}
	}
}
