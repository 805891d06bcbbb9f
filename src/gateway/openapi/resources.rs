//! The schemas of the documents the gateway answers: a partner resource and its attributes,
//! relationships and included resources, the single-partner and list documents, the click
//! event document, and the change events' feed page. They describe what `document.rs` renders.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    ArrayBuilder, Discriminator, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::{PartialSchema, ToSchema};

use super::schemas::{
    IntegrationStatus, PartnerStatus, constant, count, data, date_time, event_type, format, null,
    nullable, numeric_id, object, reference, schema, string, strings, typed, uuid,
};

/// `meta.facets` of a list: for each field asked, its values with their counts, most first.
fn facets() -> ObjectBuilder {
    let value = object([("value", string().into()), ("count", count().into())]);
    let values = ArrayBuilder::new().items(value);
    ObjectBuilder::new()
        .description(Some("The counts asked for with `facets`, by field."))
        .additional_properties(Some(values))
}

/// The `included` array of a document.
fn included() -> ArrayBuilder {
    ArrayBuilder::new()
        .description(Some("Present only when `include` was requested."))
        .items(reference::<IncludedResource>())
}

schema!(
    /// A partner resource.
    Partner = object([
        ("id", numeric_id().into()),
        ("type", constant("partner").into()),
        ("attributes", reference::<PartnerAttributes>()),
    ])
    .property("relationships", reference::<PartnerRelationships>())
    .into()
);

/// A nullable boolean with a description.
fn optional_flag(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(nullable(Type::Boolean))
        .description(Some(description))
}

schema!(
    /// A partner's attributes, as seen by the business (and user) in context.
    PartnerAttributes = object([
        ("name", string().into()),
        ("description", string().into()),
        ("email", string().into()),
        ("logo_url", string().into()),
        ("website_url", string().into()),
        ("video_url", string().into()),
        ("categories", strings().into()),
        ("wholesaler_categories", strings().into()),
        ("country_codes", strings().into()),
        ("tags", strings().into()),
        ("status", reference::<PartnerStatus>()),
        ("active", typed(Type::Boolean).into()),
        ("external_id", ObjectBuilder::new().schema_type(nullable(Type::String)).into()),
        ("metadata", ObjectBuilder::new().into()),
        ("stats", reference::<crate::gateway::document::Stats>()),
        (
            "preferred",
            optional_flag(
                "Whether the business in context prefers the partner; null without a business \
                 in context.",
            )
            .into(),
        ),
        (
            "integration_status",
            OneOfBuilder::new()
                .description(Some("The business's integration with the partner, if any."))
                .item(reference::<IntegrationStatus>())
                .item(null())
                .into(),
        ),
        (
            "connected",
            optional_flag(
                "Whether the user in context is connected; null without a user in context.",
            )
            .into(),
        ),
        ("created_at", date_time().into()),
        ("updated_at", date_time().into()),
    ])
    .property(
        "deleted_at",
        date_time().description(Some(
            "When the partner was soft-deleted; present only in `filter[show_deleted]` lists.",
        )),
    )
    .into()
);

schema!(
    /// The relationships of a partner.
    PartnerRelationships = ObjectBuilder::new()
        .description(Some("Only the relationships named in `include`."))
        .property(
            "users",
            to_many::<UserIdentifier>()
                .property(
                    "links",
                    object([(
                        "related",
                        format(string(), "uri-reference")
                            .description(Some("All the users, paged: listPartnerUsers."))
                            .into(),
                    )]),
                )
                .required("links"),
        )
        .property(
            "partner_integrations",
            to_many::<PartnerIntegrationIdentifier>(),
        )
        .into()
);

/// A to-many relationship: at most 20 identifiers and `meta.total`, the relationship's size.
fn to_many<T: ToSchema>() -> ObjectBuilder {
    data(ArrayBuilder::new().items(reference::<T>()).max_items(Some(
        crate::model::partner::MAX_INCLUDED_PER_PARTNER as usize,
    )))
    .property(
        "meta",
        object([(
            "total",
            count()
                .description(Some("How many resources the relationship holds in all."))
                .into(),
        )]),
    )
    .required("meta")
}

/// `{"type": kind, "id": id}`, both required.
fn identifier(kind: &str, id: ObjectBuilder) -> RefOr<Schema> {
    object([("type", constant(kind).into()), ("id", id.into())]).into()
}

schema!(
    /// A partner's resource identifier.
    PartnerIdentifier = identifier("partner", numeric_id())
);

schema!(
    /// A user's resource identifier.
    UserIdentifier = identifier("user", uuid())
);

schema!(
    /// A partner integration's resource identifier.
    PartnerIntegrationIdentifier = identifier("partner_integration", numeric_id())
);

schema!(
    /// A resource of `included`: a user or a partner integration.
    IncludedResource = OneOfBuilder::new()
        .item(reference::<IncludedUser>())
        .item(reference::<IncludedPartnerIntegration>())
        .discriminator(Some(Discriminator::with_mapping(
            "type",
            [
                ("user", "#/components/schemas/IncludedUser"),
                (
                    "partner_integration",
                    "#/components/schemas/IncludedPartnerIntegration",
                ),
            ],
        )))
        .into()
);

schema!(
    /// An included user (of the business in context).
    IncludedUser = object([
        ("type", constant("user").into()),
        ("id", uuid().into()),
        (
            "attributes",
            object([("name", string().into()), ("email", string().into())]).into(),
        ),
    ])
    .into()
);

