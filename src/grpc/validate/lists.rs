//! The three list requests → [`ListRequest`]: a [`ListQuery`] (scope still empty), the includes
//! and the named business.

use uuid::Uuid;

use super::Checker;
use crate::error::{Error, Result};
use crate::grpc::{convert, pb};
use crate::model::PartnerStatus;
use crate::model::partner::{FacetField, Includes, ListKind, ListQuery, RecordFilter, Scope};

/// A validated list request.
#[derive(Debug)]
pub struct ListRequest {
    /// Kind, filters, search, order and page (the scope is filled in once the caller's business
    /// is resolved).
    pub query: ListQuery,
    /// Relationships to load with the page.
    pub includes: Includes,
    /// The business named in the request, if any.
    pub business_uuid: Option<Uuid>,
    /// The decoded page token, if any (its signature is checked by the handler, which knows
    /// the query it must be bound to).
    pub page_token: Option<Vec<u8>>,
}

/// The parts every list request has (`search`: the term, for the lists that take one), checked in
/// the order their violations are reported.
struct Common<'a> {
    business_uuid: &'a str,
    include: &'a [String],
    page: Option<i32>,
    per_page: Option<i32>,
    search: Option<&'a str>,
    sort: &'a str,
    page_token: &'a str,
}

/// The [`Common`] parts of a list request message `$req`, with the search term `$search`.
macro_rules! parts {
    ($req:ident, $search:expr) => {
        Common {
            business_uuid: &$req.business_uuid,
            include: &$req.include,
            page: $req.page,
            per_page: $req.per_page,
            search: $search,
            sort: &$req.sort,
            page_token: &$req.page_token,
        }
    };
}

fn common(c: &mut Checker, kind: ListKind, parts: Common<'_>) -> ListRequest {
    let business_uuid = c.optional_uuid("business_uuid", parts.business_uuid);
    let includes = c.includes(parts.include);
    let (page, per_page) = (c.page(parts.page), c.per_page(parts.per_page));
    let mut query = ListQuery::new(kind, Scope::default(), page, per_page);
    query.search = parts.search.and_then(|term| c.search(term));
    query.sort = c.sort(parts.sort);
    let page_token = c.page_token_bytes(parts.page_token);
    if page_token.is_some() && parts.page.is_some() {
        c.add(
            "page",
            "cannot be combined with page_token (the token carries its place in the walk)",
        );
    }
    ListRequest {
        query,
        includes,
        business_uuid,
        page_token,
    }
}

impl TryFrom<&pb::ListPartnersRequest> for ListRequest {
    type Error = Error;

    fn try_from(req: &pb::ListPartnersRequest) -> Result<Self> {
        let mut c = Checker::default();
        let mut request = common(&mut c, ListKind::All, parts!(req, Some(&req.search)));
        let query = &mut request.query;
        if let Some(f) = &req.filter {
            query.categories = c.list("filter.categories", &f.categories);
            query.excluded_categories =
                c.list("filter.excluded_categories", &f.excluded_categories);
            query.wholesaler_categories =
                c.list("filter.wholesaler_categories", &f.wholesaler_categories);
            query.country_codes = c.country_codes("filter.country_codes", &f.country_codes);
            query.preferred = f.preferred;
            query.active = f.active;
            query.records = records(&mut c, "filter.record", f.record.as_ref());
            for status in &f.status {
                match convert::partner_status(*status) {
                    Some(s) => query.statuses.push(s),
                    None => {
                        c.add("filter.status", "values must be partner statuses");
                        break;
                    }
                }
            }
            query.statuses.sort();
            query.statuses.dedup();
        }
        query.show_deleted = req.show_deleted;
        query.facets = facets(&mut c, &req.facets);
        c.finish(request)
    }
}

impl TryFrom<&pb::ListAvailablePartnersRequest> for ListRequest {
    type Error = Error;

    fn try_from(req: &pb::ListAvailablePartnersRequest) -> Result<Self> {
        let mut c = Checker::default();
        let mut request = common(&mut c, ListKind::Available, parts!(req, Some(&req.search)));
        let query = &mut request.query;
        if let Some(f) = &req.filter {
            query.categories = c.list("filter.categories", &f.categories);
            for status in &f.status {
                match convert::partner_status(*status) {
                    Some(s @ (PartnerStatus::Available | PartnerStatus::ComingSoon)) => {
                        query.statuses.push(s)
                    }
                    _ => {
                        c.add("filter.status", "values must be available or coming_soon");
                        break;
                    }
                }
            }
            query.statuses.sort();
            query.statuses.dedup();
            query.records = records(&mut c, "filter.record", f.record.as_ref());
        }
        query.facets = facets(&mut c, &req.facets);
        c.finish(request)
    }
}

