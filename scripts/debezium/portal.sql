-- Partner Portal tables for portalmail's CDC tests (scripts/debezium.sh,
-- test/debezium). Columns and types follow DESIGN.md "Source contract": ids and
-- names text, *_at timestamptz, end_date date, arrays text[], integers,
-- booleans. Columns portalmail does not read (created_at timestamp without
-- time zone, notes, logo_png, unit_price, seats_used) are there because real
-- tables have them: they show MicroTimestamp, bytea and Decimal encodings and
-- TOASTed values in the captured records. NOT NULL where the portal would
-- have it, so key-only deletes (default replica identity) carry the schema
-- defaults Debezium puts in the before image.
--
-- Idempotent: safe to run again on an existing database.

CREATE TABLE IF NOT EXISTS partners (
    id                        text PRIMARY KEY,
    name                      text NOT NULL,
    type                      text NOT NULL DEFAULT 'direct',  -- direct, distributor, reseller
    distributor_id            text,
    contact_email             text NOT NULL,
    optional_notifications    text[] NOT NULL DEFAULT '{}',
    order_recipients          text[] NOT NULL DEFAULT '{}',
    trial_activity_recipients text[] NOT NULL DEFAULT '{}',
    otj_distribution_list     text[] NOT NULL DEFAULT '{}',
    brand_name                text,
    logo_url                  text,   -- may be a data: URL, large enough to be TOASTed
    primary_color             text,
    from_name                 text,
    reply_to                  text,
    notes                     text,   -- not read by portalmail
    logo_png                  bytea,  -- not read by portalmail
    created_at                timestamp without time zone NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS companies (
    id                            text PRIMARY KEY,
    partner_id                    text NOT NULL,
    name                          text NOT NULL,
    status                        text NOT NULL,  -- trial, active, trial_ended, inactive
    trial_expires_at              timestamptz,
    contact_email                 text,
    optional_notifications        text[] NOT NULL DEFAULT '{}',
    partner_account_manager_email text,
    pexip_account_manager_email   text,
    created_at                    timestamp without time zone NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS portal_users (
    id                         text PRIMARY KEY,
    email                      text NOT NULL,
    full_name                  text,
    partner_id                 text,
    company_id                 text,
    status                     text NOT NULL,  -- invited, active, deactivated
    deactivation_reason        text,
    last_login_at              timestamptz,
    activation_token           text,
    analytics_invited_at       timestamptz,
    analytics_activation_token text,
    twofa_reset_at             timestamptz,
    created_at                 timestamp without time zone NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS license_plans (
    id                 text PRIMARY KEY,
    company_id         text NOT NULL,
    product            text NOT NULL,
    billing_period     text NOT NULL,  -- monthly, annual
    quantity           integer NOT NULL,
    end_date           date,
    renewal            text NOT NULL DEFAULT 'unset',  -- unset, renew, expire
    status             text NOT NULL DEFAULT 'active', -- active, renewed, expired, canceled
    includes_otj       boolean NOT NULL DEFAULT false,
    invoiced           boolean NOT NULL DEFAULT false,
    updated_by_user_id text,
    unit_price         numeric(10,2),  -- not read by portalmail
    created_at         timestamp without time zone NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS interop_subscriptions (
    id                       text PRIMARY KEY,
    company_id               text NOT NULL,
    kind                     text NOT NULL,  -- google_interop, teams_cvi, teams_rooms
    status                   text NOT NULL,  -- pending, active, inactive
    concurrent_call_licenses integer NOT NULL DEFAULT 0,
    created_at               timestamp without time zone NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS otj_licenses (
    id         text PRIMARY KEY,
    company_id text NOT NULL,
    plan_id    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS branding_orders (
    id            text PRIMARY KEY,
    company_id    text NOT NULL,
    status        text NOT NULL,  -- placed, active
    notify_emails text[] NOT NULL DEFAULT '{}',
    created_at    timestamp without time zone NOT NULL DEFAULT now()
);
