package catalog

import "github.com/portalmail/portalmail/schemas/cdc"

var service = []EmailType{
	// End-user accounts (EULs).
	{
		ID: "service.user_activate", Section: SectionService,
		SpecSubject: "Activate your Pexip Service account", When: "A new user is invited and needs to set up their password",
		Subject:    "Activate your Pexip Service account",
		Trigger:    Transition{Table: cdc.EndUsers, Create: true, Where: []Cond{Is("status", "invited")}},
		Recipients: Recipients{Roles: []Role{RoleEndUser}},
		Template:   "service_user_activate",
		Link:       &Link{Site: SiteService, Path: "/activate", Param: "token", Field: "activation_token"},
	},
	{
		ID: "service.user_welcome", Section: SectionService,
		SpecSubject: "Welcome to the Pexip Service", When: "A new user has set up their password",
		Subject:    "Welcome to the Pexip Service",
		Trigger:    Transition{Table: cdc.EndUsers, Field: "password_set_at", Change: FirstSet},
		Recipients: Recipients{Roles: []Role{RoleEndUser}},
		Template:   "service_user_welcome",
		Link:       &Link{Site: SiteService, Path: "/login"},
	},
	{
		ID: "service.user_recover", Section: SectionService,
		SpecSubject: "Recover your Pexip Service account", When: "A user forgets their password and clicks the recover link",
		Subject:    "Recover your Pexip Service account",
		Trigger:    Transition{Table: cdc.EndUsers, Field: "recovery_requested_at", Change: SetOrMoved},
		Recipients: Recipients{Roles: []Role{RoleEndUser}},
		Template:   "service_user_recover",
		Link:       &Link{Site: SiteService, Path: "/recover", Param: "token", Field: "activation_token"},
	},
	{
		ID: "service.user_deactivated", Section: SectionService,
		SpecSubject: "Your Pexip Service account has been deactivated", When: "The account is deactivated",
		Subject: "Your Pexip Service account has been deactivated",
		Trigger: Transition{Table: cdc.EndUsers, Field: "status", From: []string{"active"}, To: []string{"deactivated"},
			Where: []Cond{Is("classic", "false")}},
		Recipients: Recipients{Roles: []Role{RoleEndUser}},
		Template:   "service_user_deactivated",
	},
	{
		ID: "service.user_reactivated", Section: SectionService,
		SpecSubject: "Your Pexip Service account has been reactivated", When: "The account is reactivated",
		Subject: "Your Pexip Service account has been reactivated",
		Trigger: Transition{Table: cdc.EndUsers, Field: "status", From: []string{"deactivated"}, To: []string{"active"},
			Where: []Cond{Is("classic", "false")}},
		Recipients: Recipients{Roles: []Role{RoleEndUser}},
		Template:   "service_user_reactivated",
	},
	{
		ID: "service.user_twofa_reset", Section: SectionService,
		SpecSubject: "Your Pexip Service account's 2FA has been reset", When: "Two-factor authentication (2FA) is reset for the account",
		Subject:    "Your Pexip Service account's 2FA has been reset",
		Trigger:    Transition{Table: cdc.EndUsers, Field: "twofa_reset_at", Change: SetOrMoved},
		Recipients: Recipients{Roles: []Role{RoleEndUser}},
		Template:   "service_user_twofa_reset",
	},
	// Team VMRs.
	{
		ID: "service.team_room_activated", Section: SectionService,
		SpecSubject: "Team room activated", When: "A team VMR is activated",
		Subject:    "Team room activated",
		Trigger:    Transition{Table: cdc.TeamVMRs, Create: true, Field: "status", To: []string{"active"}},
		Recipients: Recipients{Roles: []Role{RoleCustomer, RolePartnerOptional}},
		Template:   "service_team_room_activated",
	},
	{
		ID: "service.team_room_deactivated", Section: SectionService,
		SpecSubject: "Team room deactivated / Trial ended", When: "A team VMR is deactivated",
		Subject:    `{{if eq (.Entity.Str "deactivation_reason") "trial_ended"}}Trial ended{{else}}Team room deactivated{{end}}`,
		Trigger:    Transition{Table: cdc.TeamVMRs, Field: "status", To: []string{"inactive"}},
		Recipients: Recipients{Roles: []Role{RoleCustomer, RolePartnerOptional}},
		Template:   "service_team_room_deactivated",
	},
	// Endpoints.
	{
		ID: "service.endpoint_enabled", Section: SectionService,
		SpecSubject: "Video system subscription enabled", When: "An endpoint is created/reactivated",
		Subject:    "Video system subscription enabled",
		Trigger:    Transition{Table: cdc.Endpoints, Create: true, Field: "enabled", From: []string{"false"}, To: []string{"true"}},
		Recipients: Recipients{Roles: []Role{RolePartner, RoleCustomer}},
		Template:   "service_endpoint_enabled",
	},
	{
		ID: "service.endpoint_disabled", Section: SectionService,
		SpecSubject: "Video system subscription disabled", When: "An endpoint is deactivated",
		Subject:    "Video system subscription disabled",
		Trigger:    Transition{Table: cdc.Endpoints, Field: "enabled", From: []string{"true"}, To: []string{"false"}},
		Recipients: Recipients{Roles: []Role{RolePartner, RoleCustomer}},
		Template:   "service_endpoint_disabled",
	},
	// Domains.
	{
		ID: "service.calling_domain_created", Section: SectionService,
		SpecSubject: "New calling domain {domain}", When: "A new calling domain hosting is created",
		Subject:    `New calling domain {{.Entity.Str "name"}}`,
		Trigger:    Transition{Table: cdc.Domains, Create: true, Where: []Cond{Is("kind", "calling")}},
		Recipients: Recipients{Roles: []Role{RolePartner, RoleCustomerOptional}},
		Template:   "service_calling_domain_created",
	},
	{
		ID: "service.m365_domain_created", Section: SectionService,
		SpecSubject: "New Microsoft 365 domain {domain}", When: "A new Microsoft 365 domain is created",
		Subject:    `New Microsoft 365 domain {{.Entity.Str "name"}}`,
		Trigger:    Transition{Table: cdc.Domains, Create: true, Where: []Cond{Is("kind", "m365")}},
		Recipients: Recipients{Roles: []Role{RolePartner, RoleCustomerOptional}},
		Template:   "service_m365_domain_created",
	},
}
