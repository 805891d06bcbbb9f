//! The schemas of the click analytics routes: the batch of click events (request and answer).
//! They describe what `crate::gateway::document::clicks` decodes and renders.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AllOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::{PartialSchema, ToSchema};

use super::resources::{ClickEventResource, PartnerIdentifier, UserIdentifier};
use super::schemas::{
    Error, constant, data, event_type, null, object, reference, schema, single_line, uuid,
};
use crate::grpc::validate::MAX_BATCH_EVENTS;

/// `{"data": identifier}`, or `{"data": null}` when `optional`.
fn link(identifier: RefOr<Schema>, optional: bool) -> ObjectBuilder {
    if optional {
        data(OneOfBuilder::new().item(identifier).item(null()))
    } else {
        data(identifier)
    }
}

schema!(
    /// One event of `batchCreatePartnerClickEvents`.
    ClickEventBatchEntry = object([
        ("type", constant("partner_click_events").into()),
        (
            "attributes",
            object([("event_type", event_type().into())])
                .property(
                    "request_id",
                    single_line(1, 200).description(Some(
                        "Idempotency key of this event, unique per caller: a replay answers the \
                         first event.",
                    )),
                )
                .into(),
        ),
        (
            "relationships",
            object([("partner", link(reference::<PartnerIdentifier>(), false).into())])
                .property(
                    "user",
                    link(reference::<UserIdentifier>(), true).description(Some(
                        "The clicking user (service keys only; a user key's events are its own).",
                    )),
                )
                .property(
                    "business",
                    link(
                        object([
                            ("type", constant("business").into()),
                            ("id", uuid().into()),
                        ])
                        .into(),
                        true,
                    )
                    .description(Some("The business in context of an event without a user.")),
                )
                .into(),
        ),
    ])
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
