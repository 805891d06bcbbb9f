//! The OpenAPI parts of the webhook routes (`routes/webhooks.rs`) that are not derived from their
//! document types: the path and query parameters and the write body. The event types are the
//! change log's kinds (`crate::model::change::ChangeKind`).

use std::borrow::Cow;

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, SchemaFormat, Type,
};
use utoipa::openapi::{RefOr, Required, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::RequestHeader;
use super::parameters::route_parameters;
use super::schemas::reference;
use crate::gateway::extract::NOTHING;
use crate::model::change::ChangeKind;

fn path_id(name: &str, description: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::Custom("int64".into())))
                .minimum(Some(1)),
        ))
        .build()
}

fn query(name: &str, description: &str, schema: ObjectBuilder) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

fn page_parameters() -> Vec<Parameter> {
    vec![
        query(
            "page_size",
            "Page size, 1 to 100; 0 or absent: 50.",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::Custom("int32".into())))
                .minimum(Some(0))
                .maximum(Some(100)),
        ),
        query(
            "page_token",
            "`meta.next_page_token` of the previous page.",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(200))
                .pattern(Some("^[A-Za-z0-9_-]*$")),
        ),
    ]
}

fn request_id() -> Vec<Parameter> {
    route_parameters(false, &NOTHING, &[RequestHeader::RequestId])
}

fn endpoint_id() -> Parameter {
    path_id("id", "Webhook endpoint id.")
}

macro_rules! params {
    ($(#[$doc:meta])* $name:ident = $build:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl IntoParams for $name {
            fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
                $build
            }
        }
    };
}

params!(
    /// `{id}` of an endpoint.
    EndpointParams = [vec![endpoint_id()], request_id()].concat()
);

params!(
    /// The endpoint list's paging.
    EndpointListParams = [page_parameters(), request_id()].concat()
);

params!(
    /// `{id}` of an endpoint, the state filter and paging.
    DeliveryListParams = [
        vec![
            endpoint_id(),
            query(
                "filter[state]",
                "Only deliveries in this state.",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["pending", "delivered", "failed"])),
            ),
        ],
        page_parameters(),
        request_id(),
    ]
    .concat()
);

params!(
    /// `{id}` of an endpoint and `{delivery_id}` of one of its deliveries.
    DeliveryParams = [
        vec![
            endpoint_id(),
            path_id("delivery_id", "Webhook delivery id."),
        ],
        request_id(),
    ]
    .concat()
);

/// The attributes an endpoint is created with (`create`: `url` required) or updated with (at
/// least one).
fn write_attributes(create: bool) -> ObjectBuilder {
    let types: Vec<&'static str> = ChangeKind::ALL.iter().map(|k| k.as_str()).collect();
    let attributes = ObjectBuilder::new()
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .property(
            "url",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(2048))
                .description(Some(
                    "An `https` URL of a public host: no credentials, no fragment, not this \
                     machine or a private network.",
                )),
        )
        .property(
            "description",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(500))
                .pattern(Some(
                    "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$",
                )),
        )
        .property(
            "event_types",
            ArrayBuilder::new()
                .items(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(types)),
                )
                .description(Some("Event types sent; empty or absent: every type.")),
        )
        .property(
            "paused",
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .description(Some("No attempts while paused; false resumes.")),
        );
    if create {
        attributes.required("url")
    } else {
        attributes.min_properties(Some(1))
    }
}

/// A create's or an update's body around `attributes`.
fn write_request(attributes: RefOr<Schema>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .property(
            "data",
            ObjectBuilder::new()
                .property(
                    "type",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(["webhook_endpoints"])),
                )
                .required("type")
                .property("attributes", attributes)
                .required("attributes"),
        )
        .required("data")
        .into()
}

macro_rules! write_schemas {
    ($(#[$doc:meta])* $request:ident ($request_name:literal), $attributes:ident ($attributes_name:literal), create: $create:expr) => {
        $(#[$doc])*
        pub struct $request;

        struct $attributes;

        impl PartialSchema for $attributes {
            fn schema() -> RefOr<Schema> {
                write_attributes($create).into()
            }
        }

        impl ToSchema for $attributes {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($attributes_name)
            }
        }

        impl PartialSchema for $request {
            fn schema() -> RefOr<Schema> {
                write_request(reference::<$attributes>())
            }
        }

        impl ToSchema for $request {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($request_name)
            }

            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                schemas.push(($attributes::name().into_owned(), $attributes::schema()));
            }
        }
    };
}

write_schemas!(
    /// The body of a create.
    EndpointCreateRequest("WebhookEndpointCreateRequest"),
    CreateAttributes("WebhookEndpointCreateAttributes"),
    create: true
);

write_schemas!(
    /// The body of an update.
    EndpointUpdateRequest("WebhookEndpointUpdateRequest"),
    UpdateAttributes("WebhookEndpointUpdateAttributes"),
    create: false
);
