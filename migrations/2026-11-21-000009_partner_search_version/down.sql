DROP TRIGGER partners_search_truncated ON partners;
DROP TRIGGER partners_search_changed ON partners;
DROP FUNCTION partners_search_changed_trigger();
DROP FUNCTION partners_search_changed();
DROP TABLE partner_search_state;
