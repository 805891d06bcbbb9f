//! BatchCreatePartnerClickEvents: each valid event's scope (user and business) is resolved once
//! per distinct (user, business) of the call, the events go to the click group commit together
//! (`crate::serving::click_ingest`, shared with CreatePartnerClickEvent), and every event gets its
//! own result: the event, or the error it alone met.

use std::collections::HashMap;

use uuid::Uuid;

use super::pb;
use super::scope::{CallScope, Caller};
use super::validate::clicks::{BatchEvent, ClickBatch};
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::model::click_event::{ClickOutcome, NewClickEvent};
use crate::serving::Services;

/// Records a validated batch for `caller`. Fails as a whole only for errors no event caused (the
/// database is down, the writers' queues are full); then no event was acknowledged.
pub async fn record(
    services: &Services,
    caller: &Caller,
    batch: ClickBatch,
) -> Result<pb::BatchCreatePartnerClickEventsResponse> {
    let mut results: Vec<Option<pb::ClickEventResult>> = vec![None; batch.events.len()];
    let mut scopes: HashMap<(Option<Uuid>, Option<Uuid>), Result<CallScope>> = HashMap::new();
    let mut accepted = Vec::new();
    for (index, event) in batch.events.into_iter().enumerate() {
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                results[index] = Some(failed(error(index, err)));
                continue;
            }
        };
        let scope = match scopes.get(&(event.user_uuid, event.business_uuid)) {
            Some(scope) => scope.clone(),
            None => {
                let scope = event_scope(services, caller, &event).await;
                if let Err(err) = &scope
                    && !matches!(err, Error::NotFound(_) | Error::PermissionDenied(_))
                {
                    return Err(err.clone());
                }
                scopes.insert((event.user_uuid, event.business_uuid), scope.clone());
                scope
            }
        };
        match scope {
            Ok(scope) => accepted.push((index, event, scope)),
            Err(err) => results[index] = Some(failed(error(index, err))),
        }
    }

    let principal = caller.principal.idempotency_scope();
    let events = accepted
        .iter()
        .map(|(_, event, scope)| {
            let mut new = NewClickEvent {
                partner_id: event.partner_id,
                user_id: scope.scope.user_id,
                business_id: scope.scope.business_id,
                event_type: event.event_type,
                principal: principal.clone(),
                idempotency_key: event.request_id.clone(),
                fingerprint: String::new(),
            };
            new.fingerprint = super::partner_service::fingerprint(&new);
            new
        })
        .collect();
    let outcomes = services.clicks.record_many(events).await?;
    // Nothing was written and nothing was wrong with the events: the call failed, not the events.
    if !outcomes.is_empty() && outcomes.iter().all(Result::is_err) {
        if let Some(Err(err)) = outcomes.into_iter().next() {
            return Err(err);
        }
        return Err(Error::Internal("click batch without outcome".into()));
    }
    for ((index, event, scope), outcome) in accepted.into_iter().zip(outcomes) {
        let result = match outcome {
            Ok(ClickOutcome::Created { id, created_at })
            | Ok(ClickOutcome::Replayed { id, created_at }) => {
                pb::click_event_result::Result::Event(super::convert::click_event(
                    id,
                    event.partner_id,
                    event.event_type,
                    &scope,
                    created_at,
                ))
            }
            Ok(ClickOutcome::KeyConflict) => error(
                index,
                Error::AlreadyExists {
                    reason: "IDEMPOTENCY_KEY_REUSED",
                    message: "request_id was already used for a different click event".into(),
                },
            ),
            Ok(ClickOutcome::PartnerNotFound) => error(index, Error::NotFound("partner")),
            Err(err) => error(index, err),
        };
        results[index] = Some(pb::ClickEventResult {
            result: Some(result),
        });
    }
    Ok(pb::BatchCreatePartnerClickEventsResponse {
        results: results.into_iter().map(Option::unwrap_or_default).collect(),
    })
}

/// The business and user of one event: a user key's own (naming another user is
/// PERMISSION_DENIED); for a service key the event's user (else the call's `x-user-uuid`), else
/// its business, else none.
async fn event_scope(
    services: &Services,
    caller: &Caller,
    event: &BatchEvent,
) -> Result<CallScope> {
    if let (Principal::User { user_uuid, .. }, Some(named)) = (&caller.principal, event.user_uuid)
        && named != *user_uuid
    {
        return Err(Error::PermissionDenied(
            "only a service key may record clicks for another user",
        ));
    }
    let acting = Caller {
        principal: caller.principal.clone(),
        acting_user: event.user_uuid.or(caller.acting_user),
    };
    acting
        .scope(&services.context, event.business_uuid, false)
        .await
}

fn failed(result: pb::click_event_result::Result) -> pb::ClickEventResult {
    pb::ClickEventResult {
        result: Some(result),
    }
}

/// Event `index`'s error as its result: field violations named from the request root; a missing
/// partner, user or business names its field too. Internal errors never carry their text.
fn error(index: usize, err: Error) -> pb::click_event_result::Result {
    let field = |name: &str| format!("events[{index}].{name}");
    let violation = |field: String, description: &str| pb::ClickEventFieldViolation {
        field,
        description: description.to_owned(),
    };
    let field_violations = match &err {
        Error::InvalidArgument(violations) => violations
            .iter()
            .map(|v| violation(v.field.clone(), &v.description))
            .collect(),
        Error::NotFound("partner") => vec![violation(
            field("partner_id"),
            "no live partner with this id",
        )],
        Error::NotFound("user") => vec![violation(field("user_uuid"), "no user with this uuid")],
        Error::NotFound("business") => vec![violation(
            field("business_uuid"),
            "no business with this uuid visible to the caller",
        )],
        _ => Vec::new(),
    };
    let message = match &err {
        Error::Internal(text) => {
            tracing::error!(error.message = %text, event = index, "click batch: event failed");
            "internal error".to_owned()
        }
        Error::InvalidArgument(v) if v.len() == 1 => {
            format!("invalid {}: {}", v[0].field, v[0].description)
        }
        other => other.to_string(),
    };
    pb::click_event_result::Result::Error(pb::ClickEventError {
        code: err.code() as i32,
        reason: err.reason().to_owned(),
        message,
        field_violations,
    })
}
