//! The click analytics reads: GetPartnerClickStats → [`StatsQuery`], ListTopPartnersByClicks →
//! [`TopQuery`], ListPartnerClickEvents → [`EventsQuery`]. Ranges default to the 30 days before
//! now, must be ordered and not too long for their buckets; a time zone must look like an IANA
//! name (whether Postgres knows it is checked by the handler, which buckets with Postgres's zone
//! data); a page token must have its shape (its signature is checked by the handler, which holds
//! the key).

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::Checker;
use crate::error::{Error, Result};
use crate::grpc::pb;

/// Default range: the days before `until`.
pub const DEFAULT_RANGE_DAYS: i64 = 30;
/// Longest range of ListTopPartnersByClicks, in days.
pub const MAX_TOP_RANGE_DAYS: i64 = 366;
/// Default and largest page of ListPartnerClickEvents.
pub const DEFAULT_EVENTS_PAGE: i64 = 100;
/// Largest page of ListPartnerClickEvents.
pub const MAX_EVENTS_PAGE: i32 = 1000;
/// Length of a decoded page token: the cursor (time in µs, id) and a 16-byte signature.
pub const TOKEN_BYTES: usize = 32;

/// A bucket width of a click time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
    Week,
    Month,
}

impl Bucket {
    /// Postgres's `date_trunc` unit.
    pub fn unit(self) -> &'static str {
        match self {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
            Bucket::Week => "week",
            Bucket::Month => "month",
        }
    }

    /// The longest range asked in these buckets, in days.
    pub fn max_days(self) -> i64 {
        match self {
            Bucket::Hour => 31,
            Bucket::Day => 366,
            Bucket::Week | Bucket::Month => 1830,
        }
    }

    /// The wire value.
    pub fn to_pb(self) -> pb::ClickBucket {
        match self {
            Bucket::Hour => pb::ClickBucket::Hour,
            Bucket::Day => pb::ClickBucket::Day,
            Bucket::Week => pb::ClickBucket::Week,
            Bucket::Month => pb::ClickBucket::Month,
        }
    }
}

/// A validated GetPartnerClickStats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    pub partner_id: i64,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub bucket: Bucket,
    /// An IANA-shaped zone name (`UTC` by default).
    pub time_zone: String,
    pub business_uuid: Option<Uuid>,
}

/// A validated ListTopPartnersByClicks (the range in whole hours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopQuery {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub page: i64,
    pub per_page: i64,
    pub business_uuid: Option<Uuid>,
}

/// A validated ListPartnerClickEvents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsQuery {
    /// The partner, if one is named.
    pub partner_id: Option<i64>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub page_size: i64,
    /// The decoded page token (checked against its signature by the handler).
    pub page_token: Option<[u8; TOKEN_BYTES]>,
    pub business_uuid: Option<Uuid>,
}

impl Checker {
    /// An optional timestamp ([`Checker::time`]), within 1970..=9999 (the range arithmetic's).
    fn era_time(
        &mut self,
        field: &str,
        value: Option<&prost_types::Timestamp>,
    ) -> Option<DateTime<Utc>> {
        let parsed = self.time(field, value)?;
        let within = (0..=253_402_300_799).contains(&parsed.timestamp());
        if !within {
            self.add(field, "must be a valid time between 1970 and 9999");
        }
        within.then_some(parsed)
    }

    /// [since, until) with the defaults, at most `max_days` long (`None`: no limit).
    fn range(
        &mut self,
        since: Option<&prost_types::Timestamp>,
        until: Option<&prost_types::Timestamp>,
        max_days: Option<i64>,
        what: &str,
    ) -> (DateTime<Utc>, DateTime<Utc>) {
        let until = self.era_time("until", until).unwrap_or_else(Utc::now);
        let since = self
            .era_time("since", since)
            .unwrap_or(until - TimeDelta::days(DEFAULT_RANGE_DAYS));
        if since >= until {
            self.add("since", "must be before until");
        } else if let Some(max) = max_days
            && until - since > TimeDelta::days(max)
        {
            self.add(
                "since",
                format!("the range may span at most {max} days {what}"),
            );
        }
        (since, until)
    }

    fn time_zone(&mut self, value: &str) -> String {
        if value.is_empty() {
            return "UTC".to_owned();
        }
        let shaped = value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'/'));
        if !shaped {
            self.add(
                "time_zone",
                "must be an IANA time zone name such as Europe/Berlin",
            );
        }
        value.to_owned()
    }
}

impl TryFrom<&pb::GetPartnerClickStatsRequest> for StatsQuery {
    type Error = Error;

    fn try_from(req: &pb::GetPartnerClickStatsRequest) -> Result<Self> {
        let mut c = Checker::default();
        let partner_id = c.positive_id("partner_id", req.partner_id);
        let bucket = match pb::ClickBucket::try_from(req.bucket) {
            Ok(pb::ClickBucket::Unspecified | pb::ClickBucket::Day) => Bucket::Day,
            Ok(pb::ClickBucket::Hour) => Bucket::Hour,
            Ok(pb::ClickBucket::Week) => Bucket::Week,
            Ok(pb::ClickBucket::Month) => Bucket::Month,
            Err(_) => {
                c.add("bucket", "must be hour, day, week or month");
                Bucket::Day
            }
        };
        let what = format!("for {} buckets", bucket.unit());
        let (since, until) = c.range(
            req.since.as_ref(),
            req.until.as_ref(),
            Some(bucket.max_days()),
            &what,
        );
        let time_zone = c.time_zone(&req.time_zone);
        let business_uuid = c.optional_uuid("business_uuid", &req.business_uuid);
        c.finish(StatsQuery {
            partner_id,
            since,
            until,
            bucket,
            time_zone,
            business_uuid,
        })
    }
}

