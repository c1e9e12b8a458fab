// Package catalog holds the email types of the spec as data: one EmailType per
// row of spec/portal-emails.txt, with its stable id, section, subject, trigger,
// recipient policy and template. The engine (package processor) is generic over
// it: adding an email type is one entry here, one template and one scenario test.
package catalog

import (
	"slices"

	"github.com/portalmail/portalmail/schemas/cdc"
)

// TypeID is an email type's stable id ("order.new"); it appears in jobs,
// metrics, tags and tests.
type TypeID string

// Section is the spec section an email type belongs to, the id's prefix. It is
// also the unit of the "(optional)" opt-ins (optional_notifications arrays).
type Section string

// Sections, in the spec's order.
const (
	SectionTrial    Section = "trial"
	SectionOrder    Section = "order"
	SectionRenewal  Section = "renewal"
	SectionInterop  Section = "interop"
	SectionOTJ      Section = "otj"
	SectionAccount  Section = "account"
	SectionService  Section = "service"
	SectionClassic  Section = "classic"
	SectionBranding Section = "branding"
)

// Role names one kind of recipient (DESIGN.md "Catalog ids, triggers and recipients").
type Role string

// Recipient roles.
const (
	RolePartner          Role = "partner"           // partners.contact_email
	RolePartnerOptional  Role = "partner_optional"  // partner, where partners.optional_notifications names the section
	RoleCustomer         Role = "customer"          // companies.contact_email
	RoleCustomerOptional Role = "customer_optional" // customer, where companies.optional_notifications names the section
	RoleEndUser          Role = "end_user"          // end_users.email of the row
	RolePortalUser       Role = "portal_user"       // portal_users.email of the row
	RoleOrderingUser     Role = "ordering_user"     // portal_users[license_plans.updated_by_user_id].email
	RolePartnerAM        Role = "partner_am"        // companies.partner_account_manager_email
	RolePexipAM          Role = "pexip_am"          // companies.pexip_account_manager_email
	RoleOrderRecipients  Role = "order_recipients"  // partners.order_recipients
	RoleTrialActivity    Role = "trial_activity"    // partners.trial_activity_recipients
	RoleDistributionList Role = "distribution_list" // partners.otj_distribution_list
	RoleOrderContacts    Role = "order_contacts"    // branding_orders.notify_emails of the row
)

// Recipients is a recipient policy, evaluated from the rows in state when the
// email is decided. One email goes to each distinct address.
type Recipients struct {
	Roles []Role
	// SkipPartnerAMIfResellerUnderDistributor leaves partner_am out where the
	// company's partner has type "reseller" and a distributor_id.
	SkipPartnerAMIfResellerUnderDistributor bool
}

// Link describes the call-to-action link of an email: the configured base URL
// of Site, then Path, then "?<Param>=<row[Field]>" (query-escaped).
type Link struct {
	Site  Site
	Path  string
	Param string
	Field string
}

// Site names a configured base URL.
type Site string

// Sites with a configured base URL.
const (
	SitePortal    Site = "portal"
	SiteService   Site = "service"
	SiteAnalytics Site = "analytics"
)

// EmailType is one row of the spec.
type EmailType struct {
	ID      TypeID
	Section Section
	// SpecSubject is the subject as the spec writes it; When the spec's "When sent".
	SpecSubject string
	When        string
	// Subject is a text/template over templates.Data; CR and LF are removed
	// from the result.
	Subject    string
	Trigger    Trigger
	Recipients Recipients
	// Template is the base name of templates/<Template>.{html,txt}.tmpl.
	Template string
	// Link is the call-to-action, if the email has one.
	Link *Link
}

// Trigger is how an email type is derived from changes: Transition, Threshold
// or Timer. The set is sealed: only this package adds kinds.
//
//sumtype:decl
type Trigger interface{ trigger() }

// ChangeKind says which movement of Transition.Field fires.
type ChangeKind int

// Kinds of field movement.
const (
	// ValueIn: the value changed, the new value is in To (To empty: any new
	// value) and the previous one in From (From empty: any other value).
	ValueIn ChangeKind = iota
	// SetOrMoved: a timestamp became non-null or changed.
	SetOrMoved
	// FirstSet: a timestamp became non-null where it was null.
	FirstSet
	// MovedLater: a timestamp moved to a later instant (was non-null before).
	MovedLater
)

// Cond is a condition on a row: Field's value (Row.Str) is in In, or with Not,
// is not in In.
type Cond struct {
	Field string
	In    []string
	Not   bool
}

// Is is a Cond that Field is one of values.
func Is(field string, values ...string) Cond { return Cond{Field: field, In: values} }

// IsNot is a Cond that Field is none of values.
func IsNot(field string, values ...string) Cond { return Cond{Field: field, In: values, Not: true} }

// Holds reports whether the condition holds on row.
func (c Cond) Holds(row cdc.Row) bool {
	return slices.Contains(c.In, row.Str(c.Field)) != c.Not
}

// Transition fires on one change of one row.
//
// With Create set, a created row (op c) fires when Where holds and, if Field is
// set and To is not empty, Field's value is in To. With Field set, an update
// fires when Where holds on the new image and Field moved as Change says.
// A Transition with Create and no Field fires on create only.
type Transition struct {
	Table  string
	Create bool
	Field  string
	Change ChangeKind
	From   []string
	To     []string
	Where  []Cond
}

// Threshold fires when a usage sample of Table crosses a level of the usage
// bands. X = floor(100 × Value / capacity), where capacity is CapacityField of
// the CapacityTable row named by the sample's CapacityRef column; samples with a
// capacity below MinCapacity are ignored. The band rules (hysteresis) are
// DESIGN.md's: see Bands.
type Threshold struct {
	Table         string
	Value         string
	CapacityRef   string
	CapacityTable string
	CapacityField string
	MinCapacity   int
	Level         Level
}

// Level is which line of the usage bands a Threshold email reports.
type Level int

// Levels of the usage bands.
const (
	LevelUsage Level = iota + 1 // X >= 80, re-armed below 70
	LevelOver                   // X > 100, re-armed at or below 90
)

// Bands are the usage-band rules: Usage fires when X >= UsageAt and armed and
// re-arms when X < UsageRearmBelow; Over fires when X > OverAbove and armed and
// re-arms when X <= OverRearmAtOrBelow. A sample that fires both sends Over only
// and disarms both. Both start armed.
type Bands struct {
	UsageAt, UsageRearmBelow, OverAbove, OverRearmAtOrBelow int
}

// DefaultBands are DESIGN.md's thresholds.
var DefaultBands = Bands{UsageAt: 80, UsageRearmBelow: 70, OverAbove: 100, OverRearmAtOrBelow: 90}

// Timer fires Days days before (After: after) the date in DateField, at 09:00
// in the configured zone, while every While condition holds on the current row
// and the date is unchanged.
type Timer struct {
	Table     string
	DateField string
	Days      []int
	After     bool
	While     []Cond
}

func (Transition) trigger() {}
func (Threshold) trigger()  {}
func (Timer) trigger()      {}

// Catalog is the ordered list of email types (spec order).
type Catalog []EmailType

// Lookup returns the type with id.
func (c Catalog) Lookup(id TypeID) (EmailType, bool) {
	for _, t := range c {
		if t.ID == id {
			return t, true
		}
	}
	return EmailType{}, false
}

// TriggerTable returns the table a trigger reads.
func TriggerTable(t Trigger) string {
	switch t := t.(type) {
	case Transition:
		return t.Table
	case Threshold:
		return t.Table
	case Timer:
		return t.Table
	}
	return ""
}
