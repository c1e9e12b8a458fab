// Package mailgunfake is a Mailgun-compatible HTTP server for tests and for
// the demo: it accepts POST /v3/{domain}/messages as Mailgun does (with
// multipart/form-data, which mailgun-go sends, or
// application/x-www-form-urlencoded), records every accepted message, and
// can be told to fail, hang, or go down.
//
//	srv := mailgunfake.New()
//	defer srv.Close()
//	cfg := send.MailgunConfig{Domain: "mg.example.com", APIKey: "key", APIBase: srv.URL()}
//
// Requests are answered in this order: Down refuses the connection; Hang
// delays the request; a fault programmed with FailNext answers with its
// status; a request without basic auth user "api" (or, after RequireKey,
// without that key) gets 401; a malformed message gets 400 with Mailgun's
// wording; anything else is recorded and answered 200
// {"id": "<...>", "message": "Queued. Thank you."}.
package mailgunfake

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Message is one message the server accepted.
type Message struct {
	// Domain is the sending domain of the request path.
	Domain string
	From   string
	// To is the "to" field; several values are joined with ", ".
	To      string
	Subject string
	Text    string
	HTML    string
	// ReplyTo is the h:Reply-To field.
	ReplyTo string
	// Tags are the o:tag values, in order.
	Tags []string
	// Vars are the v: user variables, without the prefix.
	Vars map[string]string
	// Headers are the h: custom headers, without the prefix.
	Headers map[string]string
	// ID is the message id the server answered with, angle brackets
	// included, as Mailgun does.
	ID string
	// At is when the server accepted the message.
	At time.Time
}

type fault struct {
	remaining int
	status    int
	body      string
	header    http.Header
}

// Server is a fake Mailgun API. Its methods are safe for concurrent use.
type Server struct {
	srv    *httptest.Server
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	messages []Message
	requests int
	seq      int
	faults   []*fault
	hang     time.Duration
	down     bool
	key      string
	now      func() time.Time
}

// New starts a server on 127.0.0.1 with a random port.
func New() *Server {
	s := &Server{closed: make(chan struct{}), now: time.Now}
	s.srv = httptest.NewServer(s)
	return s
}

// NewAt starts a server listening on addr (host:port, e.g. "127.0.0.1:8025"
// for a demo whose address must be known in advance).
func NewAt(addr string) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mailgunfake: %w", err)
	}
	s := &Server{closed: make(chan struct{}), now: time.Now}
	s.srv = httptest.NewUnstartedServer(s)
	_ = s.srv.Listener.Close()
	s.srv.Listener = l
	s.srv.Start()
	return s, nil
}

// URL is the API base to configure a client with: the server's address
// followed by "/v3".
func (s *Server) URL() string { return s.srv.URL + "/v3" }

// Close releases hanging requests and shuts the server down.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closed)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
}

// RequireKey makes the server answer 401 unless the basic-auth password is
// key. By default any non-empty key is accepted.
func (s *Server) RequireKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.key = key
}

// FailNext answers the next n requests with status, body and headers
// instead of processing them. Calls queue up: FailNext(1, 429, ...) then
// FailNext(2, 500, ...) answers one 429 and then two 500s. An empty body
// becomes Mailgun's {"message": ...} with the status text.
func (s *Server) FailNext(n int, status int, body string, headers http.Header) {
	if n <= 0 {
		return
	}
	if body == "" {
		b, _ := json.Marshal(map[string]string{"message": http.StatusText(status)})
		body = string(b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{remaining: n, status: status, body: body, header: headers.Clone()})
}

// Hang makes every request wait d (or until the client gives up, or the
// server closes) before it is handled; 0 turns hanging off.
func (s *Server) Hang(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hang = max(d, 0)
}

// Down simulates an outage: every request's connection is closed without an
// answer, so clients see a connection error, until Up is called.
func (s *Server) Down() {
	s.mu.Lock()
	s.down = true
	s.mu.Unlock()
	s.srv.CloseClientConnections()
}

// Up ends an outage started with Down.
func (s *Server) Up() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = false
}

// Requests counts every request received, failed ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Messages returns a copy of the accepted messages, in acceptance order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	for i, m := range s.messages {
		m.Tags = slices.Clone(m.Tags)
		m.Vars = maps.Clone(m.Vars)
		m.Headers = maps.Clone(m.Headers)
		out[i] = m
	}
	return out
}

