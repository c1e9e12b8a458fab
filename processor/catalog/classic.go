package catalog

import "github.com/portalmail/portalmail/schemas/cdc"

var classic = []EmailType{
	{
		ID: "classic.subscription_reactivated", Section: SectionClassic,
		SpecSubject: "Your subscription for {display_name} has been reactivated", When: "An EUL user has been activated",
		Subject: `Your subscription for {{.Entity.Str "display_name"}} has been reactivated`,
		Trigger: Transition{Table: cdc.EndUsers, Field: "status", To: []string{"active"},
			Where: []Cond{Is("classic", "true")}},
		Recipients: Recipients{Roles: []Role{RolePartner}},
		Template:   "classic_subscription_reactivated",
	},
	{
		// end_users carry no deactivation reason: "Trial ended" is the subject
		// when the user's company has ended its trial.
		ID: "classic.subscription_deactivated", Section: SectionClassic,
		SpecSubject: "Your subscription for {display_name} has been deactivated / Trial ended", When: "An EUL user has been deactivated",
		Subject: `{{if eq (.Company.Str "status") "trial_ended"}}Trial ended{{else}}Your subscription for {{.Entity.Str "display_name"}} has been deactivated{{end}}`,
		Trigger: Transition{Table: cdc.EndUsers, Field: "status", To: []string{"deactivated"},
			Where: []Cond{Is("classic", "true")}},
		Recipients: Recipients{Roles: []Role{RolePartner}},
		Template:   "classic_subscription_deactivated",
	},
	{
		ID: "classic.invitation_code_activated", Section: SectionClassic,
		SpecSubject: "Invitation code activated", When: "A new invitation code is created",
		Subject:    "Invitation code activated",
		Trigger:    Transition{Table: cdc.InvitationCodes, Create: true, Field: "active", From: []string{"false"}, To: []string{"true"}},
		Recipients: Recipients{Roles: []Role{RolePartner, RoleCustomer}},
		Template:   "classic_invitation_code_activated",
	},
	{
		ID: "classic.invitation_code_deactivated", Section: SectionClassic,
		SpecSubject: "Invitation code deactivated / Trial ended", When: "An invitation code is deactivated",
		Subject:    `{{if eq (.Entity.Str "deactivation_reason") "trial_ended"}}Trial ended{{else}}Invitation code deactivated{{end}}`,
		Trigger:    Transition{Table: cdc.InvitationCodes, Field: "active", From: []string{"true"}, To: []string{"false"}},
		Recipients: Recipients{Roles: []Role{RolePartner, RoleCustomer}},
		Template:   "classic_invitation_code_deactivated",
	},
}
