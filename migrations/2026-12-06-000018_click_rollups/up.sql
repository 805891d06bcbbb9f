-- Click counts per partner x business x event type x hour, written by the click batch statement
-- in the same transaction as the events (src/model/click_event.rs), so that they always equal
-- the events and the partners' counters, and time series never scan raw events. Retention drops
-- event partitions, never rollups; `partners rebuild-click-rollups` recomputes them from the
-- events still kept.
--
-- Why hours: an hour (UTC) lies within one bucket of any time zone whose offset is a whole number
-- of hours, so day/week/month buckets of such zones (most of the world, DST included) are exact
-- sums of hours. In a zone offset by a half or quarter hour (India +05:30, Nepal +05:45, parts of
-- Australia) each hour belongs to the bucket in which it starts, so up to 30 or 45 minutes of
-- clicks at each bucket edge are counted in the neighbouring bucket.
--
-- business_id 0 stands for "no business" (a key of the primary key cannot be null).
CREATE TABLE partner_click_rollups (
    partner_id  BIGINT NOT NULL,
    business_id BIGINT NOT NULL,
    event_type  TEXT NOT NULL CHECK (event_type IN ('website', 'video')),
    hour        TIMESTAMPTZ NOT NULL CHECK (hour = date_trunc('hour', hour, 'UTC')),
    clicks      BIGINT NOT NULL CHECK (clicks >= 0),
    PRIMARY KEY (partner_id, hour, business_id, event_type)
);
-- A business's clicks (top partners, stats in a business's context), and all partners' clicks
-- in a range (top partners for service keys).
CREATE INDEX partner_click_rollups_business_hour_idx
    ON partner_click_rollups (business_id, hour) INCLUDE (partner_id, event_type, clicks);
CREATE INDEX partner_click_rollups_hour_idx
    ON partner_click_rollups (hour) INCLUDE (partner_id, event_type, clicks);

INSERT INTO partner_click_rollups (partner_id, business_id, event_type, hour, clicks)
SELECT partner_id, coalesce(business_id, 0), event_type, date_trunc('hour', created_at, 'UTC'), count(*)
FROM partner_click_events
GROUP BY 1, 2, 3, 4;

-- The key of ListPartnerClickEvents' page tokens (HMAC-SHA256), shared by all replicas so a
-- token from one is good at another; random, made here once.
CREATE TABLE partner_click_token_key (
    only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    secret   TEXT NOT NULL
);
INSERT INTO partner_click_token_key (secret)
VALUES (replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));
