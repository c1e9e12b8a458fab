package catalog

import (
	"errors"
	"fmt"
	"strings"
	"text/template"

	"github.com/portalmail/portalmail/schemas/cdc"
)

var knownRoles = map[Role]bool{
	RolePartner: true, RolePartnerOptional: true, RoleCustomer: true, RoleCustomerOptional: true,
	RoleEndUser: true, RolePortalUser: true, RoleOrderingUser: true, RolePartnerAM: true,
	RolePexipAM: true, RoleOrderRecipients: true, RoleTrialActivity: true, RoleDistributionList: true,
	RoleOrderContacts: true,
}

// SubjectFuncs are the functions a Subject template may call (none beyond
// text/template's builtins today); the engine parses subjects with the same set.
var SubjectFuncs = template.FuncMap{}

// Validate checks the catalog once at start-up and returns every problem found,
// joined: unique ids, the section is the id's prefix, triggers name contract
// tables and columns, subjects parse, roles are known, and the template of each
// type exists (hasTemplate may be nil to skip that check).
func Validate(c Catalog, hasTemplate func(name string) bool) error {
	var errs []error
	bad := func(t EmailType, format string, args ...any) {
		errs = append(errs, fmt.Errorf("catalog %s: %s", t.ID, fmt.Sprintf(format, args...)))
	}
	seen := map[TypeID]bool{}
	for _, t := range c {
		if t.ID == "" {
			bad(t, "empty id")
			continue
		}
		if seen[t.ID] {
			bad(t, "duplicate id")
		}
		seen[t.ID] = true
		if prefix, _, _ := strings.Cut(string(t.ID), "."); prefix != string(t.Section) {
			bad(t, "section %q is not the id's prefix", t.Section)
		}
		if _, err := template.New("").Funcs(SubjectFuncs).Parse(t.Subject); err != nil || t.Subject == "" {
			bad(t, "subject does not parse: %v", err)
		}
		if t.Template == "" {
			bad(t, "no template")
		} else if hasTemplate != nil && !hasTemplate(t.Template) {
			bad(t, "template %q not found", t.Template)
		}
		if len(t.Recipients.Roles) == 0 {
			bad(t, "no recipients")
		}
		for _, r := range t.Recipients.Roles {
			if !knownRoles[r] {
				bad(t, "unknown role %q", r)
			}
		}
		cols, ok := cdc.Contract[TriggerTable(t.Trigger)]
		if !ok {
			bad(t, "trigger table %q is not in the source contract", TriggerTable(t.Trigger))
			continue
		}
		col := func(name string) {
			if _, ok := cols[name]; !ok {
				bad(t, "column %q is not in the contract of %s", name, TriggerTable(t.Trigger))
			}
		}
		switch tr := t.Trigger.(type) {
		case Transition:
			if !tr.Create && tr.Field == "" {
				bad(t, "transition with neither Create nor Field")
			}
			if tr.Field != "" {
				col(tr.Field)
			}
			for _, w := range tr.Where {
				col(w.Field)
			}
		case Threshold:
			col(tr.Value)
			col(tr.CapacityRef)
			if capCols, ok := cdc.Contract[tr.CapacityTable]; !ok {
				bad(t, "capacity table %q is not in the contract", tr.CapacityTable)
			} else if _, ok := capCols[tr.CapacityField]; !ok {
				bad(t, "capacity column %q is not in the contract", tr.CapacityField)
			}
			if tr.Level != LevelUsage && tr.Level != LevelOver {
				bad(t, "threshold without a level")
			}
		case Timer:
			col(tr.DateField)
			if len(tr.Days) == 0 {
				bad(t, "timer without days")
			}
			for _, d := range tr.Days {
				if d <= 0 {
					bad(t, "timer day offset %d is not positive", d)
				}
			}
			for _, w := range tr.While {
				col(w.Field)
			}
		case nil:
			bad(t, "no trigger")
		}
		if t.Link != nil {
			switch t.Link.Site {
			case SitePortal, SiteService, SiteAnalytics:
			default:
				bad(t, "link site %q unknown", t.Link.Site)
			}
			if t.Link.Field != "" {
				col(t.Link.Field)
			}
		}
	}
	return errors.Join(errs...)
}
