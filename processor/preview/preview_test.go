package preview_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/processor/preview"
	"github.com/portalmail/portalmail/templates"
)

// previewServer serves the preview handler and returns its URL and a GET on
// it: status, body and headers.
func previewServer(t *testing.T) (string, func(path string) (int, string, http.Header)) {
	t.Helper()
	tmpl, err := templates.Parse()
	if err != nil {
		t.Fatal(err)
	}
	h, err := preview.New(catalog.Default(), tmpl)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, func(path string) (int, string, http.Header) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
}

func TestEveryTypePreviewsWithEveryBrand(t *testing.T) {
	_, get := previewServer(t)
	code, body, _ := get("/")
	if code != 200 || strings.Count(body, "<tr><td><a href=") != 47 {
		t.Fatalf("index: %d, %d types", code, strings.Count(body, "<tr><td><a href="))
	}
	for _, typ := range catalog.Default() {
		for brand := range preview.Brands {
			code, body, hdr := get("/" + string(typ.ID) + "?brand=" + brand)
			if code != 200 || hdr.Get("X-Subject") == "" || !strings.Contains(body, "<table") {
				t.Errorf("%s (%s): %d %q", typ.ID, brand, code, hdr.Get("X-Subject"))
			}
		}
		if code, body, _ := get("/" + string(typ.ID) + "?part=text"); code != 200 || !strings.HasPrefix(body, "Subject: ") {
			t.Errorf("%s text: %d", typ.ID, code)
		}
	}
	if code, _, _ := get("/no.such_type"); code != 404 {
		t.Errorf("unknown type: %d", code)
	}
	if _, body, _ := get("/trial.company_reminder?brand=northwind"); !strings.Contains(body, "#0055aa") || !strings.Contains(body, "Acme Corp") {
		t.Error("the partner's colour or the company name is missing")
	}
}

func TestBrandsAndLogos(t *testing.T) {
	url, get := previewServer(t)
	tests := []struct {
		path     string
		code     int
		contains []string
	}{
		// An unknown brand is refused with the list, not silently replaced.
		{"/order.new?brand=contoso", 404, []string{`unknown brand "contoso"`, "default, fabrikam, northwind"}},
		{"/?brand=contoso", 404, []string{"default, fabrikam, northwind"}},
		// No brand: the default one, with its embedded logo served by the preview.
		{"/order.new", 200, []string{`<img src="` + url + `/logos/northwind.svg"`}},
		{"/order.new?brand=fabrikam", 200, []string{"#7a1f5c"}},
		{"/logos/northwind.svg", 200, []string{"<svg", "Northwind Video"}},
		{"/logos/nosuch.svg", 404, nil},
	}
	for _, tt := range tests {
		code, body, _ := get(tt.path)
		if code != tt.code {
			t.Errorf("%s: %d, want %d\n%s", tt.path, code, tt.code, body)
		}
		for _, w := range tt.contains {
			if !strings.Contains(body, w) {
				t.Errorf("%s: no %q in\n%.400s", tt.path, w, body)
			}
		}
	}
	if _, _, hdr := get("/logos/northwind.svg"); hdr.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("logo Content-Type %q", hdr.Get("Content-Type"))
	}
}
