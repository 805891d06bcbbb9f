-- Facets: every (category, country) pair of a partner as one `category@CC` token. A list filtered
-- on categories and countries asks the search index for the pairs (`facets && '{pos@DE, …}'`)
-- instead of intersecting the whole posting lists of each category and each country: one small
-- list per pair is decoded instead of the lists of the most common categories and countries,
-- which hold tens of thousands of rows each. Country codes are two letters, so the token is
-- unambiguous. Recomputed only when categories or country codes change (not on counter updates).
CREATE FUNCTION partner_facets(categories text[], country_codes text[]) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT coalesce(array_agg(DISTINCT c || '@' || cc), '{}')
          FROM unnest(categories) AS c CROSS JOIN unnest(country_codes) AS cc $$;

ALTER TABLE partners ADD COLUMN facets TEXT[] NOT NULL
    GENERATED ALWAYS AS (partner_facets(categories, country_codes)) STORED;

DROP INDEX partners_search_idx;
CREATE INDEX partners_search_idx ON partners
    USING gin (lower(name) gin_trgm_ops, categories, country_codes, facets)
    WHERE deleted_at IS NULL;
