-- Lists filter on tags (`filter[tags]`: any of, `&&`; `filter[all_tags]`: all of, `@>`): a GIN
-- index answers both. fastupdate off, as for the other GIN indexes (migration 7): tags change on
-- admin writes only, and a search should not read a pending list.
CREATE INDEX partners_tags_idx ON partners USING gin (tags) WITH (fastupdate = off);
