package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"io/fs"
	"net/url"
	"sort"
	"strings"
	"sync"
	texttemplate "text/template"
	"text/template/parse"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/portalmail/portalmail/schemas/cdc"
)

//go:embed *.tmpl
var files embed.FS

// Names of the shared layout files, and of the templates a layout or a body
// file may define. A body file's top-level content is its "body"; it may also
// define "cta" (the label of the call-to-action button, "Open" by default) and
// "note" (a paragraph after the button, empty by default).
const (
	layoutHTMLFile = "layout.html.tmpl"
	layoutTextFile = "layout.txt.tmpl"
	htmlSuffix     = ".html.tmpl"
	textSuffix     = ".txt.tmpl"
)

var allowedDefines = map[string]bool{"layout": true, "body": true, "cta": true, "note": true, "details": true}

// ErrUnknownTemplate is returned (wrapped) by Render for a name the Set does
// not hold.
var ErrUnknownTemplate = errors.New("unknown template")

// ErrUnsafeLink is returned (wrapped) by Render when Data.Link is set but is
// not an absolute http or https URL. Call-to-action emails are useless without
// their link, so Render refuses rather than silently dropping it.
var ErrUnsafeLink = errors.New("link is not an absolute http(s) URL")

// DateLayout is how the "date" template func prints dates.
const DateLayout = "2 January 2006"

// Set is the parsed templates: for every email type, the HTML layout with the
// type's HTML body and the text layout with its text body. A Set is immutable
// after Parse and safe for concurrent use.
type Set struct {
	names   []string
	pairs   map[string]pair
	columns Columns // nil: every column (see Columns)
}

type pair struct {
	html *htmltemplate.Template
	text *texttemplate.Template
}

// Detail is one labelled value of a details table (see the "details" func).
type Detail struct {
	Label string
	Value string
}

// funcs are the template funcs, identical for HTML and text templates.
var funcs = map[string]any{
	// date formats an ISO-8601 timestamp or date string (or a time.Time) as
	// "2 January 2006" in UTC; "" stays "", anything unparsable is returned as is.
	"date": formatDate,
	// details builds the rows of a details table from the Data and
	// label/value-spec pairs (see details below).
	"details": details,
	// lines formats details as "Label: Value" lines (for the text layout).
	"lines": lines,
	// person formats a name and an address as "Name (address)", or whichever is set.
	"person": person,
	// ink is the text colour (#ffffff or #1f2933) readable on a background colour.
	"ink": ink,
}

// NameOf returns the template name of an email type id: the id with "."
// replaced by "_" ("order.new" → "order_new").
func NameOf(typeID string) string { return strings.ReplaceAll(typeID, ".", "_") }

// Parse parses every embedded template: the two layouts and one HTML and one
// text body per email type. It fails on any parse error, on a body without
// its counterpart (.html.tmpl without .txt.tmpl or vice versa), on a body that
// defines a template other than "cta" or "note", and on a body that does not
// execute against empty Data. Every template is executed once, so the Set is
// fully escaped and ready for concurrent use when Parse returns.
func Parse() (*Set, error) { return parseFS(files) }

