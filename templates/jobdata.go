package templates

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/valyala/fastjson"
)

// The process stage does not render bodies: it puts the template data into
// the job (EmailJob.Data), and the send stage renders from it. Rendering
// costs ~30 µs per email, more than everything else the process stage does
// for a change, and a job with data is a fraction of the size of one with
// bodies (docs/design.md, "Rendering in send").

// JobData is Data as a job carries it: Data plus the name of the template
// (the catalog entry's Template).
type JobData struct {
	Template string
	Data
}

// dataJSON is the wire form of JobData (EmailJob.data): short, stable keys.
type dataJSON struct {
	Template     string   `json:"template"`
	Type         string   `json:"type"`
	Subject      string   `json:"subject,omitempty"`
	Brand        Branding `json:"brand"`
	Entity       cdc.Row  `json:"entity,omitempty"`
	Previous     cdc.Row  `json:"previous,omitempty"`
	Company      cdc.Row  `json:"company,omitempty"`
	Partner      cdc.Row  `json:"partner,omitempty"`
	User         cdc.Row  `json:"user,omitempty"`
	Subscription cdc.Row  `json:"subscription,omitempty"`
	Days         int      `json:"days,omitempty"`
	Percent      int      `json:"percent,omitempty"`
	Link         string   `json:"link,omitempty"`
}

// AppendJSON appends the job data as JSON to dst. Array columns of the rows
// are left out: no template reads them (the lists of addresses they hold
// would be copied into every recipient's job), and the golden tests render
// from this very form. Rows are encoded with sorted keys.
func (j JobData) AppendJSON(dst []byte) ([]byte, error) { return j.AppendJSONCached(dst, nil) }

// RowJSON remembers the JSON of the reference rows (company, partner, user,
// subscription) that many jobs of one batch share: the process stage encodes
// each once per batch instead of once per job. Rows are known by identity
// (the same map), and the cache holds them, so an entry never outlives its
// row; rows must not change while the cache is in use. The zero value is
// ready to use and keeps every column; it is not safe for concurrent use.
type RowJSON struct {
	// Keep, if not nil, is the columns each row keeps in the job data, the
	// entity and previous rows too (Set.Columns: the columns the templates
	// read); the others are left out, and a row of which none is kept.
	Keep Columns
	m    map[rowID]cachedRow
	// sorted is each field's columns of Keep, in order.
	sorted map[string][]string
}

// rowID is a row by identity, and the Data field it is encoded as (one map
// may be the company and the entity, with other columns kept).
type rowID struct {
	ptr   uintptr
	field string
}

type cachedRow struct {
	row  cdc.Row
	json []byte
}

// keeps returns what the job data keeps of the rows of Data field field:
// nil (every column) without a Keep; ok false when it keeps no column.
func (c *RowJSON) keeps(field string) (set ColumnSet, ok bool) {
	if c == nil || c.Keep == nil {
		return nil, true
	}
	set = c.Keep[field]
	return set, len(set) > 0
}

// appendRow appends r's JSON, its array columns left out, and the columns
// set leaves out (nil: none); shared rows are taken from (and added to) the
// cache.
func (c *RowJSON) appendRow(dst []byte, r cdc.Row, field string, set ColumnSet, shared bool) ([]byte, error) {
	if c == nil || !shared {
		return c.encode(dst, r, field, set)
	}
	id := rowID{reflect.ValueOf(r).Pointer(), field}
	if e, ok := c.m[id]; ok {
		return append(dst, e.json...), nil
	}
	out, err := c.encode(dst, r, field, set)
	if err != nil {
		return dst, err
	}
	if c.m == nil {
		c.m = map[rowID]cachedRow{}
	}
	c.m[id] = cachedRow{r, bytes.Clone(out[len(dst):])}
	return out, nil
}

