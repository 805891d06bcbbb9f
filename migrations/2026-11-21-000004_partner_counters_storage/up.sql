-- Click and user counters are updated on the partner row: leave room on each page so those
-- updates stay HOT (no index churn), and vacuum often enough that index-only scans over partners
-- keep finding all-visible pages.
ALTER TABLE partners SET (
    fillfactor = 85,
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.05
);
