//! The shared pieces of the OpenAPI schemas: the `schema!` declaration, the building blocks
//! (strings, ids, references, required objects), the status enums, the JSON value schemas of
//! `metadata`, the error document, and [`all`], the list of every schema for
//! `components/schemas`. The resource documents are in `resources.rs`, the request bodies in
//! `bodies.rs`.
//!
//! `document.rs` renders partner documents from typed views that borrow from the gRPC messages
//! (for speed), and errors and click events are rendered from small trees; those renderers cannot
//! carry the constraints a client needs (id patterns, resource types, enums, nullability), so the
//! shapes they produce are declared with utoipa's schema builders. Where a Rust type expresses a
//! schema exactly, it is derived instead (`PartnerStats` from the rendered `document::Stats`, the
//! health answers in `routes/health.rs`); the status and event type enums list the domain enums'
//! spellings (`crate::model::enums`).

use std::borrow::Cow;

use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, ObjectBuilder, Schema, SchemaFormat,
    SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::model;

/// Declares a schema type whose schema is built by `$build`; its name is the type's name.
macro_rules! schema {
    ($(#[$doc:meta])* $name:ident = $build:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $build
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}
pub(super) use schema;

/// The spellings of a domain enum, in declaration order.
fn spellings<T: Copy>(all: &[T], as_str: fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|&value| as_str(value)).collect()
}

schema!(
    /// A partner's status (the spellings of [`model::PartnerStatus`]).
    PartnerStatus = string()
        .description(Some("A partner's status."))
        .enum_values(Some(spellings(
            model::PartnerStatus::ALL,
            model::PartnerStatus::as_str
        )))
        .into()
);

schema!(
    /// A business's integration status with a partner (the spellings of
    /// [`model::IntegrationStatus`]).
    IntegrationStatus = string()
        .description(Some("A business's integration status with a partner."))
        .enum_values(Some(spellings(
            model::IntegrationStatus::ALL,
            model::IntegrationStatus::as_str
        )))
        .into()
);

/// Every schema of the document, for `components/schemas`.
pub fn all() -> Vec<(String, RefOr<Schema>)> {
    let mut all = Vec::new();
    let mut add = |name: Cow<'static, str>, schema: RefOr<Schema>| {
        all.push((name.into_owned(), schema));
    };
    macro_rules! add {
        ($($t:ty),* $(,)?) => { $( add(<$t as ToSchema>::name(), <$t as PartialSchema>::schema()); )* };
    }
    use super::bodies::*;
    use super::bulk::*;
    use super::resources::*;
    add!(
        JsonValue,
        JsonObject,
        Partner,
        PartnerAttributes,
        crate::gateway::document::Stats,
        PartnerRelationships,
        PartnerStatus,
        IntegrationStatus,
        PartnerIdentifier,
        UserIdentifier,
        PartnerIntegrationIdentifier,
        IncludedResource,
        IncludedUser,
        IncludedPartnerIntegration,
        PartnerDocument,
        PartnerList,
        PartnerBatch,
        PartnerUpsertDocument,
        PartnerWriteAttributes,
        PartnerCreateRequest,
        PartnerUpdateRequest,
        PartnerUpsertRequest,
        ClickEventRequest,
        ClickEventResource,
        ClickEventDocument,
        super::clicks::ClickEventBatchEntry,
        super::clicks::ClickEventBatchRequest,
        super::clicks::ClickEventBatchDocument,
        super::clicks::ClickStatsDocument,
        super::clicks::TopPartnersDocument,
        super::clicks::ClickEventPage,
        PartnerEventType,
        PartnerEvent,
        PartnerEventList,
        PartnerUser,
        PartnerUserList,
        PartnerBatchUpdateRequest,
        PartnerBatchUpdateDocument,
        PartnerBatchModifyRequest,
        PartnerBatchModifyDocument,
        Errors,
        Error,
        crate::gateway::routes::health::Health,
        crate::gateway::routes::health::Readiness,
    );
    all
}

// ---------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------

/// `{"$ref": "#/components/schemas/{T}"}`.
pub(super) fn reference<T: ToSchema>() -> RefOr<Schema> {
    Ref::from_schema_name(T::name()).into()
}

pub(super) fn typed(t: Type) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(t)
}

pub(super) fn string() -> ObjectBuilder {
    typed(Type::String)
}

pub(super) fn strings() -> ArrayBuilder {
    ArrayBuilder::new().items(string())
}

pub(super) fn format(builder: ObjectBuilder, format: &str) -> ObjectBuilder {
    builder.format(Some(SchemaFormat::Custom(format.to_owned())))
}

/// A UUID string.
pub fn uuid() -> ObjectBuilder {
    format(string(), "uuid")
}

pub(super) fn date_time() -> ObjectBuilder {
    format(string(), "date-time")
}

pub(super) fn count() -> ObjectBuilder {
    format(typed(Type::Integer), "int64").minimum(Some(0))
}

/// A string that must be exactly `value` (a JSON:API resource type).
pub(super) fn constant(value: &str) -> ObjectBuilder {
    string().enum_values(Some([value]))
}

/// A decimal resource id.
pub(super) fn numeric_id() -> ObjectBuilder {
    string().pattern(Some("^[1-9][0-9]*$"))
}

pub(super) fn nullable(t: Type) -> SchemaType {
    [t, Type::Null].into_iter().collect()
}

