//! The admin writes (service keys only): `POST /api/v1/partners` (CreatePartner, idempotent with
//! `Idempotency-Key`), `PATCH` and `DELETE /api/v1/partners/{id}` (UpdatePartner with a field
//! mask of the attributes present, soft DeletePartner), `POST /api/v1/partners/{id}/restore`
//! (RestorePartner) and `PUT /api/v1/partners/by_external_id/{external_id}` (UpsertPartner with
//! the attributes present as the mask of an update).

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

use super::{Reply, created, json_api, partner_response, route_params};
use crate::gateway::Gateway;
use crate::gateway::document;
use crate::gateway::errors::{ApiError, Source, query_source};
use crate::gateway::extract::{
    NOTHING, data_object, id_text, idempotency_key, partner_from_attributes, partner_id,
    query_params, read_json,
};
use crate::gateway::openapi::bodies::{
    PartnerCreateRequest, PartnerUpdateRequest, PartnerUpsertRequest,
};
use crate::gateway::openapi::resources::{PartnerDocument, PartnerUpsertDocument};
use crate::gateway::openapi::{
    CommonErrors, Conflict, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType,
};
use crate::grpc::pb;
use crate::model::partner::Includes;

/// REST source of a field of the admin requests: the body's attributes, or the path id.
fn admin_source(field: &str) -> Source {
    match field {
        "partner" => Source::Pointer("/data".into()),
        "partner.id" | "id" => Source::Parameter("id".into()),
        "request_id" => Source::Header("Idempotency-Key".into()),
        "partner.external_id" => Source::Parameter("external_id".into()),
        "update_mask" => Source::Pointer("/data/attributes".into()),
        other => match other.strip_prefix("partner.") {
            Some(attribute) => Source::Pointer(format!("/data/attributes/{attribute}")),
            None => query_source(other),
        },
    }
}

route_params!(
    /// Parameters of `createPartner`.
    CreatePartnerParams,
    id: false,
    accepts: NOTHING,
    headers: [IdempotencyKey, RequestId]
);

route_params!(
    /// Parameters of `updatePartner` and `deletePartner`.
    PartnerWriteParams,
    id: true,
    accepts: NOTHING,
    headers: [RequestId]
);

/// `POST /api/v1/partners`: CreatePartner.
#[utoipa::path(
    post,
    path = "/api/v1/partners",
    tag = "admin",
    operation_id = "createPartner",
    summary = "Create a partner",
    description = "Creates a partner; `name` is required. Service keys only. With an \
                   `Idempotency-Key` (kept 24 hours), a retry with the same body answers 201 with the \
                   partner the first call created, as it is now; the same key with another body is 409.",
    params(CreatePartnerParams),
    request_body(
        description = "The new partner.",
        content(
            (PartnerCreateRequest = "application/json"),
            (PartnerCreateRequest = "application/vnd.api+json"),
        ),
    ),
    responses(
        (status = 201, description = "The created partner.", body = PartnerDocument,
         content_type = "application/vnd.api+json",
         headers(("Location" = String, description = "URL of the created resource."))),
        CommonErrors,
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    ),
)]
pub async fn create_partner(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    query_params(query, &NOTHING)?;
    let body = read_json(&headers, body).await?;
    let data = data_object(&body, "partner")?;
    let (partner, _) = partner_from_attributes(data)?;
    let created_partner = gw
        .call(
            gw.admin(),
            &headers,
            pb::CreatePartnerRequest {
                partner: Some(partner),
                request_id: idempotency_key(&headers)?,
            },
            &admin_source,
            |mut client, request| async move { client.create_partner(request).await },
        )
        .await?;
    Ok(created(
        &document::partner_document(&created_partner, Includes::default()),
        &format!("/api/v1/partners/{}", created_partner.id),
    ))
}

/// `PATCH /api/v1/partners/{id}`: UpdatePartner.
#[utoipa::path(
    patch,
    path = "/api/v1/partners/{id}",
    tag = "admin",
    operation_id = "updatePartner",
    summary = "Update a partner",
    description = "Updates exactly the attributes present in the body (at least one). Service keys only.",
    params(PartnerWriteParams),
    request_body(
        description = "The attributes to change.",
        content(
            (PartnerUpdateRequest = "application/json"),
            (PartnerUpdateRequest = "application/vnd.api+json"),
        ),
    ),
    responses(
        (status = 200, description = "The updated partner.", body = PartnerDocument,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    ),
)]
pub async fn update_partner(
    State(gw): State<Gateway>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    query_params(query, &NOTHING)?;
    let id = partner_id(path)?;
    let body = read_json(&headers, body).await?;
    let data = data_object(&body, "partner")?;
    if let Some(body_id) = data.get("id")
        && id_text(body_id) != Some(id.to_string())
    {
        return Err(
            ApiError::bad_pointer("/data/id", "must match the partner id in the path").into(),
        );
    }
    let (mut partner, present) = partner_from_attributes(data)?;
    partner.id = id;
    let request = pb::UpdatePartnerRequest {
        partner: Some(partner),
        update_mask: Some(prost_types::FieldMask { paths: present }),
    };
    let updated = gw
        .call(
            gw.admin(),
            &headers,
            request,
            &admin_source,
            |mut client, request| async move { client.update_partner(request).await },
        )
        .await?;
    Ok(partner_response(&updated))
}