func parseFS(fsys fs.FS) (*Set, error) {
	htmlLayout, err := fs.ReadFile(fsys, layoutHTMLFile)
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	textLayout, err := fs.ReadFile(fsys, layoutTextFile)
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	htmlBase, err := htmltemplate.New("layout").Funcs(funcs).Parse(string(htmlLayout))
	if err != nil {
		return nil, fmt.Errorf("templates: %s: %w", layoutHTMLFile, err)
	}
	textBase, err := texttemplate.New("layout").Funcs(funcs).Parse(string(textLayout))
	if err != nil {
		return nil, fmt.Errorf("templates: %s: %w", layoutTextFile, err)
	}

	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	htmlSrc := map[string]string{}
	textSrc := map[string]string{}
	for _, e := range entries {
		fn := e.Name()
		if e.IsDir() || !strings.HasSuffix(fn, ".tmpl") || fn == layoutHTMLFile || fn == layoutTextFile {
			continue
		}
		b, err := fs.ReadFile(fsys, fn)
		if err != nil {
			return nil, fmt.Errorf("templates: %w", err)
		}
		switch {
		case strings.HasSuffix(fn, htmlSuffix):
			htmlSrc[strings.TrimSuffix(fn, htmlSuffix)] = string(b)
		case strings.HasSuffix(fn, textSuffix):
			textSrc[strings.TrimSuffix(fn, textSuffix)] = string(b)
		default:
			return nil, fmt.Errorf("templates: %s: name must end in %s or %s", fn, htmlSuffix, textSuffix)
		}
	}
	for n := range htmlSrc {
		if _, ok := textSrc[n]; !ok {
			return nil, fmt.Errorf("templates: %s%s has no %s%s", n, htmlSuffix, n, textSuffix)
		}
	}
	for n := range textSrc {
		if _, ok := htmlSrc[n]; !ok {
			return nil, fmt.Errorf("templates: %s%s has no %s%s", n, textSuffix, n, htmlSuffix)
		}
	}

	s := &Set{pairs: make(map[string]pair, len(htmlSrc))}
	for n, src := range htmlSrc {
		h, err := htmlBase.Clone()
		if err != nil {
			return nil, fmt.Errorf("templates: %s: %w", n, err)
		}
		if _, err := h.New("body").Parse(src); err != nil {
			return nil, fmt.Errorf("templates: %s%s: %w", n, htmlSuffix, err)
		}
		t, err := textBase.Clone()
		if err != nil {
			return nil, fmt.Errorf("templates: %s: %w", n, err)
		}
		if _, err := t.New("body").Parse(textSrc[n]); err != nil {
			return nil, fmt.Errorf("templates: %s%s: %w", n, textSuffix, err)
		}
		for _, d := range h.Templates() {
			if !allowedDefines[d.Name()] {
				return nil, fmt.Errorf("templates: %s%s: unexpected template %q (a body may define only \"cta\" and \"note\")", n, htmlSuffix, d.Name())
			}
		}
		for _, d := range t.Templates() {
			if !allowedDefines[d.Name()] {
				return nil, fmt.Errorf("templates: %s%s: unexpected template %q (a body may define only \"cta\" and \"note\")", n, textSuffix, d.Name())
			}
		}
		p := pair{html: h, text: t}
		// Dry runs: catch execution errors now, and have html/template escape
		// the whole set before any concurrent use.
		for _, d := range []Data{{}, {Link: "https://example.com/x"}} {
			d.Brand = normalize(d.Brand)
			if err := p.html.ExecuteTemplate(io.Discard, "layout", &d); err != nil {
				return nil, fmt.Errorf("templates: %s%s: %w", n, htmlSuffix, err)
			}
			if err := p.text.ExecuteTemplate(io.Discard, "layout", &d); err != nil {
				return nil, fmt.Errorf("templates: %s%s: %w", n, textSuffix, err)
			}
		}
		s.pairs[n] = p
		s.names = append(s.names, n)
	}
	sort.Strings(s.names)
	var trees []*parse.Tree
	for _, p := range s.pairs {
		for _, t := range p.html.Templates() {
			trees = append(trees, t.Tree)
		}
		for _, t := range p.text.Templates() {
			trees = append(trees, t.Tree)
		}
	}
	if s.columns = (Columns{}); !columnsOf(s.columns, trees...) {
		s.columns = nil
	}
	return s, nil
}

// Names returns the template names (email type ids with "_" for "."), sorted.
// The slice is a copy.
func (s *Set) Names() []string { return append([]string(nil), s.names...) }

