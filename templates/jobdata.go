package templates

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"

	"github.com/portalmail/portalmail/schemas/cdc"
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
// ready to use; it is not safe for concurrent use.
type RowJSON struct {
	m map[uintptr]cachedRow
}

type cachedRow struct {
	row  cdc.Row
	json []byte
}

func (c *RowJSON) appendRow(dst []byte, r cdc.Row) ([]byte, error) {
	if c == nil {
		return withoutArrays(r).AppendJSON(dst)
	}
	id := reflect.ValueOf(r).Pointer()
	if e, ok := c.m[id]; ok {
		return append(dst, e.json...), nil
	}
	b, err := withoutArrays(r).AppendJSON(nil)
	if err != nil {
		return dst, err
	}
	if c.m == nil {
		c.m = map[uintptr]cachedRow{}
	}
	c.m[id] = cachedRow{r, b}
	return append(dst, b...), nil
}

// AppendJSONCached is AppendJSON with the reference rows' JSON taken from
// (and added to) rows; nil rows caches nothing.
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
		name  string
		row   cdc.Row
		cache *RowJSON
	}{{"entity", j.Entity, nil}, {"previous", j.Previous, nil}, {"company", j.Company, rows}, {"partner", j.Partner, rows}, {"user", j.User, rows}, {"subscription", j.Subscription, rows}} {
		if r.row == nil {
			continue
		}
		dst = append(dst, ',', '"')
		dst = append(dst, r.name...)
		dst = append(dst, '"', ':')
		if dst, err = r.cache.appendRow(dst, r.row); err != nil {
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

// withoutArrays returns r without its array columns (r itself when it has none).
func withoutArrays(r cdc.Row) cdc.Row {
	has := false
	for _, v := range r {
		switch v.(type) {
		case []string, []any:
			has = true
		}
	}
	if !has {
		return r
	}
	out := make(cdc.Row, len(r))
	for k, v := range r {
		switch v.(type) {
		case []string, []any:
			continue
		}
		out[k] = v
	}
	return out
}

// ParseJobData reads what AppendJSON wrote.
func ParseJobData(b []byte) (JobData, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var w dataJSON
	if err := dec.Decode(&w); err != nil {
		return JobData{}, fmt.Errorf("templates: job data: %w", err)
	}
	if w.Template == "" {
		return JobData{}, fmt.Errorf("templates: job data without a template name")
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
