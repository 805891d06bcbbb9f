DROP TABLE api_keys;
DROP TABLE partner_click_events;
DROP TABLE partner_users;
DROP TABLE partner_preferences;
DROP TABLE partner_integrations;
DROP TABLE partners;
DROP TABLE users;
DROP TABLE businesses;