schema!(
    /// An included partner integration (of the business in context).
    IncludedPartnerIntegration = object([
        ("type", constant("partner_integration").into()),
        ("id", numeric_id().into()),
        (
            "attributes",
            object([
                ("status", reference::<IntegrationStatus>()),
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
    /// A single partner's document.
    PartnerDocument = data(reference::<Partner>())
        .property("included", included())
        .into()
);

schema!(
    /// A page of partners with `meta` and `links`.
    PartnerList = {
        let link = || format(string(), "uri-reference");
        let optional_link = || {
            format(ObjectBuilder::new(), "uri-reference").schema_type(nullable(Type::String))
        };
        object([
            ("data", ArrayBuilder::new().items(reference::<Partner>()).into()),
            (
                "meta",
                object([
                    ("page", count().into()),
                    ("per_page", count().into()),
                    (
                        "next_page_token",
                        ObjectBuilder::new()
                            .schema_type(nullable(Type::String))
                            .description(Some(
                                "The next page's `page_token` (`links.next` carries it); \
                                 null on the last page.",
                            ))
                            .into(),
                    ),
                ])
                .property(
                    "total",
                    count().description(Some(
                        "Exact number of matches; left out on a page reached by `page_token`.",
                    )),
                )
                .property("total_pages", count())
                .property("facets", facets())
                .into(),
            ),
            (
                "links",
                object([
                    ("self", link().into()),
                    ("first", link().into()),
                    ("last", optional_link().into()),
                    ("prev", optional_link().into()),
                    ("next", optional_link().into()),
                ])
                .into(),
            ),
        ])
        .property("included", included())
        .into()
    }
);

schema!(
    /// The partners of a batch read and the keys that found none.
    PartnerBatch = object([
        ("data", ArrayBuilder::new().items(reference::<Partner>()).into()),
        (
            "meta",
            object([
                (
                    "missing_ids",
                    ArrayBuilder::new()
                        .items(numeric_id())
                        .description(Some("Requested ids without a live partner."))
                        .into(),
                ),
                (
                    "missing_external_ids",
                    ArrayBuilder::new()
                        .items(string())
                        .description(Some("Requested external ids without a live partner."))
                        .into(),
                ),
            ])
            .into(),
        ),
    ])
    .property("included", included())
    .into()
);

schema!(
    /// An upserted partner's document, saying whether the upsert created it.
    PartnerUpsertDocument = data(reference::<Partner>())
        .property(
            "meta",
            object([(
                "created",
                typed(Type::Boolean)
                    .description(Some("Whether the call created the partner."))
                    .into(),
            )]),
        )
        .into()
);

schema!(
    /// A click event resource.
    ClickEventResource = object([
        ("id", string().into()),
        ("type", constant("partner_click_events").into()),
        (
            "attributes",
            object([
                ("event_type", event_type().into()),
                ("created_at", date_time().into()),
            ])
            .into(),
        ),
        (
            "relationships",
            object([
                ("partner", data(reference::<PartnerIdentifier>()).into()),
                (
                    "user",
                    data(
                        OneOfBuilder::new()
                            .item(reference::<UserIdentifier>())
                            .item(null()),
                    )
                    .into(),
                ),
            ])
            .into(),
        ),
    ])
    .into()
);

schema!(
    /// A click event's document.
    ClickEventDocument = data(reference::<ClickEventResource>()).into()
);

schema!(
    /// A change event's type (the spellings of `crate::model::change::ChangeKind`).
    PartnerEventType = string()
        .description(Some("What changed."))
        .enum_values(Some(
            crate::model::change::ChangeKind::ALL
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
        ))
        .into()
);

schema!(
    /// A change event.
    PartnerEvent = object([
        ("id", numeric_id().into()),
        ("type", constant("partner_events").into()),
        (
            "attributes",
            object([
                (
                    "sequence",
                    format(typed(Type::Integer), "int64").minimum(Some(1)).into(),
                ),
                ("event_type", reference::<PartnerEventType>()),
                (
                    "partner_id",
                    format(typed(Type::Integer), "int64").minimum(Some(1)).into(),
                ),
                (
                    "business_uuid",
                    OneOfBuilder::new()
                        .description(Some(
                            "The business the change is scoped to (integrations, preferences, \
                             user links).",
                        ))
                        .item(uuid())
                        .item(null())
                        .into(),
                ),
                (
                    "user_uuid",
                    OneOfBuilder::new()
                        .description(Some("The user linked or unlinked (`partner_user.*`)."))
                        .item(uuid())
                        .item(null())
                        .into(),
                ),
                ("occurred_at", date_time().into()),
                (
                    "changed_fields",
                    strings()
                        .description(Some("For `partner.updated`: the attributes that changed."))
                        .into(),
                ),
                (
                    "partner",
                    OneOfBuilder::new()
                        .description(Some(
                            "For `partner.*`: the partner as it was after the change, without a \
                             business in context.",
                        ))
                        .item(reference::<Partner>())
                        .item(null())
                        .into(),
                ),
            ])
            .into(),
        ),
        (
            "relationships",
            object([("partner", data(reference::<PartnerIdentifier>()).into())]).into(),
        ),
    ])
    .into()
);

schema!(
    /// A page of change events; `links.next` is the next page's URL (the cursor).
    PartnerEventList = object([
        ("data", ArrayBuilder::new().items(reference::<PartnerEvent>()).into()),
        (
            "meta",
            object([(
                "next_after",
                format(typed(Type::Integer), "int64").minimum(Some(0)).into(),
            )])
            .into(),
        ),
        (
            "links",
            object([
                ("self", format(string(), "uri-reference").into()),
                ("next", format(string(), "uri-reference").into()),
            ])
            .into(),
        ),
    ])
    .into()
);
