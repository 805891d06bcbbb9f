//! The schemas of the request bodies: a partner's write attributes with the create and update
//! documents, and the click event document. They describe what `extract.rs` decodes; the rules
//! on values are the gRPC layer's, stated here so that clients (and schemathesis) can follow them.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, AnyOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder,
    Schema, SchemaType, Type,
};
use utoipa::{PartialSchema, ToSchema};

use super::resources::PartnerIdentifier;
use super::schemas::{
    JsonObject, NO_CONTROLS, PartnerStatus, data, event_type, label, null, nullable, object,
    reference, schema, single_line, string, typed,
};

/// A nullable string with these limits.
fn nullable_text(max: usize, pattern: String, description: Option<&str>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(nullable(Type::String))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .description(description)
}

schema!(
    /// The attributes a partner is created or updated with.
    PartnerWriteAttributes = {
        let labels = || {
            ArrayBuilder::new()
                .schema_type(nullable(Type::Array))
                .items(label())
                .max_items(Some(50))
        };
        let url = || {
            nullable_text(
                2048,
                format!("^(https?://[^\\s{NO_CONTROLS}]+)?$"),
                Some("An http(s) URL, or empty/null for none."),
            )
        };
        ObjectBuilder::new()
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .property(
                "name",
                single_line(1, 200).description(Some("Display name (trimmed).")),
            )
            .property(
                "description",
                ObjectBuilder::new()
                    .schema_type(nullable(Type::String))
                    .max_length(Some(5000))
                    .pattern(Some(
                        "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$",
                    )),
            )
            .property(
                "email",
                nullable_text(
                    320,
                    format!("^([^@\\s{NO_CONTROLS}]+@[^\\s{NO_CONTROLS}]+)?$"),
                    Some("An e-mail address, or empty/null for none."),
                ),
            )
            .property("logo_url", url())
            .property("website_url", url())
            .property("video_url", url())
            .property("categories", labels())
            .property("wholesaler_categories", labels())
            .property("tags", labels())
            .property(
                "country_codes",
                ArrayBuilder::new()
                    .schema_type(nullable(Type::Array))
                    .max_items(Some(50))
                    .items(string().pattern(Some("^[A-Za-z]{2}$")))
                    .description(Some("ISO 3166-1 alpha-2 codes, any case; stored upper-case.")),
            )
            .property("status", reference::<PartnerStatus>())
            .property("active", typed(Type::Boolean))
            .property(
                "external_id",
                nullable_text(
                    200,
                    format!("^[^{NO_CONTROLS}]*$"),
                    Some("The caller's own reference; empty or null clears it."),
                ),
            )
            .property(
                "metadata",
                AnyOfBuilder::new()
                    .item(reference::<JsonObject>())
                    .item(null())
                    .description(Some(
                        "Free-form JSON object of at most 16 KiB serialized (no NUL characters).",
                    )),
            )
            .into()
    }
);

/// `{"data": {"type": "partner", "attributes": attributes}}`.
fn partner_write_request(attributes: RefOr<Schema>) -> RefOr<Schema> {
    data(object([
        ("type", string().enum_values(Some(["partner"])).into()),
        ("attributes", attributes),
    ]))
    .into()
}

/// `schema` constrained by `extra` (keywords utoipa's `allOf` does not carry itself).
fn all_of(schema: RefOr<Schema>, extra: ObjectBuilder) -> AllOfBuilder {
    AllOfBuilder::new()
        .item(schema)
        .item(extra.schema_type(SchemaType::AnyValue))
}

schema!(
    /// The body of `createPartner`.
    PartnerCreateRequest = partner_write_request(
        all_of(
            reference::<PartnerWriteAttributes>(),
            ObjectBuilder::new().required("name"),
        )
        .into()
    )
);

schema!(
    /// The body of `updatePartner`.
    PartnerUpdateRequest = partner_write_request(
        all_of(
            reference::<PartnerWriteAttributes>(),
            ObjectBuilder::new().min_properties(Some(1)),
        )
        .description(Some("Only the attributes present are updated."))
        .into()
    )
);

schema!(
    /// The body of `upsertPartner`.
    PartnerUpsertRequest = partner_write_request(
        all_of(
            reference::<PartnerWriteAttributes>(),
            ObjectBuilder::new()
                .required("name")
                .property("external_id", null()),
        )
        .description(Some(
            "`name` creates the partner when no partner has the external id; an update of a \
             partner that exists may leave it out and changes only the attributes present. \
             The external id is the path's: the body may not set one (null is ignored).",
        ))
        .into()
    )
);

schema!(
    /// The body of `createPartnerClickEvent`.
    ClickEventRequest = data(
        object([
            ("type", string().enum_values(Some(["partner_click_events"])).into()),
            ("attributes", object([("event_type", event_type().into())]).into()),
        ])
        .property(
            "relationships",
            ObjectBuilder::new().property(
                "partner",
                OneOfBuilder::new()
                    .description(Some("If given, its id must equal the path id."))
                    .item(reference::<PartnerIdentifier>())
                    .item(data(reference::<PartnerIdentifier>())),
            ),
        ),
    )
    .into()
);
