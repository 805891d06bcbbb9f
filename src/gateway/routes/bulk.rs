//! The batch writes (service keys only): `POST /api/v1/partners/batch_update`
//! (BatchUpdatePartners: `data` is an array of partner resources, each updating exactly the
//! attributes it holds) and `POST /api/v1/partners/batch_modify` (BatchModifyPartners: tags added
//! and removed, status and active set on many ids). Both all or nothing: one bad item fails the
//! batch with an error pointing at it (`/data/3/attributes/country_codes`).

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::{Reply, json_api, route_params};
use crate::gateway::Gateway;
use crate::gateway::document;
use crate::gateway::errors::{ApiError, ApiErrors, Source, query_source};
use crate::gateway::extract::{
    NOTHING, data_object, id_text, partner_from_attributes, query_params, read_json,
};
use crate::gateway::openapi::bulk::{
    PartnerBatchModifyDocument, PartnerBatchModifyRequest, PartnerBatchUpdateDocument,
    PartnerBatchUpdateRequest,
};
use crate::gateway::openapi::{
    CommonErrors, Conflict, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType,
};
use crate::grpc::pb;

route_params!(
    /// Parameters of the batch writes.
    BatchWriteParams,
    id: false,
    accepts: NOTHING,
    headers: [RequestId]
);

/// REST source of a BatchUpdatePartners field: `requests[3].partner.tags` is
/// `/data/3/attributes/tags`.
fn update_source(field: &str) -> Source {
    let Some(rest) = field.strip_prefix("requests[") else {
        return match field {
            "requests" => Source::Pointer("/data".into()),
            other => query_source(other),
        };
    };
    let Some((index, path)) = rest.split_once(']') else {
        return Source::Pointer("/data".into());
    };
    let item = format!("/data/{index}");
    Source::Pointer(match path {
        "" | ".partner" => item,
        ".partner.id" => format!("{item}/id"),
        ".update_mask" => format!("{item}/attributes"),
        other => match other.strip_prefix(".partner.") {
            Some(attribute) => format!("{item}/attributes/{attribute}"),
            None => item,
        },
    })
}

/// REST source of a BatchModifyPartners field: `ids[2]` is `/data/attributes/ids/2`.
fn modify_source(field: &str) -> Source {
    let path = field.replace('[', "/").replace(']', "");
    Source::Pointer(format!("/data/attributes/{path}"))
}

/// Moves the pointers of an item's decoding errors (`/data/...`) under `/data/{index}`.
fn under_item(mut errors: ApiErrors, index: usize) -> ApiErrors {
    for error in &mut errors.errors {
        if let Source::Pointer(pointer) = &mut error.source
            && let Some(rest) = pointer.strip_prefix("/data")
        {
            *pointer = format!("/data/{index}{rest}");
        }
    }
    errors
}

/// The UpdatePartner request of the `index`th resource of a batch update.
fn update_item(index: usize, item: &Value) -> Result<pb::UpdatePartnerRequest, ApiErrors> {
    let wrapped = Some(json!({ "data": item }));
    let data = data_object(&wrapped, "partner").map_err(|e| under_item(e, index))?;
    let id = data
        .get("id")
        .and_then(id_text)
        .and_then(|id| id.parse::<i64>().ok())
        .ok_or_else(|| {
            ApiError::bad_pointer(
                &format!("/data/{index}/id"),
                "the partner id is required, as a string of digits",
            )
        })?;
    let (mut partner, present) = partner_from_attributes(data).map_err(|e| under_item(e, index))?;
    partner.id = id;
    Ok(pb::UpdatePartnerRequest {
        partner: Some(partner),
        update_mask: Some(prost_types::FieldMask { paths: present }),
    })
}

/// `POST /api/v1/partners/batch_update`: BatchUpdatePartners.
#[utoipa::path(
    post,
    path = "/api/v1/partners/batch_update",
    tag = "admin",
    operation_id = "batchUpdatePartners",
    summary = "Update many partners at once",
    description = "Up to 1000 partner updates, each updating exactly the attributes present, in \
                   one transaction: all or nothing. An invalid item is 400 pointing at it \
                   (`/data/3/attributes/country_codes`); a missing partner is 404 naming the items. \
                   Each changed partner gets its own `partner.updated` change event. Bodies are \
                   limited to 64 KiB (gRPC takes larger batches). Service keys only.",
    params(BatchWriteParams),
    request_body(
        description = "The updates.",
        content(
            (PartnerBatchUpdateRequest = "application/json"),
            (PartnerBatchUpdateRequest = "application/vnd.api+json"),
        ),
    ),
    responses(
        (status = 200, description = "The partners as written, in request order.",
         body = PartnerBatchUpdateDocument, content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    ),
)]
pub async fn batch_update(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    query_params(query, &NOTHING)?;
    let body = read_json(&headers, body).await?;
    let items = body
        .as_ref()
        .and_then(|b| b.get("data"))
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_pointer("/data", "must be an array of partner resources"))?;
    let requests = items
        .iter()
        .enumerate()
        .map(|(i, item)| update_item(i, item))
        .collect::<Result<Vec<_>, _>>()?;
    let written = gw
        .call(
            gw.admin(),
            &headers,
            pb::BatchUpdatePartnersRequest { requests },
            &update_source,
            |mut client, request| async move { client.batch_update_partners(request).await },
        )
        .await?;
    Ok(json_api(
        StatusCode::OK,
        &document::partners_document(&written.partners),
    ))
}

