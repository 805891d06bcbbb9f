CREATE OR REPLACE FUNCTION partners_search_changed_trigger() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN PERFORM partners_search_changed(); RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION partners_search_changed() RETURNS void
    LANGUAGE sql
    AS $$ UPDATE partner_search_state SET version = version + 1 $$;
DROP FUNCTION partners_search_bump();
ALTER TABLE partner_search_state DROP COLUMN reset_version;
DROP TRIGGER partner_changes_links ON partner_users;
DROP TRIGGER partner_changes_preferences ON partner_preferences;
DROP TRIGGER partner_changes_integrations ON partner_integrations;
DROP TRIGGER partner_changes_updated ON partners;
DROP TRIGGER partner_changes_inserted ON partners;
DROP FUNCTION partner_changes_from_links();
DROP FUNCTION partner_changes_from_preferences();
DROP FUNCTION partner_changes_from_integrations();
DROP FUNCTION partner_changes_from_partners();
DROP TABLE partner_changes;
DROP FUNCTION partner_changes_commit_order();
DROP SEQUENCE partner_change_sequence;
DROP TABLE partner_change_state;
