-- Click events are a log of who clicked. The user and business of an event come from the caller's
-- authenticated key (or the user a service key acts for), resolved from the database in the same
-- call, and the service never deletes users or businesses; they are kept as plain ids.
-- The foreign-key checks on them took a KEY SHARE lock on the caller's user and business rows for
-- every event: under load all writers lock the same two rows (one user clicking a lot, or many
-- users of one business), which costs a MultiXact per batch. Measured on the bench data
-- (BENCHMARKS.md): 120 -> 95 µs of Postgres per event, 5.9-6.1k -> 6.3-6.8k events/s.
-- The partner stays a foreign key: the batch statement joins and updates that row anyway.
ALTER TABLE partner_click_events
    DROP CONSTRAINT IF EXISTS partner_click_events_user_id_fkey,
    DROP CONSTRAINT IF EXISTS partner_click_events_business_id_fkey;
