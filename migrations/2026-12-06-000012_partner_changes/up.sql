-- The change log: one row per change of what a list or a partner read shows (partners created,
-- updated, deleted or restored; a business's integration status or preference; a user linked
-- or unlinked; never the click and user counters), appended by triggers in the writing
-- transaction. The service's in-memory copies follow it (src/serving/changes.rs), and it is the
-- source of the change events other services will read. Schema (README "Change log"):
--
--   sequence        the change's position, given at COMMIT in commit order (see below)
--   kind            partner.created | partner.updated | partner.deleted | partner.restored |
--                   partner_integration.updated | partner_preference.updated |
--                   partner_user.connected | partner_user.disconnected
--   partner_id      the partner changed
--   business_id     the business the change is scoped to (integrations, preferences, user links)
--   user_id         the user linked or unlinked
--   changed_fields  for partner.updated: the columns whose values changed
--   occurred_at     when the change was written (clock time of the statement's row)
--
-- Readers walk the log with `WHERE sequence > $last ORDER BY sequence` and never skip a change,
-- also when transactions commit in another order than they wrote: a row is written with no
-- sequence, and a deferred constraint trigger gives it one at COMMIT while holding a
-- transaction-scoped advisory lock, which Postgres releases only after the commit is visible.
-- So a transaction takes its sequence only once every transaction with a smaller one is
-- visible: sequence order is commit order, and a snapshot that sees sequence N sees every
-- sequence below N. (`id`, given at insert, is not: a later id can commit first, the classic
-- trap of `WHERE id > last`; tests/api/changes.rs shows both.) The lock serialises only the
-- commits of transactions that changed the directory (admin writes, preferences, links), for the
-- length of their commit, never click events.
--
-- Every commit that wrote a change also sends `NOTIFY partner_changes`; a listener that misses
-- one catches up at its next read, since the sequence, not the notification, is the cursor.
--
-- Retention: the service deletes rows older than `--change-log-retention-hours` (default 72) in
-- small batches (plain deletes of old rows: writers never wait on them) and records the highest
-- sequence deleted in `partner_change_state.pruned_through`; a reader whose last sequence is
-- below it has missed changes and reloads in full.
CREATE TABLE partner_changes (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sequence       BIGINT UNIQUE,
    kind           TEXT NOT NULL CHECK (kind IN (
                       'partner.created', 'partner.updated', 'partner.deleted', 'partner.restored',
                       'partner_integration.updated', 'partner_preference.updated',
                       'partner_user.connected', 'partner_user.disconnected')),
    partner_id     BIGINT NOT NULL,
    business_id    BIGINT,
    user_id        BIGINT,
    changed_fields TEXT[] NOT NULL DEFAULT '{}',
    occurred_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX partner_changes_occurred_at_idx ON partner_changes (occurred_at);

CREATE TABLE partner_change_state (
    singleton      BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    pruned_through BIGINT NOT NULL DEFAULT 0
);
INSERT INTO partner_change_state DEFAULT VALUES;

CREATE SEQUENCE partner_change_sequence;

-- The advisory lock's key: 'partner_changes' as the first 8 bytes of its md5, a constant.
CREATE FUNCTION partner_changes_commit_order() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        PERFORM pg_advisory_xact_lock(-6851974900521644497);
        UPDATE partner_changes SET sequence = nextval('partner_change_sequence') WHERE id = NEW.id;
        PERFORM pg_notify('partner_changes', '');
        RETURN NULL;
    END
    $$;

CREATE CONSTRAINT TRIGGER partner_changes_sequenced
    AFTER INSERT ON partner_changes DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION partner_changes_commit_order();

-- Partners: created, deleted (deleted_at set), restored (deleted_at cleared), or updated (with
-- the columns that changed). Only updates naming a shown column fire it, so the counter updates
-- of click events and connects do not (they name only the counters).
CREATE FUNCTION partner_changes_from_partners() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    DECLARE
        kind TEXT;
        fields TEXT[] := '{}';
    BEGIN
        IF TG_OP = 'INSERT' THEN
            kind := 'partner.created';
        ELSIF OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN
            kind := 'partner.deleted';
        ELSIF OLD.deleted_at IS NOT NULL AND NEW.deleted_at IS NULL THEN
            kind := 'partner.restored';
        ELSE
            kind := 'partner.updated';
            SELECT coalesce(array_agg(o.key ORDER BY o.key), '{}') INTO fields
            FROM jsonb_each(to_jsonb(OLD)) o JOIN jsonb_each(to_jsonb(NEW)) n USING (key)
            WHERE o.value IS DISTINCT FROM n.value
              AND o.key NOT IN ('website_clicks', 'video_clicks', 'clicks', 'users_count',
                                'facets', 'updated_at');
            IF fields = '{}' THEN
                RETURN NULL; -- only updated_at moved: nothing a reader would see differently
            END IF;
        END IF;
        INSERT INTO partner_changes (kind, partner_id, changed_fields)
        VALUES (kind, NEW.id, fields);
        RETURN NULL;
    END
    $$;

CREATE TRIGGER partner_changes_inserted AFTER INSERT ON partners
    FOR EACH ROW EXECUTE FUNCTION partner_changes_from_partners();
CREATE TRIGGER partner_changes_updated
    AFTER UPDATE OF name, description, email, logo_url, website_url, video_url, categories,
        wholesaler_categories, country_codes, tags, status, active, external_id, metadata,
        deleted_at
    ON partners
    FOR EACH ROW EXECUTE FUNCTION partner_changes_from_partners();

CREATE FUNCTION partner_changes_from_integrations() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND OLD.status IS NOT DISTINCT FROM NEW.status THEN
            RETURN NULL;
        END IF;
        INSERT INTO partner_changes (kind, partner_id, business_id, changed_fields)
        VALUES ('partner_integration.updated', NEW.partner_id, NEW.business_id, '{status}');
        RETURN NULL;
    END
    $$;

CREATE TRIGGER partner_changes_integrations AFTER INSERT OR UPDATE ON partner_integrations
    FOR EACH ROW EXECUTE FUNCTION partner_changes_from_integrations();

CREATE FUNCTION partner_changes_from_preferences() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            INSERT INTO partner_changes (kind, partner_id, business_id)
            VALUES ('partner_preference.updated', OLD.partner_id, OLD.business_id);
        ELSE
            INSERT INTO partner_changes (kind, partner_id, business_id)
            VALUES ('partner_preference.updated', NEW.partner_id, NEW.business_id);
        END IF;
        RETURN NULL;
    END
    $$;

CREATE TRIGGER partner_changes_preferences AFTER INSERT OR DELETE ON partner_preferences
    FOR EACH ROW EXECUTE FUNCTION partner_changes_from_preferences();

CREATE FUNCTION partner_changes_from_links() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            INSERT INTO partner_changes (kind, partner_id, business_id, user_id)
            VALUES ('partner_user.disconnected', OLD.partner_id, OLD.business_id, OLD.user_id);
        ELSE
            INSERT INTO partner_changes (kind, partner_id, business_id, user_id)
            VALUES ('partner_user.connected', NEW.partner_id, NEW.business_id, NEW.user_id);
        END IF;
        RETURN NULL;
    END
    $$;

CREATE TRIGGER partner_changes_links AFTER INSERT OR DELETE ON partner_users
    FOR EACH ROW EXECUTE FUNCTION partner_changes_from_links();

-- Writes that skip triggers (`session_replication_role = replica`, as the load generator's seed
-- does) call partners_search_changed() themselves (migration 9). From now on that also tells the
-- copies to reload in full: such writes leave no change rows to follow. The triggers of
-- migration 9 call the plain bump below instead.
ALTER TABLE partner_search_state ADD COLUMN reset_version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION partners_search_bump() RETURNS void
    LANGUAGE sql
    AS $$ UPDATE partner_search_state SET version = version + 1 $$;

CREATE OR REPLACE FUNCTION partners_search_changed() RETURNS void
    LANGUAGE sql
    AS $$
    UPDATE partner_search_state SET version = version + 1, reset_version = version + 1;
    SELECT pg_notify('partner_changes', 'reset');
    $$;

CREATE OR REPLACE FUNCTION partners_search_changed_trigger() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            PERFORM partners_search_changed();
        ELSE
            PERFORM partners_search_bump();
        END IF;
        RETURN NULL;
    END
    $$;
