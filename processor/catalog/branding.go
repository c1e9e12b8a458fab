package catalog

import "github.com/portalmail/portalmail/schemas/cdc"

// Branding orders go to the contacts named on the order: at placement, and
// "those listed on the order at the time Pexip makes the order active" (the
// order row's notify_emails in the change that activates it).
var branding = []EmailType{
	{
		ID: "branding.instructions", Section: SectionBranding,
		SpecSubject: "Instructions for providing Pexip with the information required to fulfill the order", When: "The order is placed",
		Subject:    "Instructions for providing Pexip with the information required to fulfill the order",
		Trigger:    Transition{Table: cdc.BrandingOrders, Create: true, Where: []Cond{Is("status", "placed")}},
		Recipients: Recipients{Roles: []Role{RoleOrderContacts}},
		Template:   "branding_instructions",
	},
	{
		ID: "branding.active", Section: SectionBranding,
		SpecSubject: "Notification that branding is active on the Pexip Service", When: "Pexip has made the order active in the Partner Portal",
		Subject:    "Notification that branding is active on the Pexip Service",
		Trigger:    Transition{Table: cdc.BrandingOrders, Field: "status", From: []string{"placed"}, To: []string{"active"}},
		Recipients: Recipients{Roles: []Role{RoleOrderContacts}},
		Template:   "branding_active",
	},
}
