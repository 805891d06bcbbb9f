//! ListPartnerUsers' document: a page of `user` resources (name, email, business, times) with the
//! list's `meta` and `links`.

use serde::Serialize;

use super::{Links, Meta, PageRef, page_links, page_meta, time};
use crate::grpc::pb;

#[derive(Serialize)]
struct UserAttributes<'a> {
    business_uuid: &'a str,
    created_at: Option<String>,
    email: &'a str,
    name: &'a str,
    updated_at: Option<String>,
}

#[derive(Serialize)]
struct UserResource<'a> {
    attributes: UserAttributes<'a>,
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// A page of a partner's users.
#[derive(Serialize)]
pub struct UserListDocument<'a> {
    data: Vec<UserResource<'a>>,
    links: Links,
    meta: Meta,
}

/// The document of a ListPartnerUsers answer; `link` builds the URL of a page.
pub fn user_list_document<'a>(
    users: &'a [pb::User],
    meta: &pb::PageMeta,
    link: &dyn Fn(PageRef<'_>) -> String,
) -> UserListDocument<'a> {
    UserListDocument {
        data: users
            .iter()
            .map(|u| UserResource {
                attributes: UserAttributes {
                    business_uuid: &u.business_uuid,
                    created_at: time(&u.created_at),
                    email: &u.email,
                    name: &u.name,
                    updated_at: time(&u.updated_at),
                },
                id: &u.uuid,
                kind: "user",
            })
            .collect(),
        links: page_links(meta, link),
        meta: page_meta(meta, false),
    }
}
