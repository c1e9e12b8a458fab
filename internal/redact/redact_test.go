package redact

import (
	"net/url"
	"strings"
	"testing"
)

const secret = "S3cr3t-pw"

func TestURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://u:" + secret + "@h:6379/0", "redis://***@h:6379/0"},
		{"redis://:" + secret + "@h:6379", "redis://***@h:6379"},
		{"redis://" + secret + "@h:6379", "redis://***@h:6379"},
		{"rediss://u:" + secret + "%zz@h:6379/0", "rediss://***@h:6379/0"},
		{"redis://u:S3cr 3t@h:6379/0", "redis://***@h:6379/0"},
		{"redis://u:" + secret + "@@h:1", "redis://***@h:1"},
		{"redis://u:S3c/r3t@h:1/0", "redis://***@h:1/0"},
		{"redis://u:S3c?r3t@h:1/0", "redis://***"},
		{"redis://u:S3c#r3t@h:1/0", "redis://***"},
		{"redis://h:1/0?password=" + secret, "redis://h:1/0?***"},
		{"redis+sentinel://h1,h2/master?sentinel_password=" + secret, "redis+sentinel://h1,h2/master?***"},
		{"redis+sentinel://h/m?sentinel_password=a@" + secret, "redis+sentinel://***"},
		{"a:1,redis://u:" + secret + "@b:2", "***@b:2"},
		{"http://u:" + secret + "@r1:8081,http://u:" + secret + "@r2:8081", "http://***@r2:8081"},
		{"http://u:pa," + secret + "@r1:8081", "http://***@r1:8081"},
		{"https://portal.example/x#" + secret, "https://portal.example/x#***"},
		{"u:" + secret + "@h:1", "***@h:1"},
		{"", ""},
	}
	for _, c := range cases {
		got := URL(c.in)
		if got != c.want {
			t.Errorf("URL(%q) = %q, want %q", c.in, got, c.want)
		}
		if strings.Contains(got, "S3c") || strings.Contains(got, "r3t") {
			t.Errorf("URL(%q) = %q shows part of the secret", c.in, got)
		}
	}
}

func TestParseErrorQuotesNothing(t *testing.T) {
	for _, raw := range []string{
		"redis://u:" + secret + "%zz@h:1/0", "redis://u:S3c r3t@h:1/0", "http://h:" + secret + "/", "redis://u:S3c\x00r3t@h:1",
		"://" + secret, "http://[" + secret + "/",
	} {
		_, err := url.Parse(raw)
		if err == nil {
			t.Fatalf("%q parses", raw)
		}
		if msg := ParseError(err); strings.Contains(msg, "S3c") || strings.Contains(msg, "zz") {
			t.Errorf("ParseError(%v) = %q quotes the URL", err, msg)
		}
	}
}

func TestScrub(t *testing.T) {
	raw := "redis://admin:" + secret + "%21@h:1/0?sentinel_password=" + secret + "2"
	msg := `parse "` + raw + `": oops; user admin, password ` + secret + `!, sentinel ` + secret + `2`
	got := Scrub(msg, raw)
	if strings.Contains(got, "S3c") || strings.Contains(got, "admin") {
		t.Errorf("Scrub = %q", got)
	}
	if Scrub("dial tcp h:1: refused", "redis://h:1/0") != "dial tcp h:1: refused" {
		t.Error("Scrub changed a message without secrets")
	}
}
