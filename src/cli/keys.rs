//! `partners keys create --service NAME | --user UUID` and `partners keys revoke PREFIX`.

use partners::auth;
use partners::config::DbConfig;
use partners::error::{Error, Result};
use partners::model::{api_key, business};
use uuid::Uuid;

/// Create or revoke API keys.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
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

/// Runs a `keys` subcommand.
pub fn run(config: &DbConfig, command: KeysCommand) -> Result<()> {
    let mut conn = super::connect(config)?;
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
