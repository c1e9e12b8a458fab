// Package templates renders email bodies: one HTML and one plain-text template
// per email type, inside a shared layout that applies the partner's branding.
//
// Every email type id has a template pair <name>.html.tmpl and <name>.txt.tmpl,
// where name is the id with "." replaced by "_" (NameOf). A pair holds only the
// type's body; layout.html.tmpl and layout.txt.tmpl add the branded header,
// the call-to-action button (when Data.Link is set), the sign-off and the
// footer. A body may also define "cta", the button label, and "note", a short
// paragraph shown after the button.
//
// Templates are embedded and parsed once at start-up: Parse fails fast on any
// error, and Set.Render then only executes. HTML goes through html/template,
// so row values are escaped for their context; branding is validated (hex
// colour, http(s) logo URL) and call-to-action links must be http(s) URLs.
//
// Template funcs, in both HTML and text templates:
//
//	date     ISO-8601 timestamp or date string → "2 January 2006" (UTC)
//	details  Data and label/value-spec pairs → rows of the "details" table
//	person   name, address → "Name (address)"
//	ink      background hex colour → readable text colour
//	lines    details rows → "Label: Value" lines (text layout)
//
// A template reads a row's columns by name: `.Company.Str "name"` (or Int,
// Bool, Time, Has) or a details spec ("Entity.end_date|date", "User|person").
// The jobs' data keeps only the columns so named (Set.Columns, RowJSON.Keep);
// a template that uses a row any other way (`with .Company`, `index .Entity
// "x"`, a row or the whole data passed to a func, a column named by a
// variable) makes the data keep every column.
package templates

import "github.com/portalmail/portalmail/schemas/cdc"

// Branding is the partner's look and sender identity (partners.brand_name,
// logo_url, primary_color, from_name, reply_to). Empty fields fall back to
// DefaultBranding.
type Branding struct {
	BrandName    string
	LogoURL      string
	PrimaryColor string
	FromName     string
	ReplyTo      string
}

// DefaultBranding is the neutral look used where the partner has none.
var DefaultBranding = Branding{BrandName: "Pexip", PrimaryColor: "#0A2240", FromName: "Pexip"}

// BrandingOf returns the branding of a partner row, falling back field by
// field to DefaultBranding (a nil row gives DefaultBranding). The primary
// colour must be a hex colour ("#1a2b3c" or "#abc"; anything else, which could
// inject CSS, gives the default), the logo an absolute http(s) URL (else none),
// and the names and reply-to address are passed through SanitizeHeader. The
// from name falls back to the brand name.
func BrandingOf(partner cdc.Row) Branding {
	return normalize(Branding{
		BrandName:    partner.Str("brand_name"),
		LogoURL:      partner.Str("logo_url"),
		PrimaryColor: partner.Str("primary_color"),
		FromName:     partner.Str("from_name"),
		ReplyTo:      partner.Str("reply_to"),
	})
}

// Data is what a subject or body template sees.
type Data struct {
	// Type is the email type id; Subject the rendered subject.
	Type    string
	Subject string
	Brand   Branding
	// Entity is the row image that caused the email; Previous the image before
	// it (nil for creates and timers).
	Entity   cdc.Row
	Previous cdc.Row
	// Company and Partner are the referenced rows (nil where not applicable);
	// User is the ordering portal user for order emails.
	Company cdc.Row
	Partner cdc.Row
	User    cdc.Row
	// Subscription is the interop subscription of a usage sample.
	Subscription cdc.Row
	// Days is X of "expires in X days" / reminders; Percent is X of usage.
	Days    int
	Percent int
	// Link is the call-to-action URL, "" when the type has none.
	Link string
}
