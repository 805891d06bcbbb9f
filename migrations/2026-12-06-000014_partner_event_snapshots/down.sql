CREATE OR REPLACE FUNCTION partner_changes_from_partners() RETURNS trigger
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
ALTER TABLE partner_changes DROP COLUMN partner;
