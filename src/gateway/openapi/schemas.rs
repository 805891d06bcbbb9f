//! The JSON:API schemas of the OpenAPI document (`components/schemas`), one type each.
//!
//! `document.rs` renders partner documents from typed views that borrow from the gRPC messages
//! (for speed), and errors and click events are rendered from small trees; those renderers cannot
//! carry the constraints a client needs (id patterns, resource types, enums, nullability), so the
//! shapes they produce are declared here with utoipa's schema builders. Where a Rust type
//! expresses a schema exactly, it is derived instead (`PartnerStats` from the rendered
//! `document::Stats`, the health answers in `routes/health.rs`, the status enums below).

use std::borrow::Cow;

use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, AnyOfBuilder, ArrayBuilder, Discriminator, ObjectBuilder,
    OneOfBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

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

/// A partner's status.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum PartnerStatus {
    /// Listed and open to integrations.
    Available,
    /// Listed, integrations not open yet.
    ComingSoon,
    /// Not listed as available.
    Unavailable,
}

/// A business's integration status with a partner.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum IntegrationStatus {
    /// Requested.
    Pending,
    /// Working.
    Active,
    /// Switched off.
    Inactive,
    /// Set up but broken.
    Failed,
}

/// Every schema of the document, for `components/schemas`.
pub fn all() -> Vec<(String, RefOr<Schema>)> {
    let mut all = Vec::new();
    let mut add = |name: Cow<'static, str>, schema: RefOr<Schema>| {
        all.push((name.into_owned(), schema));
    };
    macro_rules! add {
        ($($t:ty),* $(,)?) => { $( add(<$t as ToSchema>::name(), <$t as PartialSchema>::schema()); )* };
    }
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
        PartnerWriteAttributes,
        PartnerCreateRequest,
        PartnerUpdateRequest,
        ClickEventRequest,
        ClickEventDocument,
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
fn reference<T: ToSchema>() -> RefOr<Schema> {
    Ref::from_schema_name(T::name()).into()
}

fn typed(t: Type) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(t)
}

fn string() -> ObjectBuilder {
    typed(Type::String)
}

fn strings() -> ArrayBuilder {
    ArrayBuilder::new().items(string())
}

fn format(builder: ObjectBuilder, format: &str) -> ObjectBuilder {
    builder.format(Some(SchemaFormat::Custom(format.to_owned())))
}

/// A UUID string.
pub fn uuid() -> ObjectBuilder {
    format(string(), "uuid")
}

fn date_time() -> ObjectBuilder {
    format(string(), "date-time")
}

fn count() -> ObjectBuilder {
    format(typed(Type::Integer), "int64").minimum(Some(0))
}

/// A string that must be exactly `value` (a JSON:API resource type).
fn constant(value: &str) -> ObjectBuilder {
    string().enum_values(Some([value]))
}

/// A decimal resource id.
fn numeric_id() -> ObjectBuilder {
    string().pattern(Some("^[1-9][0-9]*$"))
}

fn nullable(t: Type) -> SchemaType {
    [t, Type::Null].into_iter().collect()
}

fn null() -> ObjectBuilder {
    typed(Type::Null)
}

/// An object with these required properties, in this order.
fn object<const N: usize>(required: [(&str, RefOr<Schema>); N]) -> ObjectBuilder {
    required
        .into_iter()
        .fold(ObjectBuilder::new(), |object, (name, schema)| {
            object.property(name, schema).required(name)
        })
}

/// `{"data": schema}`, required.
fn data(schema: impl Into<RefOr<Schema>>) -> ObjectBuilder {
    object([("data", schema.into())])
}

/// Characters no text field may hold (C0 and C1 controls; Postgres cannot store NUL).
pub const NO_CONTROLS: &str = "\\u0000-\\u001F\\u007F-\\u009F";

/// A single-line text without control characters, with at least one non-space character.
fn single_line(min: usize, max: usize) -> ObjectBuilder {
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

/// The `included` array of a document.
fn included() -> ArrayBuilder {
    ArrayBuilder::new()
        .description(Some("Present only when `include` was requested."))
        .items(reference::<IncludedResource>())
}

// ---------------------------------------------------------------------------------------------
// Schemas
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
    .into()
);

schema!(
    /// The relationships of a partner.
    PartnerRelationships = ObjectBuilder::new()
        .description(Some("Only the relationships named in `include`."))
        .property(
            "users",
            data(ArrayBuilder::new().items(reference::<UserIdentifier>())),
        )
        .property(
            "partner_integrations",
            data(ArrayBuilder::new().items(reference::<PartnerIntegrationIdentifier>())),
        )
        .into()
);

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
                    ("total", count().into()),
                    ("total_pages", count().into()),
                ])
                .into(),
            ),
            (
                "links",
                object([
                    ("self", link().into()),
                    ("first", link().into()),
                    ("last", link().into()),
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

/// The event types.
fn event_type() -> ObjectBuilder {
    string().enum_values(Some(["website", "video"]))
}

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

schema!(
    /// A click event's document.
    ClickEventDocument = data(object([
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
    ]))
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
