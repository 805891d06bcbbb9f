//! The schemas of the click analytics routes: the batch of click events (request and answer,
//! what `crate::gateway::document::clicks` decodes and renders) and the answers of the reads
//! (`crate::gateway::routes::click_reads`).

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AllOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::{PartialSchema, ToSchema};

use super::resources::ClickEventResource;
use super::schemas::{
    Error, constant, count, data, date_time, null, nullable, object, reference, schema, string,
};
use crate::grpc::validate::MAX_BATCH_EVENTS;

/// `{"data": {"type": kind, "id": string}}`, or `{"data": null}` when `optional`. Ids are any
/// string here: a wrong one fails its event, not the document.
fn link(kind: &str, id: &str, optional: bool) -> ObjectBuilder {
    let identifier: RefOr<Schema> = object([
        ("type", constant(kind).into()),
        ("id", string().description(Some(id)).into()),
    ])
    .into();
    if optional {
        data(OneOfBuilder::new().item(identifier).item(null()))
    } else {
        data(identifier)
    }
}

schema!(
    /// One event of `batchCreatePartnerClickEvents`. The values are checked per event: a wrong one
    /// fails that event (its error in `meta.errors`), not the document.
    ClickEventBatchEntry = object([
        ("type", constant("partner_click_events").into()),
        (
            "relationships",
            object([("partner", link("partner", "The partner id (decimal).", false).into())])
                .property(
                    "user",
                    link("user", "The user's uuid.", true).description(Some(
                        "The clicking user (service keys only; a user key's events are its own).",
                    )),
                )
                .property(
                    "business",
                    link("business", "The business's uuid.", true)
                        .description(Some("The business in context of an event without a user.")),
                )
                .into(),
        ),
    ])
    .property(
        "attributes",
        ObjectBuilder::new()
                .property(
                    "event_type",
                    string().description(Some("`website` or `video` (required).")),
                )
                .property(
                    "request_id",
                    string().description(Some(
                        "Idempotency key of this event, 1..200 printable characters, unique per \
                         caller: a replay answers the first event.",
                    )),
                )
    )
    .into()
);

schema!(
    /// The body of `batchCreatePartnerClickEvents`.
    ClickEventBatchRequest = data(
        ArrayBuilder::new()
            .items(reference::<ClickEventBatchEntry>())
            .min_items(Some(1))
            .max_items(Some(MAX_BATCH_EVENTS)),
    )
    .into()
);

schema!(
    /// The answer of `batchCreatePartnerClickEvents`: `data[i]` answers event i.
    ClickEventBatchDocument = data(
        ArrayBuilder::new()
            .items(
                OneOfBuilder::new()
                    .item(reference::<ClickEventResource>())
                    .item(null()),
            )
            .description(Some(
                "The recorded event (for a replayed request_id, the first event), or null when \
                 the event failed.",
            )),
    )
    .property(
        "meta",
        object([(
            "errors",
            ArrayBuilder::new()
                .items(
                    AllOfBuilder::new().item(reference::<Error>()).item(object([(
                        "meta",
                        object([(
                            "index",
                            ObjectBuilder::new()
                                .schema_type(Type::Integer)
                                .minimum(Some(0))
                                .into(),
                        )])
                        .into(),
                    )])),
                )
                .description(Some(
                    "One error per failed event (one per invalid field), `source.pointer` \
                     pointing into the request, `meta.index` naming the event.",
                ))
                .into(),
        )]),
    )
    .into()
);

/// `{"clicks", "website_clicks", "video_clicks"}` plus `extra` properties.
fn click_counts() -> ObjectBuilder {
    object([
        ("clicks", count().into()),
        ("website_clicks", count().into()),
        ("video_clicks", count().into()),
    ])
}

schema!(
    /// The answer of `getPartnerClickStats`.
    ClickStatsDocument = data(object([
        ("id", string().into()),
        ("type", constant("partner_click_stats").into()),
        (
            "attributes",
            object([
                ("since", date_time().into()),
                ("until", date_time().into()),
                (
                    "bucket",
                    string()
                        .enum_values(Some(["hour", "day", "week", "month"]))
                        .into(),
                ),
                ("time_zone", string().into()),
                (
                    "business_uuid",
                    ObjectBuilder::new()
                        .schema_type(nullable(Type::String))
                        .description(Some("The business whose clicks count; null: all."))
                        .into(),
                ),
                (
                    "buckets",
                    ArrayBuilder::new()
                        .items(click_counts().property("start", date_time()).required("start"))
                        .into(),
                ),
                ("totals", click_counts().into()),
            ])
            .into(),
        ),
    ]))
    .into()
);

/// A nullable link.
fn link_or_null() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(nullable(Type::String))
}

schema!(
    /// The answer of `listTopPartnersByClicks`.
    TopPartnersDocument = data(
        ArrayBuilder::new().items(object([
            ("id", string().into()),
            ("type", constant("partner_click_totals").into()),
            (
                "attributes",
                click_counts().property("name", string()).required("name").into(),
            ),
        ])),
    )
    .property(
        "meta",
        object([
            ("page", count().into()),
            ("per_page", count().into()),
            ("total", count().into()),
            ("total_pages", count().into()),
        ]),
    )
    .property(
        "links",
        object([
            ("self", string().into()),
            ("first", string().into()),
            ("prev", link_or_null().into()),
            ("next", link_or_null().into()),
            ("last", string().into()),
        ]),
    )
    .into()
);

schema!(
    /// The answer of `listPartnerClickEvents`.
    ClickEventPage = data(ArrayBuilder::new().items(reference::<ClickEventResource>()))
        .property("meta", object([("next_page_token", link_or_null().into())]))
        .property("links", object([("next", link_or_null().into())]))
        .into()
);
