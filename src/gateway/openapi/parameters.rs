//! The documented parameters: the `{id}` path segment, each query parameter a route may
//! accept (with its schema, pattern, limits, style and explode), and the request headers.

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn, ParameterStyle};
use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type,
};
use utoipa::openapi::{RefOr, Required, Schema};

use super::schemas::{NO_CONTROLS, label, uuid};
use crate::gateway::params::Accepts;

/// A request header an operation documents.
#[derive(Debug, Clone, Copy)]
pub enum RequestHeader {
    /// `X-User-Uuid`: the user a service key acts for.
    UserUuid,
    /// `X-Request-Id`: the client's request id.
    RequestId,
    /// `Idempotency-Key`: makes a click event idempotent.
    IdempotencyKey,
}

/// The documented parameters of a route: the `{id}` path segment (when `id`), a query
/// parameter for each name `accepts` lists (in its order), then `headers`.
pub fn route_parameters(id: bool, accepts: &Accepts, headers: &[RequestHeader]) -> Vec<Parameter> {
    let path_id = id.then(|| {
        ParameterBuilder::new()
            .name("id")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some("Partner id."))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::Custom("int64".into())))
                    .minimum(Some(1)),
            ))
            .build()
    });
    // A name without documentation below is still listed (bare), so an accepted parameter is
    // never left out; a test checks that every parameter is described.
    let bare = |name: String| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Query)
            .build()
    };
    let scalars = (accepts.scalars.iter())
        .map(|name| scalar(name).unwrap_or_else(|| bare((*name).to_owned())));
    let arrays = (accepts.array_filters.iter())
        .map(|f| array_filter(f, accepts).unwrap_or_else(|| bare(format!("filter[{f}][]"))));
    let booleans = (accepts.bool_filters.iter())
        .map(|f| bool_filter(f).unwrap_or_else(|| bare(format!("filter[{f}]"))));
    path_id
        .into_iter()
        .chain(scalars)
        .chain(arrays)
        .chain(booleans)
        .chain(headers.iter().map(|h| header(*h)))
        .collect()
}

fn query(name: &str, description: &str, schema: impl Into<RefOr<Schema>>) -> ParameterBuilder {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .description(Some(description))
        .schema(Some(schema))
}

fn int32(minimum: i32, default: i32) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::Custom("int32".into())))
        .minimum(Some(minimum))
        .default(Some(default.into()))
}

/// A scalar query parameter (`None` for a name without documentation).
fn scalar(name: &str) -> Option<Parameter> {
    let string = || ObjectBuilder::new().schema_type(Type::String);
    let keys = |keys: &str| format!("^({keys}(,{keys})*)?$");
    let parameter = match name {
        "business_uuid" => query(
            name,
            "Business in context. Required for service keys; user keys default to their own \
             business. Empty means none.",
            AnyOfBuilder::new()
                .item(uuid())
                .item(string().max_length(Some(0))),
        ),
        "include" => query(
            name,
            "Comma-separated related resources to include: `users`, `partner_integrations` (at \
             most 20 of each per partner; the relationship's `meta.total` counts them all).",
            string().pattern(Some(keys("(users|partner_integrations)"))),
        )
        .example(Some("users,partner_integrations".into())),
        "search" => query(
            name,
            "Case-insensitive substring of the partner name; 1 to 100 characters after \
             trimming (empty means no search). `%`, `_` and `\\` match literally.",
            string().max_length(Some(100)).pattern(Some(format!(
                "^([^{NO_CONTROLS}]*[^\\s{NO_CONTROLS}][^{NO_CONTROLS}]*)?$"
            ))),
        ),
        "ids" => query(
            name,
            "Comma-separated partner ids (with `external_ids`: 1 to 100 keys in all).",
            string().pattern(Some(
                "^0*[1-9][0-9]{0,17}(,0*[1-9][0-9]{0,17}){0,99}$".to_owned(),
            )),
        )
        .example(Some("1,2".into())),
        "external_ids" => {
            let item =
                format!("[^,{NO_CONTROLS}]{{0,99}}[^,\\s{NO_CONTROLS}][^,{NO_CONTROLS}]{{0,100}}");
            query(
                name,
                "Comma-separated external ids (each 1 to 200 characters, no commas; with `ids`: \
                 1 to 100 keys in all).",
                string().pattern(Some(format!("^{item}(,{item}){{0,99}}$"))),
            )
            .example(Some("crm-1,crm-2".into()))
        }
        "facets" => query(
            name,
            "Comma-separated fields to count the matching partners by, over every page: \
             `categories`, `country_codes`, `status`, `tags` (answered in `meta.facets`).",
            string().pattern(Some(keys("(categories|country_codes|status|tags)"))),
        )
        .example(Some("categories,status".into())),
        "page" => query(name, "Page number, from 1.", int32(1, 1)),
        "filter[updated_since]" | "filter[created_since]" => query(
            name,
            if name == "filter[updated_since]" {
                "Only partners updated at or after this time (RFC 3339)."
            } else {
                "Only partners created at or after this time (RFC 3339)."
            },
            string().format(Some(SchemaFormat::KnownFormat(
                utoipa::openapi::schema::KnownFormat::DateTime,
            ))),
        )
        .example(Some("2026-12-01T00:00:00Z".into())),
        "since" | "until" => query(
            name,
            if name == "since" {
                "Start of the range (inclusive), RFC 3339 (1970 to 9999); default (or empty) \
                 `until` minus 30 days."
            } else {
                "End of the range (exclusive), RFC 3339 (1970 to 9999); default (or empty) now."
            },
            AnyOfBuilder::new()
                .item(string().format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))))
                .item(string().max_length(Some(0))),
        ),
        "bucket" => query(
            name,
            "Bucket width (default `day`): ranges up to 31 days for `hour`, 366 for `day`, 1830 \
             for `week` and `month`.",
            string().enum_values(Some(["hour", "day", "week", "month"])),
        ),
        "time_zone" => query(
            name,
            "IANA time zone of the buckets (default `UTC`), e.g. `Europe/Berlin`.",
            string()
                .max_length(Some(64))
                .pattern(Some("^[A-Za-z0-9_+/-]*$")),
        ),
        "partner_id" => query(
            name,
            "Only this partner's events (without it, a business is needed).",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::Custom("int64".into())))
                .minimum(Some(1)),
        ),
        "page_size" => query(
            name,
            "Events per page (default 100).",
            int32(1, 100).maximum(Some(1000)),
        ),
        "page_token" => query(
            name,
            "`meta.next_page_token` of the previous page (`links.next` carries it).",
            string(),
        ),
        "after" => query(
            name,
            "Events with a larger sequence: 0 (the default) for the oldest retained event, \
             then `meta.next_after` of the previous page (`links.next` carries it).",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::Custom("int64".into())))
                .minimum(Some(0))
                .maximum(Some(i64::MAX))
                .default(Some(0.into())),
        ),
        "limit" => query(name, "Page size.", int32(1, 100).maximum(Some(1000))),
        "per_page" => query(name, "Page size.", int32(1, 25).maximum(Some(100))),
        "sort" => query(
            name,
            "Comma-separated sort keys, each once: `name`, `created_at`, `updated_at`, \
             `clicks`, `users_count`; prefix `-` for descending.",
            string().pattern(Some(keys(
                "-?(name|created_at|updated_at|clicks|users_count)",
            ))),
        )
        .example(Some("-clicks,name".into())),
        _ => return None,
    };
    Some(parameter.build())
}

