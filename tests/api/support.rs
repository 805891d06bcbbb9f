//! Test harness: a database per test cloned from a migrated template (dropped afterwards), the real
//! server on 127.0.0.1:0, generated clients, and a small world of businesses, users and keys.

use std::sync::OnceLock;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use partners::app::{self, RunningApp};
use partners::config::{DbConfig, ServerLimits};
use partners::grpc::pb;
use partners::grpc::pb::partner_admin_service_client::PartnerAdminServiceClient;
use partners::grpc::pb::partner_service_client::PartnerServiceClient;
use partners::model::{api_key, business};
use partners::{auth, db};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use uuid::Uuid;

/// Server URL (without database) of the Postgres the tests use.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_SERVER_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

fn admin_conn() -> PgConnection {
    let url = format!("{}/postgres", server_url());
    PgConnection::establish(&url).unwrap_or_else(|e| {
        panic!(
            "cannot reach Postgres at {url}: {e}\n\
             start it with `pg_ctlcluster --skip-systemctl-redirect 15 main start` \
             or set TEST_DATABASE_SERVER_URL"
        )
    })
}

/// Name of the migrated template database (created once per test process run, race-safe).
fn template() -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let name = format!("partners_tpl_{}", std::process::id());
        let mut conn = admin_conn();
        drop_stale_templates(&mut conn);
        conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .expect("drop old template");
        conn.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create template");
        let config = DbConfig::for_url(format!("{}/{name}", server_url()));
        db::run_migrations(&config).expect("migrate template");
        name
    })
}

/// Drops templates left by test processes that no longer run.
fn drop_stale_templates(conn: &mut PgConnection) {
    use diesel::RunQueryDsl;
    use diesel::sql_types::Text;
    #[derive(diesel::QueryableByName)]
    struct Db {
        #[diesel(sql_type = Text)]
        datname: String,
    }
    let stale: Vec<Db> = diesel::sql_query(
        "SELECT datname FROM pg_database WHERE datname LIKE 'partners\\_tpl\\_%'",
    )
    .load(conn)
    .unwrap_or_default();
    for db in stale {
        let pid = db.datname.trim_start_matches("partners_tpl_");
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = conn.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                db.datname
            ));
        }
    }
}

/// A database of its own, dropped on drop.
pub struct TestDb {
    pub name: String,
    pub url: String,
    /// Server URL (without database) the database lives on.
    server: String,
}

impl TestDb {
    pub fn new() -> TestDb {
        let template = template();
        let name = format!("partners_t_{}", Uuid::new_v4().simple());
        admin_conn()
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .expect("clone template");
        TestDb {
            url: format!("{}/{name}", server_url()),
            name,
            server: server_url(),
        }
    }

    /// A database on another server (e.g. a private cluster), created and migrated as
    /// `partners serve` does it (no template there).
    pub fn migrated_on(server: &str) -> TestDb {
        let name = format!("partners_t_{}", Uuid::new_v4().simple());
        let url = format!("{server}/{name}");
        let config = DbConfig::for_url(&url);
        db::create_database_if_missing(&config).expect("create database");
        db::run_migrations(&config).expect("migrate");
        TestDb {
            name,
            url,
            server: server.to_owned(),
        }
    }

    /// A name for a database on the shared server that nobody created yet (dropped with the
    /// handle if something creates it).
    pub fn uncreated() -> TestDb {
        let name = format!("partners_t_{}", Uuid::new_v4().simple());
        TestDb {
            url: format!("{}/{name}", server_url()),
            name,
            server: server_url(),
        }
    }

