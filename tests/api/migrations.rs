//! Migrations apply on an empty database, revert cleanly, and apply again.

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};
use diesel_migrations::MigrationHarness;
use partners::config::DbConfig;
use partners::db;

use crate::support::server_url;

fn table_count(conn: &mut PgConnection) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(
        "SELECT count(*) AS n FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'",
    )
    .get_result::<N>(conn)
    .expect("count tables")
    .n
}

/// Every GIN index on `partners` writes straight into its tree (`fastupdate = off`): searches
/// never read a pending list left by the non-HOT updates of click counters.
fn assert_gin_writes_skip_the_pending_list(conn: &mut PgConnection) {
    #[derive(diesel::QueryableByName)]
    struct Gin {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Text>)]
        options: Vec<String>,
    }
    let indexes: Vec<Gin> = diesel::sql_query(
        "SELECT c.relname::text AS name, coalesce(c.reloptions, '{}') AS options \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam \
         WHERE i.indrelid = 'partners'::regclass AND a.amname = 'gin' ORDER BY 1",
    )
    .load(conn)
    .expect("gin indexes");
    assert_eq!(indexes.len(), 5, "GIN indexes on partners");
    for index in indexes {
        assert!(
            index.options.iter().any(|o| o == "fastupdate=off"),
            "{} has options {:?}",
            index.name,
            index.options
        );
    }
}

#[test]
fn migrations_apply_revert_and_reapply() {
    let name = format!("partners_mig_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{}/{name}", server_url());
    let config = DbConfig::for_url(&url);
    db::create_database_if_missing(&config).expect("create database");
    assert_eq!(db::run_migrations(&config).expect("migrate"), 20);
    assert_eq!(
        db::run_migrations(&config).expect("migrate again"),
        0,
        "idempotent"
    );
    let mut conn = PgConnection::establish(&url).expect("connect");
    // 17 before the click analytics; then the click keys, rollups and token key tables, and the
    // click events' partitions of this month and the next three (information_schema lists each).
    assert_eq!(table_count(&mut conn), 24);
    assert_gin_writes_skip_the_pending_list(&mut conn);
    conn.revert_all_migrations(db::MIGRATIONS)
        .expect("revert all");
    assert_eq!(table_count(&mut conn), 0);
    assert_eq!(db::run_migrations(&config).expect("re-apply"), 20);
    assert_eq!(table_count(&mut conn), 24);
    drop(conn);
    let mut admin = PgConnection::establish(&format!("{}/postgres", server_url())).expect("admin");
    admin
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .expect("drop");
}
