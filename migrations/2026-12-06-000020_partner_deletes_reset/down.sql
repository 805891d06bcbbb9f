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