impl TryFrom<&pb::ListWholesalersRequest> for ListRequest {
    type Error = Error;

    fn try_from(req: &pb::ListWholesalersRequest) -> Result<Self> {
        let mut c = Checker::default();
        let mut request = common(&mut c, ListKind::Wholesalers, parts!(req, None));
        request.query.records = records(&mut c, "filter", req.filter.as_ref());
        c.finish(request)
    }
}

/// The fields a list is asked to count its matches by, sorted, each once.
fn facets(c: &mut Checker, names: &[String]) -> Vec<FacetField> {
    let mut fields = Vec::with_capacity(names.len());
    for name in names {
        match FacetField::parse(name) {
            Some(field) => fields.push(field),
            None => {
                let allowed: Vec<&str> = FacetField::ALL.iter().map(|f| f.as_str()).collect();
                let message = format!("unknown value {name:?}; allowed: {}", allowed.join(", "));
                c.add("facets", message);
                return Vec::new();
            }
        }
    }
    fields.sort();
    fields.dedup();
    fields
}

/// Most ids or external ids in one list filter.
pub const MAX_KEYS: usize = 100;

/// The [`RecordFilter`] of a list (`field`: where it is in the request).
fn records(c: &mut Checker, field: &str, f: Option<&pb::RecordFilter>) -> RecordFilter {
    let Some(f) = f else {
        return RecordFilter::default();
    };
    let mut ids = f.ids.clone();
    if ids.len() > MAX_KEYS {
        c.add(
            &format!("{field}.ids"),
            format!("must have at most {MAX_KEYS} values"),
        );
        ids.clear();
    } else if ids.iter().any(|&id| id < 1) {
        c.add(
            &format!("{field}.ids"),
            "values must be positive partner ids",
        );
        ids.clear();
    }
    ids.sort_unstable();
    ids.dedup();
    let external_ids = &f.external_ids;
    let mut keys = Vec::new();
    if external_ids.len() > MAX_KEYS {
        let message = format!("must have at most {MAX_KEYS} values");
        c.add(&format!("{field}.external_ids"), message);
    } else if external_ids.iter().any(|k| {
        let n = k.chars().count();
        n == 0 || n > super::MAX_REQUEST_ID_CHARS || k.chars().any(char::is_control)
    }) {
        let message = format!(
            "values must have 1 to {} characters, no control characters",
            super::MAX_REQUEST_ID_CHARS
        );
        c.add(&format!("{field}.external_ids"), message);
    } else {
        keys = external_ids.clone();
        keys.sort();
        keys.dedup();
    }
    RecordFilter {
        ids,
        external_ids: keys,
        tags: c.list(&format!("{field}.tags"), &f.tags),
        all_tags: c.list(&format!("{field}.all_tags"), &f.all_tags),
        updated_since: c.time(&format!("{field}.updated_since"), f.updated_since.as_ref()),
        created_since: c.time(&format!("{field}.created_since"), f.created_since.as_ref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_token_carries_its_page() {
        let req = pb::ListWholesalersRequest {
            page: Some(2),
            page_token: "AAAA".into(),
            ..Default::default()
        };
        let Err(Error::InvalidArgument(v)) = ListRequest::try_from(&req) else {
            panic!("expected invalid argument");
        };
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].field, "page");
        let req = pb::ListWholesalersRequest {
            page_token: "AAAA".into(),
            ..Default::default()
        };
        let valid = ListRequest::try_from(&req).expect("a token alone");
        assert_eq!(valid.page_token, Some(vec![0, 0, 0]));
        let long = pb::ListWholesalersRequest {
            page_token: "A".repeat(crate::grpc::validate::MAX_PAGE_TOKEN + 4),
            ..Default::default()
        };
        assert!(ListRequest::try_from(&long).is_err());
    }

    #[test]
    fn list_partners_reports_every_bad_field() {
        let req = pb::ListPartnersRequest {
            business_uuid: "nope".into(),
            include: vec!["users".into(), "bogus".into()],
            page: Some(0),
            per_page: Some(101),
            search: "   ".into(),
            sort: "-clicks,colour".into(),
            show_deleted: false,
            facets: vec!["colour".into()],
            page_token: "not base64!".into(),
            filter: Some(pb::ListPartnersFilter {
                country_codes: vec!["DEU".into()],
                categories: vec!["x".repeat(65)],
                ..Default::default()
            }),
        };
        let Err(Error::InvalidArgument(v)) = ListRequest::try_from(&req) else {
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
                "page_token",
                "filter.categories",
                "filter.country_codes",
                "facets"
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
        let ok = ListRequest::try_from(&req).expect("valid");
        assert_eq!(ok.query.country_codes, ["AT", "DE"]);
        assert_eq!((ok.query.page, ok.query.per_page), (1, 25));
    }
}