// Reset forgets the recorded messages, the request count and any pending
// fault, hang or outage.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages, s.requests, s.faults, s.hang, s.down = nil, 0, nil, 0, false
}

// ServeHTTP implements the fake Mailgun API, so the server can also be
// mounted in another http.Server.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	down, hang := s.down, s.hang
	s.mu.Unlock()

	if down {
		refuse(w)
		return
	}
	if hang > 0 {
		t := time.NewTimer(hang)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-s.closed:
			t.Stop()
			return
		}
	}
	if f := s.nextFault(); f != nil {
		for k, vs := range f.header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(f.status)
		_, _ = w.Write([]byte(f.body))
		return
	}

	domain, ok := messagesPath(r.URL.Path)
	if !ok {
		reply(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(w, http.StatusMethodNotAllowed, map[string]string{"message": "Method Not Allowed"})
		return
	}
	user, pass, ok := r.BasicAuth()
	s.mu.Lock()
	want := s.key
	s.mu.Unlock()
	if !ok || user != "api" || pass == "" || (want != "" && pass != want) {
		w.Header().Set("WWW-Authenticate", `Basic realm="MG API"`)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("Forbidden"))
		return
	}
	f, err := readForm(r)
	if err != nil {
		reply(w, http.StatusBadRequest, map[string]string{"message": err.Error()})
		return
	}
	m, problem := message(domain, f)
	if problem != "" {
		reply(w, http.StatusBadRequest, map[string]string{"message": problem})
		return
	}
	s.mu.Lock()
	s.seq++
	m.At = s.now().UTC()
	m.ID = fmt.Sprintf("<%s.%d.%06X@%s>", m.At.Format("20060102150405"), s.seq, s.seq, domain)
	s.messages = append(s.messages, m)
	s.mu.Unlock()
	reply(w, http.StatusOK, map[string]string{"id": m.ID, "message": "Queued. Thank you."})
}

func (s *Server) nextFault() *fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.faults) > 0 {
		f := s.faults[0]
		if f.remaining > 0 {
			f.remaining--
			if f.remaining == 0 {
				s.faults = s.faults[1:]
			}
			return f
		}
		s.faults = s.faults[1:]
	}
	return nil
}

// messagesPath matches /v3/{domain}/messages.
func messagesPath(p string) (domain string, ok bool) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	if len(parts) != 3 || parts[0] != "v3" || parts[1] == "" || parts[2] != "messages" {
		return "", false
	}
	return parts[1], true
}

// message reads the form of a messages request, or says what is missing in
// Mailgun's words.
func message(domain string, f url.Values) (Message, string) {
	get := func(k string) string {
		if v := f[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	m := Message{
		Domain:  domain,
		From:    get("from"),
		To:      strings.Join(f["to"], ", "),
		Subject: get("subject"),
		Text:    get("text"),
		HTML:    get("html"),
		ReplyTo: get("h:Reply-To"),
		Tags:    slices.Clone(f["o:tag"]),
		Vars:    map[string]string{},
		Headers: map[string]string{},
	}
	for k, v := range f {
		if len(v) == 0 {
			continue
		}
		switch {
		case strings.HasPrefix(k, "v:"):
			m.Vars[strings.TrimPrefix(k, "v:")] = v[0]
		case strings.HasPrefix(k, "h:"):
			m.Headers[strings.TrimPrefix(k, "h:")] = v[0]
		}
	}
	switch {
	case m.From == "":
		return m, "from parameter is missing"
	case m.To == "":
		return m, "to parameter is missing"
	case m.Subject == "":
		return m, "subject parameter is missing"
	case m.Text == "" && m.HTML == "" && get("template") == "":
		return m, "Need at least one of 'text', 'html' or 'template' parameters specified"
	}
	return m, ""
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// refuse closes the connection without an answer, as a dead upstream does.
func refuse(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // reset rather than a clean close
			}
			_ = conn.Close()
			return
		}
	}
	w.Header().Set("Connection", "close")
	reply(w, http.StatusServiceUnavailable, map[string]string{"message": "Service Unavailable"})
}
