package mailgunfake

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mailgun/mailgun-go/v4"
)

// stdlibForm is what mime/multipart's ReadForm keeps as values.
func stdlibForm(body []byte, boundary string) (url.Values, error) {
	form, err := multipart.NewReader(bytes.NewReader(body), boundary).ReadForm(maxBody)
	if err != nil {
		return nil, err
	}
	defer func() { _ = form.RemoveAll() }()
	return form.Value, nil
}

// mailgunGoBody is the body and boundary mailgun-go posts for one message
// with every kind of field send sets.
func mailgunGoBody(t testing.TB) ([]byte, string) {
	t.Helper()
	var body []byte
	var contentType string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		contentType = r.Header.Get("Content-Type")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"<1@mg.example.com>","message":"Queued. Thank you."}`))
	}))
	defer srv.Close()
	mg := mailgun.NewMailgun("mg.example.com", "key")
	mg.SetAPIBase(srv.URL + "/v3")
	msg := mailgun.NewMessage("Acme <noreply@mg.example.com>", "Your plan \"Gold\" ends", "Hello,\r\n--\r\nAcme", "jane@example.org", "joe@example.org")
	msg.SetHTML("<p>Hello</p>\n<p>--</p>")
	msg.SetReplyTo("help@acme.example")
	msg.AddHeader("X-Portalmail-Key", "k1")
	if err := msg.AddVariable("portalmail_key", "k1"); err != nil {
		t.Fatal(err)
	}
	if err := msg.AddTag("a", "b"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mg.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		t.Fatal(err)
	}
	return body, params["boundary"]
}

// TestReadPartsMailgunGo: the body mailgun-go writes takes readParts' path
// and gives what mime/multipart gives.
func TestReadPartsMailgunGo(t *testing.T) {
	body, boundary := mailgunGoBody(t)
	got, ok := readParts(body, boundary)
	if !ok {
		t.Fatalf("readParts declined mailgun-go's body:\n%s", body)
	}
	want, err := stdlibForm(body, boundary)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("readParts = %v\nmime/multipart = %v", got, want)
	}
	if got.Get("subject") != `Your plan "Gold" ends` || len(got["to"]) != 2 || len(got["o:tag"]) != 2 {
		t.Fatalf("fields: %v", got)
	}
}

// testBoundary is the boundary of the hand-written bodies below.
const testBoundary = "XyZ"

// testPart is one part of a hand-written body: boundary, headers, value.
func testPart(head, value string) string {
	return "--" + testBoundary + "\r\n" + head + "\r\n\r\n" + value + "\r\n"
}

// TestReadPartsDeclines: every body readParts does not read the common way
// is left to mime/multipart, which the server then uses.
func TestReadPartsDeclines(t *testing.T) {
	const b = testBoundary
	part := testPart
	plain := `Content-Disposition: form-data; name="subject"`
	end := "--" + b + "--\r\n"
	cases := map[string]string{
		"preamble":          "preamble\r\n" + part(plain, "Hi") + end,
		"file":              part(`Content-Disposition: form-data; name="attachment"; filename="a.txt"`, "x") + end,
		"escaped name":      part(`Content-Disposition: form-data; name="a\"b"`, "x") + end,
		"unquoted name":     part(`Content-Disposition: form-data; name=subject`, "x") + end,
		"empty name":        part(`Content-Disposition: form-data; name=""`, "x") + end,
		"other header":      part(plain+"\r\nContent-Transfer-Encoding: quoted-printable", "a=3Db") + end,
		"no disposition":    part("Content-Type: text/plain", "x") + end,
		"two dispositions":  part(plain+"\r\n"+plain, "x") + end,
		"space before ':'":  part(`Content-Disposition : form-data; name="subject"`, "x") + end,
		"boundary + space":  "--" + b + " \r\n" + plain + "\r\n\r\nHi\r\n" + end,
		"not closed":        part(plain, "Hi"),
		"boundary-like":     part(plain, "Hi\r\n--"+b+"x more") + end,
		"no header end":     "--" + b + "\r\n" + plain + "\r\nHi\r\n" + end,
		"wrong boundary":    strings.ReplaceAll(part(plain, "Hi")+end, b, "Other"),
		"empty form":        end,
		"headers, no colon": part("Content-Disposition", "x") + end,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			if f, ok := readParts([]byte(body), b); ok {
				t.Fatalf("readParts read %v; want it left to mime/multipart", f)
			}
		})
	}
}

// TestReadPartsAgrees: bodies readParts reads the common way give exactly
// the values mime/multipart gives.
func TestReadPartsAgrees(t *testing.T) {
	const b = testBoundary
	part := testPart
	cases := map[string]string{
		"one":             part(`Content-Disposition: form-data; name="subject"`, "Hi") + "--" + b + "--",
		"repeated":        part(`Content-Disposition: form-data; name="to"`, "a@x") + part(`Content-Disposition: form-data; name="to"`, "b@x") + "--" + b + "--\r\n",
		"content type":    part("Content-Type: text/plain; charset=utf-8\r\n"+`Content-Disposition: form-data; name="text"`, "Hi") + "--" + b + "--",
		"lower-case keys": part(`content-disposition: form-data; name="text"`, "Hi") + "--" + b + "--",
		"empty value":     part(`Content-Disposition: form-data; name="text"`, "") + "--" + b + "--",
		"CRLFs in value":  part(`Content-Disposition: form-data; name="text"`, "\r\n\r\na\r\n--\r\n") + "--" + b + "--",
		"epilogue":        part(`Content-Disposition: form-data; name="text"`, "Hi") + "--" + b + "--\r\nepilogue",
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := readParts([]byte(body), b)
			if !ok {
				t.Fatal("readParts declined")
			}
			want, err := stdlibForm([]byte(body), b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("readParts = %q\nmime/multipart = %q", got, want)
			}
		})
	}
}

// FuzzReadParts: whenever readParts reads a body, mime/multipart reads the
// same values from it.
func FuzzReadParts(f *testing.F) {
	f.Add([]byte("--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--XyZ--"))
	f.Add([]byte("--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\nContent-Type: text/plain\r\n\r\n\r\n--XyZ\r\n--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n--\r\n--XyZ--\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := readParts(body, testBoundary)
		if !ok {
			return
		}
		want, err := stdlibForm(body, testBoundary)
		if err != nil {
			t.Fatalf("readParts read %q, mime/multipart failed: %v", got, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("readParts = %q\nmime/multipart = %q", got, want)
		}
	})
}

// BenchmarkServeMailgunGo is the server's cost of one message as mailgun-go
// writes it, network aside.
func BenchmarkServeMailgunGo(b *testing.B) {
	body, boundary := mailgunGoBody(b)
	s := &Server{closed: make(chan struct{}), now: func() time.Time { return time.Time{} }}
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/v3/mg.example.com/messages", bytes.NewReader(body))
		r.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		r.SetBasicAuth("api", "key")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code, w.Body.String())
		}
		s.Reset()
	}
}
