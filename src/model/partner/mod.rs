//! Partners: the row every read returns ([`record`]), the validated list query ([`query`]), the
//! lists as SQL ([`list`]), the statements guarded by the in-memory copy's versions
//! ([`guarded`]), cursor pages ([`keyset`]), point reads ([`point`]), includes ([`includes`]), admin writes ([`write`]),
//! batch writes ([`batch`]) and the export's keyset chunks ([`export`]).

pub mod batch;
pub mod export;
pub mod facets;
pub mod followed;
pub mod guarded;
pub mod includes;
pub mod keyset;
pub mod list;
pub mod point;
pub mod query;
pub mod record;
pub mod write;

pub use batch::*;
pub use export::*;
pub use facets::*;
pub use followed::*;
pub use guarded::*;
pub use includes::*;
pub use keyset::*;
pub use list::*;
pub use point::*;
pub use query::*;
pub use record::*;
pub use write::*;
