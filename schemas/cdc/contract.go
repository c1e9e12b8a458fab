package cdc

// ColumnType is the kind of a contract column, which fixes its normalised Go type.
type ColumnType int

// Column kinds of the source contract and the Go type each normalises to.
const (
	Text      ColumnType = iota + 1 // string
	Integer                         // int64
	Boolean                         // bool
	Timestamp                       // string, RFC 3339 in UTC (from ZonedTimestamp, Micro/Nano/Timestamp)
	Date                            // string, "2006-01-02" (from io.debezium.time.Date, days since epoch)
	TextArray                       // []string
)

// Canonical table names (default source prefixes).
const (
	Partners             = "portal.public.partners"
	Companies            = "portal.public.companies"
	PortalUsers          = "portal.public.portal_users"
	LicensePlans         = "portal.public.license_plans"
	InteropSubscriptions = "portal.public.interop_subscriptions"
	OTJLicenses          = "portal.public.otj_licenses"
	BrandingOrders       = "portal.public.branding_orders"
	EndUsers             = "service.public.end_users"
	TeamVMRs             = "service.public.team_vmrs"
	Endpoints            = "service.public.endpoints"
	Domains              = "service.public.domains"
	InvitationCodes      = "service.public.invitation_codes"
	CVIUsage             = "service.public.cvi_usage"
)

// Contract maps every table portalmail reads to the columns it reads and their
// types (DESIGN.md "Source contract"). Columns not listed are ignored.
var Contract = map[string]map[string]ColumnType{
	Partners: {
		"id": Text, "name": Text, "type": Text, "distributor_id": Text, "contact_email": Text,
		"optional_notifications": TextArray, "order_recipients": TextArray,
		"trial_activity_recipients": TextArray, "otj_distribution_list": TextArray,
		"brand_name": Text, "logo_url": Text, "primary_color": Text, "from_name": Text, "reply_to": Text,
	},
	Companies: {
		"id": Text, "partner_id": Text, "name": Text, "status": Text, "trial_expires_at": Timestamp,
		"contact_email": Text, "optional_notifications": TextArray,
		"partner_account_manager_email": Text, "pexip_account_manager_email": Text,
	},
	PortalUsers: {
		"id": Text, "email": Text, "full_name": Text, "partner_id": Text, "company_id": Text,
		"status": Text, "deactivation_reason": Text, "last_login_at": Timestamp,
		"activation_token": Text, "analytics_invited_at": Timestamp,
		"analytics_activation_token": Text, "twofa_reset_at": Timestamp,
	},
	LicensePlans: {
		"id": Text, "company_id": Text, "product": Text, "billing_period": Text, "quantity": Integer,
		"end_date": Date, "renewal": Text, "status": Text, "includes_otj": Boolean,
		"invoiced": Boolean, "updated_by_user_id": Text,
	},
	InteropSubscriptions: {
		"id": Text, "company_id": Text, "kind": Text, "status": Text, "concurrent_call_licenses": Integer,
	},
	OTJLicenses: {
		"id": Text, "company_id": Text, "plan_id": Text, "created_at": Timestamp,
	},
	BrandingOrders: {
		"id": Text, "company_id": Text, "status": Text, "notify_emails": TextArray,
	},
	EndUsers: {
		"id": Text, "company_id": Text, "email": Text, "display_name": Text, "status": Text,
		"classic": Boolean, "password_set_at": Timestamp, "recovery_requested_at": Timestamp,
		"twofa_reset_at": Timestamp, "trial_expires_at": Timestamp, "activation_token": Text,
	},
	TeamVMRs: {
		"id": Text, "company_id": Text, "name": Text, "status": Text, "deactivation_reason": Text,
	},
	Endpoints: {
		"id": Text, "company_id": Text, "name": Text, "enabled": Boolean,
	},
	Domains: {
		"id": Text, "company_id": Text, "name": Text, "kind": Text,
	},
	InvitationCodes: {
		"id": Text, "company_id": Text, "code": Text, "active": Boolean, "deactivation_reason": Text,
	},
	CVIUsage: {
		"id": Text, "company_id": Text, "subscription_id": Text, "concurrent_calls": Integer, "sampled_at": Timestamp,
	},
}

// Required lists, per table, the columns a create/update/read image must carry;
// an image without them is unprocessable (DLQ).
var Required = map[string][]string{
	Partners:             {"id"},
	Companies:            {"id"},
	PortalUsers:          {"id", "email"},
	LicensePlans:         {"id", "company_id"},
	InteropSubscriptions: {"id", "company_id", "kind"},
	OTJLicenses:          {"id", "company_id"},
	BrandingOrders:       {"id", "company_id"},
	EndUsers:             {"id", "email"},
	TeamVMRs:             {"id", "company_id"},
	Endpoints:            {"id", "company_id"},
	Domains:              {"id", "company_id", "kind"},
	InvitationCodes:      {"id", "company_id"},
	CVIUsage:             {"id", "subscription_id", "concurrent_calls"},
}
