package catalog

import "github.com/portalmail/portalmail/schemas/cdc"

var teamsUsage = Threshold{
	Table: cdc.CVIUsage, Value: "concurrent_calls",
	CapacityRef: "subscription_id", CapacityTable: cdc.InteropSubscriptions, CapacityField: "concurrent_call_licenses",
	MinCapacity: 10,
}

func level(t Threshold, l Level) Threshold { t.Level = l; return t }

var interop = []EmailType{
	{
		ID: "interop.google_token_upload", Section: SectionInterop,
		SpecSubject: "Please upload your Authentication Token for Gateway Interoperability", When: "A new Google Interop subscription is created",
		Subject:    "Please upload your Authentication Token for Gateway Interoperability",
		Trigger:    Transition{Table: cdc.InteropSubscriptions, Create: true, Where: []Cond{Is("kind", "google_interop")}},
		Recipients: Recipients{Roles: []Role{RoleCustomer, RolePartnerOptional}},
		Template:   "interop_google_token_upload",
		Link:       &Link{Site: SitePortal, Path: "/interop/google/token", Param: "subscription", Field: "id"},
	},
	{
		ID: "interop.google_provisioned", Section: SectionInterop,
		SpecSubject: "Your Google Meet Interoperability service has been provisioned", When: "An existing Google Interop subscription is activated",
		Subject: "Your Google Meet Interoperability service has been provisioned",
		Trigger: Transition{Table: cdc.InteropSubscriptions, Field: "status", To: []string{"active"},
			Where: []Cond{Is("kind", "google_interop")}},
		Recipients: Recipients{Roles: []Role{RoleCustomer}},
		Template:   "interop_google_provisioned",
	},
	{
		ID: "interop.teams_authorize", Section: SectionInterop,
		SpecSubject: "Please authorize Pexip CVI application", When: "A new MS Teams subscription is created",
		Subject:    "Please authorize Pexip CVI application",
		Trigger:    Transition{Table: cdc.InteropSubscriptions, Create: true, Where: []Cond{Is("kind", "teams_cvi")}},
		Recipients: Recipients{Roles: []Role{RoleCustomer}},
		Template:   "interop_teams_authorize",
		Link:       &Link{Site: SitePortal, Path: "/interop/teams/authorize", Param: "subscription", Field: "id"},
	},
	{
		ID: "interop.teams_provisioned", Section: SectionInterop,
		SpecSubject: "Your CVI Service for MS Teams has been provisioned", When: "An existing MS Teams subscription is activated",
		Subject: "Your CVI Service for MS Teams has been provisioned",
		Trigger: Transition{Table: cdc.InteropSubscriptions, Field: "status", To: []string{"active"},
			Where: []Cond{Is("kind", "teams_cvi")}},
		Recipients: Recipients{Roles: []Role{RoleCustomer}},
		Template:   "interop_teams_provisioned",
	},
	{
		ID: "interop.teams_usage", Section: SectionInterop,
		SpecSubject: "X% usage notification for Pexip Cloud Video Interop for Microsoft Teams", When: "Usage is 80% or more of license capacity (only sent to customers with 10 or more concurrent call licenses)",
		Subject:    "{{.Percent}}% usage notification for Pexip Cloud Video Interop for Microsoft Teams",
		Trigger:    level(teamsUsage, LevelUsage),
		Recipients: Recipients{Roles: []Role{RoleCustomer, RolePartner}},
		Template:   "interop_teams_usage",
	},
	{
		ID: "interop.teams_oversubscribed", Section: SectionInterop,
		SpecSubject: "Oversubscription notification for Pexip Cloud Video Interop for Microsoft Teams", When: "Usage is exceeding license capacity (more than 100% of licenses bought)",
		Subject:    "Oversubscription notification for Pexip Cloud Video Interop for Microsoft Teams",
		Trigger:    level(teamsUsage, LevelOver),
		Recipients: Recipients{Roles: []Role{RoleCustomer, RolePartner}},
		Template:   "interop_teams_oversubscribed",
	},
	{
		ID: "interop.teams_rooms_authorize", Section: SectionInterop,
		SpecSubject: "Please authorize Pexip Connect for Teams Rooms", When: "A new Connect for Teams Rooms subscription is created",
		Subject:    "Please authorize Pexip Connect for Teams Rooms",
		Trigger:    Transition{Table: cdc.InteropSubscriptions, Create: true, Where: []Cond{Is("kind", "teams_rooms")}},
		Recipients: Recipients{Roles: []Role{RoleCustomer}},
		Template:   "interop_teams_rooms_authorize",
		Link:       &Link{Site: SitePortal, Path: "/interop/teams-rooms/authorize", Param: "subscription", Field: "id"},
	},
}
