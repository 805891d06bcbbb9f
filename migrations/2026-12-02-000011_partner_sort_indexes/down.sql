DROP INDEX partners_users_count_idx;
DROP INDEX partners_updated_at_idx;
DROP INDEX partners_created_at_idx;
