//! Configuration, from command-line flags or environment variables (flags win).

use std::net::SocketAddr;
use std::time::Duration;

use std::collections::HashSet;
use std::net::IpAddr;

use clap::Args;
use url::{Host, Url};

/// Database settings shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct DbConfig {
    /// Postgres URL; the database is created if it does not exist.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://localhost/partners"
    )]
    pub database_url: String,
    /// Maximum pooled connections (also the number of concurrent blocking DB tasks).
    #[arg(long, env = "PARTNERS_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,
    /// How many list queries (searches, filters, deep pages) run on the database at once; 0 = the
    /// number of CPUs + 1 (one more, so the database has work while a finished list's rows are
    /// decoded). More only time-slice the database's cores and stretch every list's latency.
    #[arg(long, env = "PARTNERS_DB_LIST_CONCURRENCY", default_value_t = 0)]
    pub db_list_concurrency: u32,
    /// How long a call waits for a pooled connection before UNAVAILABLE, in milliseconds.
    #[arg(long, env = "PARTNERS_DB_CHECKOUT_TIMEOUT_MS", default_value_t = 3000)]
    pub db_checkout_timeout_ms: u64,
    /// Postgres `statement_timeout` of every connection, in milliseconds.
    #[arg(long, env = "PARTNERS_DB_STATEMENT_TIMEOUT_MS", default_value_t = 5000)]
    pub db_statement_timeout_ms: u64,
    /// TCP connect timeout to Postgres, in seconds.
    #[arg(long, env = "PARTNERS_DB_CONNECT_TIMEOUT_S", default_value_t = 3)]
    pub db_connect_timeout_s: u64,
    /// `tcp_user_timeout` of Postgres connections (unacknowledged data fails the connection), in ms.
    #[arg(long, env = "PARTNERS_DB_TCP_USER_TIMEOUT_MS", default_value_t = 5000)]
    pub db_tcp_user_timeout_ms: u64,
}

pub use crate::webhooks::settings::{Schedule, WebhookSettings, parse_schedule};

impl DbConfig {
    /// The list lane's width: the configured value, else the number of CPUs + 1 (at most the pool).
    pub fn list_concurrency(&self) -> usize {
        let configured = match self.db_list_concurrency {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()) + 1,
            n => n as usize,
        };
        configured.clamp(1, self.db_pool_size.max(1) as usize)
    }

    /// Checkout timeout as a `Duration`.
    pub fn checkout_timeout(&self) -> Duration {
        Duration::from_millis(self.db_checkout_timeout_ms.max(1))
    }

    /// The URL with connection-level timeouts added (unless the URL already sets them). A value
    /// that is not a URL (a libpq `key=value` string) is used as it is.
    pub fn connection_url(&self) -> String {
        let Ok(mut url) = Url::parse(&self.database_url) else {
            return self.database_url.clone();
        };
        let set: HashSet<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        let mut defaults = vec![
            (
                "connect_timeout",
                self.db_connect_timeout_s.max(1).to_string(),
            ),
            ("tcp_user_timeout", self.db_tcp_user_timeout_ms.to_string()),
            ("keepalives_idle", "10".to_owned()),
            ("keepalives_interval", "5".to_owned()),
            ("keepalives_count", "2".to_owned()),
        ];
        // TLS to a database on this machine protects nothing and costs CPU on every call.
        if is_loopback(&url) {
            defaults.push(("sslmode", "disable".to_owned()));
        }
        for (key, value) in defaults {
            if !set.contains(key) {
                url.query_pairs_mut().append_pair(key, &value);
            }
        }
        url.into()
    }
}

/// Whether a Postgres URL points at this machine (loopback address, `localhost`, or a socket).
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        None => true,
        // Hosts of non-special schemes such as `postgres:` stay text, IPv4 addresses included.
        Some(Host::Domain(name)) => {
            name.is_empty()
                || name == "localhost"
                || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
    }
}

