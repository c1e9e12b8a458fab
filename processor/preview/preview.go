// Package preview serves every email type rendered with sample data and a
// chosen partner's branding: the page behind `portalmail preview`, for
// reviewing templates and branding without sending anything.
package preview

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"sort"
	"strings"
	texttemplate "text/template"

	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/portalmail/portalmail/templates"
)

// Brands are the brandings the preview offers, by name. A brand with a
// sample logo in logos/ (embedded) gets a logo_url pointing at the preview
// itself: /logos/<name>.svg on the host the page was asked from.
var Brands = map[string]cdc.Row{
	"default": nil,
	"northwind": {"id": "p-northwind", "name": "Northwind Video AS", "brand_name": "Northwind Video",
		"primary_color": "#0055aa", "from_name": "Northwind Video Support", "reply_to": "support@northwind.example"},
	"fabrikam": {"id": "p-fabrikam", "name": "Fabrikam Resale", "brand_name": "Fabrikam", "primary_color": "#7a1f5c"},
}

// DefaultBrand is the brand shown when the request names none.
const DefaultBrand = "northwind"

//go:embed logos/*.svg
var logos embed.FS

// BrandNames are the names of Brands, sorted.
func BrandNames() []string {
	names := make([]string, 0, len(Brands))
	for n := range Brands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// brand returns the partner row of a brand, its logo_url set to the
// embedded sample logo as served by this preview on host.
func brand(name, host string) cdc.Row {
	row := maps.Clone(Brands[name])
	if _, err := logos.Open("logos/" + name + ".svg"); err == nil && row != nil {
		row["logo_url"] = "http://" + host + "/logos/" + name + ".svg"
	}
	return row
}

// Handler renders the catalog: "/" lists the types, "/<type id>?brand=<name>"
// shows one as HTML ("&part=text" for its text part), "/logos/<name>.svg"
// serves the sample logos. An unknown brand is a 404 that lists the brands.
type Handler struct {
	cat  catalog.Catalog
	tmpl *templates.Set
	subj map[catalog.TypeID]*texttemplate.Template
}

// New parses every subject; it fails like the engine would on a bad catalog.
func New(cat catalog.Catalog, tmpl *templates.Set) (*Handler, error) {
	if err := catalog.Validate(cat, tmpl.Has); err != nil {
		return nil, err
	}
	h := &Handler{cat: cat, tmpl: tmpl, subj: map[catalog.TypeID]*texttemplate.Template{}}
	for _, t := range cat {
		s, err := texttemplate.New(string(t.ID)).Funcs(catalog.SubjectFuncs).Option("missingkey=zero").Parse(t.Subject)
		if err != nil {
			return nil, err
		}
		h.subj[t.ID] = s
	}
	return h, nil
}

var index = template.Must(template.New("index").Parse(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>portalmail preview</title></head>
<body style="font-family:Arial,sans-serif"><h1>portalmail: {{len .Types}} email types</h1>
<p>Branding: {{range .Brands}}<a href="?brand={{.}}">{{.}}</a> {{end}}(now: {{.Brand}})</p>
<table cellpadding="4"><tr><th>id</th><th>subject</th><th>trigger</th><th>recipients</th></tr>
{{range .Types}}<tr><td><a href="/{{.ID}}?brand={{$.Brand}}">{{.ID}}</a> (<a href="/{{.ID}}?brand={{$.Brand}}&amp;part=text">text</a>)</td><td>{{.SpecSubject}}</td><td>{{.Trigger}}</td><td>{{.Recipients}}</td></tr>
{{end}}</table></body></html>`))

// ServeHTTP serves the index, one email, or a sample logo.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/logos/") {
		http.FileServerFS(logos).ServeHTTP(w, r)
		return
	}
	name := r.URL.Query().Get("brand")
	if name == "" {
		name = DefaultBrand
	}
	if _, ok := Brands[name]; !ok {
		http.Error(w, fmt.Sprintf("unknown brand %q: the brands are %s", name, strings.Join(BrandNames(), ", ")), http.StatusNotFound)
		return
	}
	partner := brand(name, r.Host)
	id := strings.TrimPrefix(r.URL.Path, "/")
	if id == "" {
		type row struct{ ID, SpecSubject, Trigger, Recipients string }
		var rows []row
		for _, t := range h.cat {
			rows = append(rows, row{string(t.ID), t.SpecSubject, catalog.Describe(t.Trigger), catalog.DescribeRecipients(t.Recipients)})
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = index.Execute(w, map[string]any{"Types": rows, "Brands": BrandNames(), "Brand": name})
		return
	}
	t, ok := h.cat.Lookup(catalog.TypeID(id))
	if !ok {
		http.NotFound(w, r)
		return
	}
	subject, html, text, err := h.Render(t, partner)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("X-Subject", subject)
	if r.URL.Query().Get("part") == "text" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Subject: %s\n\n%s", subject, text)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, html)
}

// Render renders one type with sample data and the partner's branding.
func (h *Handler) Render(t catalog.EmailType, partner cdc.Row) (subject, html, text string, err error) {
	d := Sample(t, partner)
	var b bytes.Buffer
	if err := h.subj[t.ID].Execute(&b, d); err != nil {
		return "", "", "", err
	}
	d.Subject = templates.SanitizeHeader(b.String())
	html, text, err = h.tmpl.Render(t.Template, d)
	return d.Subject, html, text, err
}

// Sample is plausible data for a type: its trigger row with every contract
// column filled, a company and the given partner.
func Sample(t catalog.EmailType, partner cdc.Row) templates.Data {
	table := catalog.TriggerTable(t.Trigger)
	entity := sampleRow(table)
	company := sampleRow(cdc.Companies)
	d := templates.Data{Type: string(t.ID), Brand: templates.BrandingOf(partner), Entity: entity, Previous: sampleRow(table),
		Company: company, Partner: partner, User: sampleRow(cdc.PortalUsers), Subscription: sampleRow(cdc.InteropSubscriptions),
		Days: 30, Percent: 85}
	d.Previous["quantity"], d.Previous["billing_period"] = int64(10), "monthly"
	if tm, ok := t.Trigger.(catalog.Timer); ok && len(tm.Days) > 0 {
		d.Days = tm.Days[0]
	}
	if t.Link != nil {
		d.Link = "https://" + string(t.Link.Site) + ".pexip.example" + t.Link.Path
		if t.Link.Param != "" {
			d.Link += "?" + t.Link.Param + "=sample-token"
		}
	}
	return d
}

// sampleRow fills every contract column of a table with a plausible value.
func sampleRow(table string) cdc.Row {
	row := cdc.Row{}
	for col, typ := range cdc.Contract[table] {
		switch {
		case col == "id":
			row[col] = "sample-1"
		case strings.HasSuffix(col, "email"):
			row[col] = "jo.jensen@acme.example"
		case col == "name" && table == cdc.Companies:
			row[col] = "Acme Corp"
		case col == "name" && table == cdc.Domains:
			row[col] = "video.acme.example"
		case typ == cdc.Integer:
			row[col] = int64(25)
		case typ == cdc.Boolean:
			row[col] = true
		case typ == cdc.Timestamp:
			row[col] = "2026-03-01T09:00:00Z"
		case typ == cdc.Date:
			row[col] = "2026-12-31"
		case typ == cdc.TextArray:
			row[col] = []string{"brand@acme.example"}
		default:
			row[col] = map[string]string{"display_name": "Jo Jensen", "full_name": "Jo Jensen", "product": "Pexip Service Enterprise",
				"billing_period": "annual", "code": "ACME-2026", "status": "active", "kind": "teams_cvi"}[col]
			if row[col] == "" {
				row[col] = "Sample " + strings.ReplaceAll(col, "_", " ")
			}
		}
	}
	return row
}
