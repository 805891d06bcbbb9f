-- A version of everything a search can match on: the columns of partners that the list filters
-- and the name search read (not the counters, which click events and connects update all the
-- time). The service keeps an in-memory copy of those columns to find a search's candidates
-- without the trigram index (src/search.rs); it trusts that copy only within a statement that
-- also sees the version it was loaded at, so a change made by any process is never missed.
--
-- The version moves in the writing transaction (MVCC: a snapshot sees the version that goes
-- with the rows it sees). The trigger runs BEFORE each statement, so a writer takes the version
-- row's lock before any partner row: partner writes that change search columns are serialised
-- (they are admin calls, rare next to reads), and they cannot deadlock on each other.
-- Writes that skip triggers (session_replication_role = replica, as in `seed-bench`) must call
-- partners_search_changed() themselves.
CREATE TABLE partner_search_state (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    version   BIGINT NOT NULL
);
INSERT INTO partner_search_state (version) VALUES (1);

CREATE FUNCTION partners_search_changed() RETURNS void
    LANGUAGE sql
    AS $$ UPDATE partner_search_state SET version = version + 1 $$;

CREATE FUNCTION partners_search_changed_trigger() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN PERFORM partners_search_changed(); RETURN NULL; END $$;

CREATE TRIGGER partners_search_changed
    BEFORE INSERT OR DELETE OR UPDATE OF id, name, categories, wholesaler_categories,
        country_codes, status, active, deleted_at
    ON partners FOR EACH STATEMENT EXECUTE FUNCTION partners_search_changed_trigger();
CREATE TRIGGER partners_search_truncated
    BEFORE TRUNCATE ON partners FOR EACH STATEMENT EXECUTE FUNCTION partners_search_changed_trigger();
