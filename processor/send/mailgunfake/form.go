package mailgunfake

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"sync"
)

// maxBody is the largest request body the server reads (Mailgun's own limit
// on a message is 25 MB).
const maxBody = 32 << 20

// bodies holds request-body buffers between requests: every value the
// server keeps is copied out of them.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readForm reads the fields of a messages request.
//
// A multipart body is read with readParts, which splits the body mailgun-go
// writes (each part a Content-Disposition form-data name, perhaps a
// Content-Type, and the value) without the header map and buffers per part
// mime/multipart builds: the fake answers every email of the send benchmark,
// on the same cores as send. Any other shape of part goes to mime/multipart's
// ReadForm, so the fields read are always those ReadForm's Value would hold.
func readForm(r *http.Request) (url.Values, error) {
	ct, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, fmt.Errorf("invalid Content-Type %q", r.Header.Get("Content-Type"))
	}
	switch ct {
	case "multipart/form-data":
		boundary := params["boundary"]
		if boundary == "" {
			return nil, fmt.Errorf("invalid multipart body: %v", http.ErrMissingBoundary)
		}
		buf := bodies.Get().(*bytes.Buffer)
		defer bodies.Put(buf)
		buf.Reset()
		if _, err := buf.ReadFrom(io.LimitReader(r.Body, maxBody+1)); err != nil {
			return nil, fmt.Errorf("invalid multipart body: %v", err)
		}
		if buf.Len() > maxBody {
			return nil, fmt.Errorf("invalid multipart body: larger than %d bytes", maxBody)
		}
		if f, ok := readParts(buf.Bytes(), boundary); ok {
			return f, nil
		}
		form, err := multipart.NewReader(bytes.NewReader(buf.Bytes()), boundary).ReadForm(maxBody)
		if err != nil {
			return nil, fmt.Errorf("invalid multipart body: %v", err)
		}
		defer func() { _ = form.RemoveAll() }()
		return form.Value, nil
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, fmt.Errorf("invalid form body: %v", err)
		}
		return r.PostForm, nil
	default:
		return nil, fmt.Errorf("unsupported Content-Type %q", ct)
	}
}

// readParts splits a multipart/form-data body whose parts are all plain
// named fields: the boundary first, then parts whose headers are
// Content-Disposition: form-data; name="..." and at most a Content-Type,
// then the closing boundary. ok is false for any other body (a preamble, a
// file, another header, a quoted name with escapes, a malformed one), which
// the caller reads with mime/multipart instead.
func readParts(body []byte, boundary string) (f url.Values, ok bool) {
	delim := "--" + boundary
	rest, found := bytes.CutPrefix(body, []byte(delim+"\r\n"))
	if !found {
		return nil, false
	}
	next := []byte("\r\n" + delim)
	f = url.Values{}
	for {
		head, content, found := bytes.Cut(rest, []byte("\r\n\r\n"))
		if !found {
			return nil, false
		}
		name, ok := partName(head)
		if !ok {
			return nil, false
		}
		value, after, found := bytes.Cut(content, next)
		if !found || bytes.HasPrefix(content, next[2:]) {
			return nil, false // no boundary after the value, or one right after the headers
		}
		f[name] = append(f[name], string(value))
		switch {
		case bytes.HasPrefix(after, []byte("\r\n")):
			rest = after[2:]
		case string(after) == "--" || bytes.HasPrefix(after, []byte("--\r\n")):
			return f, true // the closing boundary, ending the body or its line
		default:
			return nil, false
		}
	}
}

// partName reads the field name from a part's header lines, if they are a
// form-data Content-Disposition with a plain quoted name and perhaps a
// Content-Type.
func partName(head []byte) (string, bool) {
	var name string
	seen := false
	for len(head) > 0 {
		line, more, _ := bytes.Cut(head, []byte("\r\n"))
		head = more
		key, value, found := bytes.Cut(line, []byte(": "))
		if !found || !headerValue(value) {
			return "", false
		}
		switch {
		case bytes.EqualFold(key, []byte("Content-Disposition")) && !seen:
			n, found := bytes.CutPrefix(value, []byte(`form-data; name="`))
			if !found || len(n) < 2 || n[len(n)-1] != '"' || !plainName(n[:len(n)-1]) {
				return "", false
			}
			name, seen = string(n[:len(n)-1]), true
		case bytes.EqualFold(key, []byte("Content-Type")):
		default:
			return "", false
		}
	}
	return name, seen
}

// plainName reports a field name of printable ASCII without quotes or
// backslashes, which mime.ParseMediaType reads back unchanged.
func plainName(n []byte) bool {
	for _, c := range n {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// headerValue reports a header value net/textproto accepts: no control
// characters but tabs.
func headerValue(v []byte) bool {
	for _, c := range v {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
