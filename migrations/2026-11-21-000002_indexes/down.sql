DROP INDEX partners_wholesalers_name_idx;
DROP INDEX partners_available_name_idx;
DROP INDEX partners_name_id_idx;
DROP INDEX partners_country_codes_idx;
DROP INDEX partners_wholesaler_categories_idx;
DROP INDEX partners_categories_idx;
DROP INDEX partners_name_trgm_idx;
DROP EXTENSION IF EXISTS pg_trgm;
