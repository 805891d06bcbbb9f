DROP TRIGGER partner_preferences_truncated ON partner_preferences;
DROP TRIGGER partner_preferences_updated ON partner_preferences;
DROP TRIGGER partner_preferences_deleted ON partner_preferences;
DROP TRIGGER partner_preferences_inserted ON partner_preferences;
DROP FUNCTION partner_preferences_changed_trigger();
DROP FUNCTION partner_preferences_changed(BIGINT[]);
ALTER TABLE businesses DROP COLUMN preferences_version;
DROP SEQUENCE partner_preference_version_seq;
