package catalog

import "github.com/portalmail/portalmail/schemas/cdc"

var accounts = []EmailType{
	{
		ID: "account.analytics_activate", Section: SectionAccount,
		SpecSubject: "Activate your Pexip Analytics account", When: "An existing portal user is invited to Analytics",
		Subject:    "Activate your Pexip Analytics account",
		Trigger:    Transition{Table: cdc.PortalUsers, Field: "analytics_invited_at", Change: SetOrMoved},
		Recipients: Recipients{Roles: []Role{RolePortalUser}},
		Template:   "account_analytics_activate",
		Link:       &Link{Site: SiteAnalytics, Path: "/activate", Param: "token", Field: "analytics_activation_token"},
	},
	{
		ID: "account.portal_activate", Section: SectionAccount,
		SpecSubject: "Activate your Pexip Partner Portal account", When: "A new portal user is created",
		Subject:    "Activate your Pexip Partner Portal account",
		Trigger:    Transition{Table: cdc.PortalUsers, Create: true, Where: []Cond{Is("status", "invited")}},
		Recipients: Recipients{Roles: []Role{RolePortalUser}},
		Template:   "account_portal_activate",
		Link:       &Link{Site: SitePortal, Path: "/activate", Param: "token", Field: "activation_token"},
	},
	{
		ID: "account.portal_expiry_warning", Section: SectionAccount,
		SpecSubject: "Your Pexip Partner Portal account will expire in 30 days", When: "30 days before the system deactivates a portal user due to 180 days of inactivity",
		Subject: "Your Pexip Partner Portal account will expire in 30 days",
		Trigger: Timer{Table: cdc.PortalUsers, DateField: "last_login_at", Days: []int{150}, After: true,
			While: []Cond{Is("status", "active")}},
		Recipients: Recipients{Roles: []Role{RolePortalUser}},
		Template:   "account_portal_expiry_warning",
		Link:       &Link{Site: SitePortal, Path: "/login"},
	},
	{
		ID: "account.portal_deactivated", Section: SectionAccount,
		SpecSubject: "Your Pexip Partner Portal account is deactivated", When: "System deactivates a portal user after 180 days of inactivity",
		Subject: "Your Pexip Partner Portal account is deactivated",
		Trigger: Transition{Table: cdc.PortalUsers, Field: "status", To: []string{"deactivated"},
			Where: []Cond{Is("deactivation_reason", "inactivity")}},
		Recipients: Recipients{Roles: []Role{RolePortalUser}},
		Template:   "account_portal_deactivated",
	},
	{
		ID: "account.twofa_reset", Section: SectionAccount,
		SpecSubject: "Reset your Pexip account 2FA", When: "Two-factor authentication (2FA) is reset for your Partner Portal or Partner Analytics account",
		Subject:    "Reset your Pexip account 2FA",
		Trigger:    Transition{Table: cdc.PortalUsers, Field: "twofa_reset_at", Change: SetOrMoved},
		Recipients: Recipients{Roles: []Role{RolePortalUser}},
		Template:   "account_twofa_reset",
		Link:       &Link{Site: SitePortal, Path: "/login"},
	},
}
