//! `partners seed-bench`: the large benchmark data set (placeholder, being written).

use diesel::pg::PgConnection;

use crate::error::Result;

/// Size of the benchmark data set.
#[derive(Debug, Clone, clap::Args)]
pub struct Scale {
    /// Number of partners.
    #[arg(long, default_value_t = 100_000)]
    pub partners: i64,
}

/// Loads the data set; returns `key=value` lines to print.
pub fn seed(_conn: &mut PgConnection, _scale: &Scale) -> Result<Vec<(String, String)>> {
    Ok(Vec::new())
}
