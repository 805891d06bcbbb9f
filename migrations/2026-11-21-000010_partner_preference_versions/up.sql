-- A version of each business's set of preferred partners. The service caches a business's set
-- (src/preferences.rs) to order and filter a search's matches itself; it trusts the cached set
-- only within a statement that also sees the version it was loaded at, so a preference written
-- by any process is never missed.
--
-- Versions come from one sequence that nothing resets (it is not owned by a column, so not even
-- TRUNCATE ... RESTART IDENTITY restarts it): a business row starts with a fresh value, and every
-- statement that changes its preferences gives it a new one in the writing transaction. A value
-- is never seen twice, so "still at the version I loaded" means "unchanged since".
-- Preference writes of one business are serialised on its row (the API writes one at a time).
CREATE SEQUENCE partner_preference_version_seq;

ALTER TABLE businesses
    ADD COLUMN preferences_version BIGINT NOT NULL DEFAULT nextval('partner_preference_version_seq');

CREATE FUNCTION partner_preferences_changed(business_ids BIGINT[]) RETURNS void
    LANGUAGE sql
    AS $$
    UPDATE businesses SET preferences_version = nextval('partner_preference_version_seq')
    WHERE id = ANY (business_ids)
    $$;

CREATE FUNCTION partner_preferences_changed_trigger() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            PERFORM partner_preferences_changed(ARRAY(SELECT DISTINCT business_id FROM new_rows));
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM partner_preferences_changed(ARRAY(SELECT DISTINCT business_id FROM old_rows));
        ELSIF TG_OP = 'UPDATE' THEN
            PERFORM partner_preferences_changed(ARRAY(
                SELECT business_id FROM old_rows UNION SELECT business_id FROM new_rows));
        ELSE
            PERFORM partner_preferences_changed(ARRAY(SELECT id FROM businesses));
        END IF;
        RETURN NULL;
    END
    $$;

-- A trigger with transition tables serves one event, hence one per event.
CREATE TRIGGER partner_preferences_inserted
    AFTER INSERT ON partner_preferences REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION partner_preferences_changed_trigger();
CREATE TRIGGER partner_preferences_deleted
    AFTER DELETE ON partner_preferences REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION partner_preferences_changed_trigger();
CREATE TRIGGER partner_preferences_updated
    AFTER UPDATE ON partner_preferences REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION partner_preferences_changed_trigger();
CREATE TRIGGER partner_preferences_truncated
    AFTER TRUNCATE ON partner_preferences
    FOR EACH STATEMENT EXECUTE FUNCTION partner_preferences_changed_trigger();
