-- Lists in the orders a caller picks with `sort` (DESIGN §4) walk an index instead of sorting every
-- live partner: 100,000 partners took 72-80 ms per page by `created_at`, `updated_at` or
-- `users_count` (a parallel scan of the whole table), against 2-3 ms by name (BENCHMARKS.md).
-- Descending first, with `id` ascending as the tie-break, exactly as the statements order
-- (`ORDER BY p.created_at DESC, p.id`); the ascending orders walk the same index backwards and
-- order the ties by id in small incremental sorts.
--
-- None of these columns changes when a click event bumps the counters, so those updates stay HOT
-- (migration 4). `updated_at` changes on admin updates and `users_count` on connects: those
-- updates now add entries to every index of partners (measured: a connect's update 0.44-0.57 ms
-- before, see BENCHMARKS.md for after). There is deliberately no index on `clicks`: it would make
-- every click batch's counter update non-HOT.
CREATE INDEX partners_created_at_idx ON partners (created_at DESC, id) WHERE deleted_at IS NULL;
CREATE INDEX partners_updated_at_idx ON partners (updated_at DESC, id) WHERE deleted_at IS NULL;
CREATE INDEX partners_users_count_idx ON partners (users_count DESC, id) WHERE deleted_at IS NULL;
