DROP INDEX partners_tags_idx;
