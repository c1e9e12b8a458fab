package debezium

import (
	"fmt"
	"strings"
	"time"
)

// step is one change of the scenario: SQL against either database (each
// statement its own transaction unless the text says BEGIN/COMMIT), and the
// emails a correct system sends for it, written from the spec and DESIGN.md,
// not from what the engine does.
type step struct {
	name            string
	portal, service string
	want            []string
	// kill: the kill run kills the process stage inside the Kafka
	// transaction carrying this step.
	kill bool
	// abort: the abort run aborts the batch carrying this step (10 changes
	// of one row in one PostgreSQL transaction).
	abort bool
	// together: every run executes this step right after the one before it
	// (and any before that marked together) with the process stage stopped,
	// so the records of all arrive in one backlog, in whatever order the
	// partitions come (a TRUNCATE's record, without a key, may come before
	// older changes of its table's rows, or after newer ones).
	together bool
}

// scenario is the whole run: rows that exist before the connectors start
// (snapshot reads), the steps, and the timers due at day (09:00 UTC, two days
// ahead), which the test reaches by restarting the process stage with a
// clock offset.
type scenario struct {
	day                             time.Time
	snapshotPortal, snapshotService string
	steps                           []step
	timers                          []string
}

// Recipients of the scenario.
const (
	partnerDirect = "partner@direct.test"
	trialsDirect  = "trials@direct.test"
	ordersDirect  = "orders@direct.test"
	otjDirect     = "otj@direct.test"
	partnerResell = "partner@resell.test"
	itAcme        = "it@acme.test"
	pamAcme       = "pam@direct.test"
	xamAcme       = "xam@pexip.test"
	buyerAcme     = "buyer@acme.test"
	buyerResell   = "buyer@resell.test"
	xamResell     = "xam2@pexip.test"
)

// bigList is p-big's OTJ distribution list: 34 addresses of about 250
// characters (8.5 KB, md5 hex does not compress: TOASTed), built in SQL by
// bigListSQL and here in Go alike.
const bigListSQL = `(SELECT array_agg(format('otj%s.%s%s@%s.%s.%s.test', lpad(i::text, 2, '0'), md5('l' || i),
    left(md5('m' || i), 26), md5('d' || i) || left(md5('e' || i), 31),
    md5('f' || i) || left(md5('g' || i), 31), left(md5('h' || i), 30)) ORDER BY i) FROM generate_series(1, 34) i)`

// bigLogoSQL is p-big's logo_url: a data: URL of 8.5 KB (TOASTed).
const bigLogoSQL = `'data:image/png;base64,' || replace(encode(decode((SELECT string_agg(md5('logo' || i), '' ORDER BY i)
    FROM generate_series(1, 400) i), 'hex'), 'base64'), E'\n', '')`

