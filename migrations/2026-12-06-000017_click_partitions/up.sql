-- Click events partitioned by month (declarative partitioning on created_at), so that their
-- volume does not slow ingest or recent reads, and retention drops whole months
-- (`--click-retention-months`) instead of deleting rows.
--
-- Idempotency across partitions: a unique index of a partitioned table must contain the
-- partition key, so (principal, idempotency_key) can no longer be unique on the events
-- themselves (the same key in two months would pass). The keys move to their own small table,
-- `partner_click_requests`, keyed by (principal, idempotency_key), holding the first event's id,
-- time and fingerprint: the batch statement inserts the key first (ON CONFLICT DO NOTHING) and
-- the event only when the key was new, in one statement, so a key names one event across all
-- partitions and replicas; a replay answers from this table alone (even after the event's month
-- was dropped, until retention prunes the key with it).
--
-- Partitions are named partner_click_events_pYYYYMM and created by
-- partner_click_events_create_partition(month); the service's maintenance task
-- (src/serving/click_partitions.rs) creates them ahead of time. There is no default partition:
-- rows in it would have to be moved before the month's partition could be created; the
-- migration and the task keep three months ahead instead.
--
-- Existing rows move by INSERT ... SELECT into the new table, which then takes the old name; the
-- id sequence is kept (ids unchanged, new ids continue after them).

CREATE FUNCTION partner_click_events_create_partition(month date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    first date := date_trunc('month', month)::date;
    name text := format('partner_click_events_p%s', to_char(first, 'YYYYMM'));
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF partner_click_events FOR VALUES FROM (%L) TO (%L)',
        name,
        (first::timestamp AT TIME ZONE 'UTC'),
        ((first + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
    RETURN true;
END $$;

ALTER SEQUENCE partner_click_events_id_seq OWNED BY NONE;
ALTER TABLE partner_click_events RENAME TO partner_click_events_unpartitioned;
-- Free the names the new table's constraints take.
ALTER TABLE partner_click_events_unpartitioned
    RENAME CONSTRAINT partner_click_events_pkey TO partner_click_events_unpartitioned_pkey;
ALTER TABLE partner_click_events_unpartitioned
    RENAME CONSTRAINT partner_click_events_partner_id_fkey TO partner_click_events_unpartitioned_partner_id_fkey;
ALTER TABLE partner_click_events_unpartitioned
    RENAME CONSTRAINT partner_click_events_event_type_check TO partner_click_events_unpartitioned_event_type_check;
ALTER TABLE partner_click_events_unpartitioned
    RENAME CONSTRAINT partner_click_events_idempotency_key_check TO partner_click_events_unpartitioned_idempotency_key_check;
ALTER INDEX partner_click_events_partner_created_idx RENAME TO partner_click_events_unpartitioned_partner_created_idx;

CREATE TABLE partner_click_events (
    id              BIGINT NOT NULL DEFAULT nextval('partner_click_events_id_seq'),
    partner_id      BIGINT NOT NULL REFERENCES partners (id),
    user_id         BIGINT,
    business_id     BIGINT,
    event_type      TEXT NOT NULL CHECK (event_type IN ('website', 'video')),
    principal       TEXT NOT NULL,
    idempotency_key TEXT CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    fingerprint     TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
ALTER SEQUENCE partner_click_events_id_seq OWNED BY partner_click_events.id;

-- One partition per month of the existing events, through three months ahead.
SELECT partner_click_events_create_partition(m::date)
FROM generate_series(
    date_trunc('month', coalesce((SELECT min(created_at) FROM partner_click_events_unpartitioned), now()) AT TIME ZONE 'UTC'),
    date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months',
    interval '1 month') AS m;

INSERT INTO partner_click_events
    (id, partner_id, user_id, business_id, event_type, principal, idempotency_key, fingerprint, created_at)
SELECT id, partner_id, user_id, business_id, event_type, principal, idempotency_key, fingerprint, created_at
FROM partner_click_events_unpartitioned;

CREATE TABLE partner_click_requests (
    principal       TEXT NOT NULL,
    idempotency_key TEXT NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    event_id        BIGINT NOT NULL,
    fingerprint     TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (principal, idempotency_key)
);
INSERT INTO partner_click_requests (principal, idempotency_key, event_id, fingerprint, created_at)
SELECT principal, idempotency_key, id, fingerprint, created_at
FROM partner_click_events_unpartitioned
WHERE idempotency_key IS NOT NULL;
-- Retention prunes keys with their month.
CREATE INDEX partner_click_requests_created_idx ON partner_click_requests (created_at);

DROP TABLE partner_click_events_unpartitioned;

-- A partner's events and a business's events in a time range, newest first (id breaks ties).
CREATE INDEX partner_click_events_partner_created_idx ON partner_click_events (partner_id, created_at, id);
CREATE INDEX partner_click_events_business_created_idx ON partner_click_events (business_id, created_at, id)
    WHERE business_id IS NOT NULL;
