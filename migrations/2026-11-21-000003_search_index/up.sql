-- Name search combined with the category and country filters in one GIN index: the bitmap then
-- holds only rows matching all three, so far fewer heap pages are visited than with a
-- name-only trigram index followed by a filter.
DROP INDEX partners_name_trgm_idx;
CREATE INDEX partners_search_idx ON partners
    USING gin (lower(name) gin_trgm_ops, categories, country_codes)
    WHERE deleted_at IS NULL;