func newScenario(now time.Time) scenario {
	now = now.UTC()
	day := time.Date(now.Year(), now.Month(), now.Day()+2, 9, 0, 0, 0, time.UTC)
	// ts is a timestamptz literal days after day's date at hh:mm UTC.
	ts := func(days int, hhmm string) string {
		return "'" + day.AddDate(0, 0, days).Format("2006-01-02") + " " + hhmm + ":00+00'"
	}
	date := func(days int) string { return "'" + day.AddDate(0, 0, days).Format("2006-01-02") + "'" }
	recent := "'" + now.Add(-24*time.Hour).Format("2006-01-02 15:04:05.999999") + "+00'"
	at := func(min int) string { // a sub-second instant shortly after now
		return "'" + now.Add(time.Duration(min)*time.Minute+123456*time.Microsecond).Format("2006-01-02 15:04:05.999999") + "+00'"
	}
	order := func(typ, subject string, to ...string) []string {
		var out []string
		for _, a := range to {
			out = append(out, email(typ, a, subject))
		}
		return out
	}
	acmeOrder := func(typ, subject string) []string {
		return order(typ, subject, buyerAcme, pamAcme, xamAcme, ordersDirect)
	}
	acmeRenewal := func(typ, subject string) []string { return order(typ, subject, pamAcme, xamAcme, ordersDirect) }
	join := func(lists ...[]string) []string {
		var out []string
		for _, l := range lists {
			out = append(out, l...)
		}
		return out
	}

	var s scenario
	s.day = day
	s.snapshotPortal = `
ALTER TABLE companies REPLICA IDENTITY FULL;
ALTER TABLE portal_users REPLICA IDENTITY FULL;
ALTER TABLE interop_subscriptions REPLICA IDENTITY FULL;

INSERT INTO partners (id, name, type, distributor_id, contact_email, optional_notifications, order_recipients,
                      trial_activity_recipients, otj_distribution_list, brand_name, logo_url, primary_color, from_name, reply_to)
VALUES ('p-direct', 'Direct Partner', 'direct', NULL, 'partner@direct.test', '{trial,interop,service}', '{orders@direct.test}',
        '{trials@direct.test}', '{otj@direct.test}', 'Direct', 'https://cdn.direct.test/logo.png', '#0055aa', 'Direct Partner', 'support@direct.test'),
       ('p-dist', 'Distributor', 'distributor', NULL, 'partner@dist.test', '{}', '{}', '{}', '{}', NULL, NULL, NULL, NULL, NULL),
       ('p-resell', 'Reseller', 'reseller', 'p-dist', 'partner@resell.test', '{}', '{}', '{}', '{}', NULL, NULL, NULL, NULL, NULL);
INSERT INTO partners (id, name, type, contact_email, otj_distribution_list, logo_url, from_name)
SELECT 'p-big', 'Big List Partner', 'direct', 'partner@big.test', ` + bigListSQL + `, ` + bigLogoSQL + `, 'Big List';

INSERT INTO companies (id, partner_id, name, status, trial_expires_at, contact_email, optional_notifications,
                       partner_account_manager_email, pexip_account_manager_email)
VALUES ('c-acme', 'p-direct', 'Acme', 'active', NULL, 'it@acme.test', '{service}', 'pam@direct.test', 'xam@pexip.test'),
       ('c-resell', 'p-resell', 'Resell Co', 'active', NULL, 'it@resell.test', '{}', 'pam@resell.test', 'xam2@pexip.test'),
       ('c-big', 'p-big', 'Big Co', 'active', NULL, 'it@big.test', '{}', NULL, NULL),
       ('c-trial', 'p-direct', 'Trial Co', 'trial', ` + ts(23, "15:00") + `, 'it@trial.test', '{}', NULL, NULL),
       ('c-trialx', 'p-direct', 'Trial X Co', 'trial', ` + ts(23, "10:00") + `, 'it@trialx.test', '{}', NULL, NULL);

INSERT INTO portal_users (id, email, full_name, partner_id, company_id, status, last_login_at, activation_token, analytics_activation_token)
VALUES ('u-buyer', 'buyer@acme.test', 'Bea Buyer', 'p-direct', 'c-acme', 'active', ` + recent + `, NULL, NULL),
       ('u-rbuyer', 'buyer@resell.test', 'Rob Buyer', 'p-resell', 'c-resell', 'active', ` + recent + `, NULL, NULL),
       ('u-ana', 'ana@acme.test', 'Ana Lytics', 'p-direct', 'c-acme', 'active', ` + recent + `, NULL, 'ana-token'),
       ('u-idle', 'idle@acme.test', 'Idle One', 'p-direct', 'c-acme', 'active', ` + ts(-150, "14:00") + `, NULL, NULL),
       ('u-idle2', 'idle2@acme.test', 'Idle Two', 'p-direct', 'c-acme', 'active', ` + ts(-150, "15:00") + `, NULL, NULL),
       ('u-deact', 'gone@acme.test', 'Gone Away', 'p-direct', 'c-acme', 'active', ` + recent + `, NULL, NULL),
       ('u-neg', 'neg@acme.test', 'Never Logged', 'p-direct', 'c-acme', 'active', '-infinity', NULL, NULL);

INSERT INTO license_plans (id, company_id, product, billing_period, quantity, end_date, renewal, status,
                           includes_otj, invoiced, updated_by_user_id, unit_price)
VALUES ('lp-bill', 'c-acme', 'meetings', 'monthly', 10, ` + date(400) + `, 'unset', 'active', false, false, 'u-buyer', 10.00),
       ('lp-inf', 'c-acme', 'cvi', 'annual', 5, 'infinity', 'unset', 'active', false, true, 'u-buyer', NULL),
       ('lp-cancel', 'c-acme', 'meetings', 'monthly', 3, ` + date(400) + `, 'unset', 'active', false, false, 'u-buyer', NULL),
       ('lp-cancelinv', 'c-acme', 'meetings', 'monthly', 4, ` + date(400) + `, 'unset', 'active', false, true, 'u-buyer', NULL),
       ('lp-t30', 'c-acme', 'rooms', 'annual', 2, ` + date(30) + `, 'unset', 'active', false, true, 'u-buyer', NULL),
       ('lp-neginf', 'c-acme', 'rooms', 'annual', 2, '-infinity', 'unset', 'active', false, true, 'u-buyer', NULL),
       ('lp-t45', 'c-acme', 'rooms', 'annual', 7, ` + date(45) + `, 'unset', 'active', false, true, 'u-buyer', NULL),
       ('lp-t3', 'c-acme', 'rooms', 'annual', 8, ` + date(3) + `, 'unset', 'active', false, true, 'u-buyer', NULL),
       ('lp-otj', 'c-acme', 'otj', 'annual', 9, ` + date(200) + `, 'renew', 'active', true, true, 'u-buyer', NULL),
       ('lp-ten', 'c-resell', 'meetings', 'monthly', 10, ` + date(300) + `, 'unset', 'active', false, false, 'u-rbuyer', NULL);

INSERT INTO interop_subscriptions (id, company_id, kind, status, concurrent_call_licenses)
VALUES ('is-small', 'c-acme', 'teams_cvi', 'active', 5);
`
	s.snapshotService = `
INSERT INTO end_users (id, company_id, email, display_name, status, classic, password_set_at, trial_expires_at, activation_token)
VALUES ('eu-act', 'c-acme', 'act@acme.test', 'Active User', 'active', false, '2026-01-01 08:00:00+00', NULL, NULL),
       ('eu-trial2', 'c-acme', 'trial2@acme.test', 'Trial Two', 'active', false, NULL, ` + ts(7, "12:30") + `, NULL),
       ('eu-ext', 'c-acme', 'ext@acme.test', 'Ext User', 'active', false, NULL, ` + ts(40, "12:00") + `, NULL),
       ('eu-cl', 'c-acme', 'room1@acme.test', 'Room One', 'active', true, NULL, NULL, NULL),
       ('eu-gone', 'c-acme', 'gone1@acme.test', 'Gone One', 'active', false, NULL, ` + ts(7, "11:00") + `, NULL),
       ('eu-gone2', 'c-acme', 'gone2@acme.test', 'Gone Two', 'active', false, NULL, NULL, NULL);
INSERT INTO team_vmrs (id, company_id, name, status) VALUES ('tv-2', 'c-acme', 'Team Two', 'active');
INSERT INTO endpoints (id, company_id, name, enabled) VALUES ('ep-snap', 'c-acme', 'Lobby', true), ('ep-d', 'c-acme', 'Desk', true);
`
	const (
		teamsUsage80 = "80% usage notification for Pexip Cloud Video Interop for Microsoft Teams"
		teamsUsage90 = "90% usage notification for Pexip Cloud Video Interop for Microsoft Teams"
		teamsOver    = "Oversubscription notification for Pexip Cloud Video Interop for Microsoft Teams"
	)
	usage := func(n int, id, company string, calls int, sub string, want ...string) step {
		return step{name: fmt.Sprintf("usage sample %d: %d calls on %s", n, calls, sub), service: fmt.Sprintf(
			"INSERT INTO cvi_usage (id, company_id, subscription_id, concurrent_calls, sampled_at) VALUES ('%s', %s, '%s', %d, %s);",
			id, company, sub, calls, at(n)), want: want}
	}
	var bigList []string
	for i := 1; i <= 34; i++ {
		bigList = append(bigList, bigListAddress(i))
	}

	s.steps = []step{
		{name: "companies created and extended; a partner update leaves its TOASTed list and logo unchanged", portal: `
INSERT INTO companies (id, partner_id, name, status, trial_expires_at, contact_email, partner_account_manager_email, pexip_account_manager_email)
VALUES ('c-new', 'p-direct', 'New Co', 'trial', ` + ts(30, "10:00") + `, 'it@new.test', NULL, NULL);
INSERT INTO companies (id, partner_id, name, status, trial_expires_at, contact_email)
VALUES ('c-inf', 'p-direct', 'Infinite Trial Co', 'trial', 'infinity', 'it@inf.test');
UPDATE companies SET trial_expires_at = ` + ts(60, "10:00") + ` WHERE id = 'c-trialx';
UPDATE partners SET name = 'Big List Partner (renamed)', primary_color = '#123456' WHERE id = 'p-big';
`, want: join(
			order("trial.company_created", "New company created (in trial mode)", partnerDirect, trialsDirect),
			order("trial.company_created", "New company created (in trial mode)", partnerDirect, trialsDirect),
			order("trial.company_extended", "Trial extended - Trial X Co", "it@trialx.test", partnerDirect, trialsDirect))},
		{name: "orders: new plans, billing, quantity (on a plan ending 'infinity'), cancellations", kill: true, portal: `
INSERT INTO license_plans (id, company_id, product, billing_period, quantity, end_date, updated_by_user_id)
VALUES ('lp-new', 'c-acme', 'meetings', 'monthly', 20, ` + date(365) + `, 'u-buyer');
INSERT INTO license_plans (id, company_id, product, billing_period, quantity, end_date, updated_by_user_id)
VALUES ('lp-rnew', 'c-resell', 'meetings', 'annual', 5, ` + date(365) + `, 'u-rbuyer');
UPDATE license_plans SET billing_period = 'annual' WHERE id = 'lp-bill';
UPDATE license_plans SET quantity = 6 WHERE id = 'lp-inf';
UPDATE license_plans SET status = 'canceled' WHERE id = 'lp-cancel';
UPDATE license_plans SET status = 'canceled' WHERE id = 'lp-cancelinv';
`, want: join(
			acmeOrder("order.new", "Order confirmation from Pexip (new)"),
			order("order.new", "Order confirmation from Pexip (new)", buyerResell, xamResell),
			acmeOrder("order.billing_change", "Order confirmation from Pexip (change)"),
			acmeOrder("order.quantity_change", "Change confirmation from Pexip"),
			acmeOrder("order.canceled", "Cancellation confirmation from Pexip"))},
		{name: "renewals: renew, expire (a plan ending '-infinity'), renewed with OTJ, expired", portal: `
UPDATE license_plans SET renewal = 'renew' WHERE id = 'lp-t30';
UPDATE license_plans SET renewal = 'expire' WHERE id = 'lp-neginf';
UPDATE license_plans SET status = 'renewed' WHERE id = 'lp-otj';
UPDATE license_plans SET status = 'expired' WHERE id = 'lp-neginf';
`, want: join(
			acmeRenewal("renewal.will_renew", "Acme license plan will be renewed"),
			acmeRenewal("renewal.will_not_renew", "Acme license plan will not be renewed"),
			acmeRenewal("renewal.renewed", "Acme license plan has been renewed"),
			order("otj.renewal", "OTJ license renewal notification", otjDirect),
			acmeRenewal("renewal.expired", "Acme license plan expired"))},
		{name: "one plan changed 10 times in one transaction", abort: true, portal: `
BEGIN;
UPDATE license_plans SET quantity = 11 WHERE id = 'lp-ten';
UPDATE license_plans SET quantity = 12 WHERE id = 'lp-ten';
UPDATE license_plans SET billing_period = 'annual' WHERE id = 'lp-ten';
UPDATE license_plans SET quantity = 13 WHERE id = 'lp-ten';
UPDATE license_plans SET renewal = 'renew' WHERE id = 'lp-ten';
UPDATE license_plans SET quantity = 14 WHERE id = 'lp-ten';
UPDATE license_plans SET quantity = 15 WHERE id = 'lp-ten';
UPDATE license_plans SET quantity = 16 WHERE id = 'lp-ten';
UPDATE license_plans SET quantity = 17 WHERE id = 'lp-ten';
UPDATE license_plans SET quantity = 18 WHERE id = 'lp-ten';
COMMIT;
`, want: join(
			repeat(8, order("order.quantity_change", "Change confirmation from Pexip", buyerResell, xamResell)),
			order("order.billing_change", "Order confirmation from Pexip (change)", buyerResell, xamResell),
			order("renewal.will_renew", "Resell Co license plan will be renewed", xamResell))},
		{name: "an OTJ license for the partner whose list Debezium sent as unavailable", portal: `
INSERT INTO otj_licenses (id, company_id, plan_id, created_at) VALUES ('otj-1', 'c-big', 'lp-big', ` + at(1) + `);
`, want: order("otj.license_added", "New OTJ license added", bigList...)},
		{name: "interop subscriptions created", portal: `
INSERT INTO interop_subscriptions (id, company_id, kind, status, concurrent_call_licenses) VALUES ('is-g', 'c-acme', 'google_interop', 'pending', 0);
INSERT INTO interop_subscriptions (id, company_id, kind, status, concurrent_call_licenses) VALUES ('is-t', 'c-acme', 'teams_cvi', 'pending', 20);
INSERT INTO interop_subscriptions (id, company_id, kind, status, concurrent_call_licenses) VALUES ('is-r', 'c-acme', 'teams_rooms', 'pending', 0);
`, want: join(
			order("interop.google_token_upload", "Please upload your Authentication Token for Gateway Interoperability", itAcme, partnerDirect),
			order("interop.teams_authorize", "Please authorize Pexip CVI application", itAcme),
			order("interop.teams_rooms_authorize", "Please authorize Pexip Connect for Teams Rooms", itAcme))},
		{name: "interop subscriptions provisioned", portal: `
UPDATE interop_subscriptions SET status = 'active' WHERE id = 'is-g';
UPDATE interop_subscriptions SET status = 'active' WHERE id = 'is-t';
`, want: join(
			order("interop.google_provisioned", "Your Google Meet Interoperability service has been provisioned", itAcme),
			order("interop.teams_provisioned", "Your CVI Service for MS Teams has been provisioned", itAcme))},
		usage(1, "cu-1", "'c-acme'", 10, "is-t"),
		usage(2, "cu-2", "'c-acme'", 16, "is-t", order("interop.teams_usage", teamsUsage80, itAcme, partnerDirect)...),
		usage(3, "cu-3", "'c-acme'", 17, "is-t"),
		usage(4, "cu-4", "'c-acme'", 13, "is-t"),
		usage(5, "cu-5", "NULL", 18, "is-t", order("interop.teams_usage", teamsUsage90, itAcme, partnerDirect)...),
		usage(6, "cu-6", "'c-acme'", 22, "is-t", order("interop.teams_oversubscribed", teamsOver, itAcme, partnerDirect)...),
		usage(7, "cu-7", "'c-acme'", 5, "is-small"),
		{name: "portal accounts", portal: `
INSERT INTO portal_users (id, email, full_name, partner_id, company_id, status, activation_token)
VALUES ('u-inv', 'inv@acme.test', 'Ivy Invited', 'p-direct', 'c-acme', 'invited', 'tok-inv');
UPDATE portal_users SET analytics_invited_at = ` + at(2) + ` WHERE id = 'u-ana';
UPDATE portal_users SET last_login_at = ` + at(2) + ` WHERE id = 'u-idle2';
UPDATE portal_users SET status = 'deactivated', deactivation_reason = 'inactivity' WHERE id = 'u-deact';
UPDATE portal_users SET twofa_reset_at = ` + at(3) + ` WHERE id = 'u-neg';
`, want: join(
			order("account.portal_activate", "Activate your Pexip Partner Portal account", "inv@acme.test"),
			order("account.analytics_activate", "Activate your Pexip Analytics account", "ana@acme.test"),
			order("account.portal_deactivated", "Your Pexip Partner Portal account is deactivated", "gone@acme.test"),
			order("account.twofa_reset", "Reset your Pexip account 2FA", "neg@acme.test"))},
		{name: "2FA reset again", portal: `UPDATE portal_users SET twofa_reset_at = ` + at(4) + ` WHERE id = 'u-neg';`,
			want: order("account.twofa_reset", "Reset your Pexip account 2FA", "neg@acme.test")},
		{name: "end users (default replica identity): 2FA, trial extended, deactivated, classic deactivated", service: `
UPDATE end_users SET twofa_reset_at = ` + at(5) + ` WHERE id = 'eu-act';
UPDATE end_users SET trial_expires_at = ` + ts(50, "12:00") + ` WHERE id = 'eu-ext';
UPDATE end_users SET status = 'deactivated' WHERE id = 'eu-trial2';
UPDATE end_users SET status = 'deactivated' WHERE id = 'eu-cl';
`, want: join(
			order("service.user_twofa_reset", "Your Pexip Service account's 2FA has been reset", "act@acme.test"),
			order("trial.user_extended", "Trial extended", "ext@acme.test", trialsDirect),
			order("service.user_deactivated", "Your Pexip Service account has been deactivated", "trial2@acme.test"),
			order("classic.subscription_deactivated", "Your subscription for Room One has been deactivated", partnerDirect))},
		{name: "end user deactivated", service: `UPDATE end_users SET status = 'deactivated' WHERE id = 'eu-act';`,
			want: order("service.user_deactivated", "Your Pexip Service account has been deactivated", "act@acme.test")},
		{name: "end users reactivated", service: `
UPDATE end_users SET status = 'active' WHERE id = 'eu-act';
UPDATE end_users SET status = 'active' WHERE id = 'eu-cl';
`, want: join(
			order("service.user_reactivated", "Your Pexip Service account has been reactivated", "act@acme.test"),
			order("classic.subscription_reactivated", "Your subscription for Room One has been reactivated", partnerDirect))},
		{name: "an endpoint deleted (key-only) and created again disabled", service: `
DELETE FROM endpoints WHERE id = 'ep-d';
INSERT INTO endpoints (id, company_id, name, enabled) VALUES ('ep-d', 'c-acme', 'Desk', false);
`},
		{name: "the re-created endpoint enabled; a 2FA reset", service: `
UPDATE endpoints SET enabled = true WHERE id = 'ep-d';
UPDATE end_users SET twofa_reset_at = ` + at(8) + ` WHERE id = 'eu-act';
`, want: join(
			order("service.endpoint_enabled", "Video system subscription enabled", partnerDirect, itAcme),
			order("service.user_twofa_reset", "Your Pexip Service account's 2FA has been reset", "act@acme.test"))},
		{name: "TRUNCATE end_users, endpoints (a trial timer among them), in one backlog with the step before",
			service: `TRUNCATE end_users, endpoints;`, together: true},
		{name: "after the truncate, in the same backlog: end users and endpoints created, two under truncated ids", together: true, service: `
INSERT INTO end_users (id, company_id, email, display_name, status, classic, trial_expires_at)
VALUES ('eu-trial', 'c-acme', 'trial@acme.test', 'Trial User', 'active', false, ` + ts(7, "13:00") + `);
INSERT INTO end_users (id, company_id, email, display_name, status, classic, activation_token)
VALUES ('eu-gone2', 'c-acme', 'gone2@acme.test', 'Gone Two', 'invited', false, 'tok-gone2');
INSERT INTO end_users (id, company_id, email, display_name, status, classic, trial_expires_at, activation_token)
VALUES ('eu-inf', 'c-acme', 'inf@acme.test', 'Infinite', 'invited', false, 'infinity', 'tok-inf');
INSERT INTO end_users (id, company_id, email, display_name, status, classic, activation_token)
VALUES ('eu-new', 'c-acme', 'new@acme.test', NULL, 'invited', false, 'tok-new');
INSERT INTO endpoints (id, company_id, name, enabled) VALUES ('ep-new', 'c-acme', 'Studio', true);
INSERT INTO endpoints (id, company_id, name, enabled) VALUES ('ep-snap', 'c-acme', 'Lobby', true);
INSERT INTO end_users (id, company_id, email, display_name, status, classic, activation_token)
VALUES ('eu-act', 'c-acme', 'act@acme.test', 'Active Again', 'invited', false, 'tok-act2');
UPDATE end_users SET password_set_at = ` + at(9) + `, status = 'active' WHERE id = 'eu-act';
`, want: join(
			order("service.user_activate", "Activate your Pexip Service account", "gone2@acme.test", "inf@acme.test", "new@acme.test", "act@acme.test"),
			// eu-act had set its password before the truncate: the new row's is set for the first time.
			order("service.user_welcome", "Welcome to the Pexip Service", "act@acme.test"),
			order("service.endpoint_enabled", "Video system subscription enabled", partnerDirect, itAcme),
			order("service.endpoint_enabled", "Video system subscription enabled", partnerDirect, itAcme))},
		{name: "password set; an endpoint disabled", service: `
UPDATE end_users SET password_set_at = ` + at(6) + `, status = 'active' WHERE id = 'eu-new';
UPDATE endpoints SET enabled = false WHERE id = 'ep-snap';
`, want: join(
			order("service.user_welcome", "Welcome to the Pexip Service", "new@acme.test"),
			order("service.endpoint_disabled", "Video system subscription disabled", partnerDirect, itAcme))},
		{name: "recovery requested", service: `UPDATE end_users SET recovery_requested_at = ` + at(7) + ` WHERE id = 'eu-new';`,
			want: order("service.user_recover", "Recover your Pexip Service account", "new@acme.test")},
		{name: "team rooms, domains, invitation codes", service: `
INSERT INTO team_vmrs (id, company_id, name, status) VALUES ('tv-1', 'c-acme', 'Team One', 'active');
UPDATE team_vmrs SET status = 'inactive', deactivation_reason = 'canceled' WHERE id = 'tv-2';
INSERT INTO domains (id, company_id, name, kind) VALUES ('dom-c', 'c-acme', 'calls.acme.test', 'calling');
INSERT INTO domains (id, company_id, name, kind) VALUES ('dom-m', 'c-resell', 'resell.onmicrosoft.test', 'm365');
INSERT INTO invitation_codes (id, company_id, code, active) VALUES ('ic-1', 'c-acme', 'CODE-1', true);
`, want: join(
			order("service.team_room_activated", "Team room activated", itAcme, partnerDirect),
			order("service.team_room_deactivated", "Team room deactivated", itAcme, partnerDirect),
			order("service.calling_domain_created", "New calling domain calls.acme.test", partnerDirect, itAcme),
			order("service.m365_domain_created", "New Microsoft 365 domain resell.onmicrosoft.test", partnerResell),
			order("classic.invitation_code_activated", "Invitation code activated", partnerDirect, itAcme))},
		{name: "a team room and an invitation code end with the trial", service: `
UPDATE team_vmrs SET status = 'inactive', deactivation_reason = 'trial_ended' WHERE id = 'tv-1';
UPDATE invitation_codes SET active = false, deactivation_reason = 'trial_ended' WHERE id = 'ic-1';
`, want: join(
			order("service.team_room_deactivated", "Trial ended", itAcme, partnerDirect),
			order("classic.invitation_code_deactivated", "Trial ended", partnerDirect, itAcme))},
		{name: "branding order placed", portal: `
INSERT INTO branding_orders (id, company_id, status, notify_emails) VALUES ('bo-1', 'c-acme', 'placed', '{brand1@acme.test,brand2@acme.test}');
`, want: order("branding.instructions", "Instructions for providing Pexip with the information required to fulfill the order",
			"brand1@acme.test", "brand2@acme.test")},
		{name: "branding order active, with its contacts changed", portal: `
UPDATE branding_orders SET status = 'active', notify_emails = '{brand1@acme.test,brand3@acme.test}' WHERE id = 'bo-1';
`, want: order("branding.active", "Notification that branding is active on the Pexip Service", "brand1@acme.test", "brand3@acme.test")},
		{name: "the 'infinity' trial ends", portal: `UPDATE companies SET status = 'trial_ended' WHERE id = 'c-inf';`,
			want: order("trial.company_ended", "Trial ended - Infinite Trial Co", "it@inf.test", partnerDirect, trialsDirect)},
		{name: "deletes: a plan (key-only), a subscription (full before image)", portal: `
DELETE FROM license_plans WHERE id = 'lp-cancelinv';
DELETE FROM interop_subscriptions WHERE id = 'is-r';
`},
	}
	// Due at day 09:00. Not due: c-trialx (extended), lp-t30 (renew set),
	// u-idle2 (logged in), eu-gone (truncated), eu-trial2 (deactivated,
	// truncated), u-neg (last login '-infinity'), c-inf and eu-inf ('infinity').
	s.timers = join(
		order("trial.company_reminder", "Trial reminder - Trial Co", "it@trial.test", partnerDirect, trialsDirect),
		order("trial.user_reminder", "Trial reminder", "trial@acme.test", trialsDirect),
		acmeRenewal("renewal.expires_in", "Acme license plan expires in 45 days"),
		acmeRenewal("renewal.expires_in", "Acme license plan expires in 3 days"),
		order("account.portal_expiry_warning", "Your Pexip Partner Portal account will expire in 30 days", "idle@acme.test"))
	return s
}

// bigListAddress is the i-th address of bigListSQL.
func bigListAddress(i int) string {
	h := func(s string) string { return md5hex(s) }
	return fmt.Sprintf("otj%02d.%s%s@%s.%s.%s.test", i, h(fmt.Sprint("l", i)), h(fmt.Sprint("m", i))[:26],
		h(fmt.Sprint("d", i))+h(fmt.Sprint("e", i))[:31], h(fmt.Sprint("f", i))+h(fmt.Sprint("g", i))[:31], h(fmt.Sprint("h", i))[:30])
}

func repeat(n int, l []string) []string {
	var out []string
	for range n {
		out = append(out, l...)
	}
	return out
}

// want is every email of the scenario, and the step each comes from.
func (s scenario) want() (all []string, from map[string][]string) {
	from = map[string][]string{}
	for _, st := range s.steps {
		for _, e := range st.want {
			all = append(all, e)
			from[e] = append(from[e], st.name)
		}
	}
	for _, e := range s.timers {
		all = append(all, e)
		from[e] = append(from[e], "timers due "+s.day.Format(time.RFC3339))
	}
	return all, from
}

// typeOf is the email type of an email() string.
func typeOf(e string) string { t, _, _ := strings.Cut(e, " | "); return t }
