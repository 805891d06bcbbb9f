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

#[test]
fn migrations_apply_revert_and_reapply() {
    let name = format!("partners_mig_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{}/{name}", server_url());
    let config = DbConfig::for_url(&url);
    db::create_database_if_missing(&config).expect("create database");
    assert_eq!(db::run_migrations(&config).expect("migrate"), 6);
    assert_eq!(
        db::run_migrations(&config).expect("migrate again"),
        0,
        "idempotent"
    );
    let mut conn = PgConnection::establish(&url).expect("connect");
    assert_eq!(table_count(&mut conn), 8);
    conn.revert_all_migrations(db::MIGRATIONS)
        .expect("revert all");
    assert_eq!(table_count(&mut conn), 0);
    assert_eq!(db::run_migrations(&config).expect("re-apply"), 6);
    assert_eq!(table_count(&mut conn), 8);
    drop(conn);
    let mut admin = PgConnection::establish(&format!("{}/postgres", server_url())).expect("admin");
    admin
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .expect("drop");
}