pub(super) fn null() -> ObjectBuilder {
    typed(Type::Null)
}

/// An object with these required properties, in this order.
pub(super) fn object<const N: usize>(required: [(&str, RefOr<Schema>); N]) -> ObjectBuilder {
    required
        .into_iter()
        .fold(ObjectBuilder::new(), |object, (name, schema)| {
            object.property(name, schema).required(name)
        })
}

/// `{"data": schema}`, required.
pub(super) fn data(schema: impl Into<RefOr<Schema>>) -> ObjectBuilder {
    object([("data", schema.into())])
}

/// Characters no text field may hold (C0 and C1 controls; Postgres cannot store NUL).
pub const NO_CONTROLS: &str = "\\u0000-\\u001F\\u007F-\\u009F";

/// A single-line text without control characters, with at least one non-space character.
pub(super) fn single_line(min: usize, max: usize) -> ObjectBuilder {
    let pattern = if min == 0 {
        format!("^[^{NO_CONTROLS}]*$")
    } else {
        format!("^[^{NO_CONTROLS}]*[^\\s{NO_CONTROLS}][^{NO_CONTROLS}]*$")
    };
    string()
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
}

/// One value of an array filter or label list.
pub fn label() -> ObjectBuilder {
    string()
        .min_length(Some(1))
        .max_length(Some(64))
        .pattern(Some(format!("^[^{NO_CONTROLS}]+$")))
}

/// The event types.
pub(super) fn event_type() -> ObjectBuilder {
    string().enum_values(Some(spellings(
        model::EventType::ALL,
        model::EventType::as_str,
    )))
}

// ---------------------------------------------------------------------------------------------
// JSON values and errors
// ---------------------------------------------------------------------------------------------

schema!(
    /// Any JSON value without NUL characters (the `metadata` values).
    JsonValue = AnyOfBuilder::new()
        .item(string().pattern(Some("^[^\\u0000]*$")))
        .item(
            typed(Type::Number)
                .exclusive_minimum(Some(-1e300))
                .exclusive_maximum(Some(1e300)),
        )
        .item(typed(Type::Boolean))
        .item(null())
        .item(ArrayBuilder::new().items(reference::<JsonValue>()))
        .item(reference::<JsonObject>())
        .into()
);

schema!(
    /// A JSON object whose keys and values hold no NUL character.
    JsonObject = ObjectBuilder::new()
        .property_names(Some(ObjectBuilder::new()
            .schema_type(SchemaType::AnyValue)
            .pattern(Some("^[^\\u0000]*$"))))
        .additional_properties(Some(AdditionalProperties::RefOr(reference::<JsonValue>())))
        .into()
);

schema!(
    /// A JSON:API error document.
    Errors = object([(
        "errors",
        ArrayBuilder::new()
            .min_items(Some(1))
            .items(reference::<Error>())
            .into(),
    )])
    .into()
);

schema!(
    /// One JSON:API error.
    Error = {
        let described = |description: &str| string().description(Some(description));
        object([
            (
                "status",
                described("The HTTP status, as a string.")
                    .pattern(Some("^[1-5][0-9]{2}$"))
                    .examples(["400"])
                    .into(),
            ),
            (
                "code",
                described("UPPER_SNAKE reason.")
                    .pattern(Some("^[A-Z][A-Z0-9_]*$"))
                    .examples(["INVALID_ARGUMENT", "NOT_FOUND", "IDEMPOTENCY_KEY_REUSED"])
                    .into(),
            ),
            ("title", described("The HTTP reason phrase.").into()),
            ("detail", string().into()),
        ])
        .property(
            "source",
            ObjectBuilder::new()
                .description(Some(
                    "What in the request the error is about: one of these keys.",
                ))
                .min_properties(Some(1))
                .max_properties(Some(1))
                .property("parameter", described("A query or path parameter."))
                .property("pointer", described("A JSON pointer into the body."))
                .property("header", described("A request header."))
                .additional_properties(Some(AdditionalProperties::FreeForm(false))),
        )
        .into()
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::document;
    use crate::grpc::pb;

    fn enum_values(schema: impl Into<RefOr<Schema>>) -> Vec<String> {
        let schema = serde_json::to_value(schema.into()).expect("schema");
        serde_json::from_value(schema["enum"].clone()).expect("enum values")
    }

    /// The documented enums are the spellings `document.rs` renders and `extract.rs` reads.
    #[test]
    fn documented_enums_are_the_rendered_spellings() {
        use pb::{EventType, IntegrationStatus as Integration, PartnerStatus as Status};
        let statuses = [Status::Available, Status::ComingSoon, Status::Unavailable]
            .map(|s| document::partner_status_name(s as i32).expect("named"));
        assert_eq!(enum_values(PartnerStatus::schema()), statuses);
        for (name, status) in
            statuses
                .iter()
                .zip([Status::Available, Status::ComingSoon, Status::Unavailable])
        {
            assert_eq!(document::partner_status_value(name), status as i32);
        }
        let integrations = [
            Integration::Pending,
            Integration::Active,
            Integration::Inactive,
            Integration::Failed,
        ]
        .map(|s| document::integration_status_name(s as i32).expect("named"));
        assert_eq!(enum_values(IntegrationStatus::schema()), integrations);
        let events = [EventType::Website, EventType::Video]
            .map(|e| document::event_type_name(e as i32).expect("named"));
        assert_eq!(enum_values(event_type()), events);
    }
}
