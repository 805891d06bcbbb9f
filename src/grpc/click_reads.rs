//! The click analytics reads: GetPartnerClickStats, ListTopPartnersByClicks and
//! ListPartnerClickEvents. Each resolves the business in context (a user key's own; a service
//! key's `business_uuid`, or none for all), then reads the hourly rollups or the raw events
//! (`crate::model::click_stats`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;

use super::scope::Caller;
use super::validate::{EventsQuery, StatsQuery, TopQuery};
use super::{convert, pb};
use crate::error::{Error, Result};
use crate::model::click_stats::{self, EventFilter, SeriesQuery};
use crate::model::partner;
use crate::serving::Services;

fn counts(website: i64, video: i64) -> pb::ClickCounts {
    pb::ClickCounts {
        clicks: website + video,
        website_clicks: website,
        video_clicks: video,
    }
}

fn uuid_text(uuid: Option<uuid::Uuid>) -> String {
    uuid.map(|u| u.to_string()).unwrap_or_default()
}

/// GetPartnerClickStats.
pub async fn stats(
    services: &Services,
    caller: &Caller,
    q: StatsQuery,
) -> Result<pb::GetPartnerClickStatsResponse> {
    let scope = caller
        .scope(&services.context, q.business_uuid, false)
        .await?;
    services.click_reads.check_time_zone(&q.time_zone).await?;
    let series = SeriesQuery {
        partner_id: q.partner_id,
        business_id: scope.scope.business_id,
        since: q.since,
        until: q.until,
        unit: q.bucket.unit(),
        time_zone: q.time_zone.clone(),
    };
    let rows = services
        .db
        .run(move |conn| {
            if !partner::exists(conn, series.partner_id)? {
                return Err(Error::NotFound("partner"));
            }
            Ok(click_stats::series(conn, &series)?)
        })
        .await?;
    let (website, video) = rows
        .iter()
        .fold((0, 0), |(w, v), r| (w + r.website, v + r.video));
    Ok(pb::GetPartnerClickStatsResponse {
        partner_id: q.partner_id,
        since: Some(convert::timestamp(q.since)),
        until: Some(convert::timestamp(q.until)),
        bucket: q.bucket.to_pb() as i32,
        time_zone: q.time_zone,
        business_uuid: uuid_text(scope.business_uuid),
        buckets: rows
            .into_iter()
            .map(|r| pb::ClickStatsBucket {
                start: Some(convert::timestamp(r.start)),
                counts: Some(counts(r.website, r.video)),
            })
            .collect(),
        totals: Some(counts(website, video)),
    })
}

/// ListTopPartnersByClicks.
pub async fn top(
    services: &Services,
    caller: &Caller,
    q: TopQuery,
) -> Result<pb::ListTopPartnersByClicksResponse> {
    let scope = caller
        .scope(&services.context, q.business_uuid, false)
        .await?;
    let business_id = scope.scope.business_id;
    let (page, per_page) = (q.page, q.per_page);
    let (rows, total) = services
        .db
        .run(move |conn| {
            Ok(click_stats::top(
                conn,
                business_id,
                q.since,
                q.until,
                per_page,
                (page - 1).saturating_mul(per_page),
            )?)
        })
        .await?;
    let total_pages = (total + per_page - 1) / per_page;
    Ok(pb::ListTopPartnersByClicksResponse {
        partners: rows
            .into_iter()
            .map(|r| pb::PartnerClickTotal {
                partner_id: r.partner_id,
                name: r.name,
                counts: Some(counts(r.website, r.video)),
            })
            .collect(),
        meta: Some(pb::PageMeta {
            page: i32::try_from(page).unwrap_or(i32::MAX),
            per_page: i32::try_from(per_page).unwrap_or(i32::MAX),
            total: Some(total),
            total_pages: Some(i32::try_from(total_pages).unwrap_or(i32::MAX)),
            facets: Vec::new(),
            next_page_token: String::new(),
        }),
    })
}

/// ListPartnerClickEvents.
pub async fn events(
    services: &Services,
    caller: &Caller,
    q: EventsQuery,
) -> Result<pb::ListPartnerClickEventsResponse> {
    let scope = caller
        .scope(&services.context, q.business_uuid, false)
        .await?;
    let business_id = scope.scope.business_id;
    if q.partner_id.is_none() && business_id.is_none() {
        return Err(Error::invalid(
            "partner_id",
            "name a partner, a business (business_uuid), or both",
        ));
    }
    // A token continues the list of the same partner and business only.
    let filters = format!("{:?}|{:?}", q.partner_id, business_id);
    let before = match &q.page_token {
        None => None,
        Some(token) => {
            let (at, id) = services.click_reads.open(&filters, token).await?;
            let at = DateTime::from_timestamp_micros(at)
                .ok_or_else(|| Error::invalid("page_token", "is not a token of this list"))?;
            Some((at, id))
        }
    };
    let filter = EventFilter {
        partner_id: q.partner_id,
        business_id,
        since: q.since,
        until: q.until,
        before,
    };
    let limit = q.page_size;
    let mut rows = services
        .db
        .run(move |conn| Ok(click_stats::events(conn, &filter, limit + 1)?))
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next_page_token = match rows.last() {
        Some(last) if more => URL_SAFE_NO_PAD.encode(
            services
                .click_reads
                .sign(&filters, last.created_at.timestamp_micros(), last.id)
                .await?,
        ),
        _ => String::new(),
    };
    Ok(pb::ListPartnerClickEventsResponse {
        events: rows
            .into_iter()
            .map(|r| pb::ClickEvent {
                id: r.id,
                partner_id: r.partner_id,
                event_type: pb::EventType::from(r.event_type) as i32,
                user_uuid: uuid_text(r.user_uuid),
                business_uuid: uuid_text(r.business_uuid),
                created_at: Some(convert::timestamp(r.created_at)),
            })
            .collect(),
        next_page_token,
    })
}
