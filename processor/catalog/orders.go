package catalog

import "github.com/portalmail/portalmail/schemas/cdc"

// orderRecipients: "the portal user that places the order, the partner's account
// manager for that customer*, the Pexip account manager for that customer,
// optional recipients per partner (all customers)". * not for a reseller under
// a Pexip distributor. Also used by cancellations.
var orderRecipients = Recipients{
	Roles:                                   []Role{RoleOrderingUser, RolePartnerAM, RolePexipAM, RoleOrderRecipients},
	SkipPartnerAMIfResellerUnderDistributor: true,
}

var orders = []EmailType{
	{
		ID: "order.new", Section: SectionOrder,
		SpecSubject: "Order confirmation from Pexip (new)", When: "An order for a brand new plan is placed",
		Subject:    "Order confirmation from Pexip (new)",
		Trigger:    Transition{Table: cdc.LicensePlans, Create: true},
		Recipients: orderRecipients,
		Template:   "order_new",
	},
	{
		ID: "order.billing_change", Section: SectionOrder,
		SpecSubject: "Order confirmation from Pexip (change)", When: "An existing plan is changed from monthly to annual",
		Subject:    "Order confirmation from Pexip (change)",
		Trigger:    Transition{Table: cdc.LicensePlans, Field: "billing_period", From: []string{"monthly"}, To: []string{"annual"}},
		Recipients: orderRecipients,
		Template:   "order_billing_change",
	},
	{
		ID: "order.quantity_change", Section: SectionOrder,
		SpecSubject: "Change confirmation from Pexip", When: "Quantity is changed on an existing plan",
		Subject:    "Change confirmation from Pexip",
		Trigger:    Transition{Table: cdc.LicensePlans, Field: "quantity"},
		Recipients: orderRecipients,
		Template:   "order_quantity_change",
	},
	// Cancellations (spec section "Cancellations", same recipients).
	{
		ID: "order.canceled", Section: SectionOrder,
		SpecSubject: "Cancellation confirmation from Pexip", When: "A recently ordered (not-yet-invoiced) plan is canceled",
		Subject: "Cancellation confirmation from Pexip",
		Trigger: Transition{Table: cdc.LicensePlans, Field: "status", To: []string{"canceled"},
			Where: []Cond{Is("invoiced", "false")}},
		Recipients: orderRecipients,
		Template:   "order_canceled",
	},
}
