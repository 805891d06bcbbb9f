ALTER SEQUENCE partner_click_events_id_seq OWNED BY NONE;
ALTER TABLE partner_click_events RENAME TO partner_click_events_partitioned;
DROP INDEX partner_click_events_partner_created_idx, partner_click_events_business_created_idx;
ALTER TABLE partner_click_events_partitioned
    RENAME CONSTRAINT partner_click_events_pkey TO partner_click_events_partitioned_pkey;
ALTER TABLE partner_click_events_partitioned
    RENAME CONSTRAINT partner_click_events_partner_id_fkey TO partner_click_events_partitioned_partner_id_fkey;
ALTER TABLE partner_click_events_partitioned
    RENAME CONSTRAINT partner_click_events_event_type_check TO partner_click_events_partitioned_event_type_check;
ALTER TABLE partner_click_events_partitioned
    RENAME CONSTRAINT partner_click_events_idempotency_key_check TO partner_click_events_partitioned_idempotency_key_check;

CREATE TABLE partner_click_events (
    id              BIGINT PRIMARY KEY DEFAULT nextval('partner_click_events_id_seq'),
    partner_id      BIGINT NOT NULL REFERENCES partners (id),
    user_id         BIGINT,
    business_id     BIGINT,
    event_type      TEXT NOT NULL CHECK (event_type IN ('website', 'video')),
    principal       TEXT NOT NULL,
    idempotency_key TEXT CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    fingerprint     TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
ALTER SEQUENCE partner_click_events_id_seq OWNED BY partner_click_events.id;
INSERT INTO partner_click_events SELECT * FROM partner_click_events_partitioned;
CREATE UNIQUE INDEX partner_click_events_idempotency_idx
    ON partner_click_events (principal, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX partner_click_events_partner_created_idx ON partner_click_events (partner_id, created_at);

DROP TABLE partner_click_events_partitioned;
DROP TABLE partner_click_requests;
DROP FUNCTION partner_click_events_create_partition(date);
