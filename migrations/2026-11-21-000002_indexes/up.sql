-- Read-path indexes (DESIGN §9). Every partner read filters on deleted_at IS NULL, so the indexes
-- are partial on live rows.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX partners_name_trgm_idx ON partners USING gin (lower(name) gin_trgm_ops)
    WHERE deleted_at IS NULL;
CREATE INDEX partners_categories_idx ON partners USING gin (categories) WHERE deleted_at IS NULL;
CREATE INDEX partners_wholesaler_categories_idx ON partners USING gin (wholesaler_categories)
    WHERE deleted_at IS NULL;
CREATE INDEX partners_country_codes_idx ON partners USING gin (country_codes) WHERE deleted_at IS NULL;
-- Default order of every list: name, id.
CREATE INDEX partners_name_id_idx ON partners (name, id) WHERE deleted_at IS NULL;
-- ListAvailablePartners: active partners with status available/coming_soon, by name.
CREATE INDEX partners_available_name_idx ON partners (name, id)
    WHERE deleted_at IS NULL AND active AND status IN ('available', 'coming_soon');
-- ListWholesalers: wholesalers by name (deep pages walk this index).
CREATE INDEX partners_wholesalers_name_idx ON partners (name, id)
    WHERE deleted_at IS NULL AND categories @> ARRAY['wholesaler'];
