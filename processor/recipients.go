package processor

import (
	"errors"
	"strings"

	"github.com/portalmail/portalmail/processor/address"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/schemas/cdc"
)

// refs are the rows an intent's recipients and branding are resolved from.
type refs struct {
	company, partner, user, subscription cdc.Row
	// partnerID is the id partner was read by ("" for none), companyID the
	// company the intent belongs to (batch.companyID).
	partnerID, companyID string
}

// resolved is a recipient policy evaluated: the recipients, and the
// addresses the address rule refused, as "<role>: <reason>" (no address:
// reasons reach the DLQ headers and warn-level logs).
type resolved struct {
	to      []schemas.Recipient
	refused []string
}

// recipients evaluates a recipient policy: one recipient per distinct address
// (case-insensitive), in role order, in the canonical form of package
// address. Empty addresses are skipped (an unset column is no address);
// addresses the rule refuses are listed in refused.
func recipients(t catalog.EmailType, in intent, r refs) resolved {
	var out resolved
	seen := map[string]bool{}
	add := func(role catalog.Role, addr, name string) {
		if strings.TrimSpace(addr) == "" {
			return
		}
		canon, err := address.Canonical(addr)
		if err != nil {
			why := err.Error()
			if bad := (*address.Error)(nil); errors.As(err, &bad) {
				why = bad.Reason
			}
			out.refused = append(out.refused, string(role)+": "+why)
			return
		}
		key := strings.ToLower(canon)
		if seen[key] {
			return
		}
		seen[key] = true
		// The name goes into the To header beside the address.
		out.to = append(out.to, schemas.Recipient{Address: canon, Name: address.DisplayName(name), Role: string(jobRole(role))})
	}
	addAll := func(role catalog.Role, list []string) {
		for _, a := range list {
			add(role, a, "")
		}
	}
	optedIn := func(row cdc.Row) bool { return contains(row.Strings("optional_notifications"), string(t.Section)) }
	for _, role := range t.Recipients.Roles {
		switch role {
		case catalog.RolePartner:
			add(role, r.partner.Str("contact_email"), r.partner.Str("name"))
		case catalog.RolePartnerOptional:
			if optedIn(r.partner) {
				add(role, r.partner.Str("contact_email"), r.partner.Str("name"))
			}
		case catalog.RoleCustomer:
			add(role, r.company.Str("contact_email"), r.company.Str("name"))
		case catalog.RoleCustomerOptional:
			if optedIn(r.company) {
				add(role, r.company.Str("contact_email"), r.company.Str("name"))
			}
		case catalog.RoleEndUser:
			add(role, in.Next.Str("email"), in.Next.Str("display_name"))
		case catalog.RolePortalUser:
			add(role, in.Next.Str("email"), in.Next.Str("full_name"))
		case catalog.RoleOrderingUser:
			add(role, r.user.Str("email"), r.user.Str("full_name"))
		case catalog.RolePartnerAM:
			if t.Recipients.SkipPartnerAMIfResellerUnderDistributor && resellerUnderDistributor(r.partner) {
				continue
			}
			add(role, r.company.Str("partner_account_manager_email"), "")
		case catalog.RolePexipAM:
			add(role, r.company.Str("pexip_account_manager_email"), "")
		case catalog.RoleOrderRecipients:
			addAll(role, r.partner.Strings("order_recipients"))
		case catalog.RoleTrialActivity:
			addAll(role, r.partner.Strings("trial_activity_recipients"))
		case catalog.RoleDistributionList:
			addAll(role, r.partner.Strings("otj_distribution_list"))
		case catalog.RoleOrderContacts:
			addAll(role, in.Next.Strings("notify_emails"))
		}
	}
	return out
}

// jobRole is the role a recipient has in the job: the optional variants are
// policies ("only if opted in"), the recipient is the partner or customer.
func jobRole(r catalog.Role) catalog.Role {
	switch r {
	case catalog.RolePartnerOptional:
		return catalog.RolePartner
	case catalog.RoleCustomerOptional:
		return catalog.RoleCustomer
	}
	return r
}

// resellerUnderDistributor: the partner is a reseller under a Pexip distributor.
func resellerUnderDistributor(partner cdc.Row) bool {
	return partner.Str("type") == "reseller" && partner.Str("distributor_id") != ""
}
