-- The lists' SQL path (taken when the in-memory copy is off, stale or steps aside) answers from
-- two narrow tables that triggers keep equal to partners and partner_preferences in the writing
-- transaction, so any snapshot sees them agree with the rows they derive from.
--
-- partner_list_groups: the live partners counted per combination of what the unsearched lists
-- filter on without a country (categories, wholesaler categories, status, active). A list's
-- exact total is the sum over the groups its filters match: ~800-1,500 rows on the bench data
-- instead of up to 100,000 partners. Counting the partners themselves took 12-24 ms even as an
-- index-only scan with every page all-visible (and the click counters keep clearing the
-- visibility map of partners, migration 4), while the copy answers in ~1 ms.
--
-- partner_preferred_rows: each business's preferred live partners with their names, so the
-- default order of ListPartners (the business's preferred partners first, then name, id) walks
-- `(business_id, name, partner_id)` for the preferred part instead of looking up and sorting
-- every preferred partner (business 1 prefers 2,993: 4-9 ms, or a hash join of all partners);
-- the other part walks partners_name_id_idx with an anti-join on the preferences.
--
-- Measured on the bench data (100,000 partners; business 1 prefers 2,993), EXPLAIN ANALYZE of
-- the SQL path's statements before -> after, warm cache (BENCHMARKS.md, notes of issue 18):
--   ListPartners default order, page 1: page 62 ms (a sort of every live partner) -> 2.0 ms,
--     count 26 ms -> 0.6 ms (now inside the page's statement);
--   the same with categories=[accounting]: page 60 -> 3.0 ms, count 44 -> 0.8 ms;
--   preferred=true: page 40 -> 2.7 ms, count 33 -> 1.2 ms;
--   ListAvailablePartners / newest first: count 24-25 ms -> 0.6-0.7 ms (pages walk an index,
--     as before); ListWholesalers: count 1.0-1.6 ms -> 0.6-1.2 ms.
-- Still a scan: counts with a country filter and no search (a country is not a group column:
-- it would multiply the groups by the country combinations), and deep pages of a filter that
-- few partners match (the walk skips what does not match, as every index walk does).
--
-- Upkeep: partner writes that change a group column are already serialised on the search
-- version's row (migration 9), so the groups see one writer at a time; click counter updates
-- name none of these columns and fire nothing. Writes that skip triggers
-- (`session_replication_role = replica`, as the load generator's seed) call
-- partners_search_changed() as before (migration 9): the trigger on partner_search_state below
-- fires in every replication role and, in replica mode only, rebuilds both tables.

CREATE TABLE partner_list_groups (
    categories            TEXT[]  NOT NULL,
    wholesaler_categories TEXT[]  NOT NULL,
    status                TEXT    NOT NULL,
    active                BOOLEAN NOT NULL,
    partners              BIGINT  NOT NULL CHECK (partners >= 0),
    PRIMARY KEY (categories, wholesaler_categories, status, active)
) WITH (autovacuum_vacuum_scale_factor = 0.1, autovacuum_vacuum_threshold = 200);

CREATE TABLE partner_preferred_rows (
    business_id           BIGINT  NOT NULL,
    partner_id            BIGINT  NOT NULL,
    -- partners.name, in the same (database default) collation, so both order alike.
    name                  TEXT    NOT NULL,
    categories            TEXT[]  NOT NULL,
    wholesaler_categories TEXT[]  NOT NULL,
    country_codes         TEXT[]  NOT NULL,
    status                TEXT    NOT NULL,
    active                BOOLEAN NOT NULL,
    PRIMARY KEY (partner_id, business_id)
) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.05);
-- The preferred part of a page: a business's preferred partners in list order.
CREATE INDEX partner_preferred_rows_order_idx
    ON partner_preferred_rows (business_id, name, partner_id);

-- Everything rebuilt from the source tables (both tables' rows deleted, not truncated, so readers
-- are never blocked).
CREATE FUNCTION partner_lists_rebuild() RETURNS void
    LANGUAGE sql
    AS $$
    DELETE FROM partner_list_groups;
    INSERT INTO partner_list_groups
        SELECT categories, wholesaler_categories, status, active, count(*)
        FROM partners WHERE deleted_at IS NULL
        GROUP BY categories, wholesaler_categories, status, active;
    DELETE FROM partner_preferred_rows;
    INSERT INTO partner_preferred_rows
        SELECT pp.business_id, pp.partner_id, p.name, p.categories, p.wholesaler_categories,
               p.country_codes, p.status, p.active
        FROM partner_preferences pp JOIN partners p ON p.id = pp.partner_id
        WHERE p.deleted_at IS NULL;
    $$;

-- A live partner enters (n = 1) or leaves (n = -1) its group. A group left with no partner keeps
-- its row at 0 (the rows are bounded by the combinations ever used; a rebuild drops them). A
-- missing row or a negative count would mean the groups were out of step with partners: the
-- write fails rather than leave every later total wrong.
CREATE FUNCTION partner_list_groups_move(p partners, n BIGINT) RETURNS void
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF n > 0 THEN
            INSERT INTO partner_list_groups AS g
            VALUES (p.categories, p.wholesaler_categories, p.status, p.active, n)
            ON CONFLICT (categories, wholesaler_categories, status, active)
            DO UPDATE SET partners = g.partners + excluded.partners;
        ELSE
            UPDATE partner_list_groups g SET partners = g.partners + n
            WHERE g.categories = p.categories AND g.wholesaler_categories = p.wholesaler_categories
              AND g.status = p.status AND g.active = p.active;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'partner_list_groups has no group for partner %', p.id
                    USING HINT = 'SELECT partner_lists_rebuild()';
            END IF;
        END IF;
    END
    $$;

CREATE FUNCTION partner_lists_follow_partners() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    DECLARE
        regrouped BOOLEAN := TG_OP <> 'UPDATE'
            OR (OLD.categories, OLD.wholesaler_categories, OLD.status, OLD.active,
                OLD.deleted_at IS NULL)
               IS DISTINCT FROM
               (NEW.categories, NEW.wholesaler_categories, NEW.status, NEW.active,
                NEW.deleted_at IS NULL);
    BEGIN
        IF regrouped AND TG_OP IN ('UPDATE', 'DELETE') AND OLD.deleted_at IS NULL THEN
            PERFORM partner_list_groups_move(OLD, -1);
        END IF;
        IF regrouped AND TG_OP IN ('INSERT', 'UPDATE') AND NEW.deleted_at IS NULL THEN
            PERFORM partner_list_groups_move(NEW, 1);
        END IF;
        -- The preferences of a partner changed, deleted or restored (a new partner has none).
        IF TG_OP = 'UPDATE' THEN
            DELETE FROM partner_preferred_rows WHERE partner_id = OLD.id;
            IF NEW.deleted_at IS NULL THEN
                INSERT INTO partner_preferred_rows
                    SELECT pp.business_id, pp.partner_id, NEW.name, NEW.categories,
                           NEW.wholesaler_categories, NEW.country_codes, NEW.status, NEW.active
                    FROM partner_preferences pp WHERE pp.partner_id = NEW.id;
            END IF;
        END IF;
        RETURN NULL;
    END
    $$;

-- Row triggers naming their columns: the counter updates of click events and connects, which
-- name only the counters, do not fire them.
CREATE TRIGGER partner_lists_inserted AFTER INSERT OR DELETE ON partners
    FOR EACH ROW EXECUTE FUNCTION partner_lists_follow_partners();
CREATE TRIGGER partner_lists_updated
    AFTER UPDATE OF name, categories, wholesaler_categories, country_codes, status, active,
        deleted_at
    ON partners
    FOR EACH ROW
    WHEN ((OLD.name, OLD.categories, OLD.wholesaler_categories, OLD.country_codes, OLD.status,
           OLD.active, OLD.deleted_at IS NULL)
          IS DISTINCT FROM
          (NEW.name, NEW.categories, NEW.wholesaler_categories, NEW.country_codes, NEW.status,
           NEW.active, NEW.deleted_at IS NULL))
    EXECUTE FUNCTION partner_lists_follow_partners();

CREATE FUNCTION partner_lists_follow_preferences() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            DELETE FROM partner_preferred_rows
            WHERE partner_id = OLD.partner_id AND business_id = OLD.business_id;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO partner_preferred_rows
                SELECT NEW.business_id, p.id, p.name, p.categories, p.wholesaler_categories,
                       p.country_codes, p.status, p.active
                FROM partners p WHERE p.id = NEW.partner_id AND p.deleted_at IS NULL;
        END IF;
        RETURN NULL;
    END
    $$;

CREATE TRIGGER partner_lists_preferences AFTER INSERT OR UPDATE OR DELETE ON partner_preferences
    FOR EACH ROW EXECUTE FUNCTION partner_lists_follow_preferences();

CREATE FUNCTION partner_lists_truncated() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF TG_TABLE_NAME = 'partners' THEN
            TRUNCATE partner_list_groups;
        END IF;
        TRUNCATE partner_preferred_rows;
        RETURN NULL;
    END
    $$;

CREATE TRIGGER partner_lists_partners_truncated AFTER TRUNCATE ON partners
    FOR EACH STATEMENT EXECUTE FUNCTION partner_lists_truncated();
CREATE TRIGGER partner_lists_preferences_truncated AFTER TRUNCATE ON partner_preferences
    FOR EACH STATEMENT EXECUTE FUNCTION partner_lists_truncated();

-- A writer in replica mode (triggers off) moves the search version itself (migration 9): then,
-- and only then, the tables are rebuilt. `ENABLE ALWAYS` makes this trigger fire in that mode.
-- (A logical-replication subscriber applies in replica mode too: it would rebuild them on every
-- replicated version change; there, publish neither table and drop this trigger.)
CREATE FUNCTION partner_lists_after_unseen_writes() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF current_setting('session_replication_role') = 'replica' THEN
            PERFORM partner_lists_rebuild();
        END IF;
        RETURN NULL;
    END
    $$;

CREATE TRIGGER partner_lists_rebuilt AFTER UPDATE ON partner_search_state
    FOR EACH ROW EXECUTE FUNCTION partner_lists_after_unseen_writes();
ALTER TABLE partner_search_state ENABLE ALWAYS TRIGGER partner_lists_rebuilt;

SELECT partner_lists_rebuild();
ANALYZE partner_list_groups;
ANALYZE partner_preferred_rows;
