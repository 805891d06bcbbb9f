//! Request validation: the one place where wire requests become domain values. Every check reports
//! a field violation naming the request field; all violations of a request are reported together.

use uuid::Uuid;

use super::pb;
use crate::error::{Error, Result, Violation};
use crate::model::partner::{ListKind, ListQuery, NewPartner, PartnerChanges, Scope, SortField};

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

    fn positive_id(&mut self, field: &str, id: i64) -> i64 {
        if id < 1 {
            self.add(field, "must be a positive integer");
        }
        id
    }

    fn page(&mut self, page: Option<i32>) -> i64 {
        match page {
            None => 1,
            Some(p) if p >= 1 => i64::from(p),
            Some(_) => {
                self.add("page", "must be at least 1");
                1
            }
        }
    }

    fn per_page(&mut self, per_page: Option<i32>) -> i64 {
        match per_page {
            None => i64::from(DEFAULT_PER_PAGE),
            Some(n) if (1..=MAX_PER_PAGE).contains(&n) => i64::from(n),
            Some(_) => {
                self.add("per_page", format!("must be between 1 and {MAX_PER_PAGE}"));
                i64::from(DEFAULT_PER_PAGE)
            }
        }
    }

    fn search(&mut self, search: &str) -> Option<String> {
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

    fn list(&mut self, field: &str, values: &[String]) -> Vec<String> {
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

    fn country_codes(&mut self, field: &str, values: &[String]) -> Vec<String> {
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

    fn includes(&mut self, values: &[String]) -> Includes {
        let mut includes = Includes::default();
        for value in values {
            match value.as_str() {
                "users" => includes.users = true,
                "partner_integrations" => includes.partner_integrations = true,
                other => {
                    self.add(
                        "include",
                        format!("unknown value {other:?}; allowed: users, partner_integrations"),
                    );
                    break;
                }
            }
        }
        includes
    }

    fn sort(&mut self, sort: &str) -> Vec<(SortField, bool)> {
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

    fn required_uuid(&mut self, field: &str, value: &str) -> Uuid {
        if value.is_empty() {
            self.add(field, "is required");
            return Uuid::nil();
        }
        self.optional_uuid(field, value).unwrap_or_default()
    }

    fn text(&mut self, field: &str, value: &str, min: usize, max: usize) -> String {
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

    fn email(&mut self, field: &str, value: &str, required: bool) -> String {
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

    fn url(&mut self, field: &str, value: &str) -> String {
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

    fn country_code(&mut self, field: &str, value: &str) -> Option<String> {
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

/// Which relationships to load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Includes {
    /// `users`
    pub users: bool,
    /// `partner_integrations`
    pub partner_integrations: bool,
}

/// A validated list request: the query (scope still empty), includes and the named business.
#[derive(Debug)]
pub struct ListRequest {
    pub query: ListQuery,
    pub includes: Includes,
    pub business_uuid: Option<Uuid>,
}

fn list_query(kind: ListKind, page: i64, per_page: i64) -> ListQuery {
    ListQuery::new(kind, Scope::default(), page, per_page)
}

/// Validates ListPartners.
pub fn list_partners(req: &pb::ListPartnersRequest) -> Result<ListRequest> {
    let mut c = Checker::default();
    let business_uuid = c.optional_uuid("business_uuid", &req.business_uuid);
    let includes = c.includes(&req.include);
    let mut query = list_query(ListKind::All, c.page(req.page), c.per_page(req.per_page));
    query.search = c.search(&req.search);
    query.sort = c.sort(&req.sort);
    if let Some(f) = &req.filter {
        query.categories = c.list("filter.categories", &f.categories);
        query.excluded_categories = c.list("filter.excluded_categories", &f.excluded_categories);
        query.wholesaler_categories =
            c.list("filter.wholesaler_categories", &f.wholesaler_categories);
        query.country_codes = c.country_codes("filter.country_codes", &f.country_codes);
        query.preferred = f.preferred;
        query.active = f.active;
    }
    c.finish(ListRequest {
        query,
        includes,
        business_uuid,
    })
}

/// Validates ListAvailablePartners.
pub fn list_available(req: &pb::ListAvailablePartnersRequest) -> Result<ListRequest> {
    let mut c = Checker::default();
    let business_uuid = c.optional_uuid("business_uuid", &req.business_uuid);
    let includes = c.includes(&req.include);
    let mut query = list_query(
        ListKind::Available,
        c.page(req.page),
        c.per_page(req.per_page),
    );
    query.search = c.search(&req.search);
    query.sort = c.sort(&req.sort);
    if let Some(f) = &req.filter {
        query.categories = c.list("filter.categories", &f.categories);
        for status in &f.status {
            match pb::PartnerStatus::try_from(*status) {
                Ok(pb::PartnerStatus::Available) => query.statuses.push("available".into()),
                Ok(pb::PartnerStatus::ComingSoon) => query.statuses.push("coming_soon".into()),
                _ => {
                    c.add("filter.status", "values must be available or coming_soon");
                    break;
                }
            }
        }
        query.statuses.sort();
        query.statuses.dedup();
    }
    c.finish(ListRequest {
        query,
        includes,
        business_uuid,
    })
}

/// Validates ListWholesalers.
pub fn list_wholesalers(req: &pb::ListWholesalersRequest) -> Result<ListRequest> {
    let mut c = Checker::default();
    let business_uuid = c.optional_uuid("business_uuid", &req.business_uuid);
    let includes = c.includes(&req.include);
    let mut query = list_query(
        ListKind::Wholesalers,
        c.page(req.page),
        c.per_page(req.per_page),
    );
    query.sort = c.sort(&req.sort);
    c.finish(ListRequest {
        query,
        includes,
        business_uuid,
    })
}

/// Validates GetPartner: `(id, business, includes)`.
pub fn get_partner(req: &pb::GetPartnerRequest) -> Result<(i64, Option<Uuid>, Includes)> {
    let mut c = Checker::default();
    let id = c.positive_id("id", req.id);
    let business = c.optional_uuid("business_uuid", &req.business_uuid);
    let includes = c.includes(&req.include);
    c.finish((id, business, includes))
}

/// A validated click event request.
#[derive(Debug)]
pub struct ClickRequest {
    pub partner_id: i64,
    pub event_type: &'static str,
    pub request_id: Option<String>,
    pub business_uuid: Option<Uuid>,
}

/// Validates CreatePartnerClickEvent.
pub fn click_event(req: &pb::CreatePartnerClickEventRequest) -> Result<ClickRequest> {
    let mut c = Checker::default();
    let partner_id = c.positive_id("id", req.id);
    let event_type = match pb::EventType::try_from(req.event_type) {
        Ok(pb::EventType::Website) => "website",
        Ok(pb::EventType::Video) => "video",
        _ => {
            c.add("event_type", "must be website or video");
            ""
        }
    };
    let request_id = if req.request_id.is_empty() {
        None
    } else {
        let chars = req.request_id.chars().count();
        if chars > MAX_REQUEST_ID_CHARS || req.request_id.chars().any(char::is_control) {
            c.add(
                "request_id",
                format!("must have 1 to {MAX_REQUEST_ID_CHARS} printable characters"),
            );
        }
        Some(req.request_id.clone())
    };
    let business_uuid = c.optional_uuid("business_uuid", &req.business_uuid);
    c.finish(ClickRequest {
        partner_id,
        event_type,
        request_id,
        business_uuid,
    })
}

/// Validates a partner id of Connect/Disconnect/Delete.
pub fn partner_id(id: i64) -> Result<i64> {
    let mut c = Checker::default();
    let id = c.positive_id("id", id);
    c.finish(id)
}

fn status_name(status: i32) -> Option<&'static str> {
    match pb::PartnerStatus::try_from(status) {
        Ok(pb::PartnerStatus::Available) => Some("available"),
        Ok(pb::PartnerStatus::ComingSoon) => Some("coming_soon"),
        Ok(pb::PartnerStatus::Unavailable) => Some("unavailable"),
        _ => None,
    }
}

fn external_id(c: &mut Checker, value: &Option<String>) -> Option<String> {
    match value.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) if v.chars().count() > 200 || v.chars().any(char::is_control) => {
            c.add(
                "partner.external_id",
                "must have 1 to 200 printable characters",
            );
            None
        }
        Some(v) => Some(v.to_owned()),
    }
}

/// Largest magnitude of a number in `metadata`: Postgres prints `jsonb` numbers in full decimal,
/// and numbers near `f64::MAX` would not read back.
pub const MAX_METADATA_NUMBER: f64 = 1e300;

/// Whether a JSON value holds something `jsonb` cannot store and give back: a NUL character, or a
/// number of magnitude `MAX_METADATA_NUMBER` or more.
fn unstorable(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Number(n) => n.as_f64().is_none_or(|f| f.abs() >= MAX_METADATA_NUMBER),
        serde_json::Value::Array(items) => items.iter().any(unstorable),
        serde_json::Value::Object(map) => {
            map.iter().any(|(k, v)| k.contains('\0') || unstorable(v))
        }
        _ => false,
    }
}

fn metadata(c: &mut Checker, value: &Option<prost_types::Struct>) -> serde_json::Value {
    let json = value
        .as_ref()
        .map(super::convert::struct_to_json)
        .unwrap_or_else(|| serde_json::Value::Object(Default::default()));
    if unstorable(&json) {
        c.add(
            "partner.metadata",
            "must not contain NUL characters or numbers of magnitude 1e300 or more",
        );
    } else if json.to_string().len() > MAX_METADATA_BYTES {
        c.add(
            "partner.metadata",
            format!("must serialize to at most {MAX_METADATA_BYTES} bytes"),
        );
    }
    json
}

/// Validates CreatePartner.
pub fn create_partner(req: &pb::CreatePartnerRequest) -> Result<NewPartner> {
    let mut c = Checker::default();
    let Some(p) = &req.partner else {
        c.add("partner", "is required");
        return c.finish(NewPartner::empty());
    };
    let status = if p.status == 0 {
        "available"
    } else {
        status_name(p.status).unwrap_or_else(|| {
            c.add(
                "partner.status",
                "must be available, coming_soon or unavailable",
            );
            "available"
        })
    };
    let new = NewPartner {
        name: c.text("partner.name", &p.name, 1, 200),
        description: c.text("partner.description", &p.description, 0, 5000),
        email: c.email("partner.email", &p.email, false),
        logo_url: c.url("partner.logo_url", &p.logo_url),
        website_url: c.url("partner.website_url", &p.website_url),
        video_url: c.url("partner.video_url", &p.video_url),
        categories: c.list("partner.categories", &p.categories),
        wholesaler_categories: c.list("partner.wholesaler_categories", &p.wholesaler_categories),
        country_codes: c.country_codes("partner.country_codes", &p.country_codes),
        tags: c.list("partner.tags", &p.tags),
        status: status.to_owned(),
        active: p.active,
        external_id: external_id(&mut c, &p.external_id),
        metadata: metadata(&mut c, &p.metadata),
    };
    c.finish(new)
}

/// Validates UpdatePartner: `(id, changes)`.
pub fn update_partner(req: &pb::UpdatePartnerRequest) -> Result<(i64, PartnerChanges)> {
    let mut c = Checker::default();
    let Some(p) = &req.partner else {
        c.add("partner", "is required");
        return c.finish((0, PartnerChanges::default()));
    };
    let id = c.positive_id("partner.id", p.id);
    let paths = req
        .update_mask
        .as_ref()
        .map(|m| m.paths.clone())
        .unwrap_or_default();
    if paths.is_empty() {
        c.add("update_mask", "must name at least one field");
    }
    let mut ch = PartnerChanges::default();
    for path in &paths {
        match path.as_str() {
            "name" => ch.name = Some(c.text("partner.name", &p.name, 1, 200)),
            "description" => {
                ch.description = Some(c.text("partner.description", &p.description, 0, 5000))
            }
            "email" => ch.email = Some(c.email("partner.email", &p.email, false)),
            "logo_url" => ch.logo_url = Some(c.url("partner.logo_url", &p.logo_url)),
            "website_url" => ch.website_url = Some(c.url("partner.website_url", &p.website_url)),
            "video_url" => ch.video_url = Some(c.url("partner.video_url", &p.video_url)),
            "categories" => ch.categories = Some(c.list("partner.categories", &p.categories)),
            "wholesaler_categories" => {
                ch.wholesaler_categories =
                    Some(c.list("partner.wholesaler_categories", &p.wholesaler_categories))
            }
            "country_codes" => {
                ch.country_codes = Some(c.country_codes("partner.country_codes", &p.country_codes))
            }
            "tags" => ch.tags = Some(c.list("partner.tags", &p.tags)),
            "status" => match status_name(p.status) {
                Some(s) => ch.status = Some(s.to_owned()),
                None => c.add(
                    "partner.status",
                    "must be available, coming_soon or unavailable",
                ),
            },
            "active" => ch.active = Some(p.active),
            "external_id" => ch.external_id = Some(external_id(&mut c, &p.external_id)),
            "metadata" => ch.metadata = Some(metadata(&mut c, &p.metadata)),
            other => c.add(
                "update_mask",
                format!(
                    "unknown field {other:?}; updatable: {}",
                    UPDATABLE_FIELDS.join(", ")
                ),
            ),
        }
    }
    c.finish((id, ch))
}

/// A validated UpsertBusiness.
pub fn upsert_business(req: &pb::UpsertBusinessRequest) -> Result<(Uuid, String, Option<String>)> {
    let mut c = Checker::default();
    let uuid = c.required_uuid("uuid", &req.uuid);
    let name = c.text("name", &req.name, 1, 200);
    let country = c.country_code("country_code", &req.country_code);
    c.finish((uuid, name, country))
}

/// A validated UpsertUser: `(uuid, business uuid, email, name)`.
pub fn upsert_user(req: &pb::UpsertUserRequest) -> Result<(Uuid, Uuid, String, String)> {
    let mut c = Checker::default();
    let uuid = c.required_uuid("uuid", &req.uuid);
    let business = c.required_uuid("business_uuid", &req.business_uuid);
    let email = c.email("email", &req.email, true);
    let name = c.text("name", &req.name, 1, 200);
    c.finish((uuid, business, email, name))
}

/// A validated SetPartnerIntegration: `(partner id, business uuid, status)`.
pub fn set_integration(
    req: &pb::SetPartnerIntegrationRequest,
) -> Result<(i64, Uuid, &'static str)> {
    let mut c = Checker::default();
    let partner_id = c.positive_id("partner_id", req.partner_id);
    let business = c.required_uuid("business_uuid", &req.business_uuid);
    let status = match pb::IntegrationStatus::try_from(req.status) {
        Ok(pb::IntegrationStatus::Pending) => "pending",
        Ok(pb::IntegrationStatus::Active) => "active",
        Ok(pb::IntegrationStatus::Inactive) => "inactive",
        Ok(pb::IntegrationStatus::Failed) => "failed",
        _ => {
            c.add("status", "must be pending, active, inactive or failed");
            ""
        }
    };
    c.finish((partner_id, business, status))
}

/// A validated SetPartnerPreference: `(partner id, business uuid)`.
pub fn set_preference(req: &pb::SetPartnerPreferenceRequest) -> Result<(i64, Uuid)> {
    let mut c = Checker::default();
    let partner_id = c.positive_id("partner_id", req.partner_id);
    let business = c.required_uuid("business_uuid", &req.business_uuid);
    c.finish((partner_id, business))
}

impl NewPartner {
    fn empty() -> Self {
        NewPartner {
            name: String::new(),
            description: String::new(),
            email: String::new(),
            logo_url: String::new(),
            website_url: String::new(),
            video_url: String::new(),
            categories: Vec::new(),
            wholesaler_categories: Vec::new(),
            country_codes: Vec::new(),
            tags: Vec::new(),
            status: String::new(),
            active: false,
            external_id: None,
            metadata: serde_json::Value::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_partners_reports_every_bad_field() {
        let req = pb::ListPartnersRequest {
            business_uuid: "nope".into(),
            include: vec!["users".into(), "bogus".into()],
            page: Some(0),
            per_page: Some(101),
            search: "   ".into(),
            sort: "-clicks,colour".into(),
            filter: Some(pb::ListPartnersFilter {
                country_codes: vec!["DEU".into()],
                categories: vec!["x".repeat(65)],
                ..Default::default()
            }),
        };
        let Err(Error::InvalidArgument(v)) = list_partners(&req) else {
            panic!("expected invalid argument");
        };
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "business_uuid",
                "include",
                "page",
                "per_page",
                "search",
                "sort",
                "filter.categories",
                "filter.country_codes"
            ]
        );
    }

    #[test]
    fn country_codes_are_upper_cased_and_sorted() {
        let req = pb::ListPartnersRequest {
            filter: Some(pb::ListPartnersFilter {
                country_codes: vec!["de".into(), "AT".into(), "De".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let ok = list_partners(&req).expect("valid");
        assert_eq!(ok.query.country_codes, ["AT", "DE"]);
        assert_eq!((ok.query.page, ok.query.per_page), (1, 25));
    }
}
