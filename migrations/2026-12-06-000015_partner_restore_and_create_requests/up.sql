-- Restore and idempotent creates (issue 22).
--
-- A soft delete frees the partner's external_id (another partner may take it) and keeps the
-- freed value in deleted_external_id, so RestorePartner can give it back when it is still free.
-- Adding a nullable column without a default rewrites nothing.
ALTER TABLE partners ADD COLUMN deleted_external_id TEXT;

-- CreatePartner's request ids (AIP-155), per caller (`principal`, as click events' keys are).
-- A create inserts its row first (ON CONFLICT DO NOTHING): a concurrent create with the same id
-- waits for the first one's commit and then reads its row, so one id makes one partner on any
-- replica. `fingerprint` (SHA-256 of the validated partner) tells a retry from a reuse of the id
-- with another partner; `partner_id` is the partner the first call created (set in the same
-- transaction). Rows older than 24 hours are deleted by the service (src/serving/mod.rs).
CREATE TABLE partner_create_requests (
    principal   TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    partner_id  BIGINT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, request_id)
);
CREATE INDEX partner_create_requests_created_at_idx ON partner_create_requests (created_at);
