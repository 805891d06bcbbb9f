//! The schemas of the bulk routes: a partner's users page (listPartnerUsers, rendered by
//! `document/users.rs`), the batch writes' bodies and answers (`routes/bulk.rs`).

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::{PartialSchema, ToSchema};

use super::bodies::PartnerWriteAttributes;
use super::resources::Partner;
use super::schemas::{
    PartnerStatus, constant, count, data, date_time, format, label, nullable, numeric_id, object,
    reference, schema, string, typed, uuid,
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

/// Most items of a batch write.
const MAX_ITEMS: usize = crate::grpc::validate::MAX_BATCH_WRITES;

/// A partner id as a string of digits that fits a 64-bit integer.
fn id() -> ObjectBuilder {
    numeric_id().max_length(Some(18))
}

schema!(
    /// The body of `batchUpdatePartners`.
    PartnerBatchUpdateRequest = data(
        ArrayBuilder::new()
            .min_items(Some(1))
            .max_items(Some(MAX_ITEMS))
            .description(Some(
                "The updates, each naming another partner; only the attributes present are \
                 updated.",
            ))
            .items(object([
                ("type", constant("partner").into()),
                ("id", id().into()),
                (
                    "attributes",
                    AllOfBuilder::new()
                        .item(reference::<PartnerWriteAttributes>())
                        .item(
                            ObjectBuilder::new()
                                .min_properties(Some(1))
                                .schema_type(SchemaType::AnyValue),
                        )
                        .into(),
                ),
            ])),
    )
    .into()
);

schema!(
    /// The partners written by `batchUpdatePartners`, in request order.
    PartnerBatchUpdateDocument = data(ArrayBuilder::new().items(reference::<Partner>())).into()
);

schema!(
    /// The body of `batchModifyPartners`: at least one of the changes.
    PartnerBatchModifyRequest = data(object([
        ("type", constant("partner_batch_modification").into()),
        (
            "attributes",
            object([(
                "ids",
                ArrayBuilder::new()
                    .min_items(Some(1))
                    .max_items(Some(MAX_ITEMS))
                    .items(id())
                    .description(Some("The partners (ids as strings)."))
                    .into(),
            )])
            .property(
                "add_tags",
                ArrayBuilder::new()
                    .items(label())
                    .min_items(Some(1))
                    .max_items(Some(50)),
            )
            .property(
                "remove_tags",
                ArrayBuilder::new()
                    .items(label())
                    .min_items(Some(1))
                    .max_items(Some(50))
                    .description(Some("Removal wins over addition of the same tag.")),
            )
            .property("status", reference::<PartnerStatus>())
            .property("active", typed(Type::Boolean))
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .min_properties(Some(2))
            .into(),
        ),
    ]))
    .into()
);

schema!(
    /// What `batchModifyPartners` changed.
    PartnerBatchModifyDocument = object([(
        "meta",
        object([(
            "changed_ids",
            ArrayBuilder::new()
                .items(numeric_id())
                .description(Some(
                    "The partners whose values changed, ascending (the others had them already).",
                ))
                .into(),
        )])
        .into(),
    )])
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
