//! Request validation: the one place where wire requests become domain values, each a named type
//! built by `TryFrom<&pb::…>` ([`lists`], [`partner`], [`clicks`], [`click_stats`], [`admin`],
//! [`batch`], [`events`]). Every check reports a field violation naming the request field; all
//! violations of a request are reported together.

pub mod admin;
pub mod batch;
pub mod click_stats;
pub mod clicks;
pub mod events;
pub mod lists;
pub mod partner;
pub mod webhooks;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{Error, Result, Violation};
use crate::model::partner::{Includes, SortField};

/// Longest page token accepted (a list's token is far shorter: a name of at most 200
/// characters, four more keys, the id and the signature).
pub const MAX_PAGE_TOKEN: usize = 2048;

pub use admin::{
    BusinessUpsert, IntegrationSet, PartnerCreate, PartnerUpdate, PartnerUpsert, PreferenceSet,
    UserUpsert,
};
pub use batch::{BatchModify, BatchUpdate, MAX_BATCH_WRITES};
pub use click_stats::{Bucket, EventsQuery, StatsQuery, TopQuery};
pub use clicks::{BatchEvent, ClickBatch, MAX_BATCH_EVENTS};
pub use events::EventQuery;
pub use lists::ListRequest;
pub use partner::{
    BatchRead, ClickRequest, MAX_BATCH_KEYS, PartnerRead, PartnerUsersRead, partner_id,
};

/// Most values in one array filter.
pub const MAX_FILTER_VALUES: usize = 50;
/// Longest filter value, in characters.
pub const MAX_FILTER_VALUE_CHARS: usize = 64;
/// Longest search, in characters (after trimming).
pub const MAX_SEARCH_CHARS: usize = 100;
/// Largest page size.
pub const MAX_PER_PAGE: i32 = 100;
/// Default page size.
pub const DEFAULT_PER_PAGE: i32 = 25;
/// Longest idempotency key, in characters.
pub const MAX_REQUEST_ID_CHARS: usize = 200;
/// Largest serialized `metadata` object, in bytes.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Fields an UpdatePartner mask may name.
pub const UPDATABLE_FIELDS: [&str; 14] = [
    "name",
    "description",
    "email",
    "logo_url",
    "website_url",
    "video_url",
    "categories",
    "wholesaler_categories",
    "country_codes",
    "tags",
    "status",
    "active",
    "external_id",
    "metadata",
];

/// Collects violations while a request is checked.
#[derive(Debug, Default)]
pub struct Checker {
    violations: Vec<Violation>,
}

impl Checker {
    /// Records a violation.
    pub fn add(&mut self, field: &str, description: impl Into<String>) {
        self.violations.push(Violation {
            field: field.to_owned(),
            description: description.into(),
        });
    }

    /// `Ok(value)` when nothing was recorded, else INVALID_ARGUMENT with every violation.
    pub fn finish<T>(self, value: T) -> Result<T> {
        if self.violations.is_empty() {
            Ok(value)
        } else {
            Err(Error::InvalidArgument(self.violations))
        }
    }

    pub(super) fn positive_id(&mut self, field: &str, id: i64) -> i64 {
        if id < 1 {
            self.add(field, "must be a positive integer");
        }
        id
    }

    pub(super) fn page(&mut self, page: Option<i32>) -> i64 {
        match page {
            None => 1,
            Some(p) if p >= 1 => i64::from(p),
            Some(_) => {
                self.add("page", "must be at least 1");
                1
            }
        }
    }

