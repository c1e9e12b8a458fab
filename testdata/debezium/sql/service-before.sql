-- TestCapture (test/debezium): Pexip Service rows that exist before the
-- connector starts (snapshot reads, op "r").

INSERT INTO end_users (id, company_id, email, display_name, status, classic, password_set_at, trial_expires_at, activation_token)
VALUES ('eu-1', 'c-acme', 'ann@acme.test', 'Ann', 'active', false, '2026-10-01 07:00:00+00', '2027-02-01 00:00:00.5+00', 'tok-eu-1'),
       ('eu-classic', 'c-acme', 'room@acme.test', 'Room 1', 'active', true, NULL, NULL, NULL);

INSERT INTO endpoints (id, company_id, name, enabled) VALUES ('ep-1', 'c-acme', 'Board room', true);

INSERT INTO cvi_usage (id, company_id, subscription_id, concurrent_calls, sampled_at)
VALUES ('cu-1', 'c-acme', 'is-teams', 3, '2026-11-30 23:59:59.999999+00');
