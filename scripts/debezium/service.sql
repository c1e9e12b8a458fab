-- Pexip Service tables for portalmail's CDC tests (scripts/debezium.sh,
-- test/debezium); see portal.sql for the conventions. Idempotent.

CREATE TABLE IF NOT EXISTS end_users (
    id                    text PRIMARY KEY,
    company_id            text NOT NULL,
    email                 text NOT NULL,
    display_name          text,
    status                text NOT NULL,  -- invited, active, deactivated
    classic               boolean NOT NULL DEFAULT false,
    password_set_at       timestamptz,
    recovery_requested_at timestamptz,
    twofa_reset_at        timestamptz,
    trial_expires_at      timestamptz,
    activation_token      text,
    created_at            timestamp without time zone NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS team_vmrs (
    id                  text PRIMARY KEY,
    company_id          text NOT NULL,
    name                text NOT NULL,
    status              text NOT NULL,  -- active, inactive
    deactivation_reason text,
    created_at          timestamp without time zone NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS endpoints (
    id         text PRIMARY KEY,
    company_id text NOT NULL,
    name       text NOT NULL,
    enabled    boolean NOT NULL DEFAULT true,
    created_at timestamp without time zone NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS domains (
    id         text PRIMARY KEY,
    company_id text NOT NULL,
    name       text NOT NULL,
    kind       text NOT NULL,  -- calling, m365
    created_at timestamp without time zone NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS invitation_codes (
    id                  text PRIMARY KEY,
    company_id          text NOT NULL,
    code                text NOT NULL,
    active              boolean NOT NULL DEFAULT true,
    deactivation_reason text,
    created_at          timestamp without time zone NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS cvi_usage (
    id               text PRIMARY KEY,
    company_id       text,
    subscription_id  text NOT NULL,
    concurrent_calls integer NOT NULL,
    sampled_at       timestamptz NOT NULL
);
