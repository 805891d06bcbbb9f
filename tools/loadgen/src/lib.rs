//! `loadgen`: the benchmark data generator and load generator of the Partners service (see
//! `BENCHMARKS.md`), kept out of the service library.
//!
//! The library is small: [`data`], the generator of the large, skewed benchmark data set (the
//! binary's `seed` subcommand; the service's integration tests call it too), and
//! [`service_sql`], the one module that reaches into the service library's internals (the SQL
//! the service runs, its list copy, its key creation), so that a change of the service's paths is
//! re-pointed there alone. The binary (`src/main.rs`) is the CLI: `seed`, `run` (the load
//! generator) and `plans` (EXPLAIN of the scenarios' SQL).

pub mod data;
pub mod service_sql;

use std::fmt;

/// An error of the load tools: what failed, in words (printed, never matched on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Error(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error(message.to_owned())
    }
}

impl From<diesel::result::Error> for Error {
    fn from(error: diesel::result::Error) -> Self {
        Error(format!("database: {error}"))
    }
}

impl From<Error> for String {
    fn from(error: Error) -> Self {
        error.0
    }
}

/// Result of the load tools' library.
pub type Result<T> = std::result::Result<T, Error>;
