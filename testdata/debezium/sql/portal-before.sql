-- TestCapture (test/debezium): rows of the Partner Portal that exist before
-- the connector starts; they arrive as snapshot reads (op "r").

INSERT INTO partners (id, name, type, contact_email, optional_notifications, order_recipients,
                      trial_activity_recipients, otj_distribution_list, brand_name, primary_color,
                      from_name, reply_to)
VALUES ('p-direct', 'Direct Partner', 'direct', 'partner@direct.test', '{trial,interop}',
        '{orders@direct.test}', '{trials@direct.test}', '{otj@direct.test}', 'Direct', '#0055aa',
        'Direct Partner', 'support@direct.test');

-- A partner whose OTJ list (34 addresses of ~250 characters, 8.5 KB), logo
-- (a data: URL, 8.5 KB), notes (9 KB) and logo_png (9.6 KB of bytea) are
-- stored out of line (TOASTed): md5 hex does not compress.
INSERT INTO partners (id, name, type, contact_email, otj_distribution_list, logo_url, notes, logo_png)
SELECT 'p-big', 'Big List Partner', 'direct', 'partner@big.test',
       (SELECT array_agg(format('otj%s.%s%s@%s.%s.%s.test', lpad(i::text, 2, '0'), md5('l' || i),
                                left(md5('m' || i), 26), md5('d' || i) || left(md5('e' || i), 31),
                                md5('f' || i) || left(md5('g' || i), 31), left(md5('h' || i), 30)) ORDER BY i)
          FROM generate_series(1, 34) i),
       'data:image/png;base64,' || replace(encode(decode((SELECT string_agg(md5('logo' || i), '' ORDER BY i)
                                                            FROM generate_series(1, 400) i), 'hex'), 'base64'), E'\n', ''),
       (SELECT string_agg(md5('note' || i), ' ' ORDER BY i) FROM generate_series(1, 280) i),
       decode((SELECT string_agg(md5('png' || i), '' ORDER BY i) FROM generate_series(1, 600) i), 'hex');

INSERT INTO companies (id, partner_id, name, status, trial_expires_at, contact_email,
                       optional_notifications, partner_account_manager_email, pexip_account_manager_email)
VALUES ('c-acme', 'p-direct', 'Acme', 'active', NULL, 'it@acme.test', '{service}', 'pam@direct.test', 'xam@pexip.test'),
       ('c-trial', 'p-direct', 'Trial Co', 'trial', '2027-01-15 10:30:00.123456+00', 'it@trial.test', '{}', NULL, NULL),
       ('c-forever', 'p-direct', 'Forever Co', 'trial', 'infinity', 'it@forever.test', '{}', NULL, NULL);

INSERT INTO license_plans (id, company_id, product, billing_period, quantity, end_date, includes_otj,
                           updated_by_user_id, unit_price)
VALUES ('lp-1', 'c-acme', 'meetings', 'monthly', 10, '2027-06-30', true, 'u-1', 12.50),
       ('lp-inf', 'c-acme', 'cvi', 'annual', 5, 'infinity', false, 'u-1', NULL),
       ('lp-old', 'c-acme', 'cvi', 'annual', 1, '-infinity', false, NULL, 0.99);

INSERT INTO portal_users (id, email, full_name, partner_id, company_id, status, last_login_at)
VALUES ('u-1', 'buyer@acme.test', 'Bea Buyer', 'p-direct', 'c-acme', 'active', '2026-11-30 08:15:42.5+00');
