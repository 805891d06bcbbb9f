-- A list the copy answers after the database moved past it is kept when no change logged since
-- touches it (src/serving/lists/exactness.rs). That trusts the change log to hold every change of
-- what lists filter, search and order on. Rows deleted outright (the service only soft-deletes;
-- an operator's DELETE would) leave no change row, so such a statement now counts as a write
-- that skipped the log, as TRUNCATE does: every copy loads in full.
CREATE OR REPLACE FUNCTION partners_search_changed_trigger() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF TG_OP IN ('TRUNCATE', 'DELETE') THEN
            PERFORM partners_search_changed();
        ELSE
            PERFORM partners_search_bump();
        END IF;
        RETURN NULL;
    END
    $$;