impl TryFrom<&pb::ListTopPartnersByClicksRequest> for TopQuery {
    type Error = Error;

    fn try_from(req: &pb::ListTopPartnersByClicksRequest) -> Result<Self> {
        let mut c = Checker::default();
        let (since, until) = c.range(
            req.since.as_ref(),
            req.until.as_ref(),
            Some(MAX_TOP_RANGE_DAYS),
            "",
        );
        let page = c.page(req.page);
        let per_page = c.per_page(req.per_page);
        let business_uuid = c.optional_uuid("business_uuid", &req.business_uuid);
        let hour = |t: DateTime<Utc>| {
            DateTime::from_timestamp(t.timestamp() - t.timestamp().rem_euclid(3600), 0)
        };
        let since = hour(since).unwrap_or(since);
        let until = if until.timestamp() % 3600 == 0 && until.timestamp_subsec_nanos() == 0 {
            until
        } else {
            hour(until).map_or(until, |h| h + TimeDelta::hours(1))
        };
        c.finish(TopQuery {
            since,
            until,
            page,
            per_page,
            business_uuid,
        })
    }
}

impl TryFrom<&pb::ListPartnerClickEventsRequest> for EventsQuery {
    type Error = Error;

    fn try_from(req: &pb::ListPartnerClickEventsRequest) -> Result<Self> {
        let mut c = Checker::default();
        let partner_id = match req.partner_id {
            0 => None,
            id => Some(c.positive_id("partner_id", id)),
        };
        let (since, until) = c.range(req.since.as_ref(), req.until.as_ref(), None, "");
        let page_size = match req.page_size {
            0 => DEFAULT_EVENTS_PAGE,
            n if (1..=MAX_EVENTS_PAGE).contains(&n) => i64::from(n),
            _ => {
                c.add(
                    "page_size",
                    format!("must be 1 to {MAX_EVENTS_PAGE} (0: {DEFAULT_EVENTS_PAGE})"),
                );
                DEFAULT_EVENTS_PAGE
            }
        };
        let page_token = c.page_token_bytes(&req.page_token).and_then(|bytes| {
            let token = <[u8; TOKEN_BYTES]>::try_from(bytes).ok();
            if token.is_none() {
                c.add("page_token", "is not a token of this list");
            }
            token
        });
        let business_uuid = c.optional_uuid("business_uuid", &req.business_uuid);
        c.finish(EventsQuery {
            partner_id,
            since,
            until,
            page_size,
            page_token,
            business_uuid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos: 0 })
    }

    fn fields(err: Error) -> Vec<String> {
        match err {
            Error::InvalidArgument(v) => v.into_iter().map(|v| v.field).collect(),
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn stats_ranges_are_ordered_and_bounded_by_their_bucket() {
        let day = 86_400;
        let req = |since, until, bucket: pb::ClickBucket| pb::GetPartnerClickStatsRequest {
            partner_id: 1,
            since: ts(since),
            until: ts(until),
            bucket: bucket as i32,
            ..Default::default()
        };
        let ok = StatsQuery::try_from(&req(0, 31 * day, pb::ClickBucket::Hour)).expect("31 days");
        assert_eq!((ok.bucket, ok.time_zone.as_str()), (Bucket::Hour, "UTC"));
        let err = StatsQuery::try_from(&req(0, 32 * day, pb::ClickBucket::Hour)).expect_err("32");
        assert_eq!(fields(err), ["since"]);
        let err = StatsQuery::try_from(&req(day, day, pb::ClickBucket::Day)).expect_err("empty");
        assert_eq!(fields(err), ["since"]);
        let mut bad = req(0, day, pb::ClickBucket::Month);
        bad.time_zone = "Europe/Berlin; DROP".into();
        bad.bucket = 9;
        assert_eq!(
            fields(StatsQuery::try_from(&bad).expect_err("bad")),
            ["bucket", "time_zone"]
        );
    }

    #[test]
    fn top_ranges_cover_whole_hours() {
        let q = TopQuery::try_from(&pb::ListTopPartnersByClicksRequest {
            since: ts(3_600 + 10),
            until: ts(7_200 + 1),
            ..Default::default()
        })
        .expect("valid");
        assert_eq!((q.since.timestamp(), q.until.timestamp()), (3_600, 10_800));
    }

    #[test]
    fn page_tokens_must_have_their_shape() {
        let err = EventsQuery::try_from(&pb::ListPartnerClickEventsRequest {
            page_token: "abc".into(),
            page_size: 5000,
            ..Default::default()
        })
        .expect_err("bad");
        assert_eq!(fields(err), ["page_size", "page_token"]);
    }
}
