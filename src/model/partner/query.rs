//! A validated list request: which list, its scope, filters, search, order and page (built by
//! `crate::grpc::validate`, answered by the copy or by [`super::list`]).

use chrono::{DateTime, Utc};

use super::keyset::After;
use super::record::Scope;
use crate::model::PartnerStatus;

/// Which of the three list operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// ListPartners: every live partner.
    All,
    /// ListAvailablePartners: active, status available or coming_soon.
    Available,
    /// ListWholesalers: categories contain `wholesaler`.
    Wholesalers,
}

/// A sortable column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    /// `name`
    Name,
    /// `created_at`
    CreatedAt,
    /// `updated_at`
    UpdatedAt,
    /// `clicks` (website + video)
    Clicks,
    /// `users_count`
    UsersCount,
}

impl SortField {
    /// Parses an API sort key.
    pub fn parse(key: &str) -> Option<SortField> {
        Some(match key {
            "name" => SortField::Name,
            "created_at" => SortField::CreatedAt,
            "updated_at" => SortField::UpdatedAt,
            "clicks" => SortField::Clicks,
            "users_count" => SortField::UsersCount,
            _ => return None,
        })
    }

    pub(super) fn column(self) -> &'static str {
        match self {
            SortField::Name => "p.name",
            SortField::CreatedAt => "p.created_at",
            SortField::UpdatedAt => "p.updated_at",
            SortField::Clicks => "p.clicks",
            SortField::UsersCount => "p.users_count",
        }
    }
}

/// A field a list's matches can be counted by (`facets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FacetField {
    /// `categories`
    Categories,
    /// `country_codes`
    CountryCodes,
    /// `status`
    Status,
    /// `tags`
    Tags,
}

impl FacetField {
    /// Every field, in API order.
    pub const ALL: [FacetField; 4] = [
        FacetField::Categories,
        FacetField::CountryCodes,
        FacetField::Status,
        FacetField::Tags,
    ];

    /// The API name (also the column).
    pub fn as_str(self) -> &'static str {
        match self {
            FacetField::Categories => "categories",
            FacetField::CountryCodes => "country_codes",
            FacetField::Status => "status",
            FacetField::Tags => "tags",
        }
    }

    /// Parses an API name.
    pub fn parse(name: &str) -> Option<FacetField> {
        FacetField::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

/// A list's matches counted per value of each asked field, in field order; values most first,
/// then by value.
pub type Facets = Vec<(FacetField, Vec<(String, i64)>)>;

/// Orders counted values as [`Facets`] holds them (most first, then by value), zeros left out.
pub fn facet_values(mut values: Vec<(String, i64)>) -> Vec<(String, i64)> {
    values.retain(|(_, n)| *n > 0);
    values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    values
}

/// The filters on what the copy of the lists does not hold: the caller's own keys, tags and change
/// times. Empty when none is asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordFilter {
    /// Only these partner ids.
    pub ids: Vec<i64>,
    /// Only these external ids.
    pub external_ids: Vec<String>,
    /// Any of these tags.
    pub tags: Vec<String>,
    /// All of these tags.
    pub all_tags: Vec<String>,
    /// Updated at or after.
    pub updated_since: Option<DateTime<Utc>>,
    /// Created at or after.
    pub created_since: Option<DateTime<Utc>>,
}

impl RecordFilter {
    /// Whether any filter is set.
    pub fn is_set(&self) -> bool {
        *self != RecordFilter::default()
    }
}

/// A validated list request.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Which list.
    pub kind: ListKind,
    /// Context.
    pub scope: Scope,
    /// Any of these categories.
    pub categories: Vec<String>,
    /// None of these categories.
    pub excluded_categories: Vec<String>,
    /// Any of these wholesaler categories.
    pub wholesaler_categories: Vec<String>,
    /// Any of these country codes (upper case).
    pub country_codes: Vec<String>,
    /// Any of these statuses.
    pub statuses: Vec<PartnerStatus>,
    /// Preferred by the business in scope.
    pub preferred: Option<bool>,
    /// Active flag.
    pub active: Option<bool>,
    /// Trimmed name substring.
    pub search: Option<String>,
    /// Soft-deleted partners too (ListPartners for service keys; always the SQL path).
    pub show_deleted: bool,
    /// Ids, external ids, tags and change times (always the SQL path).
    pub records: RecordFilter,
    /// Fields to count the matches by (sorted, each once).
    pub facets: Vec<FacetField>,
    /// Sort keys, `true` = descending; empty = the list's default order.
    pub sort: Vec<(SortField, bool)>,
    /// 1-based page (with `after`: the page's number in the walk, for its `meta`).
    pub page: i64,
    /// The cursor of a page token: the page is the rows after it (keyset, no offset).
    pub after: Option<After>,
    /// Page size.
    pub per_page: i64,
}

impl ListQuery {
    /// What a page token of this list is bound to: the list, the business in scope (its
    /// preferences order ListPartners), the filters, the search and the order; not the page, the
    /// page size or the facets, which may change during a walk.
    pub fn binding(&self) -> String {
        let sorted = |values: &[String]| {
            let mut values = values.to_vec();
            values.sort();
            values.dedup();
            values
        };
        format!(
            "{:?}",
            (
                self.kind,
                self.scope.business_id,
                [
                    sorted(&self.categories),
                    sorted(&self.excluded_categories),
                    sorted(&self.wholesaler_categories),
                    sorted(&self.country_codes),
                ],
                &self.statuses,
                (self.preferred, self.active, self.show_deleted),
                &self.search,
                &self.records,
                &self.sort,
            )
        )
    }

    /// A list of `kind` in `scope` with no filter, no search and the default order.
    pub fn new(kind: ListKind, scope: Scope, page: i64, per_page: i64) -> Self {
        ListQuery {
            kind,
            scope,
            categories: Vec::new(),
            excluded_categories: Vec::new(),
            wholesaler_categories: Vec::new(),
            country_codes: Vec::new(),
            statuses: Vec::new(),
            preferred: None,
            active: None,
            search: None,
            show_deleted: false,
            records: RecordFilter::default(),
            facets: Vec::new(),
            sort: Vec::new(),
            page,
            after: None,
            per_page,
        }
    }
}
