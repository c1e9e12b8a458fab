// Package redact hides the secrets of connection strings (Redis, schema
// registry, Mailgun and link URLs) before they are formatted into any output:
// errors, logs, /readyz. It works on the text, so malformed strings, which no
// URL parser can take apart, are hidden as well as valid ones; when in doubt
// it hides more.
package redact

import (
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Hidden replaces what is hidden.
const Hidden = "***"

var scheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)

// URL returns raw (one URL, or a comma-separated list of them) fit to show:
// everything from after the scheme up to the last "@" (user names and
// passwords, whatever characters they hold) and every query and fragment
// become Hidden; when a "?" or "#" comes before that "@", everything after
// the scheme is hidden. Host, port and path are kept.
//
//	redis://user:p%zz w@h:6379/0            → redis://***@h:6379/0
//	redis+sentinel://h/m?sentinel_password=x → redis+sentinel://h/m?***
func URL(raw string) string {
	prefix := scheme.FindString(raw)
	rest := raw[len(prefix):]
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		if strings.ContainsAny(rest[:at], "?#") {
			return prefix + Hidden // the "@" may be in a query: hide it all
		}
		rest = Hidden + rest[at:]
	}
	if q := strings.IndexAny(rest, "?#"); q >= 0 {
		rest = rest[:q+1] + Hidden
	}
	return prefix + rest
}

// ParseError describes why a URL did not parse without quoting any of it
// (net/url's errors repeat the whole URL, password included, and its escape
// errors repeat part of the password).
func ParseError(err error) string {
	var esc url.EscapeError
	var host url.InvalidHostError
	switch {
	case errors.As(err, &esc):
		return "an invalid %-escape (a literal % must be written %25)"
	case errors.As(err, &host):
		return "an invalid character in the host"
	case err != nil && strings.Contains(err.Error(), "invalid userinfo"):
		return "an invalid character in the user or password (percent-encode it)"
	case err != nil && strings.Contains(err.Error(), "invalid port"):
		return "an invalid port"
	case err != nil && strings.Contains(err.Error(), "control character"):
		return "a control character"
	case err != nil && strings.Contains(err.Error(), "missing protocol scheme"):
		return "no scheme"
	}
	return "a character that must be percent-encoded"
}

// Secrets returns the parts of raw that URL hides (user information, query
// and fragment), raw and percent-decoded, for scrubbing messages that some
// library formatted from raw: see Scrub.
func Secrets(raw string) []string {
	rest := raw[len(scheme.FindString(raw)):]
	var out []string
	add := func(s string) {
		if len(s) < 3 { // too short to scrub without mangling the message
			return
		}
		out = append(out, s)
		if d, err := url.PathUnescape(s); err == nil && d != s {
			out = append(out, d)
		}
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		info := rest[:at]
		add(info)
		user, pass, _ := strings.Cut(info, ":")
		add(user)
		add(pass)
		rest = rest[at+1:]
	}
	if q := strings.IndexAny(rest, "?#"); q >= 0 {
		add(rest[q+1:])
		for _, kv := range strings.FieldsFunc(rest[q+1:], func(r rune) bool { return r == '&' || r == ';' || r == '#' }) {
			_, v, _ := strings.Cut(kv, "=")
			add(v)
		}
	}
	return out
}

// Scrub returns msg with every secret of raw (Secrets) replaced by Hidden,
// longest first: a last line of defence for messages formatted by others.
func Scrub(msg, raw string) string {
	secrets := Secrets(raw)
	// Longest first: a userinfo before the password inside it.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, Hidden)
	}
	return msg
}
