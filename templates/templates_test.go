package templates

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/portalmail/portalmail/schemas/cdc"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// typeIDs is the table "Catalog ids, triggers and recipients" of DESIGN.md.
var typeIDs = []string{
	"trial.company_created", "trial.user_reminder", "trial.user_extended",
	"trial.company_reminder", "trial.company_extended", "trial.company_ended",
	"order.new", "order.billing_change", "order.quantity_change", "order.canceled",
	"renewal.will_renew", "renewal.will_not_renew", "renewal.expires_in", "renewal.renewed", "renewal.expired",
	"interop.google_token_upload", "interop.google_provisioned", "interop.teams_authorize",
	"interop.teams_provisioned", "interop.teams_usage", "interop.teams_oversubscribed",
	"interop.teams_rooms_authorize",
	"otj.license_added", "otj.renewal",
	"account.analytics_activate", "account.portal_activate", "account.portal_expiry_warning",
	"account.portal_deactivated", "account.twofa_reset",
	"service.user_activate", "service.user_welcome", "service.user_recover",
	"service.user_deactivated", "service.user_reactivated", "service.user_twofa_reset",
	"service.team_room_activated", "service.team_room_deactivated",
	"service.endpoint_enabled", "service.endpoint_disabled",
	"service.calling_domain_created", "service.m365_domain_created",
	"classic.subscription_reactivated", "classic.subscription_deactivated",
	"classic.invitation_code_activated", "classic.invitation_code_deactivated",
	"branding.instructions", "branding.active",
}

var (
	setOnce sync.Once
	theSet  *Set
	setErr  error
)

func mustSet(tb testing.TB) *Set {
	tb.Helper()
	setOnce.Do(func() { theSet, setErr = Parse() })
	if setErr != nil {
		tb.Fatalf("Parse: %v", setErr)
	}
	return theSet
}

var (
	samplePartner = cdc.Row{
		"id": "p-100", "name": "Northwind Video AS", "type": "direct", "contact_email": "partners@northwind.example",
		"optional_notifications": []string{"trial", "service"},
		"brand_name":             "Northwind Video", "logo_url": "https://cdn.northwind.example/logo.png",
		"primary_color": "#1a4d8f", "from_name": "Northwind Video", "reply_to": "support@northwind.example",
	}
	sampleCompany = cdc.Row{
		"id": "c-200", "partner_id": "p-100", "name": "Acme Corp", "status": "active",
		"trial_expires_at": "2026-03-31T23:59:59Z", "contact_email": "it@acme.example",
		"partner_account_manager_email": "kari@northwind.example", "pexip_account_manager_email": "ola@pexip.example",
	}
	sampleOrderingUser = cdc.Row{"id": "u-300", "email": "jane.doe@acme.example", "full_name": "Jane Doe", "company_id": "c-200", "status": "active"}
	samplePlan         = cdc.Row{
		"id": "lp-400", "company_id": "c-200", "product": "Pexip Service Enterprise Room", "billing_period": "annual",
		"quantity": int64(25), "end_date": "2027-01-31", "renewal": "unset", "status": "active",
		"includes_otj": true, "invoiced": false, "updated_by_user_id": "u-300",
	}
	sampleEndUser = cdc.Row{
		"id": "eu-500", "company_id": "c-200", "email": "sam.lee@acme.example", "display_name": "Sam Lee",
		"status": "active", "classic": false, "trial_expires_at": "2026-04-15T12:00:00Z",
	}
	samplePortalUser = cdc.Row{
		"id": "pu-600", "email": "alex.smith@northwind.example", "full_name": "Alex Smith", "partner_id": "p-100",
		"status": "active", "last_login_at": "2025-10-02T08:30:00Z", "twofa_reset_at": "2026-03-02T10:15:00Z",
	}
	sampleCVISub = cdc.Row{"id": "is-700", "company_id": "c-200", "kind": "teams_cvi", "status": "active", "concurrent_call_licenses": int64(20)}
)

