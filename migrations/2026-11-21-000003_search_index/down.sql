DROP INDEX partners_search_idx;
CREATE INDEX partners_name_trgm_idx ON partners USING gin (lower(name) gin_trgm_ops)
    WHERE deleted_at IS NULL;
