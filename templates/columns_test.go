package templates

import (
	"maps"
	"slices"
	"testing"
	texttemplate "text/template"
)

func TestColumnsOf(t *testing.T) {
	for _, tc := range []struct {
		src   string
		whole bool     // a row used whole: every column
		want  []string // the words collected
	}{
		{src: `{{.Entity.Str "name"}} and {{$.Company.Str "pexip_account_manager_email"}}`, want: []string{"name", "pexip_account_manager_email"}},
		{src: `{{template "details" (details $ "Company" "Company.name" "End" "Entity.end_date|date" "By" "User|person")}}`,
			want: []string{"By", "Company", "End", "Entity", "User", "date", "end_date", "name", "person"}},
		{src: `{{if eq (.Previous.Str "status") "trial"}}{{date (.Entity.Str "trial_expires_at")}}{{end}}`, want: []string{"status", "trial", "trial_expires_at"}},
		{src: `{{range .Brand.LogoURL}}{{.}}{{end}}{{.Link}} {{.Days}}`, want: nil},
		{src: `{{with .Company}}{{.Str "name"}}{{end}}`, whole: true},
		{src: `{{index .Entity "name"}}`, whole: true},
		{src: `{{$c := .Company}}{{$c.Str "name"}}`, whole: true},
		{src: `{{.Entity}}`, whole: true},
		{src: `{{(.Entity).Str "name"}}`, whole: true},
		{src: `{{printf "%v" $.User}}`, whole: true},
		{src: `{{.Entity.name}}`, whole: true},
		{src: `{{$c := "name"}}{{.Entity.Str $c}}`, whole: true},
		{src: `{{$s := "Entity.name"}}{{template "details" (details $ "Name" $s)}}`, whole: true},
		{src: `{{printf "%v" .}}`, whole: true},
		{src: `{{printf "%v" $}}`, whole: true},
		{src: `{{template "details" .}}`, want: nil},
		{src: `{{with .Entity.Str "end_date"}}{{date .}}{{end}}`, want: []string{"end_date"}},
		{src: `{{with $}}{{date .}}{{end}}`, whole: true},
		{src: `{{range $.Brand.LogoURL}}{{printf "%v" .}}{{end}}`, want: []string{"v"}},
		{src: `{{date .}}`, whole: true},
		{src: `{{lines .}}`, want: nil},
		{src: `{{.Entity.Str (printf "%s" "name")}}`, whole: true},
	} {
		tt, err := texttemplate.New("t").Funcs(funcs).Funcs(texttemplate.FuncMap{"eq": func(a, b string) bool { return a == b }}).Parse(`{{define "details"}}{{end}}` + tc.src)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		cols := Columns{}
		all := true
		for _, d := range tt.Templates() {
			all = columnsOf(cols, d.Tree) && all
		}
		if all == tc.whole {
			t.Errorf("%s: every column = %v, want %v", tc.src, !all, tc.whole)
			continue
		}
		if got := slices.Sorted(maps.Keys(cols)); !tc.whole && !slices.Equal(got, tc.want) {
			t.Errorf("%s: columns %v, want %v", tc.src, got, tc.want)
		}
	}
}

// The bundled templates name their columns: job data keeps those only.
func TestSetColumns(t *testing.T) {
	cols := mustSet(t).Columns()
	if cols == nil {
		t.Fatal("the bundled templates use a row whole: job data keeps every column")
	}
	for _, c := range []string{"name", "full_name", "display_name", "email", "end_date", "product", "quantity", "code", "pexip_account_manager_email"} {
		if !cols[c] {
			t.Errorf("column %q, read by the templates, is not kept", c)
		}
	}
	for _, c := range []string{"brand_name", "logo_url", "reply_to", "partner_id", "company_id", "phone"} {
		if cols[c] {
			t.Errorf("column %q, read by no template, is kept", c)
		}
	}
}
