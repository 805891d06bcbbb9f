//! `partners`: the CLI. `serve` runs the service, `gateway` the REST gateway alone; `migrate`,
//! `seed-demo`, `keys` and `rebuild-click-rollups` manage the database. The subcommands live in `src/cli/`.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use partners::config::{DbConfig, ServeConfig};
use partners::error::Error;
use partners::telemetry;

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
    Serve(Box<ServeConfig>),
    /// Apply pending migrations and exit.
    Migrate,
    /// Load the demo data set (idempotent) and print a new service key, user key and business uuid.
    SeedDemo,
    /// Run the REST gateway alone, calling a remote gRPC server.
    Gateway(cli::serve::GatewayArgs),
    /// Create or revoke API keys.
    #[command(subcommand)]
    Keys(cli::keys::KeysCommand),
    /// Recompute the hourly click rollups from the click events kept (repair); ingest waits
    /// meanwhile. Prints `rollup_rows=N`.
    RebuildClickRollups,
}

fn main() -> ExitCode {
    let _telemetry = telemetry::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(config) => cli::serve::serve(cli.db, *config),
        Command::Gateway(args) => cli::serve::gateway(args),
        Command::Migrate => cli::prepare_database(&cli.db),
        Command::SeedDemo => cli::demo::run(&cli.db),
        Command::Keys(command) => cli::keys::run(&cli.db, command),
        Command::RebuildClickRollups => cli::rebuild_click_rollups(&cli.db),
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
