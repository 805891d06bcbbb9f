-- A partner-user link carries the user's business, so `include=users` for a business reads only
-- that business's links of the page's partners (instead of every user of the business). The
-- composite foreign key keeps it equal to the user's business, also when a user moves.
ALTER TABLE users ADD CONSTRAINT users_id_business_id_key UNIQUE (id, business_id);

ALTER TABLE partner_users ADD COLUMN business_id BIGINT;
UPDATE partner_users pu SET business_id = u.business_id FROM users u WHERE u.id = pu.user_id;
ALTER TABLE partner_users ALTER COLUMN business_id SET NOT NULL;
ALTER TABLE partner_users
    ADD CONSTRAINT partner_users_user_business_fkey FOREIGN KEY (user_id, business_id)
        REFERENCES users (id, business_id) ON UPDATE CASCADE;

CREATE INDEX partner_users_partner_business_idx ON partner_users (partner_id, business_id, user_id);
