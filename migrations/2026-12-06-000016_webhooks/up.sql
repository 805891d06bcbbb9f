-- Webhooks (Standard Webhooks, standardwebhooks.com): endpoints that receive the change log's
-- events, and one delivery row per event and endpoint, whose state is the delivery's truth, so
-- delivery is at least once across restarts and crashes and any replica may take any attempt.
--
-- webhook_endpoints: where to send (url), which event types (empty: all), the signing secret and,
-- for a while after a rotation, the previous one (both signatures are sent); paused by request or
-- after failing for too long; `after_sequence` is the change log's position when the endpoint was
-- made (it gets the events after it). Deleted endpoints are removed, with their deliveries.
CREATE TABLE webhook_endpoints (
    id                      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url                     TEXT NOT NULL,
    description             TEXT NOT NULL DEFAULT '',
    event_types             TEXT[] NOT NULL DEFAULT '{}',
    secret                  TEXT NOT NULL,
    previous_secret         TEXT,
    previous_secret_until   TIMESTAMPTZ,
    paused_reason           TEXT CHECK (paused_reason IN ('requested', 'failing')),
    failing_since           TIMESTAMPTZ,
    after_sequence          BIGINT NOT NULL,
    created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- webhook_deliveries: one event for one endpoint. `state` pending -> delivered | failed; a
-- replica takes an attempt by setting `leased_until` (FOR UPDATE SKIP LOCKED: one replica per
-- attempt) and records its outcome; an attempt whose replica died is taken again once the lease
-- is over. `message_id` is the `webhook-id`, the same on every attempt.
CREATE TABLE webhook_deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id     BIGINT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    sequence        BIGINT NOT NULL,
    event_type      TEXT NOT NULL,
    partner_id      BIGINT NOT NULL,
    message_id      TEXT NOT NULL,
    payload         JSONB NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    leased_until    TIMESTAMPTZ,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at    TIMESTAMPTZ,
    UNIQUE (endpoint_id, sequence)
);
-- The attempts due, in order (a partner's event waiting for its predecessor has
-- next_attempt_at = infinity until that one ends), and the partner's next event to release.
CREATE INDEX webhook_deliveries_due_idx
    ON webhook_deliveries (endpoint_id, next_attempt_at, sequence) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_partner_idx ON webhook_deliveries (endpoint_id, partner_id, sequence)
    WHERE state = 'pending';
-- The attempts in flight per endpoint (leased: a few at most, however long the backlog).
CREATE INDEX webhook_deliveries_leased_idx ON webhook_deliveries (endpoint_id)
    WHERE state = 'pending' AND leased_until IS NOT NULL;

-- How far the change log has been turned into deliveries (one replica at a time, under the row's
-- lock).
CREATE TABLE webhook_dispatch_state (
    singleton     BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    last_sequence BIGINT NOT NULL DEFAULT 0
);
INSERT INTO webhook_dispatch_state (last_sequence)
    SELECT greatest(coalesce(max(sequence), 0), (SELECT pruned_through FROM partner_change_state))
    FROM partner_changes;