// Has reports whether the Set holds a template of that name.
func (s *Set) Has(name string) bool {
	_, ok := s.pairs[name]
	return ok
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBuffer = 64 << 10

// Render executes the named type's HTML and text templates inside their
// layouts. d.Brand is normalised first (empty or invalid fields fall back to
// DefaultBranding, see BrandingOf), so a zero Brand renders the default look,
// and d.Subject is passed through SanitizeHeader.
// An unknown name gives an error wrapping ErrUnknownTemplate; a Link that is
// set but not an absolute http(s) URL gives an error wrapping ErrUnsafeLink.
func (s *Set) Render(name string, d Data) (html, text string, err error) {
	p, ok := s.pairs[name]
	if !ok {
		return "", "", fmt.Errorf("templates: %w %q", ErrUnknownTemplate, name)
	}
	if d.Link != "" && !safeURL(d.Link) {
		return "", "", fmt.Errorf("templates: %s: %w", name, ErrUnsafeLink)
	}
	d.Brand = normalize(d.Brand)
	d.Subject = SanitizeHeader(d.Subject)

	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledBuffer {
			buf.Reset()
			bufPool.Put(buf)
		}
	}()
	buf.Reset()
	if err := p.html.ExecuteTemplate(buf, "layout", &d); err != nil {
		return "", "", fmt.Errorf("templates: %s (html): %w", name, err)
	}
	html = buf.String()
	buf.Reset()
	if err := p.text.ExecuteTemplate(buf, "layout", &d); err != nil {
		return "", "", fmt.Errorf("templates: %s (text): %w", name, err)
	}
	text = tidyText(buf.Bytes())
	return html, text, nil
}

// tidyText trims trailing blanks from every line, drops leading blank lines,
// collapses runs of blank lines to one and ends the text with one newline, so
// that optional blocks in the text templates leave no gaps.
func tidyText(b []byte) string {
	var out strings.Builder
	out.Grow(len(b))
	blank := 0
	started := false
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		line = bytes.TrimRight(line, " \t\r")
		if len(line) == 0 {
			blank++
			continue
		}
		if started && blank > 0 {
			out.WriteByte('\n')
		}
		blank = 0
		started = true
		out.Write(line)
		out.WriteByte('\n')
	}
	return out.String()
}

// SanitizeHeader makes s safe as an email header value (a subject, a display
// name): it replaces CR, LF and every other control character (and the Unicode
// line and paragraph separators) by a space, collapses runs of whitespace to
// one space and trims the ends. "Acme\r\nBcc: x@y" becomes "Acme Bcc: x@y".
func SanitizeHeader(s string) string {
	clean := true
	prevSpace := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c >= utf8.RuneSelf || (c == ' ' && prevSpace) {
			clean = false
			break
		}
		prevSpace = c == ' '
	}
	if clean && !prevSpace {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.IsSpace(r) || r == '\u2028' || r == '\u2029' {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// normalize applies the fallbacks and validation of BrandingOf to b.
func normalize(b Branding) Branding {
	b.BrandName = SanitizeHeader(b.BrandName)
	if b.BrandName == "" {
		b.BrandName = DefaultBranding.BrandName
	}
	if c, ok := hexColor(b.PrimaryColor); ok {
		b.PrimaryColor = c
	} else {
		b.PrimaryColor = DefaultBranding.PrimaryColor
	}
	b.LogoURL = strings.TrimSpace(b.LogoURL)
	if b.LogoURL != "" && !safeURL(b.LogoURL) {
		b.LogoURL = ""
	}
	b.FromName = SanitizeHeader(b.FromName)
	if b.FromName == "" {
		b.FromName = b.BrandName
	}
	b.ReplyTo = SanitizeHeader(b.ReplyTo)
	return b
}

// hexColor validates a CSS hex colour, "#abc" or "#a1b2c3" (the "#" may be
// missing), and returns it with its "#".
func hexColor(s string) (string, bool) {
	s = strings.TrimSpace(s)
	h := strings.TrimPrefix(s, "#")
	if len(h) != 3 && len(h) != 6 {
		return "", false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return "", false
		}
	}
	if len(s) == len(h) {
		return "#" + h, true
	}
	return s, true
}

// safeURL reports whether s is an absolute http or https URL with a host and
// no whitespace or control characters.
func safeURL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return true
	}
	return false
}

// formatDate prints a date or timestamp value for an email; PostgreSQL's
// 'infinity' and '-infinity' print as words, not as year 9999 or 1.
func formatDate(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		switch x {
		case "":
			return ""
		case "infinity":
			return "no end date"
		case "-infinity":
			return "long ago"
		}
		if len(x) == len(time.DateOnly) {
			// Date columns; cdc.ParseTime would try the timestamp layouts first.
			if t, err := time.Parse(time.DateOnly, x); err == nil {
				return t.Format(DateLayout)
			}
		}
		if t, ok := cdc.ParseTime(x); ok {
			return t.Format(DateLayout)
		}
		return x
	case time.Time:
		if x.IsZero() {
			return ""
		}
		return x.UTC().Format(DateLayout)
	case *time.Time:
		if x == nil || x.IsZero() {
			return ""
		}
		return x.UTC().Format(DateLayout)
	}
	return fmt.Sprint(v)
}

