//! The `links` and `meta` of a page of a list: numbered pages, and where the list walks by cursor
//! its `next_page_token` and a `links.next` that carries it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::grpc::pb;

#[derive(Serialize)]
pub(super) struct Links {
    first: String,
    /// Unknown on a page reached by `page_token` (no total).
    last: Option<String>,
    next: Option<String>,
    prev: Option<String>,
    #[serde(rename = "self")]
    this: String,
}

#[derive(Serialize)]
pub(super) struct Meta {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    facets: BTreeMap<String, Vec<FacetValue>>,
    /// The next page's token (null on the last page); left out of lists without cursors.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<Option<String>>,
    page: i32,
    per_page: i32,
    /// Left out on a page reached by `page_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_pages: Option<i32>,
}

#[derive(Serialize)]
struct FacetValue {
    value: String,
    count: i64,
}

/// A page of partners with `meta` and `links`.
#[derive(Debug, Clone, Copy)]
pub enum PageRef<'a> {
    /// By number.
    Number(i32),
    /// By page token.
    Token(&'a str),
    /// The page asked for, as it was asked for (by number, or by its token).
    This(i32),
}

/// The `links` of a page: first, last (when the total is known), next (by the page token where
/// the list has one: a walk along `next` neither skips nor repeats a partner while others change;
/// else by number), prev and self.
pub(super) fn page_links(meta: &pb::PageMeta, link: &dyn Fn(PageRef<'_>) -> String) -> Links {
    let last = meta.total_pages.map(|pages| pages.max(1));
    let next = match meta.next_page_token.as_str() {
        "" => (meta.page < last.unwrap_or(0)).then(|| link(PageRef::Number(meta.page + 1))),
        token => Some(link(PageRef::Token(token))),
    };
    Links {
        first: link(PageRef::Number(1)),
        last: last.map(|last| link(PageRef::Number(last))),
        next,
        prev: (meta.page > 1).then(|| {
            link(PageRef::Number(
                (meta.page - 1).min(last.unwrap_or(i32::MAX)),
            ))
        }),
        this: link(PageRef::This(meta.page)),
    }
}

/// The `meta` of a page; with `next_page_token` where the list walks by cursor (`cursors`).
pub(super) fn page_meta(meta: &pb::PageMeta, cursors: bool) -> Meta {
    Meta {
        page: meta.page,
        per_page: meta.per_page,
        total: meta.total,
        total_pages: meta.total_pages,
        next_page_token: cursors
            .then(|| Some(meta.next_page_token.clone()).filter(|t| !t.is_empty())),
        facets: (meta.facets.iter())
            .map(|f| {
                let values = (f.values.iter())
                    .map(|v| FacetValue {
                        value: v.value.clone(),
                        count: v.count,
                    })
                    .collect();
                (f.field.clone(), values)
            })
            .collect(),
    }
}
