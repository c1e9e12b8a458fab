package catalog

import "github.com/portalmail/portalmail/schemas/cdc"

// Every trial.* email also goes to the partner's trial-activity list.
var trials = []EmailType{
	{
		ID: "trial.company_created", Section: SectionTrial,
		SpecSubject: "New company created (in trial mode)", When: "A new company is created",
		Subject:    "New company created (in trial mode)",
		Trigger:    Transition{Table: cdc.Companies, Create: true, Where: []Cond{Is("status", "trial")}},
		Recipients: Recipients{Roles: []Role{RolePartner, RoleTrialActivity}},
		Template:   "trial_company_created",
	},
	{
		ID: "trial.user_reminder", Section: SectionTrial,
		SpecSubject: "Trial reminder", When: "User on trial X days before expiry (X = 23, 7 days in advance)",
		Subject: "Trial reminder",
		Trigger: Timer{Table: cdc.EndUsers, DateField: "trial_expires_at", Days: []int{23, 7},
			While: []Cond{IsNot("status", "deactivated")}},
		Recipients: Recipients{Roles: []Role{RoleEndUser, RoleTrialActivity}},
		Template:   "trial_user_reminder",
	},
	{
		ID: "trial.user_extended", Section: SectionTrial,
		SpecSubject: "Trial extended", When: "User on trial - trial extended",
		Subject:    "Trial extended",
		Trigger:    Transition{Table: cdc.EndUsers, Field: "trial_expires_at", Change: MovedLater},
		Recipients: Recipients{Roles: []Role{RoleEndUser, RoleTrialActivity}},
		Template:   "trial_user_extended",
	},
	{
		ID: "trial.company_reminder", Section: SectionTrial,
		SpecSubject: "Trial reminder - {company_name}", When: "When a user is on trial, X days before expiry (X = 23, 7 days in advance)",
		Subject: `Trial reminder - {{.Company.Str "name"}}`,
		Trigger: Timer{Table: cdc.Companies, DateField: "trial_expires_at", Days: []int{23, 7},
			While: []Cond{Is("status", "trial")}},
		Recipients: Recipients{Roles: []Role{RoleCustomer, RolePartnerOptional, RoleTrialActivity}},
		Template:   "trial_company_reminder",
	},
	{
		ID: "trial.company_extended", Section: SectionTrial,
		SpecSubject: "Trial extended - {company_name}", When: "Company on trial - trial extended",
		Subject: `Trial extended - {{.Company.Str "name"}}`,
		Trigger: Transition{Table: cdc.Companies, Field: "trial_expires_at", Change: MovedLater,
			Where: []Cond{Is("status", "trial")}},
		Recipients: Recipients{Roles: []Role{RoleCustomer, RolePartnerOptional, RoleTrialActivity}},
		Template:   "trial_company_extended",
	},
	{
		ID: "trial.company_ended", Section: SectionTrial,
		SpecSubject: "Trial ended - {company_name}", When: "Company on trial - trial ended",
		Subject:    `Trial ended - {{.Company.Str "name"}}`,
		Trigger:    Transition{Table: cdc.Companies, Field: "status", From: []string{"trial"}, To: []string{"trial_ended"}},
		Recipients: Recipients{Roles: []Role{RoleCustomer, RolePartnerOptional, RoleTrialActivity}},
		Template:   "trial_company_ended",
	},
}