    pub fn conn(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("connect test db")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Ok(mut conn) = PgConnection::establish(&format!("{}/postgres", self.server)) else {
            return;
        };
        let _ = conn.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// Businesses, users and keys every test starts with.
pub struct World {
    pub business_a: Uuid,
    pub business_b: Uuid,
    pub user_a: Uuid,
    pub user_a2: Uuid,
    pub user_b: Uuid,
    pub service_key: String,
    pub user_key_a: String,
    pub user_key_a2: String,
    pub user_key_b: String,
}

/// Creates the businesses, users and keys of a [`World`] in the database of `conn`.
pub fn make_world(conn: &mut PgConnection) -> World {
    let (business_a, business_b) = (Uuid::new_v4(), Uuid::new_v4());
    let a = business::upsert(conn, business_a, "Alpha Foods", Some("DE")).expect("business a");
    let b = business::upsert(conn, business_b, "Beta Bar", Some("GB")).expect("business b");
    let (user_a, user_a2, user_b) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let ua = business::upsert_user(conn, user_a, a.id, "ann@alpha.example", "Ann").expect("user a");
    let ua2 =
        business::upsert_user(conn, user_a2, a.id, "abe@alpha.example", "Abe").expect("user a2");
    let ub = business::upsert_user(conn, user_b, b.id, "bea@beta.example", "Bea").expect("user b");
    let mut key = |user: Option<i64>, name: &str| {
        let k = auth::generate_key().expect("key");
        api_key::insert(conn, &k.prefix, &k.secret_hash, user, name).expect("insert key");
        k.key
    };
    World {
        service_key: key(None, "tests"),
        user_key_a: key(Some(ua.id), "ann"),
        user_key_a2: key(Some(ua2.id), "abe"),
        user_key_b: key(Some(ub.id), "bea"),
        business_a,
        business_b,
        user_a,
        user_a2,
        user_b,
    }
}

/// A gRPC channel to a server of the tests.
pub async fn channel_to(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

/// A running server on its own database.
pub struct TestApp {
    pub db: TestDb,
    pub world: World,
    pub app: Option<RunningApp>,
    pub channel: Channel,
}

impl TestApp {
    pub async fn start() -> TestApp {
        Self::start_with(ServerLimits::default()).await
    }

    pub async fn start_with(limits: ServerLimits) -> TestApp {
        Self::start_with_db(limits, |db| DbConfig::for_url(&db.url)).await
    }

    /// Starts with a database configuration derived from the test database (e.g. via a proxy).
    pub async fn start_with_db(
        limits: ServerLimits,
        config: impl FnOnce(&TestDb) -> DbConfig,
    ) -> TestApp {
        let db = TestDb::new();
        let db_config = config(&db);
        Self::start_on(db, limits, &db_config).await
    }

    /// Starts on `db` (already migrated) with `db_config`, after creating the world there.
    pub async fn start_on(db: TestDb, limits: ServerLimits, db_config: &DbConfig) -> TestApp {
        let world = make_world(&mut db.conn());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let http = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind http");
        let app = app::start(db_config, &limits, listener, Some(http))
            .await
            .expect("start app");
        let channel = channel_to(app.grpc_addr).await;
        TestApp {
            db,
            world,
            app: Some(app),
            channel,
        }
    }

    pub fn grpc_addr(&self) -> std::net::SocketAddr {
        self.app.as_ref().expect("running").grpc_addr
    }

    /// Base URL of the REST gateway.
    pub fn http(&self) -> String {
        let addr = self
            .app
            .as_ref()
            .expect("running")
            .http_addr
            .expect("gateway started");
        format!("http://{addr}")
    }

    pub fn client(&self) -> PartnerServiceClient<Channel> {
        PartnerServiceClient::new(self.channel.clone())
    }

    pub fn admin(&self) -> PartnerAdminServiceClient<Channel> {
        PartnerAdminServiceClient::new(self.channel.clone())
    }

    /// Creates a partner through the admin API.
    pub async fn partner(&self, partner: pb::Partner) -> pb::Partner {
        self.admin()
            .create_partner(with_key(
                pb::CreatePartnerRequest {
                    partner: Some(partner),
                    ..Default::default()
                },
                &self.world.service_key,
            ))
            .await
            .expect("create partner")
            .into_inner()
    }

    /// Creates a partner with a name and categories (available, active).
    pub async fn simple_partner(&self, name: &str, categories: &[&str]) -> pb::Partner {
        self.partner(pb::Partner {
            name: name.to_owned(),
            categories: categories.iter().map(|c| (*c).to_owned()).collect(),
            active: true,
            status: pb::PartnerStatus::Available as i32,
            ..Default::default()
        })
        .await
    }

    /// Renames a partner through the admin API (a name-only field mask).
    pub async fn rename(&self, id: i64, name: &str) -> pb::Partner {
        self.admin()
            .update_partner(with_key(
                pb::UpdatePartnerRequest {
                    partner: Some(pb::Partner {
                        id,
                        name: name.to_owned(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["name".into()],
                    }),
                },
                &self.world.service_key,
            ))
            .await
            .expect("rename")
            .into_inner()
    }

    pub async fn prefer(&self, business: Uuid, partner_id: i64) {
        self.admin()
            .set_partner_preference(with_key(
                pb::SetPartnerPreferenceRequest {
                    partner_id,
                    business_uuid: business.to_string(),
                    preferred: true,
                },
                &self.world.service_key,
            ))
            .await
            .expect("prefer");
    }

    pub async fn integrate(&self, business: Uuid, partner_id: i64, status: pb::IntegrationStatus) {
        self.admin()
            .set_partner_integration(with_key(
                pb::SetPartnerIntegrationRequest {
                    partner_id,
                    business_uuid: business.to_string(),
                    status: status as i32,
                },
                &self.world.service_key,
            ))
            .await
            .expect("integrate");
    }

    pub async fn connect(&self, key: &str, partner_id: i64) -> pb::Partner {
        self.client()
            .connect_user(with_key(pb::ConnectUserRequest { id: partner_id }, key))
            .await
            .expect("connect")
            .into_inner()
    }

    /// One integer from SQL, for asserting stored state.
    pub fn count(&self, sql: &str) -> i64 {
        use diesel::RunQueryDsl;
        use diesel::sql_types::BigInt;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        diesel::sql_query(sql)
            .get_result::<N>(&mut self.db.conn())
            .expect("count query")
            .n
    }

    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await.expect("clean shutdown");
        }
    }
}

/// Holds `LOCK TABLE <table> IN ACCESS EXCLUSIVE MODE` from its own connection until `release`d
/// (or dropped, which ends the connection): queries on that table block inside Postgres.
pub struct TableLock {
    conn: PgConnection,
}

impl TableLock {
    pub fn take(url: &str, table: &str) -> TableLock {
        let mut conn = PgConnection::establish(url).expect("lock connection");
        conn.batch_execute(&format!(
            "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
        ))
        .expect("lock");
        TableLock { conn }
    }

    pub fn release(mut self) {
        self.conn.batch_execute("COMMIT").expect("unlock");
    }
}

/// Wraps a message with `authorization: Bearer <key>`.
pub fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {key}")).expect("metadata"),
    );
    request
}