/// The ids of a batch modification: strings of digits (or JSON integers).
fn modify_ids(attributes: &serde_json::Map<String, Value>) -> Result<Vec<i64>, ApiErrors> {
    let Some(Value::Array(ids)) = attributes.get("ids") else {
        return Err(
            ApiError::bad_pointer("/data/attributes/ids", "must be an array of ids").into(),
        );
    };
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            let parsed = match id {
                Value::String(s) => s.parse::<i64>().ok(),
                Value::Number(n) => n.as_i64(),
                _ => None,
            };
            parsed.ok_or_else(|| {
                ApiError::bad_pointer(&format!("/data/attributes/ids/{i}"), "must be a partner id")
                    .into()
            })
        })
        .collect()
}

/// The tags of `name`: absent is none, else a non-empty array of strings.
fn tags(attributes: &serde_json::Map<String, Value>, name: &str) -> Result<Vec<String>, ApiErrors> {
    match attributes.get(name) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) if items.is_empty() => Err(ApiError::bad_pointer(
            &format!("/data/attributes/{name}"),
            "must not be empty: leave it out",
        )
        .into()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| t.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ApiError::bad_pointer(&format!("/data/attributes/{name}"), "must hold strings")
                    .into()
            }),
        Some(_) => Err(ApiError::bad_pointer(
            &format!("/data/attributes/{name}"),
            "must be an array of strings",
        )
        .into()),
    }
}

/// The BatchModifyPartners request of a body's attributes.
fn modify_request(
    attributes: &serde_json::Map<String, Value>,
) -> Result<pb::BatchModifyPartnersRequest, ApiErrors> {
    const KNOWN: [&str; 5] = ["ids", "add_tags", "remove_tags", "status", "active"];
    if let Some(unknown) = attributes.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::bad_pointer(
            &format!("/data/attributes/{unknown}"),
            format!("unknown attribute {unknown:?}"),
        )
        .into());
    }
    let status = match attributes.get("status") {
        None => None,
        Some(Value::String(s)) => Some(document::partner_status_value(s)),
        Some(_) => {
            return Err(
                ApiError::bad_pointer("/data/attributes/status", "must be a string").into(),
            );
        }
    };
    let active = match attributes.get("active") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(
                ApiError::bad_pointer("/data/attributes/active", "must be a boolean").into(),
            );
        }
    };
    Ok(pb::BatchModifyPartnersRequest {
        ids: modify_ids(attributes)?,
        add_tags: tags(attributes, "add_tags")?,
        remove_tags: tags(attributes, "remove_tags")?,
        status,
        active,
    })
}

/// `POST /api/v1/partners/batch_modify`: BatchModifyPartners.
#[utoipa::path(
    post,
    path = "/api/v1/partners/batch_modify",
    tag = "admin",
    operation_id = "batchModifyPartners",
    summary = "Change tags, status or active of many partners",
    description = "Adds and removes tags (removal wins) and sets `status` and/or `active` on up to \
                   1000 partners in one transaction: all or nothing (a missing partner is 404 \
                   naming it; a partner would hold more than 50 tags is 400). Answers the ids whose \
                   values changed. Service keys only.",
    params(BatchWriteParams),
    request_body(
        description = "The partners and the changes.",
        content(
            (PartnerBatchModifyRequest = "application/json"),
            (PartnerBatchModifyRequest = "application/vnd.api+json"),
        ),
    ),
    responses(
        (status = 200, description = "The partners changed.", body = PartnerBatchModifyDocument,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    ),
)]
pub async fn batch_modify(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    query_params(query, &NOTHING)?;
    let body = read_json(&headers, body).await?;
    let data = data_object(&body, "partner_batch_modification")?;
    let Some(Value::Object(attributes)) = data.get("attributes") else {
        return Err(ApiError::bad_pointer("/data/attributes", "must be an object").into());
    };
    let request = modify_request(attributes)?;
    let changed = gw
        .call(
            gw.admin(),
            &headers,
            request,
            &modify_source,
            |mut client, request| async move { client.batch_modify_partners(request).await },
        )
        .await?;
    let ids: Vec<String> = changed.changed_ids.iter().map(i64::to_string).collect();
    Ok(json_api(
        StatusCode::OK,
        &json!({ "meta": { "changed_ids": ids } }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_fields_point_into_the_batch() {
        let pointer = |field: &str| match update_source(field) {
            Source::Pointer(p) => p,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            pointer("requests[3].partner.country_codes"),
            "/data/3/attributes/country_codes"
        );
        assert_eq!(pointer("requests[0].partner.id"), "/data/0/id");
        assert_eq!(pointer("requests[7].update_mask"), "/data/7/attributes");
        assert_eq!(pointer("requests"), "/data");
        assert_eq!(
            modify_source("ids[2]"),
            Source::Pointer("/data/attributes/ids/2".into())
        );
    }
}
