package catalog

import "github.com/portalmail/portalmail/schemas/cdc"

var otj = []EmailType{
	{
		ID: "otj.license_added", Section: SectionOTJ,
		SpecSubject: "New OTJ license added", When: "An Infinity license is added for OTJ",
		Subject:    "New OTJ license added",
		Trigger:    Transition{Table: cdc.OTJLicenses, Create: true},
		Recipients: Recipients{Roles: []Role{RoleDistributionList}},
		Template:   "otj_license_added",
	},
	{
		ID: "otj.renewal", Section: SectionOTJ,
		SpecSubject: "OTJ license renewal notification", When: "A license plan including OTJ is confirmed renewed",
		Subject: "OTJ license renewal notification",
		Trigger: Transition{Table: cdc.LicensePlans, Field: "status", To: []string{"renewed"},
			Where: []Cond{Is("includes_otj", "true")}},
		Recipients: Recipients{Roles: []Role{RoleDistributionList}},
		Template:   "otj_renewal",
	},
}
