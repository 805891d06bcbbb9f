//! The schemas of the bulk routes: a partner's users page (listPartnerUsers). They describe what
//! `document/users.rs` renders.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use super::schemas::{
    constant, count, date_time, format, nullable, object, reference, schema, string, uuid,
};

/// `links` of a page: self, first, last, prev and next.
fn page_links() -> ObjectBuilder {
    let link = || format(string(), "uri-reference");
    let optional_link =
        || format(ObjectBuilder::new(), "uri-reference").schema_type(nullable(Type::String));
    object([
        ("self", link().into()),
        ("first", link().into()),
        ("last", link().into()),
        ("prev", optional_link().into()),
        ("next", optional_link().into()),
    ])
}

/// `meta` of a page: page, per_page, total, total_pages.
fn page_meta() -> ObjectBuilder {
    object([
        ("page", count().into()),
        ("per_page", count().into()),
        ("total", count().into()),
        ("total_pages", count().into()),
    ])
}

schema!(
    /// A user connected to a partner.
    PartnerUser = object([
        ("type", constant("user").into()),
        ("id", uuid().into()),
        (
            "attributes",
            object([
                ("name", string().into()),
                ("email", string().into()),
                ("business_uuid", uuid().into()),
                ("created_at", date_time().into()),
                ("updated_at", date_time().into()),
            ])
            .into(),
        ),
    ])
    .into()
);

schema!(
    /// A page of a partner's users with `meta` and `links`.
    PartnerUserList = object([
        (
            "data",
            ArrayBuilder::new()
                .items(reference::<PartnerUser>())
                .into(),
        ),
        ("meta", page_meta().into()),
        ("links", page_links().into()),
    ])
    .into()
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_page_requires_its_links_and_meta() {
        let RefOr::T(Schema::Object(list)) = PartnerUserList::schema() else {
            panic!("object");
        };
        assert_eq!(list.required, ["data", "meta", "links"]);
    }
}