/// `DELETE /api/v1/partners/{id}`: DeletePartner (soft).
#[utoipa::path(
    delete,
    path = "/api/v1/partners/{id}",
    tag = "admin",
    operation_id = "deletePartner",
    summary = "Delete a partner",
    description = "Soft-deletes a partner. Service keys only.",
    params(PartnerWriteParams),
    responses(
        (status = 204, description = "Deleted."),
        CommonErrors,
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ),
)]
pub async fn delete_partner(
    State(gw): State<Gateway>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Reply {
    query_params(query, &NOTHING)?;
    let id = partner_id(path)?;
    gw.call(
        gw.admin(),
        &headers,
        pb::DeletePartnerRequest { id },
        &admin_source,
        |mut client, request| async move { client.delete_partner(request).await },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/partners/{id}/restore`: RestorePartner.
#[utoipa::path(
    post,
    path = "/api/v1/partners/{id}/restore",
    tag = "admin",
    operation_id = "restorePartner",
    summary = "Restore a deleted partner",
    description = "Undeletes a soft-deleted partner, with its `external_id` when no other partner \
                   took it (else 400 `EXTERNAL_ID_TAKEN` naming the partner that has it). A partner \
                   that is not deleted is 409 `PARTNER_NOT_DELETED`. No body. Service keys only.",
    params(PartnerWriteParams),
    responses(
        (status = 200, description = "The restored partner.", body = PartnerDocument,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    ),
)]
pub async fn restore_partner(
    State(gw): State<Gateway>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    query_params(query, &NOTHING)?;
    let id = partner_id(path)?;
    read_json(&headers, body).await?;
    let restored = gw
        .call(
            gw.admin(),
            &headers,
            pb::RestorePartnerRequest { id },
            &admin_source,
            |mut client, request| async move { client.restore_partner(request).await },
        )
        .await?;
    Ok(partner_response(&restored))
}

route_params!(
    /// Parameters of `upsertPartner` (the `{external_id}` path segment is declared on the route).
    UpsertPartnerParams,
    id: false,
    accepts: NOTHING,
    headers: [RequestId]
);

/// `PUT /api/v1/partners/by_external_id/{external_id}`: UpsertPartner.
#[utoipa::path(
    put,
    path = "/api/v1/partners/by_external_id/{external_id}",
    tag = "admin",
    operation_id = "upsertPartner",
    summary = "Create or update a partner by external id",
    description = "Creates the partner with this `external_id` (201; `name` is then required) or \
                   updates exactly the attributes present in the body of the one that has it (200). \
                   Concurrent calls for one external id make one partner. `external_id` must not be \
                   in the body. Service keys only.",
    params(
        ("external_id" = String, Path, description = "The partner's external id (1 to 200 characters).",
         min_length = 1, max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"),
        UpsertPartnerParams
    ),
    request_body(
        description = "The partner's attributes.",
        content(
            (PartnerUpsertRequest = "application/json"),
            (PartnerUpsertRequest = "application/vnd.api+json"),
        ),
    ),
    responses(
        (status = 200, description = "The updated partner.", body = PartnerUpsertDocument,
         content_type = "application/vnd.api+json"),
        (status = 201, description = "The created partner.", body = PartnerUpsertDocument,
         content_type = "application/vnd.api+json",
         headers(("Location" = String, description = "URL of the created resource."))),
        CommonErrors,
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    ),
)]
pub async fn upsert_partner(
    State(gw): State<Gateway>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    query_params(query, &NOTHING)?;
    let external_id = path.map(|Path(p)| p).unwrap_or_default();
    let body = read_json(&headers, body).await?;
    let data = data_object(&body, "partner")?;
    let (mut partner, mut present) = partner_from_attributes(data)?;
    if present.iter().any(|f| f == "external_id") {
        let value = data.get("attributes").and_then(|a| a.get("external_id"));
        if !value.is_some_and(serde_json::Value::is_null) {
            return Err(ApiError::bad_pointer(
                "/data/attributes/external_id",
                "the external id is the path's; leave it out of the body",
            )
            .into());
        }
        present.retain(|f| f != "external_id");
    }
    partner.external_id = Some(external_id);
    let request = pb::UpsertPartnerRequest {
        partner: Some(partner),
        update_mask: Some(prost_types::FieldMask { paths: present }),
    };
    let upserted = gw
        .call(
            gw.admin(),
            &headers,
            request,
            &admin_source,
            |mut client, request| async move { client.upsert_partner(request).await },
        )
        .await?;
    let partner = upserted.partner.unwrap_or_default();
    let document = document::upsert_document(&partner, upserted.created);
    Ok(if upserted.created {
        created(&document, &format!("/api/v1/partners/{}", partner.id))
    } else {
        json_api(StatusCode::OK, &document)
    })
}
