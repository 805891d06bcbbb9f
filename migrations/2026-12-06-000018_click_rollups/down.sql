DROP TABLE partner_click_token_key;
DROP TABLE partner_click_rollups;