// encode appends r's JSON, its array columns left out, and the columns set
// leaves out (nil: none): a set is walked in order, not the whole row.
func (c *RowJSON) encode(dst []byte, r cdc.Row, field string, set ColumnSet) ([]byte, error) {
	if c == nil || set == nil {
		return r.AppendJSONColumns(dst, set.keeps)
	}
	cols, ok := c.sorted[field]
	if !ok {
		cols = slices.Sorted(maps.Keys(set))
		if c.sorted == nil {
			c.sorted = map[string][]string{}
		}
		c.sorted[field] = cols
	}
	return r.AppendJSONOf(dst, cols, notArray)
}

// notArray is the part of ColumnSet.keeps that a column list leaves.
func notArray(_ string, v any) bool {
	switch v.(type) {
	case []string, []any:
		return false
	}
	return true
}

// keeps reports whether job data keeps column col of value v: no array
// column, and only the columns of k (k nil: all).
func (k ColumnSet) keeps(col string, v any) bool {
	return notArray(col, v) && (k == nil || k[col])
}

// AppendJSONCached is AppendJSON with the reference rows' JSON taken from
// (and added to) rows, and the columns rows.Keep does not hold left out of
// every row; nil rows caches nothing and keeps every column.
func (j JobData) AppendJSONCached(dst []byte, rows *RowJSON) ([]byte, error) {
	dst = append(dst, `{"template":`...)
	dst = cdc.AppendJSONString(dst, j.Template)
	dst = append(dst, `,"type":`...)
	dst = cdc.AppendJSONString(dst, j.Type)
	if j.Subject != "" {
		dst = append(dst, `,"subject":`...)
		dst = cdc.AppendJSONString(dst, j.Subject)
	}
	b := j.Brand
	dst = append(dst, `,"brand":{"BrandName":`...)
	dst = cdc.AppendJSONString(dst, b.BrandName)
	dst = append(dst, `,"LogoURL":`...)
	dst = cdc.AppendJSONString(dst, b.LogoURL)
	dst = append(dst, `,"PrimaryColor":`...)
	dst = cdc.AppendJSONString(dst, b.PrimaryColor)
	dst = append(dst, `,"FromName":`...)
	dst = cdc.AppendJSONString(dst, b.FromName)
	dst = append(dst, `,"ReplyTo":`...)
	dst = cdc.AppendJSONString(dst, b.ReplyTo)
	dst = append(dst, '}')
	var err error
	for _, r := range [...]struct {
		name, field string
		row         cdc.Row
		shared      bool
	}{{"entity", "Entity", j.Entity, false}, {"previous", "Previous", j.Previous, false}, {"company", "Company", j.Company, true},
		{"partner", "Partner", j.Partner, true}, {"user", "User", j.User, true}, {"subscription", "Subscription", j.Subscription, true}} {
		set, any := rows.keeps(r.field)
		if r.row == nil || !any {
			continue
		}
		dst = append(dst, ',', '"')
		dst = append(dst, r.name...)
		dst = append(dst, '"', ':')
		if dst, err = rows.appendRow(dst, r.row, r.field, set, r.shared); err != nil {
			return nil, fmt.Errorf("templates: job data %s: %w", r.name, err)
		}
	}
	if j.Days != 0 {
		dst = append(dst, `,"days":`...)
		dst = strconv.AppendInt(dst, int64(j.Days), 10)
	}
	if j.Percent != 0 {
		dst = append(dst, `,"percent":`...)
		dst = strconv.AppendInt(dst, int64(j.Percent), 10)
	}
	if j.Link != "" {
		dst = append(dst, `,"link":`...)
		dst = cdc.AppendJSONString(dst, j.Link)
	}
	return append(dst, '}'), nil
}

// ParseJobData reads what AppendJSON wrote.
//
// What AppendJSON writes is read by parseFast (valyala/fastjson, a third of
// the cost); anything else it is not sure of — other spellings of a key, a
// key twice, a value of another type, invalid UTF-8, escaped surrogates —
// is read with encoding/json, whose result parseFast matches exactly
// (FuzzParseJobData).
func ParseJobData(b []byte) (JobData, error) {
	if j, ok := parseFast(b); ok {
		if j.Template == "" {
			return JobData{}, errNoTemplate
		}
		return j, nil
	}
	return parseStd(b)
}

