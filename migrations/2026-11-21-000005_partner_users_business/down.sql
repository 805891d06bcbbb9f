DROP INDEX partner_users_partner_business_idx;
ALTER TABLE partner_users DROP CONSTRAINT partner_users_user_business_fkey;
ALTER TABLE partner_users DROP COLUMN business_id;
ALTER TABLE users DROP CONSTRAINT users_id_business_id_key;
