-- Change events (issue 21): a partner.* change carries the partner as it was after the change,
-- so the event feed, the watch stream and webhooks show that state whenever they are read, not
-- today's row. The trigger of migration 12 writes it from the row it already has in hand
-- (`NEW`, turned into JSON once and used both for the changed fields and the snapshot):
--
--   partner   partner.created | updated | deleted | restored: the partner's columns after the
--             change as a JSON object (`to_jsonb(NEW)` without the derived `facets` and
--             `clicks`); NULL for the other kinds. Read back by `crate::model::change::events`.
--
-- Cost to writers: one JSON object per partner write, which the update path computed already
-- (the changed fields compare OLD and NEW as JSON); measured in BENCHMARKS.md ("Change events").
-- Rows written before this migration have no snapshot: their events carry no partner.
ALTER TABLE partner_changes ADD COLUMN partner JSONB;

CREATE OR REPLACE FUNCTION partner_changes_from_partners() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    DECLARE
        kind TEXT;
        fields TEXT[] := '{}';
        after JSONB := to_jsonb(NEW);
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
            FROM jsonb_each(to_jsonb(OLD)) o JOIN jsonb_each(after) n USING (key)
            WHERE o.value IS DISTINCT FROM n.value
              AND o.key NOT IN ('website_clicks', 'video_clicks', 'clicks', 'users_count',
                                'facets', 'updated_at');
            IF fields = '{}' THEN
                RETURN NULL; -- only updated_at moved: nothing a reader would see differently
            END IF;
        END IF;
        INSERT INTO partner_changes (kind, partner_id, changed_fields, partner)
        VALUES (kind, NEW.id, fields, after - 'facets' - 'clicks');
        RETURN NULL;
    END
    $$;