var errNoTemplate = errors.New("templates: job data without a template name")

// parseStd is ParseJobData with encoding/json.
func parseStd(b []byte) (JobData, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var w dataJSON
	if err := dec.Decode(&w); err != nil {
		return JobData{}, fmt.Errorf("templates: job data: %w", err)
	}
	if w.Template == "" {
		return JobData{}, errNoTemplate
	}
	return JobData{Template: w.Template, Data: Data{
		Type: w.Type, Subject: w.Subject, Brand: w.Brand,
		Entity: w.Entity, Previous: w.Previous, Company: w.Company, Partner: w.Partner, User: w.User, Subscription: w.Subscription,
		Days: w.Days, Percent: w.Percent, Link: w.Link,
	}}, nil
}

// RenderJobData renders the bodies of a job from its data (EmailJob.Data)
// and returns them with their digest: hex SHA-256 of the HTML, a zero byte
// and the text (EmailDelivery.body_sha256).
func (s *Set) RenderJobData(data []byte) (html, text, digest string, err error) {
	j, err := ParseJobData(data)
	if err != nil {
		return "", "", "", err
	}
	if html, text, err = s.Render(j.Template, j.Data); err != nil {
		return "", "", "", err
	}
	return html, text, BodyDigest(html, text), nil
}

// BodyDigest is the hex SHA-256 of html, a zero byte and text.
func BodyDigest(html, text string) string {
	h := sha256.New()
	h.Write([]byte(html))
	h.Write([]byte{0})
	h.Write([]byte(text))
	return hex.EncodeToString(h.Sum(nil))
}

// CheckLink reports whether link may be a call-to-action link: "" (none) or
// an absolute http(s) URL. Render refuses anything else (ErrUnsafeLink).
func CheckLink(link string) error {
	if link != "" && !safeURL(link) {
		return ErrUnsafeLink
	}
	return nil
}

var dataParsers fastjson.ParserPool

// parseFast reads job data as AppendJSON writes it; ok false means "not
// sure": the caller reads it with encoding/json instead.
func parseFast(b []byte) (j JobData, ok bool) {
	if !utf8.Valid(b) || hasEscapedSurrogate(b) || fastjson.ValidateBytes(b) != nil {
		return JobData{}, false // fastjson's parser forgives bad escapes
	}
	p := dataParsers.Get()
	defer dataParsers.Put(p)
	v, err := p.ParseBytes(b)
	if err != nil {
		return JobData{}, false
	}
	o, err := v.Object()
	if err != nil {
		return JobData{}, false
	}
	ok = true
	seen := 0
	o.Visit(func(k []byte, v *fastjson.Value) {
		if !ok {
			return
		}
		bit, str, row, num := jobDataField(&j, string(k))
		if bit == 0 || seen&bit != 0 {
			ok = false // another spelling, or a key twice
			return
		}
		seen |= bit
		switch {
		case str != nil:
			*str, ok = fastString(v)
		case row != nil:
			*row, ok = fastRow(v)
		case num != nil:
			*num, ok = fastInt(v)
		default: // brand
			ok = fastBrand(v, &j.Brand)
		}
	})
	return j, ok
}