/// Settings of `partners serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address of the gRPC listener.
    #[arg(long, env = "PARTNERS_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,
    /// Address of the REST gateway listener.
    #[arg(long, env = "PARTNERS_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// Address of the Prometheus metrics listener (`GET /metrics`); `off` for none.
    #[arg(long, env = "PARTNERS_METRICS_ADDR", default_value = "127.0.0.1:9464")]
    pub metrics_addr: String,
    /// Skip running pending migrations at start-up.
    #[arg(long, env = "PARTNERS_NO_MIGRATE")]
    pub no_migrate: bool,
    #[command(flatten)]
    pub limits: ServerLimits,
}

impl ServeConfig {
    /// The metrics listener's address, `None` when off.
    pub fn metrics_addr(&self) -> crate::error::Result<Option<SocketAddr>> {
        match self.metrics_addr.trim() {
            "" | "off" => Ok(None),
            addr => addr.parse().map(Some).map_err(|_| {
                crate::error::Error::Internal(format!(
                    "--metrics-addr: not an address or `off`: {addr}"
                ))
            }),
        }
    }
}

/// Per-call limits of the servers.
#[derive(Debug, Clone, Args)]
pub struct ServerLimits {
    /// Server-side deadline of every call, in milliseconds (a shorter client deadline wins).
    #[arg(long, env = "PARTNERS_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,
    /// How long in-flight calls may take to finish after SIGTERM/SIGINT, in milliseconds.
    #[arg(long, env = "PARTNERS_DRAIN_TIMEOUT_MS", default_value_t = 10_000)]
    pub drain_timeout_ms: u64,
    /// After SIGTERM/SIGINT, how long the process reports not ready (`/readyz` 503, health
    /// NOT_SERVING) while it goes on serving, before it stops accepting and drains, in
    /// milliseconds: balancers and Kubernetes endpoints drop it meanwhile. HTTP/1.1 answers carry
    /// `Connection: close` from the signal on. A second signal ends the wait.
    #[arg(long, env = "PARTNERS_SHUTDOWN_DELAY_MS", default_value_t = 5_000)]
    pub shutdown_delay_ms: u64,
    /// How long a revoked or newly created key may take to be noticed, in milliseconds.
    #[arg(long, env = "PARTNERS_KEY_CACHE_TTL_MS", default_value_t = 5_000)]
    pub key_cache_ttl_ms: u64,
    /// Calls per second allowed per API key (0 = unlimited).
    #[arg(long, env = "PARTNERS_RATE_LIMIT_PER_SECOND", default_value_t = 20_000)]
    pub rate_limit_per_second: u32,
    /// Origins whose browser apps may call the REST gateway (CORS), comma-separated, e.g.
    /// `https://app.example.com`; none: CORS off.
    #[arg(long, env = "PARTNERS_CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,
    /// Failed authentications per second allowed per client address, on average (0 =
    /// unlimited); past it (and its burst) the address gets RESOURCE_EXHAUSTED / 429.
    #[arg(long, env = "PARTNERS_AUTH_FAILURES_PER_SECOND", default_value_t = 10)]
    pub auth_failures_per_second: u32,
    /// Burst of failed authentications allowed per client address above the rate.
    #[arg(long, env = "PARTNERS_AUTH_FAILURE_BURST", default_value_t = 100)]
    pub auth_failure_burst: u32,
    /// Proxies (load balancers, the standalone gateway) whose `x-forwarded-for` names the
    /// client, comma-separated IP addresses.
    #[arg(long, env = "PARTNERS_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Burst of calls allowed per API key above the rate.
    #[arg(long, env = "PARTNERS_RATE_LIMIT_BURST", default_value_t = 40_000)]
    pub rate_limit_burst: u32,
    /// Replicas sharing the per-key limits: each process allows its share, the rate and the
    /// burst divided by this number (rounded down, at least 1), so that N replicas behind a
    /// balancer that spreads a key's calls evenly keep the configured rate for the whole service.
    #[arg(
        long,
        env = "PARTNERS_RATE_LIMIT_REPLICAS",
        default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub rate_limit_replicas: u32,
    /// Concurrent click-event writers (group commit; events are sharded by partner).
    #[arg(long, env = "PARTNERS_CLICK_WRITERS", default_value_t = 2)]
    pub click_writers: usize,
    /// Longest a click writer holding only a few events waits for more before it writes them
    /// (group commit of clicks that arrive one a call); 0 writes at once
    /// (`src/serving/click_ingest.rs`).
    #[arg(long, env = "PARTNERS_CLICK_LINGER_MS", default_value_t = 20)]
    pub click_linger_ms: u64,
    /// GetPartner statements running at once; concurrent reads wait for a turn and share the next
    /// statement. 0 = half the number of CPUs, at least 1 (fewer, larger batches cost the
    /// database less per read; on 2 cores one statement at a time answered the most reads).
    #[arg(long, env = "PARTNERS_READ_BATCHES", default_value_t = 0)]
    pub read_batches: usize,
    /// Most live partners the lists' in-memory copy (`src/serving/lists`) holds, about 150 bytes
    /// each; with more, lists are answered by SQL alone. 0 turns the copy off.
    #[arg(
        long,
        env = "PARTNERS_SEARCH_INDEX_MAX_PARTNERS",
        default_value_t = 1_000_000
    )]
    pub search_index_max_partners: u64,
    /// How long the change log keeps a change, in hours (at least 1). A copy (on another
    /// replica, after a long outage) that falls further behind loads in full.
    #[arg(
        long,
        env = "PARTNERS_CHANGE_LOG_RETENTION_HOURS",
        default_value_t = 72,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub change_log_retention_hours: u32,
    /// How many months click events are kept (0: all): a month's partition is dropped once all
    /// of it is older than that. Counters and rollups are never touched.
    #[arg(long, env = "PARTNERS_CLICK_RETENTION_MONTHS", default_value_t = 0)]
    pub click_retention_months: u32,
    /// How long a WatchPartnerEvents stream may stay silent before it sends a heartbeat, in
    /// milliseconds (idle streams survive proxies that close quiet connections).
    #[arg(long, env = "PARTNERS_EVENTS_HEARTBEAT_MS", default_value_t = 15_000)]
    pub events_heartbeat_ms: u64,
    /// How long the REST gateway gives a client to send a request's header, in milliseconds: a
    /// connection that sends nothing, or not a whole HTTP/1 header, within it is closed (slow
    /// clients). Also how long a kept-alive HTTP/1 connection may stay idle.
    #[arg(
        long,
        env = "PARTNERS_HTTP_HEADER_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub http_header_timeout_ms: u64,
    /// Most connections the REST gateway holds at once; further clients wait in the listen
    /// backlog until one closes.
    #[arg(long, env = "PARTNERS_HTTP_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub http_max_connections: usize,
    /// Webhook deliveries.
    #[command(flatten)]
    pub webhooks: WebhookSettings,
}