/// A repeatable array filter (`filter[x][]=a&filter[x][]=b`).
fn array_filter(filter: &str, accepts: &Accepts) -> Option<Parameter> {
    let mut max_items = 50;
    let (description, items) = match filter {
        "categories" => (
            "Partners in any of these categories. `filter[categories]=a,b` (comma-separated) \
             is accepted as well and merges with this form.",
            label(),
        ),
        "excluded_categories" => ("Partners in none of these categories.", label()),
        "wholesaler_categories" => ("Partners in any of these wholesaler categories.", label()),
        "country_codes" => (
            "Partners serving any of these countries (ISO 3166-1 alpha-2, any case).",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[A-Za-z]{2}$")),
        ),
        "type" => (
            "Only events of these types.",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(
                    crate::model::change::ChangeKind::ALL
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>(),
                )),
        ),
        "partner_id" => (
            "Only events of these partners (at most 100).",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::Custom("int64".into())))
                .minimum(Some(1))
                .maximum(Some(i64::MAX)),
        ),
        "status" => (
            "Partners with any of these statuses.",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(accepts.statuses.to_vec())),
        ),
        "ids" => {
            max_items = 100;
            (
                "Only these partners (at most 100 ids).",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::Custom("int64".into())))
                    .minimum(Some(1))
                    .maximum(Some(i64::MAX)),
            )
        }
        "external_ids" => {
            max_items = 100;
            (
                "Only the partners with these external ids (at most 100, each 1 to 200 \
                 characters, no commas in the comma-separated form).",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(200))
                    .pattern(Some(format!("^[^{NO_CONTROLS}]+$"))),
            )
        }
        "tags" => ("Partners with any of these tags.", label()),
        "all_tags" => ("Partners with all of these tags.", label()),
        _ => return None,
    };
    let schema = ArrayBuilder::new().items(items).max_items(Some(max_items));
    Some(
        query(&format!("filter[{filter}][]"), description, schema)
            .style(Some(ParameterStyle::Form))
            .explode(Some(true))
            .build(),
    )
}

/// A boolean filter; `1` and `0` are accepted too.
fn bool_filter(filter: &str) -> Option<Parameter> {
    let description = match filter {
        "preferred" => "Only partners the business prefers (`true`) or does not (`false`).",
        "active" => "Only active (`true`) or inactive (`false`) partners.",
        "show_deleted" => {
            "Service keys only: soft-deleted partners too (`true`), each with its `deleted_at`."
        }
        _ => return None,
    };
    let schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["true", "false", "1", "0"]));
    Some(
        query(
            &format!("filter[{filter}]"),
            &format!("{description} Accepts `true`, `false`, `1` or `0`."),
            schema,
        )
        .build(),
    )
}

fn header(header: RequestHeader) -> Parameter {
    let (name, description, schema) = match header {
        RequestHeader::UserUuid => (
            "X-User-Uuid",
            "With a service key: the user to act for. Ignored for user keys.",
            uuid(),
        ),
        RequestHeader::RequestId => (
            "X-Request-Id",
            "Client-chosen request identifier, for correlating logs.",
            ObjectBuilder::new().schema_type(Type::String),
        ),
        RequestHeader::IdempotencyKey => (
            "Idempotency-Key",
            "Makes the request idempotent: a replay with the same body returns the first \
             result; a different body with the same key is a 409.",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(200))
                .pattern(Some("^[!-~ ]*$")),
        ),
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}