/// Like [`with_key`], acting for a user (service keys).
pub fn as_user<T>(message: T, key: &str, user: Uuid) -> Request<T> {
    let mut request = with_key(message, key);
    request.metadata_mut().insert(
        "x-user-uuid",
        MetadataValue::try_from(user.to_string()).expect("metadata"),
    );
    request
}

/// Asserts an INVALID_ARGUMENT naming exactly `fields`, with the ErrorInfo reason.
pub fn assert_invalid(status: &Status, fields: &[&str]) {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let got: Vec<&str> = details
        .bad_request()
        .expect("BadRequest details")
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(got, fields, "{status:?}");
    assert_eq!(
        details.error_info().expect("ErrorInfo").reason,
        "INVALID_ARGUMENT"
    );
}

/// Asserts the code and an ErrorInfo with the given reason.
pub fn assert_code(status: &Status, code: Code, reason: &str) {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), code, "{status:?}");
    let details = status.get_error_details();
    assert_eq!(
        details.error_info().expect("ErrorInfo").reason,
        reason,
        "{status:?}"
    );
}

/// Names of a page of partners, in order.
pub fn names(partners: &[pb::Partner]) -> Vec<String> {
    partners.iter().map(|p| p.name.clone()).collect()
}

/// Replaces timestamps (any `created_at` / `updated_at` string) with "<time>", for whole-document
/// comparisons.
pub fn normalize(mut value: serde_json::Value) -> serde_json::Value {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if (k == "created_at" || k == "updated_at") && v.is_string() {
                        *v = serde_json::Value::String("<time>".into());
                    } else {
                        walk(v);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}

/// `n` ports free on 127.0.0.1 right now (for starting the real binary).
pub fn free_ports(n: usize) -> Vec<u16> {
    (0..n)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .expect("port")
                .local_addr()
                .expect("addr")
                .port()
        })
        .collect()
}

/// A `partners serve` of this build, started by [`spawn_serve`].
pub struct Served {
    pub child: tokio::process::Child,
    pub grpc_port: u16,
    pub http_port: u16,
}

/// Starts `partners serve --no-migrate` on `db_url` on free ports (metrics off, no shutdown
/// delay) with the extra environment `envs`, stderr piped when `capture_stderr`; answers once
/// its `/readyz` succeeds (at most 20 s). The process is killed if dropped.
pub async fn spawn_serve(db_url: &str, envs: &[(&str, &str)], capture_stderr: bool) -> Served {
    let ports = free_ports(2);
    let stderr = if capture_stderr {
        std::process::Stdio::piped()
    } else {
        std::process::Stdio::null()
    };
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_partners"))
        .args([
            "serve",
            "--no-migrate",
            "--grpc-addr",
            &format!("127.0.0.1:{}", ports[0]),
            "--http-addr",
            &format!("127.0.0.1:{}", ports[1]),
        ])
        .env("DATABASE_URL", db_url)
        .env("PARTNERS_METRICS_ADDR", "off")
        .env("PARTNERS_SHUTDOWN_DELAY_MS", "0")
        .envs(envs.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn partners serve");
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    while !http
        .get(format!("http://127.0.0.1:{}/readyz", ports[1]))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "not ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Served {
        child,
        grpc_port: ports[0],
        http_port: ports[1],
    }
}