impl ServerLimits {
    /// Request timeout as a `Duration`.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.max(1))
    }

    /// The watch streams' heartbeat interval (at least 10 ms).
    pub fn events_heartbeat(&self) -> Duration {
        Duration::from_millis(self.events_heartbeat_ms.max(10))
    }

    /// Drain deadline as a `Duration`.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }

    /// The not-ready delay before the listeners close, as a `Duration`.
    pub fn shutdown_delay(&self) -> Duration {
        Duration::from_millis(self.shutdown_delay_ms)
    }

    /// This process's share of the per-key limits: (calls per second, burst), each the
    /// configured value divided by `rate_limit_replicas`, rounded down and at least 1 (a rate of
    /// 0, limiting off, stays 0). Rounding down keeps the sum of the shares within the
    /// configured limit.
    pub fn rate_limit_share(&self) -> (u32, u32) {
        let replicas = self.rate_limit_replicas.max(1);
        let share = |value: u32| match value {
            0 => 0,
            v => (v / replicas).max(1),
        };
        (
            share(self.rate_limit_per_second),
            share(self.rate_limit_burst),
        )
    }

    /// The number of GetPartner statements allowed at once (see `read_batches`).
    pub fn read_batches(&self) -> usize {
        match self.read_batches {
            0 => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            n => n,
        }
    }

    /// Key cache time-to-live as a `Duration`.
    pub fn key_cache_ttl(&self) -> Duration {
        Duration::from_millis(self.key_cache_ttl_ms)
    }

    /// The REST gateway's connection handling (header timeout, connection limit).
    pub fn http_serving(&self) -> crate::gateway::ServeOptions {
        crate::gateway::ServeOptions {
            header_timeout: Duration::from_millis(self.http_header_timeout_ms.max(1)),
            max_connections: self.http_max_connections.max(1),
            trusted: crate::auth::TrustedProxies::new(&self.trusted_proxies),
        }
    }
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            request_timeout_ms: 10_000,
            drain_timeout_ms: 10_000,
            // In-process starts (tests, tools) have no balancer to wait for: they stop at once.
            // `partners serve` waits 5 s (the flag's default).
            shutdown_delay_ms: 0,
            key_cache_ttl_ms: 5_000,
            rate_limit_per_second: 20_000,
            rate_limit_burst: 40_000,
            cors_allowed_origins: Vec::new(),
            auth_failures_per_second: 10,
            auth_failure_burst: 100,
            trusted_proxies: Vec::new(),
            rate_limit_replicas: 1,
            click_writers: 2,
            click_linger_ms: 20,
            read_batches: 0,
            search_index_max_partners: 1_000_000,
            change_log_retention_hours: 72,
            click_retention_months: 0,
            events_heartbeat_ms: 15_000,
            http_header_timeout_ms: 10_000,
            http_max_connections: 10_000,
            webhooks: WebhookSettings::default(),
        }
    }
}

