package workload

import (
	"strconv"
	"time"
)

// kind is the PostgreSQL type of a generated column, which fixes how
// Debezium's JsonConverter writes it.
type kind int

const (
	text      kind = iota + 1 // text: a JSON string
	integer                   // integer: a JSON number (int32)
	boolean                   // boolean: true/false
	timestamp                 // timestamptz: io.debezium.time.ZonedTimestamp, an ISO-8601 string
	date                      // date: io.debezium.time.Date, days since the epoch (int32)
	textArray                 // text[]: a JSON array of strings
)

// column is one column of a generated table, in table order.
type column struct {
	name     string
	kind     kind
	required bool // NOT NULL (the primary key, foreign keys)
}

// table is one source table: its Debezium topic (default prefixes) and its
// columns in the order PostgreSQL (and so Debezium) lists them. Every
// column of the portalmail source contract the workload uses is here, plus
// created_at/updated_at, which real tables have and portalmail ignores.
type table struct {
	topic   string
	columns []column
	// keyColumn is the column of the record key when it is not the
	// primary key "id": Debezium's message.key.columns, as the connector
	// configurations portalmail ships set it for cvi_usage.
	keyColumn string
}

// key is the name of the record key's column.
func (t *table) key() string {
	if t.keyColumn != "" {
		return t.keyColumn
	}
	return "id"
}

// The tables the workload writes. otj_licenses, branding_orders, domains and
// invitation_codes get no rows (their topics exist and stay empty).
var (
	tPartners = table{"portal.public.partners", []column{
		{"id", text, true}, {"name", text, true}, {"type", text, true}, {"distributor_id", text, false},
		{"contact_email", text, false}, {"optional_notifications", textArray, false},
		{"order_recipients", textArray, false}, {"trial_activity_recipients", textArray, false},
		{"otj_distribution_list", textArray, false}, {"brand_name", text, false}, {"logo_url", text, false},
		{"primary_color", text, false}, {"from_name", text, false}, {"reply_to", text, false},
		{"created_at", timestamp, true}, {"updated_at", timestamp, true},
	}, ""}
	tCompanies = table{"portal.public.companies", []column{
		{"id", text, true}, {"partner_id", text, true}, {"name", text, true}, {"status", text, true},
		{"trial_expires_at", timestamp, false}, {"contact_email", text, false},
		{"optional_notifications", textArray, false}, {"partner_account_manager_email", text, false},
		{"pexip_account_manager_email", text, false}, {"created_at", timestamp, true}, {"updated_at", timestamp, true},
	}, ""}
	tPortalUsers = table{"portal.public.portal_users", []column{
		{"id", text, true}, {"email", text, true}, {"full_name", text, false}, {"partner_id", text, false},
		{"company_id", text, false}, {"status", text, true}, {"deactivation_reason", text, false},
		{"last_login_at", timestamp, false}, {"activation_token", text, false},
		{"analytics_invited_at", timestamp, false}, {"analytics_activation_token", text, false},
		{"twofa_reset_at", timestamp, false}, {"created_at", timestamp, true}, {"updated_at", timestamp, true},
	}, ""}
	tLicensePlans = table{"portal.public.license_plans", []column{
		{"id", text, true}, {"company_id", text, true}, {"product", text, true}, {"billing_period", text, true},
		{"quantity", integer, true}, {"end_date", date, true}, {"renewal", text, true}, {"status", text, true},
		{"includes_otj", boolean, true}, {"invoiced", boolean, true}, {"updated_by_user_id", text, false},
		{"created_at", timestamp, true}, {"updated_at", timestamp, true},
	}, ""}
	tInteropSubscriptions = table{"portal.public.interop_subscriptions", []column{
		{"id", text, true}, {"company_id", text, true}, {"kind", text, true}, {"status", text, true},
		{"concurrent_call_licenses", integer, true}, {"created_at", timestamp, true}, {"updated_at", timestamp, true},
	}, ""}
	tEndUsers = table{"service.public.end_users", []column{
		{"id", text, true}, {"company_id", text, true}, {"email", text, true}, {"display_name", text, false},
		{"status", text, true}, {"classic", boolean, true}, {"password_set_at", timestamp, false},
		{"recovery_requested_at", timestamp, false}, {"twofa_reset_at", timestamp, false},
		{"trial_expires_at", timestamp, false}, {"activation_token", text, false},
		{"created_at", timestamp, true}, {"updated_at", timestamp, true},
	}, ""}
	tTeamVMRs = table{"service.public.team_vmrs", []column{
		{"id", text, true}, {"company_id", text, true}, {"name", text, true}, {"status", text, true},
		{"deactivation_reason", text, false}, {"created_at", timestamp, true}, {"updated_at", timestamp, true},
	}, ""}
	tEndpoints = table{"service.public.endpoints", []column{
		{"id", text, true}, {"company_id", text, true}, {"name", text, true}, {"enabled", boolean, true},
		{"created_at", timestamp, true}, {"updated_at", timestamp, true},
	}, ""}
	tCVIUsage = table{"service.public.cvi_usage", []column{
		{"id", text, true}, {"company_id", text, true}, {"subscription_id", text, true},
		{"concurrent_calls", integer, true}, {"sampled_at", timestamp, true},
	}, "subscription_id"}
)

// Tables lists every table the workload writes, snapshot order.
func tables() []*table {
	return []*table{&tPartners, &tCompanies, &tLicensePlans, &tPortalUsers, &tInteropSubscriptions,
		&tEndUsers, &tEndpoints, &tTeamVMRs, &tCVIUsage}
}

// row is one row image: values by column name. Values are string, int64,
// bool, []string, time.Time (timestamp and date columns) or nil.
type row map[string]any

// clone copies r (the slices it holds are never modified in place).
func (r row) clone() row {
	c := make(row, len(r))
	for k, v := range r {
		c[k] = v
	}
	return c
}

// appendRow appends r as a JSON object in t's column order, the way
// Debezium's JsonConverter writes a PostgreSQL row.
func appendRow(dst []byte, t *table, r row) []byte {
	dst = append(dst, '{')
	for i, c := range t.columns {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, c.name)
		dst = append(dst, ':')
		dst = appendValue(dst, c.kind, r[c.name])
	}
	return append(dst, '}')
}

func appendValue(dst []byte, k kind, v any) []byte {
	if v == nil {
		return append(dst, "null"...)
	}
	switch x := v.(type) {
	case string:
		return appendString(dst, x)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case int:
		return strconv.AppendInt(dst, int64(x), 10)
	case bool:
		return strconv.AppendBool(dst, x)
	case []string:
		dst = append(dst, '[')
		for i, s := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, s)
		}
		return append(dst, ']')
	case time.Time:
		if k == date {
			return strconv.AppendInt(dst, x.Unix()/86400, 10)
		}
		return appendString(dst, zoned(x))
	}
	panic("workload: unsupported value type") // programmer error: rows hold only the types above
}

// zoned formats t as Debezium's ZonedTimestamp does (ISO-8601 with offset,
// fraction only when there is one).
func zoned(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999999Z07:00") }

// appendString appends s as a JSON string. Generated text is ASCII; quotes,
// backslashes and control characters are escaped all the same.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b == '"' || b == '\\':
			dst = append(dst, '\\', b)
		case b < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
		default:
			dst = append(dst, b)
		}
	}
	return append(dst, '"')
}
