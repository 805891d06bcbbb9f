ALTER INDEX partners_search_idx RESET (fastupdate);
ALTER INDEX partners_categories_idx RESET (fastupdate);
ALTER INDEX partners_wholesaler_categories_idx RESET (fastupdate);
ALTER INDEX partners_country_codes_idx RESET (fastupdate);