impl DbConfig {
    /// Defaults for a given URL (used by tests and tools).
    pub fn for_url(database_url: impl Into<String>) -> Self {
        DbConfig {
            database_url: database_url.into(),
            db_pool_size: 16,
            db_list_concurrency: 0,
            db_checkout_timeout_ms: 3000,
            db_statement_timeout_ms: 5000,
            db_connect_timeout_s: 3,
            db_tcp_user_timeout_ms: 5000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_turned_off_only_for_this_machine() {
        for (url, local) in [
            ("postgres://postgres@127.0.0.1:5432/db", true),
            ("postgres://localhost/db", true),
            ("postgres://u:p@[::1]:5432/db", true),
            ("postgres:///db", true),
            ("postgres://db.internal:5432/db", false),
            ("postgres://u@10.0.0.5/db?sslmode=require", false),
        ] {
            assert_eq!(is_loopback(&Url::parse(url).expect("url")), local, "{url}");
        }
        let config = DbConfig::for_url("postgres://db.internal/db");
        assert!(!config.connection_url().contains("sslmode"));
        let config = DbConfig::for_url("postgres://127.0.0.1/db?sslmode=require");
        assert!(
            config.connection_url().contains("sslmode=require")
                && !config.connection_url().contains("disable")
        );
        // A key that merely ends like another one does not count as set.
        let config = DbConfig::for_url("postgres://127.0.0.1/db?xconnect_timeout=9");
        let url = config.connection_url();
        assert!(url.contains("xconnect_timeout=9") && url.contains("&connect_timeout=3"));
    }

    #[test]
    fn each_replica_takes_its_share_of_the_rate_limit() {
        let limits = |rate, burst, replicas| ServerLimits {
            rate_limit_per_second: rate,
            rate_limit_burst: burst,
            rate_limit_replicas: replicas,
            ..ServerLimits::default()
        };
        assert_eq!(
            limits(20_000, 40_000, 1).rate_limit_share(),
            (20_000, 40_000)
        );
        assert_eq!(
            limits(20_000, 40_000, 3).rate_limit_share(),
            (6_666, 13_333)
        );
        assert_eq!(limits(2, 1, 3).rate_limit_share(), (1, 1), "at least 1");
        assert_eq!(limits(0, 5, 3).rate_limit_share(), (0, 1), "0 stays off");
    }
}
