package catalog

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestDefaultValidates(t *testing.T) {
	c := Default()
	if len(c) != 47 {
		t.Fatalf("catalog has %d types, the spec has 47", len(c))
	}
	if err := Validate(c, nil); err != nil {
		t.Fatal(err)
	}
}

func TestValidateRejects(t *testing.T) {
	good := Default()[0]
	cases := map[string]func(e *EmailType){
		"unknown table":    func(e *EmailType) { e.Trigger = Transition{Table: "portal.public.nope", Create: true} },
		"unknown column":   func(e *EmailType) { e.Trigger = Transition{Table: "portal.public.companies", Field: "nope"} },
		"bad subject":      func(e *EmailType) { e.Subject = "{{.Company" },
		"wrong section":    func(e *EmailType) { e.Section = SectionOrder },
		"no recipients":    func(e *EmailType) { e.Recipients = Recipients{} },
		"unknown role":     func(e *EmailType) { e.Recipients = Recipients{Roles: []Role{"boss"}} },
		"missing template": func(e *EmailType) { e.Template = "nope" },
		"no trigger":       func(e *EmailType) { e.Trigger = nil },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			e := good
			mutate(&e)
			err := Validate(Catalog{e}, func(n string) bool { return n != "nope" })
			if err == nil {
				t.Fatal("Validate accepted a broken entry")
			}
		})
	}
	if err := Validate(Catalog{good, good}, nil); err == nil {
		t.Fatal("Validate accepted duplicate ids")
	}
}

func TestWriteTableGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTable(&buf, Default()); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "catalog.md.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./processor/catalog -update)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("catalog table differs from %s; run with -update and review the diff\n%s", golden, buf.String())
	}
}