// details builds the rows of a details table: d, then label/value-spec pairs.
// A value spec is "Row.column" (Row one of Entity, Previous, Company, Partner,
// User, Subscription; the column read with cdc.Row.Str), "Row.column|date"
// (formatted as by the date func), "Row|person" (the row's full_name or
// display_name with its email, as by the person func) or 'literal text' in
// single quotes. Rows whose value is empty are left out. Reading the rows here
// rather than through one template action per value keeps rendering fast.
func details(d *Data, kv ...string) ([]Detail, error) {
	if len(kv)%2 != 0 {
		return nil, errors.New("details: odd number of arguments")
	}
	out := make([]Detail, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		v, err := detailValue(d, kv[i+1])
		if err != nil {
			return nil, err
		}
		if v != "" {
			out = append(out, Detail{Label: kv[i], Value: v})
		}
	}
	return out, nil
}

// valueSpec is a details value spec taken apart: 'literal text', or
// "Row.column|pipe" (column and pipe optional).
type valueSpec struct {
	literal         bool
	text            string // of a literal
	root, col, pipe string
}

// splitSpec takes a details value spec apart (detailValue reads it, and
// columnsOf reads the columns it names).
func splitSpec(spec string) valueSpec {
	if len(spec) >= 2 && spec[0] == '\'' && spec[len(spec)-1] == '\'' {
		return valueSpec{literal: true, text: spec[1 : len(spec)-1]}
	}
	path, pipe, _ := strings.Cut(spec, "|")
	root, col, _ := strings.Cut(path, ".")
	return valueSpec{root: root, col: col, pipe: pipe}
}

func detailValue(d *Data, spec string) (string, error) {
	v := splitSpec(spec)
	if v.literal {
		return v.text, nil
	}
	root, col, pipe := v.root, v.col, v.pipe
	var row cdc.Row
	switch root {
	case "Entity":
		row = d.Entity
	case "Previous":
		row = d.Previous
	case "Company":
		row = d.Company
	case "Partner":
		row = d.Partner
	case "User":
		row = d.User
	case "Subscription":
		row = d.Subscription
	default:
		return "", fmt.Errorf("details: unknown row %q in %q", root, spec)
	}
	switch pipe {
	case "":
		if col == "" {
			return "", fmt.Errorf("details: no column in %q", spec)
		}
		return row.Str(col), nil
	case "date":
		if col == "" {
			return "", fmt.Errorf("details: no column in %q", spec)
		}
		return formatDate(row.Str(col)), nil
	case "person":
		if col != "" {
			return "", fmt.Errorf("details: %q: person takes a row, not a column", spec)
		}
		name := row.Str(personColumns[0])
		if name == "" {
			name = row.Str(personColumns[1])
		}
		return person(name, row.Str(personColumns[2])), nil
	}
	return "", fmt.Errorf("details: unknown function %q in %q", pipe, spec)
}

func lines(ds []Detail) string {
	n := 0
	for _, d := range ds {
		n += len(d.Label) + len(d.Value) + 3
	}
	var b strings.Builder
	b.Grow(n)
	for _, d := range ds {
		b.WriteString(d.Label)
		b.WriteString(": ")
		b.WriteString(d.Value)
		b.WriteByte('\n')
	}
	return b.String()
}

func person(name, email string) string {
	switch {
	case name == "":
		return email
	case email == "":
		return name
	}
	return name + " (" + email + ")"
}

// ink returns a text colour readable on the hex background colour c.
func ink(c string) string {
	c, ok := hexColor(c)
	if !ok {
		return "#ffffff"
	}
	h := c[1:]
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	v := func(i int) float64 { return float64(unhex(h[i])<<4|unhex(h[i+1])) / 255 }
	// Perceived brightness (ITU-R BT.601 weights).
	if 0.299*v(0)+0.587*v(2)+0.114*v(4) > 0.6 {
		return "#1f2933"
	}
	return "#ffffff"
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return 0
}