    /// A signed page token (empty = none): URL-safe base64 of at most [`MAX_PAGE_TOKEN`]
    /// characters (`crate::serving::tokens`). Its signature is checked by the handler, which
    /// knows the query it must be bound to.
    pub(super) fn page_token_bytes(&mut self, token: &str) -> Option<Vec<u8>> {
        use base64::Engine as _;
        if token.is_empty() {
            return None;
        }
        let decoded = (token.len() <= MAX_PAGE_TOKEN)
            .then(|| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(token)
                    .ok()
            })
            .flatten();
        if decoded.is_none() {
            self.add(
                "page_token",
                "is not a token of this list: pass meta.next_page_token as it came",
            );
        }
        decoded
    }

    pub(super) fn per_page(&mut self, per_page: Option<i32>) -> i64 {
        match per_page {
            None => i64::from(DEFAULT_PER_PAGE),
            Some(n) if (1..=MAX_PER_PAGE).contains(&n) => i64::from(n),
            Some(_) => {
                self.add("per_page", format!("must be between 1 and {MAX_PER_PAGE}"));
                i64::from(DEFAULT_PER_PAGE)
            }
        }
    }

    pub(super) fn search(&mut self, search: &str) -> Option<String> {
        if search.is_empty() {
            return None;
        }
        let trimmed = search.trim();
        let chars = trimmed.chars().count();
        if trimmed.chars().any(char::is_control) {
            self.add("search", "must not contain control characters");
            return None;
        }
        if chars == 0 || chars > MAX_SEARCH_CHARS {
            self.add(
                "search",
                format!("must have 1 to {MAX_SEARCH_CHARS} characters after trimming"),
            );
            return None;
        }
        Some(trimmed.to_owned())
    }

    pub(super) fn list(&mut self, field: &str, values: &[String]) -> Vec<String> {
        if values.len() > MAX_FILTER_VALUES {
            self.add(
                field,
                format!("must have at most {MAX_FILTER_VALUES} values"),
            );
            return Vec::new();
        }
        for value in values {
            let chars = value.chars().count();
            if chars == 0 || chars > MAX_FILTER_VALUE_CHARS {
                self.add(
                    field,
                    format!("values must have 1 to {MAX_FILTER_VALUE_CHARS} characters"),
                );
                return Vec::new();
            }
            if value.chars().any(char::is_control) {
                self.add(field, "values must not contain control characters");
                return Vec::new();
            }
        }
        let mut out = values.to_vec();
        out.sort();
        out.dedup();
        out
    }

    /// A time given as a protobuf `Timestamp` (`None` when absent or invalid, with a violation).
    pub(super) fn time(
        &mut self,
        field: &str,
        value: Option<&prost_types::Timestamp>,
    ) -> Option<DateTime<Utc>> {
        let t = value?;
        let at = u32::try_from(t.nanos)
            .ok()
            .filter(|n| *n < 1_000_000_000)
            .and_then(|nanos| DateTime::from_timestamp(t.seconds, nanos));
        if at.is_none() {
            self.add(field, "must be a valid time");
        }
        at
    }

    pub(super) fn country_codes(&mut self, field: &str, values: &[String]) -> Vec<String> {
        if values.len() > MAX_FILTER_VALUES {
            self.add(
                field,
                format!("must have at most {MAX_FILTER_VALUES} values"),
            );
            return Vec::new();
        }
        if values
            .iter()
            .any(|v| v.len() != 2 || !v.bytes().all(|b| b.is_ascii_alphabetic()))
        {
            self.add(field, "values must be two-letter ISO 3166-1 country codes");
            return Vec::new();
        }
        let mut out: Vec<String> = values.iter().map(|v| v.to_ascii_uppercase()).collect();
        out.sort();
        out.dedup();
        out
    }

    pub(super) fn includes(&mut self, values: &[String]) -> Includes {
        let mut includes = Includes::default();
        if let Some(other) = values.iter().find(|v| !includes.add(v)) {
            self.add(
                "include",
                format!(
                    "unknown value {other:?}; allowed: {}",
                    Includes::NAMES.join(", ")
                ),
            );
        }
        includes
    }

    pub(super) fn sort(&mut self, sort: &str) -> Vec<(SortField, bool)> {
        if sort.is_empty() {
            return Vec::new();
        }
        let mut keys: Vec<(SortField, bool)> = Vec::new();
        for part in sort.split(',') {
            let (desc, name) = match part.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, part),
            };
            match SortField::parse(name) {
                // A repeated key adds nothing: the first occurrence decides.
                Some(field) if !keys.iter().any(|(f, _)| *f == field) => keys.push((field, desc)),
                Some(_) => {}
                None => {
                    self.add(
                        "sort",
                        format!(
                            "unknown key {part:?}; allowed: name, created_at, updated_at, clicks, \
                             users_count, each optionally prefixed with '-'"
                        ),
                    );
                    return Vec::new();
                }
            }
        }
        keys
    }

    /// An optional idempotency key (`request_id`; empty = absent): 1..200 printable characters.
    pub(super) fn request_id(&mut self, value: &str) -> Option<String> {
        if value.is_empty() {
            return None;
        }
        if value.chars().count() > MAX_REQUEST_ID_CHARS || value.chars().any(char::is_control) {
            self.add(
                "request_id",
                format!("must have 1 to {MAX_REQUEST_ID_CHARS} printable characters"),
            );
        }
        Some(value.to_owned())
    }

    /// An optional uuid (empty = absent).
    pub fn optional_uuid(&mut self, field: &str, value: &str) -> Option<Uuid> {
        if value.is_empty() {
            return None;
        }
        match Uuid::parse_str(value) {
            Ok(uuid) => Some(uuid),
            Err(_) => {
                self.add(field, "must be a UUID");
                None
            }
        }
    }

    pub(super) fn required_uuid(&mut self, field: &str, value: &str) -> Uuid {
        if value.is_empty() {
            self.add(field, "is required");
            return Uuid::nil();
        }
        self.optional_uuid(field, value).unwrap_or_default()
    }

    pub(super) fn text(&mut self, field: &str, value: &str, min: usize, max: usize) -> String {
        let trimmed = value.trim();
        let chars = trimmed.chars().count();
        // Multi-line text (descriptions) may hold newlines and tabs; nothing may hold NUL or other
        // control characters (Postgres text cannot store NUL at all).
        let multi_line = max > 200;
        if trimmed
            .chars()
            .any(|c| c.is_control() && !(multi_line && matches!(c, '\n' | '\r' | '\t')))
        {
            self.add(field, "must not contain control characters");
            return trimmed.to_owned();
        }
        if chars < min || chars > max {
            if min > 0 {
                self.add(field, format!("must have {min} to {max} characters"));
            } else {
                self.add(field, format!("must have at most {max} characters"));
            }
        }
        trimmed.to_owned()
    }

    pub(super) fn email(&mut self, field: &str, value: &str, required: bool) -> String {
        let trimmed = value.trim();
        if trimmed.is_empty() && !required {
            return String::new();
        }
        let valid = (3..=320).contains(&trimmed.len())
            && trimmed
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
            && !trimmed.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid {
            self.add(field, "must be an e-mail address");
        }
        trimmed.to_owned()
    }

    pub(super) fn url(&mut self, field: &str, value: &str) -> String {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return String::new();
        }
        let valid = trimmed.len() <= 2048
            && (trimmed.starts_with("https://") || trimmed.starts_with("http://"))
            && !trimmed.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid {
            self.add(field, "must be an http(s) URL of at most 2048 characters");
        }
        trimmed.to_owned()
    }

    pub(super) fn country_code(&mut self, field: &str, value: &str) -> Option<String> {
        if value.is_empty() {
            return None;
        }
        if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_alphabetic()) {
            self.add(field, "must be a two-letter ISO 3166-1 country code");
            return None;
        }
        Some(value.to_ascii_uppercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_are_reported_together() {
        let mut c = Checker::default();
        c.positive_id("id", 0);
        c.per_page(Some(101));
        let Err(Error::InvalidArgument(v)) = c.finish(()) else {
            panic!("expected invalid argument");
        };
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["id", "per_page"]);
    }
}
