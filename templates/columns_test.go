package templates

import (
	"maps"
	"slices"
	"strings"
	"testing"
	texttemplate "text/template"
)

func TestColumnsOf(t *testing.T) {
	for _, tc := range []struct {
		src   string
		whole bool     // a row read in a way the text does not spell: every column
		want  []string // the columns collected, as Row.column
	}{
		{src: `{{.Entity.Str "name"}} and {{$.Company.Str "pexip_account_manager_email"}}`, want: []string{"Company.pexip_account_manager_email", "Entity.name"}},
		{src: `{{template "details" (details $ "Company" "Company.name" "End" "Entity.end_date|date" "By" "User|person" "Note" "'n/a'")}}`,
			want: []string{"Company.name", "Entity.end_date", "User.display_name", "User.email", "User.full_name"}},
		{src: `{{if eq (.Previous.Str "status") "trial"}}{{date (.Entity.Str "trial_expires_at")}}{{end}}`, want: []string{"Entity.trial_expires_at", "Previous.status"}},
		{src: `{{range .Brand.LogoURL}}{{.}}{{end}}{{.Link}} {{.Days}} {{"Company.name"}}`, want: nil},
		{src: `{{template "details" .}}`, want: nil},
		{src: `{{with .Entity.Str "end_date"}}{{date .}}{{end}}`, want: []string{"Entity.end_date"}},
		{src: `{{range $.Brand.LogoURL}}{{printf "%v" .}}{{end}}`, want: nil},
		{src: `{{lines .}}`, want: nil},
		{src: `{{with .Company}}{{.Str "name"}}{{end}}`, whole: true},
		{src: `{{index .Entity "name"}}`, whole: true},
		{src: `{{$c := .Company}}{{$c.Str "name"}}`, whole: true},
		{src: `{{.Entity}}`, whole: true},
		{src: `{{(.Entity).Str "name"}}`, whole: true},
		{src: `{{printf "%v" $.User}}`, whole: true},
		{src: `{{.Entity.name}}`, whole: true},
		{src: `{{$c := "name"}}{{.Entity.Str $c}}`, whole: true},
		{src: `{{.Entity.Str (printf "%s" "name")}}`, whole: true},
		{src: `{{$s := "Entity.name"}}{{template "details" (details $ "Name" $s)}}`, whole: true},
		{src: `{{template "details" (details $ "Name" "Brand.name")}}`, whole: true},
		{src: `{{printf "%v" .}}`, whole: true},
		{src: `{{printf "%v" $}}`, whole: true},
		{src: `{{$d := $}}{{printf "%v" $d}}`, whole: true},
		{src: `{{with $}}{{date .}}{{end}}`, whole: true},
		{src: `{{date .}}`, whole: true},
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
		var got []string
		for row, set := range cols {
			for col := range set {
				got = append(got, row+"."+col)
			}
		}
		if slices.Sort(got); !tc.whole && !slices.Equal(got, tc.want) {
			t.Errorf("%s: columns %v, want %v", tc.src, got, tc.want)
		}
	}
}

// The bundled templates name their columns: job data keeps those only.
func TestSetColumns(t *testing.T) {
	cols := mustSet(t).Columns()
	if cols == nil {
		t.Fatal("the bundled templates read a row in a way their text does not spell: job data keeps every column")
	}
	for _, c := range []string{"Company.name", "Company.pexip_account_manager_email", "Entity.end_date", "Entity.product", "Entity.code",
		"Previous.quantity", "Partner.name", "User.full_name", "User.display_name", "User.email"} {
		row, col, _ := strings.Cut(c, ".")
		if !cols[row][col] {
			t.Errorf("column %s, read by the templates, is not kept (kept: %v)", c, slices.Sorted(maps.Keys(cols[row])))
		}
	}
	for _, c := range []string{"Partner.brand_name", "Partner.logo_url", "Partner.contact_email", "Company.partner_id", "Company.contact_email", "Entity.company_id"} {
		row, col, _ := strings.Cut(c, ".")
		if cols[row][col] {
			t.Errorf("column %s, read by no template, is kept", c)
		}
	}
}
