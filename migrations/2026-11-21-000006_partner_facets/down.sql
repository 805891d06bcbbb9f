DROP INDEX partners_search_idx;
ALTER TABLE partners DROP COLUMN facets;
DROP FUNCTION partner_facets(text[], text[]);
CREATE INDEX partners_search_idx ON partners
    USING gin (lower(name) gin_trgm_ops, categories, country_codes)
    WHERE deleted_at IS NULL;
