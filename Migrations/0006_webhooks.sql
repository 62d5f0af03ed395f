-- Webhooks.

-- The configured admin key (QUORIX_ADMIN_KEY) has no api_keys row; its events have no owner,
-- and so do its webhooks.
ALTER TABLE webhooks ALTER COLUMN owner_key_id DROP NOT NULL;
ALTER TABLE webhooks ADD CONSTRAINT webhooks_event_types_check CHECK (cardinality(event_types) >= 1);
-- Webhooks are looked up by owner (lists; the delivery triggers).
CREATE INDEX webhooks_live_by_owner ON webhooks (owner_key_id) WHERE deleted_at IS NULL;
