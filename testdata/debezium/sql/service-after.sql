-- TestCapture (test/debezium): Pexip Service changes made while the
-- connector streams.

-- an insert with NULLs and 'infinity'
INSERT INTO end_users (id, company_id, email, display_name, status, classic, password_set_at, trial_expires_at, activation_token)
VALUES ('eu-2', 'c-acme', 'bob@acme.test', NULL, 'invited', false, NULL, 'infinity', 'tok-eu-2');

-- an update under REPLICA IDENTITY DEFAULT, a sub-second timestamp
UPDATE end_users SET password_set_at = '2026-12-01 10:00:00.123+00', status = 'active' WHERE id = 'eu-2';

-- an update under REPLICA IDENTITY FULL
ALTER TABLE end_users REPLICA IDENTITY FULL;
UPDATE end_users SET status = 'deactivated' WHERE id = 'eu-1';

-- usage samples with sub-second timestamps
INSERT INTO cvi_usage (id, company_id, subscription_id, concurrent_calls, sampled_at)
VALUES ('cu-2', 'c-acme', 'is-teams', 8, '2026-12-01 10:00:00.5+00'),
       ('cu-3', NULL, 'is-teams', 11, '2026-12-01 10:05:00.25+00');

-- a key-only delete: NOT NULL columns come with schema defaults
DELETE FROM endpoints WHERE id = 'ep-1';

-- TRUNCATE of one table
TRUNCATE cvi_usage;