func with(r cdc.Row, kv ...any) cdc.Row {
	out := make(cdc.Row, len(r)+len(kv)/2)
	for k, v := range r {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// sample returns realistic Data for an email type id (without Subject).
func sample(id string) Data {
	d := Data{
		Type:    id,
		Brand:   BrandingOf(samplePartner),
		Partner: samplePartner,
		Company: sampleCompany,
	}
	switch id {
	case "trial.company_created":
		d.Entity = with(sampleCompany, "status", "trial")
		d.Company = d.Entity
	case "trial.user_reminder":
		d.Entity, d.Days = sampleEndUser, 7
	case "trial.user_extended":
		d.Entity = with(sampleEndUser, "trial_expires_at", "2026-05-15T12:00:00Z")
		d.Previous = sampleEndUser
	case "trial.company_reminder":
		d.Entity, d.Days = with(sampleCompany, "status", "trial"), 23
		d.Company = d.Entity
	case "trial.company_extended":
		d.Previous = with(sampleCompany, "status", "trial")
		d.Entity = with(sampleCompany, "status", "trial", "trial_expires_at", "2026-04-30T23:59:59Z")
		d.Company = d.Entity
	case "trial.company_ended":
		d.Previous = with(sampleCompany, "status", "trial")
		d.Entity = with(sampleCompany, "status", "trial_ended")
		d.Company = d.Entity
	case "order.new":
		d.Entity, d.User = samplePlan, sampleOrderingUser
	case "order.billing_change":
		d.Previous, d.Entity, d.User = with(samplePlan, "billing_period", "monthly"), samplePlan, sampleOrderingUser
	case "order.quantity_change":
		d.Previous, d.Entity, d.User = with(samplePlan, "quantity", int64(10)), samplePlan, sampleOrderingUser
	case "order.canceled":
		d.Previous, d.Entity, d.User = samplePlan, with(samplePlan, "status", "canceled"), sampleOrderingUser
	case "renewal.will_renew":
		d.Previous, d.Entity, d.User = samplePlan, with(samplePlan, "renewal", "renew"), sampleOrderingUser
	case "renewal.will_not_renew":
		d.Previous, d.Entity, d.User = samplePlan, with(samplePlan, "renewal", "expire"), sampleOrderingUser
	case "renewal.expires_in":
		d.Entity, d.Days = samplePlan, 30
	case "renewal.renewed", "otj.renewal":
		d.Previous = with(samplePlan, "renewal", "renew")
		d.Entity = with(samplePlan, "renewal", "renew", "status", "renewed", "end_date", "2028-01-31")
	case "renewal.expired":
		d.Previous = with(samplePlan, "renewal", "expire")
		d.Entity = with(samplePlan, "renewal", "expire", "status", "expired")
	case "interop.google_token_upload":
		d.Entity = cdc.Row{"id": "is-701", "company_id": "c-200", "kind": "google_interop", "status": "pending"}
		d.Link = "https://portal.pexip.example/interop/google/token?subscription=is-701"
	case "interop.google_provisioned":
		d.Previous = cdc.Row{"id": "is-701", "company_id": "c-200", "kind": "google_interop", "status": "pending"}
		d.Entity = with(d.Previous, "status", "active")
	case "interop.teams_authorize":
		d.Entity = with(sampleCVISub, "status", "pending")
		d.Link = "https://portal.pexip.example/interop/teams/authorize?subscription=is-700"
	case "interop.teams_provisioned":
		d.Previous, d.Entity = with(sampleCVISub, "status", "pending"), sampleCVISub
	case "interop.teams_usage":
		d.Entity = cdc.Row{"id": "cu-800", "company_id": "c-200", "subscription_id": "is-700", "concurrent_calls": int64(17), "sampled_at": "2026-03-02T14:05:00Z"}
		d.Subscription, d.Percent = sampleCVISub, 85
	case "interop.teams_oversubscribed":
		d.Entity = cdc.Row{"id": "cu-801", "company_id": "c-200", "subscription_id": "is-700", "concurrent_calls": int64(23), "sampled_at": "2026-03-02T15:05:00Z"}
		d.Subscription, d.Percent = sampleCVISub, 115
	case "interop.teams_rooms_authorize":
		d.Entity = cdc.Row{"id": "is-702", "company_id": "c-200", "kind": "teams_rooms", "status": "pending", "concurrent_call_licenses": int64(5)}
		d.Link = "https://portal.pexip.example/interop/teams-rooms/authorize?subscription=is-702"
	case "otj.license_added":
		d.Entity = cdc.Row{"id": "otj-900", "company_id": "c-200", "plan_id": "lp-400", "created_at": "2026-03-02T09:00:00Z"}
	case "account.analytics_activate":
		d.Entity = with(samplePortalUser, "analytics_invited_at", "2026-03-02T10:00:00Z", "analytics_activation_token", "tok-a1")
		d.Link = "https://analytics.pexip.example/activate?token=tok-a1"
	case "account.portal_activate":
		d.Entity = with(samplePortalUser, "status", "invited", "activation_token", "tok-p1", "last_login_at", nil)
		d.Link = "https://portal.pexip.example/activate?token=tok-p1"
	case "account.portal_expiry_warning":
		d.Entity, d.Days = samplePortalUser, 30
		d.Link = "https://portal.pexip.example/login"
	case "account.portal_deactivated":
		d.Previous = samplePortalUser
		d.Entity = with(samplePortalUser, "status", "deactivated", "deactivation_reason", "inactivity")
	case "account.twofa_reset":
		d.Entity = samplePortalUser
		d.Link = "https://portal.pexip.example/login"
	case "service.user_activate":
		d.Entity = with(sampleEndUser, "status", "invited", "activation_token", "tok-s1")
		d.Link = "https://service.pexip.example/activate?token=tok-s1"
	case "service.user_welcome":
		d.Previous, d.Entity = sampleEndUser, with(sampleEndUser, "password_set_at", "2026-03-02T11:00:00Z")
		d.Link = "https://service.pexip.example/login"
	case "service.user_recover":
		d.Entity = with(sampleEndUser, "recovery_requested_at", "2026-03-02T11:30:00Z")
		d.Link = "https://service.pexip.example/recover?token=tok-r1"
	case "service.user_deactivated":
		d.Previous, d.Entity = sampleEndUser, with(sampleEndUser, "status", "deactivated")
	case "service.user_reactivated":
		d.Previous, d.Entity = with(sampleEndUser, "status", "deactivated"), sampleEndUser
	case "service.user_twofa_reset":
		d.Entity = with(sampleEndUser, "twofa_reset_at", "2026-03-02T12:00:00Z")
		d.Link = "https://service.pexip.example/2fa/setup?user=eu-500"
	case "service.team_room_activated":
		d.Entity = cdc.Row{"id": "vmr-1", "company_id": "c-200", "name": "Acme Board Room", "status": "active"}
	case "service.team_room_deactivated":
		d.Previous = cdc.Row{"id": "vmr-1", "company_id": "c-200", "name": "Acme Board Room", "status": "active"}
		d.Entity = with(d.Previous, "status", "inactive", "deactivation_reason", "trial_ended")
	case "service.endpoint_enabled":
		d.Entity = cdc.Row{"id": "ep-1", "company_id": "c-200", "name": "Oslo Huddle Room (Cisco Room Kit)", "enabled": true}
	case "service.endpoint_disabled":
		d.Previous = cdc.Row{"id": "ep-1", "company_id": "c-200", "name": "Oslo Huddle Room (Cisco Room Kit)", "enabled": true}
		d.Entity = with(d.Previous, "enabled", false)
	case "service.calling_domain_created":
		d.Entity = cdc.Row{"id": "dom-1", "company_id": "c-200", "name": "video.acme.example", "kind": "calling"}
	case "service.m365_domain_created":
		d.Entity = cdc.Row{"id": "dom-2", "company_id": "c-200", "name": "acme.onmicrosoft.com", "kind": "m365"}
	case "classic.subscription_reactivated":
		d.Previous = with(sampleEndUser, "classic", true, "status", "deactivated")
		d.Entity = with(sampleEndUser, "classic", true)
	case "classic.subscription_deactivated":
		d.Previous = with(sampleEndUser, "classic", true)
		d.Entity = with(sampleEndUser, "classic", true, "status", "deactivated")
	case "classic.invitation_code_activated":
		d.Entity = cdc.Row{"id": "ic-1", "company_id": "c-200", "code": "ACME-7Q2X", "active": true}
	case "classic.invitation_code_deactivated":
		d.Previous = cdc.Row{"id": "ic-1", "company_id": "c-200", "code": "ACME-7Q2X", "active": true}
		d.Entity = with(d.Previous, "active", false, "deactivation_reason", "trial_ended")
	case "branding.instructions":
		d.Entity = cdc.Row{"id": "bo-1", "company_id": "c-200", "status": "placed", "notify_emails": []string{"brand@acme.example"}}
	case "branding.active":
		d.Previous = cdc.Row{"id": "bo-1", "company_id": "c-200", "status": "placed", "notify_emails": []string{"brand@acme.example"}}
		d.Entity = with(d.Previous, "status", "active")
	}
	d.Subject = sampleSubject(id, d)
	return d
}

// sampleSubject is the spec subject of the type with the sample's values.
func sampleSubject(id string, d Data) string {
	s := map[string]string{
		"trial.company_created":               "New company created (in trial mode)",
		"trial.user_reminder":                 "Trial reminder",
		"trial.user_extended":                 "Trial extended",
		"trial.company_reminder":              "Trial reminder - {company_name}",
		"trial.company_extended":              "Trial extended - {company_name}",
		"trial.company_ended":                 "Trial ended - {company_name}",
		"order.new":                           "Order confirmation from Pexip (new)",
		"order.billing_change":                "Order confirmation from Pexip (change)",
		"order.quantity_change":               "Change confirmation from Pexip",
		"order.canceled":                      "Cancellation confirmation from Pexip",
		"renewal.will_renew":                  "{company_name} license plan will be renewed",
		"renewal.will_not_renew":              "{company_name} license plan will not be renewed",
		"renewal.expires_in":                  "{company_name} license plan expires in {X} days",
		"renewal.renewed":                     "{company_name} license plan has been renewed",
		"renewal.expired":                     "{company_name} license plan expired",
		"interop.google_token_upload":         "Please upload your Authentication Token for Gateway Interoperability",
		"interop.google_provisioned":          "Your Google Meet Interoperability service has been provisioned",
		"interop.teams_authorize":             "Please authorize Pexip CVI application",
		"interop.teams_provisioned":           "Your CVI Service for MS Teams has been provisioned",
		"interop.teams_usage":                 "{X}% usage notification for Pexip Cloud Video Interop for Microsoft Teams",
		"interop.teams_oversubscribed":        "Oversubscription notification for Pexip Cloud Video Interop for Microsoft Teams",
		"interop.teams_rooms_authorize":       "Please authorize Pexip Connect for Teams Rooms",
		"otj.license_added":                   "New OTJ license added",
		"otj.renewal":                         "OTJ license renewal notification",
		"account.analytics_activate":          "Activate your Pexip Analytics account",
		"account.portal_activate":             "Activate your Pexip Partner Portal account",
		"account.portal_expiry_warning":       "Your Pexip Partner Portal account will expire in 30 days",
		"account.portal_deactivated":          "Your Pexip Partner Portal account is deactivated",
		"account.twofa_reset":                 "Reset your Pexip account 2FA",
		"service.user_activate":               "Activate your Pexip Service account",
		"service.user_welcome":                "Welcome to the Pexip Service",
		"service.user_recover":                "Recover your Pexip Service account",
		"service.user_deactivated":            "Your Pexip Service account has been deactivated",
		"service.user_reactivated":            "Your Pexip Service account has been reactivated",
		"service.user_twofa_reset":            "Your Pexip Service account's 2FA has been reset",
		"service.team_room_activated":         "Team room activated",
		"service.team_room_deactivated":       "Trial ended",
		"service.endpoint_enabled":            "Video system subscription enabled",
		"service.endpoint_disabled":           "Video system subscription disabled",
		"service.calling_domain_created":      "New calling domain {domain}",
		"service.m365_domain_created":         "New Microsoft 365 domain {domain}",
		"classic.subscription_reactivated":    "Your subscription for {display_name} has been reactivated",
		"classic.subscription_deactivated":    "Your subscription for {display_name} has been deactivated",
		"classic.invitation_code_activated":   "Invitation code activated",
		"classic.invitation_code_deactivated": "Trial ended",
		"branding.instructions":               "Instructions for providing Pexip with the information required to fulfill the order",
		"branding.active":                     "Notification that branding is active on the Pexip Service",
	}[id]
	return strings.NewReplacer(
		"{company_name}", d.Company.Str("name"),
		"{X}", map[bool]string{true: "85", false: "30"}[d.Percent > 0],
		"{domain}", d.Entity.Str("name"),
		"{display_name}", d.Entity.Str("display_name"),
	).Replace(s)
}

func TestAllTypesPresent(t *testing.T) {
	s := mustSet(t)
	if len(typeIDs) != 47 {
		t.Fatalf("table lists %d type ids, want 47", len(typeIDs))
	}
	want := map[string]bool{}
	for _, id := range typeIDs {
		n := NameOf(id)
		want[n] = true
		if !s.Has(n) {
			t.Errorf("no template %q for %s", n, id)
		}
	}
	names := s.Names()
	if len(names) != len(want) {
		t.Errorf("Names() has %d names, want %d: %v", len(names), len(want), names)
	}
	for i, n := range names {
		if !want[n] {
			t.Errorf("unexpected template %q", n)
		}
		if i > 0 && names[i-1] >= n {
			t.Errorf("Names() not sorted at %q", n)
		}
	}
	if s.Has("layout") || s.Has("order.new") {
		t.Error("Has reports a layout or a type id as a template name")
	}
}

func TestGolden(t *testing.T) {
	s := mustSet(t)
	dir := filepath.Join("testdata", "golden")
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range typeIDs {
		name := NameOf(id)
		t.Run(name, func(t *testing.T) {
			// Rendered from the job-data form, as the send stage renders:
			// the rows keep only the columns the templates read, as the
			// process stage writes them.
			data, err := JobData{Template: name, Data: sample(id)}.AppendJSONCached(nil, &RowJSON{Keep: s.Columns()})
			if err != nil {
				t.Fatal(err)
			}
			full, err := JobData{Template: name, Data: sample(id)}.AppendJSON(nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(data) >= len(full) {
				t.Fatalf("job data keeps every column: %d bytes, %d with all", len(data), len(full))
			}
			html, text, digest, err := s.RenderJobData(data)
			if err != nil {
				t.Fatalf("RenderJobData: %v", err)
			}
			direct, directText, err := s.Render(name, sample(id))
			if err != nil || direct != html || directText != text {
				t.Fatalf("the job-data form renders differently from the data itself (%v)", err)
			}
			if digest != BodyDigest(html, text) || len(digest) != 64 {
				t.Fatalf("digest %q", digest)
			}
			for _, g := range []struct{ ext, got string }{{"html", html}, {"txt", text}} {
				path := filepath.Join(dir, name+"."+g.ext+".golden")
				if *update {
					if err := os.WriteFile(path, []byte(g.got), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test ./templates -update)", err)
				}
				if g.got != string(want) {
					t.Errorf("%s differs from %s (run go test ./templates -update to accept)\n--- got ---\n%s", g.ext, path, g.got)
				}
			}
		})
	}
}

// TestRenderedContent checks the properties every rendered email must have.
func TestRenderedContent(t *testing.T) {
	s := mustSet(t)
	for _, id := range typeIDs {
		name := NameOf(id)
		d := sample(id)
		html, text, err := s.Render(name, d)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, want := range []string{"<!DOCTYPE html>", `role="presentation"`, `width="600"`, "background-color:#1a4d8f",
			`<img src="https://cdn.northwind.example/logo.png" alt="Northwind Video"`, "Sent by Northwind Video", "</html>"} {
			if !strings.Contains(html, want) {
				t.Errorf("%s: html lacks %q", name, want)
			}
		}
		for _, bad := range []string{"<style", "<script", "<link", "ZgotmplZ", "<no value>", "%!"} {
			if strings.Contains(html, bad) || strings.Contains(text, bad) {
				t.Errorf("%s: output contains %q", name, bad)
			}
		}
		for _, want := range []string{"Northwind Video\n", "Sent by Northwind Video", d.Subject} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: text lacks %q", name, want)
			}
		}
		if strings.Contains(text, "\n\n\n") || strings.HasPrefix(text, "\n") || !strings.HasSuffix(text, ".\n") {
			t.Errorf("%s: text has stray blank lines:\n%s", name, text)
		}
		if strings.Contains(text, "&amp;") || strings.Contains(text, "&#39;") {
			t.Errorf("%s: text is HTML-escaped", name)
		}
		personal := strings.HasPrefix(id, "account.") || strings.HasPrefix(id, "service.user_") || strings.HasPrefix(id, "trial.user_")
		if !personal && !strings.Contains(text, "Acme Corp") {
			t.Errorf("%s: text does not name the company", name)
		}
		if d.Link != "" {
			if !strings.Contains(text, d.Link) {
				t.Errorf("%s: text lacks the link %s", name, d.Link)
			}
			if strings.Count(html, `href="`+strings.ReplaceAll(d.Link, "&", "&amp;")+`"`) != 2 {
				t.Errorf("%s: html lacks the button and fallback link", name)
			}
		} else if strings.Contains(html, "<a href") {
			t.Errorf("%s: html has a link without Data.Link", name)
		}
	}
}

func TestRenderMinimalData(t *testing.T) {
	// Referenced rows may be missing (nil): every template must still render.
	s := mustSet(t)
	for _, name := range s.Names() {
		if _, _, err := s.Render(name, Data{}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestEscaping(t *testing.T) {
	s := mustSet(t)
	const evil = "<script>alert(1)</script>\r\nBcc: x@y \"><img src=x onerror=alert(2)>"
	for _, id := range typeIDs {
		name := NameOf(id)
		d := sample(id)
		d.Company = with(d.Company, "name", evil)
		d.Entity = with(d.Entity, "name", evil, "display_name", evil, "full_name", evil, "product", evil, "code", evil)
		d.Brand.BrandName = evil
		d.Subject = evil
		html, _, err := s.Render(name, d)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.Contains(html, "<title>&lt;script&gt;alert(1)&lt;/script&gt; Bcc") {
			t.Errorf("%s: subject not sanitised into the title", name)
		}
		for _, bad := range []string{"<script", "<img src=x"} {
			if strings.Contains(html, bad) {
				t.Errorf("%s: html contains raw %q", name, bad)
			}
		}
		if !strings.Contains(html, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: escaped value not found", name)
		}
	}
}

func TestSanitizeHeader(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Acme\r\nBcc: x@y", "Acme Bcc: x@y"},
		{"Trial reminder - Acme Corp", "Trial reminder - Acme Corp"},
		{"  a\t\tb \n\n c  ", "a b c"},
		{"a\x00b\x1bc\x7fd", "a b c d"},
		{"Línea\u2028nueva\u0085x", "Línea nueva x"},
		{"\r\n", ""},
		{"", ""},
		{"Ünïcödé ok", "Ünïcödé ok"},
	} {
		if got := SanitizeHeader(c.in); got != c.want {
			t.Errorf("SanitizeHeader(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestDefaultBranding(t *testing.T) {
	if got := BrandingOf(nil); got != DefaultBranding {
		t.Errorf("BrandingOf(nil) = %+v, want %+v", got, DefaultBranding)
	}
	s := mustSet(t)
	d := sample("order.new")
	d.Brand = BrandingOf(cdc.Row{"id": "p-1", "name": "Plain Partner"})
	d.Partner = cdc.Row{"id": "p-1", "name": "Plain Partner"}
	for _, brand := range []Branding{d.Brand, {}} {
		d.Brand = brand
		html, text, err := s.Render("order_new", d)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(html, "background-color:"+DefaultBranding.PrimaryColor) || strings.Contains(html, "<img") {
			t.Errorf("html does not use the default branding:\n%s", html)
		}
		if !strings.Contains(html, ">Pexip</span>") || !strings.Contains(html, "Sent by Pexip") {
			t.Error("html lacks the default brand name")
		}
		if !strings.HasPrefix(text, "Pexip\n") || !strings.Contains(text, "Sent by Pexip") {
			t.Errorf("text lacks the default brand name:\n%s", text)
		}
	}
}

func TestBrandingValidation(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"#1a2b3c", "#1a2b3c"}, {"#ABC", "#ABC"}, {"1a2b3c", "#1a2b3c"}, {" #abc ", "#abc"},
		{"red;background:url(x)", DefaultBranding.PrimaryColor}, {"red", DefaultBranding.PrimaryColor},
		{"#12345g", DefaultBranding.PrimaryColor}, {"#1234", DefaultBranding.PrimaryColor},
		{"expression(alert(1))", DefaultBranding.PrimaryColor}, {"", DefaultBranding.PrimaryColor},
	} {
		if got := BrandingOf(cdc.Row{"primary_color": c.in}).PrimaryColor; got != c.want {
			t.Errorf("primary_color %q gives %q, want %q", c.in, got, c.want)
		}
	}
	b := BrandingOf(cdc.Row{"brand_name": "Evil\r\nBcc: x@y", "logo_url": "javascript:alert(1)", "from_name": "A\nB", "reply_to": "r@x\r\nCc: y"})
	if b.BrandName != "Evil Bcc: x@y" || b.FromName != "A B" || b.ReplyTo != "r@x Cc: y" || b.LogoURL != "" {
		t.Errorf("BrandingOf did not sanitise: %+v", b)
	}

	// Render validates too, for a Brand built without BrandingOf.
	s := mustSet(t)
	d := sample("order.new")
	d.Brand.PrimaryColor = "red;background:url(x)"
	d.Brand.LogoURL = "javascript:alert(1)"
	html, _, err := s.Render("order_new", d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, "url(x)") || strings.Contains(html, "javascript:") || strings.Contains(html, "<img") {
		t.Error("malicious branding reached the html")
	}
	if !strings.Contains(html, "background-color:"+DefaultBranding.PrimaryColor) {
		t.Error("malicious colour not replaced by the default")
	}
}

func TestLinkSafety(t *testing.T) {
	s := mustSet(t)
	d := sample("account.portal_activate")
	for _, link := range []string{"javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,x", "/relative/path", "https://", "https://x.example/a b"} {
		d.Link = link
		html, text, err := s.Render("account_portal_activate", d)
		if !errors.Is(err, ErrUnsafeLink) {
			t.Errorf("link %q: err = %v, want ErrUnsafeLink", link, err)
		}
		if strings.Contains(html, link) || strings.Contains(text, link) {
			t.Errorf("link %q emitted", link)
		}
	}
	d.Link = "https://portal.pexip.example/activate?token=a&b=c"
	html, text, err := s.Render("account_portal_activate", d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "Activate your account:\nhttps://portal.pexip.example/activate?token=a&b=c\n") {
		t.Errorf("text lacks the link:\n%s", text)
	}
	if !strings.Contains(html, `href="https://portal.pexip.example/activate?token=a&amp;b=c"`) {
		t.Errorf("html lacks the link")
	}
}

func TestUnknownTemplate(t *testing.T) {
	s := mustSet(t)
	if _, _, err := s.Render("no_such_type", Data{}); !errors.Is(err, ErrUnknownTemplate) {
		t.Errorf("err = %v, want ErrUnknownTemplate", err)
	}
	if _, _, err := s.Render("layout", Data{}); !errors.Is(err, ErrUnknownTemplate) {
		t.Errorf("layout: err = %v, want ErrUnknownTemplate", err)
	}
}

func TestParseErrors(t *testing.T) {
	layouts := fstest.MapFS{
		"layout.html.tmpl": {Data: []byte(`<p>{{template "body" .}}</p>{{define "cta"}}Open{{end}}{{define "note"}}{{end}}`)},
		"layout.txt.tmpl":  {Data: []byte(`{{template "body" .}}{{define "cta"}}Open{{end}}{{define "note"}}{{end}}`)},
	}
	fsWith := func(extra map[string]string) fstest.MapFS {
		m := fstest.MapFS{}
		for k, v := range layouts {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = &fstest.MapFile{Data: []byte(v)}
		}
		return m
	}
	ok := fsWith(map[string]string{"a_b.html.tmpl": "<b>{{.Type}}</b>", "a_b.txt.tmpl": "{{.Type}}"})
	if s, err := parseFS(ok); err != nil || !s.Has("a_b") {
		t.Fatalf("valid set: %v", err)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"html without txt": fsWith(map[string]string{"a_b.html.tmpl": "x"}),
		"txt without html": fsWith(map[string]string{"a_b.txt.tmpl": "x"}),
		"parse error":      fsWith(map[string]string{"a_b.html.tmpl": "{{if}}", "a_b.txt.tmpl": "x"}),
		"unknown func":     fsWith(map[string]string{"a_b.html.tmpl": "x", "a_b.txt.tmpl": "{{nosuch .}}"}),
		"stray define":     fsWith(map[string]string{"a_b.html.tmpl": `x{{define "ctx"}}y{{end}}`, "a_b.txt.tmpl": "x"}),
		"bad file name":    fsWith(map[string]string{"a_b.tmpl": "x"}),
		"exec error":       fsWith(map[string]string{"a_b.html.tmpl": "x", "a_b.txt.tmpl": "{{.Nope}}"}),
		"no layout":        {"a_b.html.tmpl": {Data: []byte("x")}, "a_b.txt.tmpl": {Data: []byte("x")}},
	} {
		if _, err := parseFS(fsys); err == nil {
			t.Errorf("%s: Parse succeeded", name)
		}
	}
}

func TestDate(t *testing.T) {
	for in, want := range map[string]string{
		"2027-01-31": "31 January 2027", "2026-03-02T14:05:00Z": "2 March 2026",
		"2026-03-02T23:30:00-05:00": "3 March 2026", "": "", "soon": "soon",
	} {
		if got := formatDate(in); got != want {
			t.Errorf("date(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestInk(t *testing.T) {
	for in, want := range map[string]string{"#0A2240": "#ffffff", "#ffff00": "#1f2933", "#fff": "#1f2933", "#1a4d8f": "#ffffff", "nope": "#ffffff"} {
		if got := ink(in); got != want {
			t.Errorf("ink(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConcurrentRender(t *testing.T) {
	s := mustSet(t)
	want := map[string]string{}
	for _, id := range typeIDs {
		h, _, err := s.Render(NameOf(id), sample(id))
		if err != nil {
			t.Fatal(err)
		}
		want[id] = h
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, id := range typeIDs {
				h, _, err := s.Render(NameOf(id), sample(id))
				if err != nil || h != want[id] {
					t.Errorf("%s: concurrent render differs (err %v)", id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkRender(b *testing.B) {
	s := mustSet(b)
	d := sample("order.new")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Render("order_new", d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderWithLink(b *testing.B) {
	s := mustSet(b)
	d := sample("account.portal_activate")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Render("account_portal_activate", d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderParallel(b *testing.B) {
	s := mustSet(b)
	d := sample("order.new")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := s.Render("order_new", d); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
