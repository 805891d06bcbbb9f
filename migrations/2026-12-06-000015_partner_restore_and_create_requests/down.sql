DROP TABLE partner_create_requests;
ALTER TABLE partners DROP COLUMN deleted_external_id;
