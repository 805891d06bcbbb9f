-- Core tables of the partner directory (DESIGN §4).

CREATE TABLE businesses (
    id           BIGSERIAL PRIMARY KEY,
    uuid         UUID NOT NULL UNIQUE,
    name         TEXT NOT NULL CHECK (btrim(name) <> ''),
    country_code TEXT CHECK (country_code ~ '^[A-Z]{2}$'),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id          BIGSERIAL PRIMARY KEY,
    uuid        UUID NOT NULL UNIQUE,
    business_id BIGINT NOT NULL REFERENCES businesses (id),
    email       TEXT NOT NULL CHECK (email LIKE '%_@_%'),
    name        TEXT NOT NULL CHECK (btrim(name) <> ''),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX users_business_id_idx ON users (business_id);

CREATE TABLE partners (
    id                    BIGSERIAL PRIMARY KEY,
    name                  TEXT NOT NULL CHECK (btrim(name) <> ''),
    description           TEXT NOT NULL DEFAULT '',
    email                 TEXT NOT NULL DEFAULT '',
    logo_url              TEXT NOT NULL DEFAULT '',
    website_url           TEXT NOT NULL DEFAULT '',
    video_url             TEXT NOT NULL DEFAULT '',
    categories            TEXT[] NOT NULL DEFAULT '{}',
    wholesaler_categories TEXT[] NOT NULL DEFAULT '{}',
    country_codes         TEXT[] NOT NULL DEFAULT '{}'
        CHECK (array_to_string(country_codes, ',') ~ '^([A-Z]{2}(,[A-Z]{2})*)?$'),
    tags                  TEXT[] NOT NULL DEFAULT '{}',
    status                TEXT NOT NULL DEFAULT 'available'
        CHECK (status IN ('available', 'coming_soon', 'unavailable')),
    active                BOOLEAN NOT NULL DEFAULT TRUE,
    external_id           TEXT UNIQUE CHECK (external_id <> ''),
    metadata              JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    website_clicks        BIGINT NOT NULL DEFAULT 0 CHECK (website_clicks >= 0),
    video_clicks          BIGINT NOT NULL DEFAULT 0 CHECK (video_clicks >= 0),
    clicks                BIGINT GENERATED ALWAYS AS (website_clicks + video_clicks) STORED,
    users_count           BIGINT NOT NULL DEFAULT 0 CHECK (users_count >= 0),
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at            TIMESTAMPTZ
);

CREATE TABLE partner_integrations (
    id          BIGSERIAL PRIMARY KEY,
    business_id BIGINT NOT NULL REFERENCES businesses (id),
    partner_id  BIGINT NOT NULL REFERENCES partners (id),
    status      TEXT NOT NULL CHECK (status IN ('pending', 'active', 'inactive', 'failed')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (business_id, partner_id)
);
CREATE INDEX partner_integrations_partner_id_idx ON partner_integrations (partner_id);

CREATE TABLE partner_preferences (
    business_id BIGINT NOT NULL REFERENCES businesses (id),
    partner_id  BIGINT NOT NULL REFERENCES partners (id),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, partner_id)
);
CREATE INDEX partner_preferences_partner_id_idx ON partner_preferences (partner_id);

CREATE TABLE partner_users (
    partner_id BIGINT NOT NULL REFERENCES partners (id),
    user_id    BIGINT NOT NULL REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, user_id)
);
CREATE INDEX partner_users_user_id_idx ON partner_users (user_id);

CREATE TABLE partner_click_events (
    id              BIGSERIAL PRIMARY KEY,
    partner_id      BIGINT NOT NULL REFERENCES partners (id),
    user_id         BIGINT REFERENCES users (id),
    business_id     BIGINT REFERENCES businesses (id),
    event_type      TEXT NOT NULL CHECK (event_type IN ('website', 'video')),
    principal       TEXT NOT NULL,
    idempotency_key TEXT CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    fingerprint     TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX partner_click_events_idempotency_idx
    ON partner_click_events (principal, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX partner_click_events_partner_created_idx ON partner_click_events (partner_id, created_at);

CREATE TABLE api_keys (
    id           BIGSERIAL PRIMARY KEY,
    prefix       TEXT NOT NULL UNIQUE CHECK (prefix ~ '^[a-z0-9]{8,32}$'),
    secret_hash  BYTEA NOT NULL CHECK (length(secret_hash) = 32),
    kind         TEXT NOT NULL CHECK (kind IN ('service', 'user')),
    user_id      BIGINT REFERENCES users (id),
    name         TEXT NOT NULL CHECK (btrim(name) <> ''),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    CHECK ((kind = 'user') = (user_id IS NOT NULL))
);
