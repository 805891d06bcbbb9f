//! `partners`: the CLI. `serve` runs the service; `migrate`, `seed-demo` and `keys` manage the
//! database.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use diesel::{Connection, PgConnection};
use partners::config::{DbConfig, ServeConfig};
use partners::error::Error;
use partners::model::{api_key, business};
use partners::{app, auth, db, demo, telemetry};
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "partners",
    version,
    about = "Partner directory service (gRPC + REST gateway)"
)]
struct Cli {
    #[command(flatten)]
    db: DbConfig,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run pending migrations (unless --no-migrate) and serve gRPC and the REST gateway.
    Serve(ServeConfig),
    /// Apply pending migrations and exit.
    Migrate,
    /// Load the demo data set (idempotent) and print a new service key, user key and business uuid.
    SeedDemo,
    /// Run the REST gateway alone, calling a remote gRPC server.
    Gateway(GatewayArgs),
    /// Create or revoke API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, clap::Args)]
struct GatewayArgs {
    /// URL of the gRPC server, e.g. http://127.0.0.1:50051.
    #[arg(long, env = "PARTNERS_UPSTREAM")]
    upstream: String,
    /// Address of the REST listener.
    #[arg(long, env = "PARTNERS_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    http_addr: std::net::SocketAddr,
    /// Number of HTTP/2 connections to the upstream.
    #[arg(long, env = "PARTNERS_UPSTREAM_CHANNELS", default_value_t = 4)]
    channels: usize,
    /// Deadline of each upstream call, in milliseconds.
    #[arg(long, env = "PARTNERS_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    request_timeout_ms: u64,
}

async fn gateway_only(args: GatewayArgs) -> Result<(), Error> {
    let gateway = partners::gateway::Gateway::remote(
        &args.upstream,
        args.channels,
        std::time::Duration::from_millis(args.request_timeout_ms.max(1)),
    )
    .map_err(Error::Internal)?;
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .map_err(|e| Error::Internal(format!("cannot bind {}: {e}", args.http_addr)))?;
    tracing::info!(http.addr = %args.http_addr, upstream = %args.upstream, "REST gateway listening");
    partners::gateway::serve(
        listener,
        partners::gateway::router(gateway),
        shutdown_signal(),
    )
    .await
    .map_err(|e| Error::Internal(format!("REST gateway: {e}")))
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key and print it once: `--service NAME` or `--user UUID`.
    Create {
        /// Name of the internal service the key is for.
        #[arg(long, conflicts_with = "user", required_unless_present = "user")]
        service: Option<String>,
        /// Uuid of the user the key acts as.
        #[arg(long)]
        user: Option<Uuid>,
    },
    /// Revoke the key with this prefix (the part after `pk_`, before the second `_`).
    Revoke {
        /// Key prefix.
        prefix: String,
    },
}

fn connect(config: &DbConfig) -> Result<PgConnection, Error> {
    PgConnection::establish(&config.connection_url())
        .map_err(|e| Error::Internal(format!("cannot connect to Postgres: {e}")))
}

fn prepare_database(config: &DbConfig) -> Result<(), Error> {
    db::create_database_if_missing(config)?;
    db::run_migrations(config)?;
    Ok(())
}

async fn serve(db_config: DbConfig, config: ServeConfig) -> Result<(), Error> {
    if config.no_migrate {
        db::create_database_if_missing(&db_config)?;
    } else {
        let cfg = db_config.clone();
        tokio::task::spawn_blocking(move || prepare_database(&cfg))
            .await
            .map_err(|e| Error::Internal(format!("migration task: {e}")))??;
    }
    let listener = tokio::net::TcpListener::bind(config.grpc_addr)
        .await
        .map_err(|e| Error::Internal(format!("cannot bind {}: {e}", config.grpc_addr)))?;
    let http_listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .map_err(|e| Error::Internal(format!("cannot bind {}: {e}", config.http_addr)))?;
    let running = app::start(&db_config, &config.limits, listener, Some(http_listener)).await?;
    shutdown_signal().await;
    tracing::info!("shutdown requested: draining");
    running.shutdown().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

fn keys(config: &DbConfig, command: KeysCommand) -> Result<(), Error> {
    let mut conn = connect(config)?;
    match command {
        KeysCommand::Create { service, user } => {
            let (user_id, name) = match (service, user) {
                (Some(name), _) => (None, name),
                (None, Some(uuid)) => {
                    let user =
                        business::user_by_uuid(&mut conn, uuid)?.ok_or(Error::NotFound("user"))?;
                    (Some(user.id), format!("user {uuid}"))
                }
                (None, None) => {
                    return Err(Error::invalid("service", "--service or --user is required"));
                }
            };
            if name.trim().is_empty() {
                return Err(Error::invalid("service", "must not be empty"));
            }
            println!("{}", auth::create_key(&mut conn, user_id, &name)?);
            Ok(())
        }
        KeysCommand::Revoke { prefix } => {
            if api_key::revoke(&mut conn, &prefix)? {
                println!("revoked {prefix}");
                Ok(())
            } else {
                Err(Error::NotFound("key"))
            }
        }
    }
}

fn main() -> ExitCode {
    telemetry::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(config) => match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime.block_on(serve(cli.db, config)),
            Err(e) => Err(Error::Internal(format!("tokio runtime: {e}"))),
        },
        Command::Gateway(args) => match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime.block_on(gateway_only(args)),
            Err(e) => Err(Error::Internal(format!("tokio runtime: {e}"))),
        },
        Command::Migrate => prepare_database(&cli.db),
        Command::SeedDemo => prepare_database(&cli.db).and_then(|()| {
            let keys = demo::seed(&mut connect(&cli.db)?)?;
            println!("service_key={}", keys.service_key);
            println!("user_key={}", keys.user_key);
            println!("business_uuid={}", keys.business_uuid);
            if let Some(id) = keys.partner_ids.first() {
                println!("partner_id={id}");
            }
            Ok(())
        }),
        Command::Keys(command) => keys(&cli.db, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let text = match &e {
                Error::Internal(text) => text.clone(),
                other => other.to_string(),
            };
            eprintln!("partners: {text}");
            ExitCode::FAILURE
        }
    }
}
