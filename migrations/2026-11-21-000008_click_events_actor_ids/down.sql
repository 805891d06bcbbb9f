ALTER TABLE partner_click_events
    ADD CONSTRAINT partner_click_events_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    ADD CONSTRAINT partner_click_events_business_id_fkey
        FOREIGN KEY (business_id) REFERENCES businesses (id);
