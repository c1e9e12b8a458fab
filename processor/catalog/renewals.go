package catalog

import "github.com/portalmail/portalmail/schemas/cdc"

// renewalRecipients: the partner's account manager* and the Pexip account
// manager of the customer, and the partner's optional order recipients.
var renewalRecipients = Recipients{
	Roles:                                   []Role{RolePartnerAM, RolePexipAM, RoleOrderRecipients},
	SkipPartnerAMIfResellerUnderDistributor: true,
}

var renewals = []EmailType{
	{
		ID: "renewal.will_renew", Section: SectionRenewal,
		SpecSubject: "{company_name} license plan will be renewed", When: "A portal user requests (confirms) that a plan should renew",
		Subject:    `{{.Company.Str "name"}} license plan will be renewed`,
		Trigger:    Transition{Table: cdc.LicensePlans, Field: "renewal", To: []string{"renew"}},
		Recipients: renewalRecipients,
		Template:   "renewal_will_renew",
	},
	{
		ID: "renewal.will_not_renew", Section: SectionRenewal,
		SpecSubject: "{company_name} license plan will not be renewed", When: "A portal user requests (confirms) that a plan should expire (not renew)",
		Subject:    `{{.Company.Str "name"}} license plan will not be renewed`,
		Trigger:    Transition{Table: cdc.LicensePlans, Field: "renewal", To: []string{"expire"}},
		Recipients: renewalRecipients,
		Template:   "renewal_will_not_renew",
	},
	{
		ID: "renewal.expires_in", Section: SectionRenewal,
		SpecSubject: "{company_name} license plan expires in {X} days", When: "X days before the expiry date of a plan, that is set to expire, but not confirmed by portal user (X = 45, 30, 15, 3 days in advance)",
		Subject: `{{.Company.Str "name"}} license plan expires in {{.Days}} days`,
		Trigger: Timer{Table: cdc.LicensePlans, DateField: "end_date", Days: []int{45, 30, 15, 3},
			While: []Cond{Is("renewal", "unset", ""), Is("status", "active")}},
		Recipients: renewalRecipients,
		Template:   "renewal_expires_in",
	},
	{
		ID: "renewal.renewed", Section: SectionRenewal,
		SpecSubject: "{company_name} license plan has been renewed", When: "The system renews a plan upon confirmed renewal",
		Subject:    `{{.Company.Str "name"}} license plan has been renewed`,
		Trigger:    Transition{Table: cdc.LicensePlans, Field: "status", To: []string{"renewed"}},
		Recipients: renewalRecipients,
		Template:   "renewal_renewed",
	},
	{
		ID: "renewal.expired", Section: SectionRenewal,
		SpecSubject: "{company_name} license plan expired", When: "The system expires a plan - either due to confirmed expiry or unconfirmed renewal",
		Subject:    `{{.Company.Str "name"}} license plan expired`,
		Trigger:    Transition{Table: cdc.LicensePlans, Field: "status", To: []string{"expired"}},
		Recipients: renewalRecipients,
		Template:   "renewal_expired",
	},
}
