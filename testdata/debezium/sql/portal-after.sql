-- TestCapture (test/debezium): Partner Portal changes made while the
-- connector streams. Each statement is its own transaction unless inside
-- BEGIN/COMMIT.

-- an insert with NULLs and a timestamp with microseconds
INSERT INTO portal_users (id, email, full_name, partner_id, company_id, status, last_login_at, twofa_reset_at)
VALUES ('u-2', 'new@acme.test', NULL, 'p-direct', 'c-acme', 'invited', NULL, '2026-12-01 09:00:00.000001+00');

-- 'infinity' and '-infinity' in a timestamptz column
INSERT INTO companies (id, partner_id, name, status, trial_expires_at, contact_email)
VALUES ('c-inf', 'p-direct', 'Infinite Trial', 'trial', 'infinity', NULL);
UPDATE companies SET trial_expires_at = '-infinity' WHERE id = 'c-inf';

-- an update under REPLICA IDENTITY DEFAULT: no before image
UPDATE license_plans SET quantity = 11 WHERE id = 'lp-1';

-- 'infinity' and '-infinity' in a date column
UPDATE license_plans SET end_date = 'infinity' WHERE id = 'lp-1';
UPDATE license_plans SET end_date = '-infinity' WHERE id = 'lp-1';

-- updates that leave the TOASTed columns unchanged, under DEFAULT, then FULL
UPDATE partners SET name = 'Big List Partner (renamed)' WHERE id = 'p-big';
ALTER TABLE partners REPLICA IDENTITY FULL;
UPDATE partners SET brand_name = 'Big' WHERE id = 'p-big';

-- an update under REPLICA IDENTITY FULL: a full before image
ALTER TABLE companies REPLICA IDENTITY FULL;
UPDATE companies SET status = 'active', trial_expires_at = NULL WHERE id = 'c-trial';

-- several changes in one transaction, with a transactional message
BEGIN;
INSERT INTO license_plans (id, company_id, product, billing_period, quantity, end_date, updated_by_user_id, unit_price)
VALUES ('lp-2', 'c-acme', 'meetings', 'monthly', 1, '2027-12-31', 'u-1', 1234567.89);
UPDATE license_plans SET quantity = 2 WHERE id = 'lp-2';
INSERT INTO otj_licenses (id, company_id, plan_id, created_at) VALUES ('otj-1', 'c-acme', 'lp-2', '2026-12-01 12:00:00.25+00');
SELECT pg_logical_emit_message(true, 'portalmail.capture', 'inside a transaction');
COMMIT;

-- a non-transactional logical decoding message
SELECT pg_logical_emit_message(false, 'portalmail.capture', 'outside a transaction');

-- a key-only delete (REPLICA IDENTITY DEFAULT) and a full one (FULL)
DELETE FROM license_plans WHERE id = 'lp-old';
DELETE FROM companies WHERE id = 'c-inf';

-- TRUNCATE of two tables in one statement
INSERT INTO branding_orders (id, company_id, status, notify_emails) VALUES ('bo-1', 'c-acme', 'placed', '{brand@acme.test}');
TRUNCATE otj_licenses, branding_orders;