// jobDataField names the field of j a top-level key fills: its bit in the
// set of keys seen (0: not a key AppendJSON writes) and where it goes (all
// nil: the brand).
func jobDataField(j *JobData, k string) (bit int, str *string, row *cdc.Row, num *int) {
	switch k {
	case "template":
		return 1 << 0, &j.Template, nil, nil
	case "type":
		return 1 << 1, &j.Type, nil, nil
	case "subject":
		return 1 << 2, &j.Subject, nil, nil
	case "brand":
		return 1 << 3, nil, nil, nil
	case "entity":
		return 1 << 4, nil, &j.Entity, nil
	case "previous":
		return 1 << 5, nil, &j.Previous, nil
	case "company":
		return 1 << 6, nil, &j.Company, nil
	case "partner":
		return 1 << 7, nil, &j.Partner, nil
	case "user":
		return 1 << 8, nil, &j.User, nil
	case "subscription":
		return 1 << 9, nil, &j.Subscription, nil
	case "days":
		return 1 << 10, nil, nil, &j.Days
	case "percent":
		return 1 << 11, nil, nil, &j.Percent
	case "link":
		return 1 << 12, &j.Link, nil, nil
	}
	return 0, nil, nil, nil
}

func fastString(v *fastjson.Value) (string, bool) {
	b, err := v.StringBytes()
	return string(b), err == nil
}

func fastInt(v *fastjson.Value) (int, bool) {
	if v.Type() != fastjson.TypeNumber {
		return 0, false
	}
	n, err := strconv.Atoi(string(v.MarshalTo(nil)))
	return n, err == nil
}

func fastBrand(v *fastjson.Value, b *Branding) bool {
	o, err := v.Object()
	if err != nil {
		return false
	}
	ok, seen := true, 0
	o.Visit(func(k []byte, v *fastjson.Value) {
		if !ok {
			return
		}
		var bit int
		var f *string
		switch string(k) {
		case "BrandName":
			bit, f = 1<<0, &b.BrandName
		case "LogoURL":
			bit, f = 1<<1, &b.LogoURL
		case "PrimaryColor":
			bit, f = 1<<2, &b.PrimaryColor
		case "FromName":
			bit, f = 1<<3, &b.FromName
		case "ReplyTo":
			bit, f = 1<<4, &b.ReplyTo
		}
		if bit == 0 || seen&bit != 0 {
			ok = false
			return
		}
		seen |= bit
		*f, ok = fastString(v)
	})
	return ok
}

// fastRow is a row as encoding/json decodes it with UseNumber: null is a
// nil row.
func fastRow(v *fastjson.Value) (cdc.Row, bool) {
	if v.Type() == fastjson.TypeNull {
		return nil, true
	}
	o, err := v.Object()
	if err != nil {
		return nil, false
	}
	return cdc.Row(fastObject(o)), true
}

// fastAny is a JSON value as encoding/json decodes it into any with
// UseNumber.
func fastAny(v *fastjson.Value) any {
	switch v.Type() {
	case fastjson.TypeString:
		return string(v.GetStringBytes())
	case fastjson.TypeNumber:
		return json.Number(v.MarshalTo(nil))
	case fastjson.TypeTrue:
		return true
	case fastjson.TypeFalse:
		return false
	case fastjson.TypeObject:
		return fastObject(v.GetObject())
	case fastjson.TypeArray:
		vs := v.GetArray()
		out := make([]any, len(vs))
		for i, e := range vs {
			out[i] = fastAny(e)
		}
		return out
	}
	return nil
}

// fastObject is a JSON object as encoding/json decodes it into
// map[string]any with UseNumber (a key twice: the last value).
func fastObject(o *fastjson.Object) map[string]any {
	m := make(map[string]any, o.Len())
	o.Visit(func(k []byte, v *fastjson.Value) { m[string(k)] = fastAny(v) })
	return m
}

// hasEscapedSurrogate reports a \uD800-\uDFFF escape (encoding/json and
// fastjson differ on unpaired ones; AppendJSON never writes them).
func hasEscapedSurrogate(b []byte) bool {
	for i := bytes.Index(b, []byte(`\u`)); i >= 0 && i+2 < len(b); {
		if c := b[i+2]; c == 'd' || c == 'D' {
			return true
		}
		j := bytes.Index(b[i+2:], []byte(`\u`))
		if j < 0 {
			return false
		}
		i += 2 + j
	}
	return false
}
