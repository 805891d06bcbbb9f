//! The scenarios: what each caller of a row sends (gRPC through the generated client with the
//! user key, REST through one shared `reqwest` client), each row's closed loop, and the clients
//! shared by the rows.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use loadgen::data::{COMMON_CATEGORIES, COMMON_COUNTRY, SEARCH_WORD};
use partners::grpc::pb;
use partners::grpc::pb::partner_admin_service_client::PartnerAdminServiceClient;
use partners::grpc::pb::partner_service_client::PartnerServiceClient;
use tokio::runtime::Runtime;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::changing::Rename;
use crate::closed_loop::{Measured, XorShift, closed_loop};
use crate::open_loop::{Paced, open_loop};
use crate::settings::BenchResult;

/// The row of the directory's default list (not a scenario of the performance issue).
pub const BROWSE_ROW: &str = "gRPC ListPartners browse";
/// The row of the newest partners first (`sort=-created_at`; not a scenario of the issue).
pub const NEWEST_ROW: &str = "gRPC ListPartners newest";
/// The order of [`NEWEST_ROW`].
pub const NEWEST_SORT: &str = "-created_at";
/// Most background calls waiting for their answer at once: far above what a healthy service
/// needs at the rates of the rows (1,000 clicks/s at 5 ms is 5), so a loop that hits it says
/// the service stalled (the calls are counted as skipped, the rate reached drops).
const BACKGROUND_IN_FLIGHT: usize = 256;

/// A list row's request: each list scenario of the read rows, run quiet, while the directory
/// changes, and against a server without its copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListShape {
    /// gRPC ListPartners with the scenario's filters, search and include.
    Search,
    /// gRPC ListPartners, no filter, default order ([`BROWSE_ROW`]).
    Browse,
    /// gRPC ListPartners, newest first ([`NEWEST_ROW`]).
    Newest,
    /// [`ListShape::Browse`] with three facets (categories, country codes, status): quiet only.
    BrowseFacets,
    /// gRPC ListAvailablePartners, page 1.
    Available,
    /// gRPC ListWholesalers at this page.
    Wholesalers(i32),
    /// REST ListPartners with the gRPC scenario's request.
    RestSearch,
}

impl ListShape {
    /// The list shapes of a run whose deep ListWholesalers page is `deep_page`, in row order.
    pub fn all(deep_page: i32) -> Vec<ListShape> {
        let mut shapes = vec![
            ListShape::Search,
            ListShape::Browse,
            ListShape::Newest,
            ListShape::Available,
            ListShape::Wholesalers(1),
        ];
        if deep_page > 1 {
            shapes.push(ListShape::Wholesalers(deep_page));
        }
        shapes.push(ListShape::RestSearch);
        shapes
    }

    /// The name of the shape's quiet row.
    pub fn name(self) -> String {
        match self {
            ListShape::Search => "gRPC ListPartners".into(),
            ListShape::Browse => BROWSE_ROW.into(),
            ListShape::Newest => NEWEST_ROW.into(),
            ListShape::BrowseFacets => format!("{BROWSE_ROW} + 3 facets"),
            ListShape::Available => "gRPC ListAvailablePartners".into(),
            ListShape::Wholesalers(page) => format!("gRPC ListWholesalers page {page}"),
            ListShape::RestSearch => "REST ListPartners".into(),
        }
    }

    /// Whether the shape runs at the ListPartners rows' concurrency (else at the general one).
    pub fn at_list_concurrency(self) -> bool {
        matches!(
            self,
            ListShape::Search
                | ListShape::Browse
                | ListShape::BrowseFacets
                | ListShape::Newest
                | ListShape::RestSearch
        )
    }
}

/// What an open loop sends in the background of a row.
#[derive(Clone)]
pub enum Background {
    /// Partner renames through the admin API with the service key; call k sends `plan[k]`.
    Renames {
        /// Calls per second.
        rate: f64,
        /// The renames, in order.
        plan: Arc<Vec<Rename>>,
    },
    /// CreatePartnerClickEvent as the click scenario sends them (see [`Load::clicks`]), or, with
    /// `per_call` > 1, the same events that many a BatchCreatePartnerClickEvents call.
    Clicks {
        /// Events per second.
        rate: f64,
        /// Events per call.
        per_call: usize,
        /// The largest partner id.
        max_id: i64,
        /// Tells this loop's `request_id`s from every other's.
        nonce: u128,
    },
}

impl Background {
    /// Sends the calls from now until `end`, counting those sent from `measure_from`.
    async fn run(self, clients: Clients, measure_from: Instant, end: Instant) -> Paced {
        match self {
            Background::Renames { rate, plan } => {
                open_loop(rate, measure_from, end, BACKGROUND_IN_FLIGHT, move |k| {
                    let call = plan.get(k as usize).map(|r| {
                        (
                            clients.admin(k as usize),
                            clients.service_request(rename_request(r.id, &r.name)),
                        )
                    });
                    async move {
                        let (mut admin, request) = call.ok_or("the rename plan ran out")?;
                        admin
                            .update_partner(request?)
                            .await
                            .map(|_| ())
                            .map_err(status_text)
                    }
                })
                .await
            }
            Background::Clicks {
                rate,
                per_call,
                max_id,
                nonce,
            } if per_call > 1 => {
                let calls = rate / per_call as f64;
                open_loop(calls, measure_from, end, BACKGROUND_IN_FLIGHT, move |k| {
                    let mut rng = XorShift::new(nonce as u64 ^ k.wrapping_mul(0x9E37_79B9));
                    let mut client = clients.partner(k as usize);
                    let events = (0..per_call)
                        .map(|i| {
                            let one =
                                click_request(&mut rng, max_id, format!("bg-{nonce}-{k}-{i}"));
                            pb::ClickEventEntry {
                                partner_id: one.id,
                                event_type: one.event_type,
                                request_id: one.request_id,
                                ..Default::default()
                            }
                        })
                        .collect();
                    let request =
                        clients.request(pb::BatchCreatePartnerClickEventsRequest { events });
                    async move {
                        let answer = client
                            .batch_create_partner_click_events(request)
                            .await
                            .map_err(status_text)?;
                        let failed = answer
                            .get_ref()
                            .results
                            .iter()
                            .filter(|r| {
                                !matches!(r.result, Some(pb::click_event_result::Result::Event(_)))
                            })
                            .count();
                        match failed {
                            0 => Ok(()),
                            n => Err(format!("{n} events of a batch not stored")),
                        }
                    }
                })
                .await
            }
            Background::Clicks {
                rate,
                max_id,
                nonce,
                ..
            } => {
                open_loop(rate, measure_from, end, BACKGROUND_IN_FLIGHT, move |k| {
                    let mut rng = XorShift::new(nonce as u64 ^ k.wrapping_mul(0x9E37_79B9));
                    let mut client = clients.partner(k as usize);
                    let request =
                        clients.request(click_request(&mut rng, max_id, format!("bg-{nonce}-{k}")));
                    async move {
                        client
                            .create_partner_click_event(request)
                            .await
                            .map(|_| ())
                            .map_err(status_text)
                    }
                })
                .await
            }
        }
    }
}

/// The admin request renaming partner `id` to `name` (only the name is in the mask).
pub fn rename_request(id: i64, name: &str) -> pb::UpdatePartnerRequest {
    let mut request = pb::UpdatePartnerRequest {
        partner: Some(pb::Partner {
            id,
            name: name.to_owned(),
            ..Default::default()
        }),
        update_mask: None,
    };
    request
        .update_mask
        .get_or_insert_with(Default::default)
        .paths
        .push("name".to_owned());
    request
}

/// Clients shared by the scenarios.
#[derive(Clone)]
pub struct Clients {
    channels: Vec<Channel>,
    http: reqwest::Client,
    http_base: String,
    auth: MetadataValue<Ascii>,
    auth_header: String,
    service_auth: Option<MetadataValue<Ascii>>,
}

impl Clients {
    /// `connections` HTTP/2 connections to the server's gRPC address, an HTTP client for its REST
    /// address, `user_key` as the bearer of every call but the admin calls, and `service_key`
    /// the bearer of those.
    pub async fn connect(
        grpc_addr: &str,
        http_addr: &str,
        connections: usize,
        user_key: &str,
        service_key: Option<&str>,
    ) -> BenchResult<Clients> {
        let mut channels = Vec::new();
        for _ in 0..connections {
            let channel = Endpoint::from_shared(format!("http://{grpc_addr}"))
                .map_err(|e| format!("endpoint: {e}"))?
                .tcp_nodelay(true)
                .connect()
                .await
                .map_err(|e| format!("connect {grpc_addr}: {e}"))?;
            channels.push(channel);
        }
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1024)
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        let auth_header = format!("Bearer {user_key}");
        let auth: MetadataValue<Ascii> = auth_header
            .parse()
            .map_err(|e| format!("key is not valid metadata: {e}"))?;
        let service_auth = service_key
            .map(|key| format!("Bearer {key}").parse())
            .transpose()
            .map_err(|e| format!("service key is not valid metadata: {e}"))?;
        Ok(Clients {
            channels,
            http,
            http_base: format!("http://{http_addr}"),
            auth,
            auth_header,
            service_auth,
        })
    }

    /// The partner service on connection `task mod n`.
    pub fn partner(&self, task: usize) -> PartnerServiceClient<Channel> {
        PartnerServiceClient::new(self.channels[task % self.channels.len()].clone())
    }

    /// The admin service on connection `task mod n`.
    pub fn admin(&self, task: usize) -> PartnerAdminServiceClient<Channel> {
        PartnerAdminServiceClient::new(self.channels[task % self.channels.len()].clone())
    }

    /// `message` with the service key (admin calls), or why it cannot be sent.
    pub fn service_request<T>(&self, message: T) -> Result<tonic::Request<T>, String> {
        let auth = self
            .service_auth
            .clone()
            .ok_or("no service key for the admin calls")?;
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", auth);
        Ok(request)
    }

    /// `message` with the user key.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.auth.clone());
        request
    }
}

/// A failed call's status, in words.
pub fn status_text(s: tonic::Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}

async fn rest_get(http: &reqwest::Client, url: String, auth: &str) -> Result<(), String> {
    let response = http
        .get(url)
        .header("authorization", auth)
        .send()
        .await
        .map_err(|e| format!("http: {e}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("http body: {e}"))?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ))
    }
}

/// The partner of a click: 20% on the first 1% of ids (the seed's hot partners), the rest on
/// the other ids.
pub fn skewed_partner(rng: &mut XorShift, max_id: i64) -> i64 {
    let max_id = max_id.max(1) as u64;
    let hot = (max_id / 100).max(1);
    if max_id <= hot || rng.unit() < 0.2 {
        1 + rng.below(hot) as i64
    } else {
        (hot + 1 + rng.below(max_id - hot)) as i64
    }
}

/// A click as the click scenario sends it: 70% website, partners skewed as in the data, the
/// caller's `request_id`.
fn click_request(
    rng: &mut XorShift,
    max_id: i64,
    request_id: String,
) -> pb::CreatePartnerClickEventRequest {
    let event_type = if rng.unit() < 0.7 {
        pb::EventType::Website
    } else {
        pb::EventType::Video
    };
    pb::CreatePartnerClickEventRequest {
        id: skewed_partner(rng, max_id),
        event_type: event_type as i32,
        request_id,
        business_uuid: String::new(),
    }
}

/// The filters of the ListPartners scenarios (gRPC and REST).
pub fn list_partners_request() -> pb::ListPartnersRequest {
    pb::ListPartnersRequest {
        business_uuid: String::new(),
        include: vec!["users".into(), "partner_integrations".into()],
        filter: Some(pb::ListPartnersFilter {
            categories: COMMON_CATEGORIES.iter().map(|c| (*c).to_owned()).collect(),
            country_codes: vec![COMMON_COUNTRY.to_owned()],
            ..Default::default()
        }),
        search: SEARCH_WORD.to_owned(),
        page: None,
        per_page: None,
        sort: String::new(),
        show_deleted: false,
        facets: Vec::new(),
        page_token: String::new(),
    }
}

fn rest_list_partners_path() -> String {
    let mut query = String::new();
    for c in COMMON_CATEGORIES {
        query.push_str(&format!("filter%5Bcategories%5D%5B%5D={c}&"));
    }
    format!(
        "/api/v1/partners?{query}filter%5Bcountry_codes%5D%5B%5D={COMMON_COUNTRY}&search={SEARCH_WORD}\
         &include=users,partner_integrations"
    )
}

/// The newest row's request: the newest partners first, otherwise the defaults.
pub fn newest_request() -> pb::ListPartnersRequest {
    pb::ListPartnersRequest {
        sort: NEWEST_SORT.into(),
        ..Default::default()
    }
}

/// The rows' closed loops against one server: the clients, the timing of every row, the runtime
/// they run on, and what loads the service in the background meanwhile.
#[derive(Clone)]
pub struct Load<'a> {
    /// The runtime of the callers.
    pub runtime: &'a Runtime,
    /// The clients shared by the callers.
    pub clients: Clients,
    /// Unmeasured time before each row.
    pub warmup: Duration,
    /// Measured time of each row.
    pub duration: Duration,
    /// The server's process id (its RSS is sampled).
    pub pid: u32,
    /// Sent in the background of every row, from its warm-up to its end (open loop).
    pub background: Option<Background>,
}

impl Load<'_> {
    fn drive<F, Fut>(&self, concurrency: usize, call: F) -> Measured
    where
        F: Fn(usize, &mut XorShift) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let background = self.background.clone();
        let clients = self.clients.clone();
        let (warmup, duration, pid) = (self.warmup, self.duration, self.pid);
        self.runtime.block_on(async move {
            // The background loop starts with the warm-up, so the measured window sees the
            // service already under the steady rate.
            let measure_from = Instant::now() + warmup;
            let end = measure_from + duration;
            let loop_task = background.map(|b| tokio::spawn(b.run(clients, measure_from, end)));
            let mut measured = closed_loop(concurrency, warmup, duration, pid, call).await;
            if let Some(task) = loop_task {
                match task.await {
                    Ok(paced) => measured.background = Some(paced),
                    Err(e) => {
                        measured.errors += 1;
                        measured
                            .error_samples
                            .push(format!("background loop panicked: {e}"));
                    }
                }
            }
            measured
        })
    }

    /// The list row of `shape` with `concurrency` callers.
    pub fn list(&self, shape: ListShape, concurrency: usize) -> Measured {
        match shape {
            ListShape::Search => self.list_partners(concurrency, list_partners_request),
            ListShape::Browse => self.list_partners(concurrency, pb::ListPartnersRequest::default),
            ListShape::Newest => self.list_partners(concurrency, newest_request),
            ListShape::BrowseFacets => {
                self.list_partners(concurrency, || pb::ListPartnersRequest {
                    facets: ["categories", "country_codes", "status"]
                        .map(String::from)
                        .to_vec(),
                    ..Default::default()
                })
            }
            ListShape::Available => self.list_available(concurrency),
            ListShape::Wholesalers(page) => self.list_wholesalers(concurrency, page),
            ListShape::RestSearch => self.rest_list_partners(concurrency),
        }
    }

    /// `grpc.health.v1.Health/Check`: a call that does no work.
    pub fn health(&self, concurrency: usize) -> Measured {
        let channels = self.clients.channels.clone();
        self.drive(concurrency, move |task, _rng| {
            let mut client = HealthClient::new(channels[task % channels.len()].clone());
            async move {
                let r = client
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .map_err(status_text)?;
                if r.into_inner().status == ServingStatus::Serving as i32 {
                    Ok(())
                } else {
                    Err("not SERVING".into())
                }
            }
        })
    }

    /// gRPC GetPartner of uniformly random ids in `1..=max_id`, no include.
    pub fn get_partner(&self, concurrency: usize, max_id: i64) -> Measured {
        let clients = self.clients.clone();
        self.drive(concurrency, move |task, rng| {
            let mut client = clients.partner(task);
            let request = clients.request(pb::GetPartnerRequest {
                id: 1 + rng.below(max_id as u64) as i64,
                business_uuid: String::new(),
                include: Vec::new(),
            });
            async move {
                client
                    .get_partner(request)
                    .await
                    .map(|_| ())
                    .map_err(status_text)
            }
        })
    }

    /// gRPC ListPartners with the request `request` builds.
    pub fn list_partners(
        &self,
        concurrency: usize,
        request: fn() -> pb::ListPartnersRequest,
    ) -> Measured {
        let clients = self.clients.clone();
        self.drive(concurrency, move |task, _rng| {
            let mut client = clients.partner(task);
            let request = clients.request(request());
            async move {
                client
                    .list_partners(request)
                    .await
                    .map(|_| ())
                    .map_err(status_text)
            }
        })
    }

    /// gRPC ListAvailablePartners, no filter, page 1.
    pub fn list_available(&self, concurrency: usize) -> Measured {
        let clients = self.clients.clone();
        self.drive(concurrency, move |task, _rng| {
            let mut client = clients.partner(task);
            let request = clients.request(pb::ListAvailablePartnersRequest::default());
            async move {
                client
                    .list_available_partners(request)
                    .await
                    .map(|_| ())
                    .map_err(status_text)
            }
        })
    }

    /// gRPC ListWholesalers at `page`, 25 per page; an empty page is an error.
    pub fn list_wholesalers(&self, concurrency: usize, page: i32) -> Measured {
        let clients = self.clients.clone();
        self.drive(concurrency, move |task, _rng| {
            let mut client = clients.partner(task);
            let request = clients.request(pb::ListWholesalersRequest {
                page: Some(page),
                per_page: Some(25),
                ..Default::default()
            });
            async move {
                let r = client
                    .list_wholesalers(request)
                    .await
                    .map_err(status_text)?;
                if r.into_inner().partners.is_empty() {
                    Err(format!("page {page} is empty"))
                } else {
                    Ok(())
                }
            }
        })
    }

    /// REST `GET /api/v1/partners/{id}` of uniformly random ids in `1..=max_id`.
    pub fn rest_get_partner(&self, concurrency: usize, max_id: i64) -> Measured {
        let clients = self.clients.clone();
        self.drive(concurrency, move |_task, rng| {
            let http = clients.http.clone();
            let url = format!(
                "{}/api/v1/partners/{}",
                clients.http_base,
                1 + rng.below(max_id as u64)
            );
            let auth = clients.auth_header.clone();
            async move { rest_get(&http, url, &auth).await }
        })
    }

    /// REST ListPartners with the gRPC scenario's filters, search and include.
    pub fn rest_list_partners(&self, concurrency: usize) -> Measured {
        let clients = self.clients.clone();
        let list_path = rest_list_partners_path();
        self.drive(concurrency, move |_task, _rng| {
            let http = clients.http.clone();
            let url = format!("{}{}", clients.http_base, list_path);
            let auth = clients.auth_header.clone();
            async move { rest_get(&http, url, &auth).await }
        })
    }

    /// gRPC CreatePartnerClickEvent: a distinct `request_id` per call (`nonce` tells runs
    /// apart), 70% website, partners skewed as in the data.
    pub fn clicks(&self, concurrency: usize, max_id: i64, nonce: u128) -> Measured {
        let clients = self.clients.clone();
        let counter = Arc::new(AtomicU64::new(0));
        self.drive(concurrency, move |task, rng| {
            let mut client = clients.partner(task);
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let request = clients.request(click_request(
                rng,
                max_id,
                format!("load-{nonce}-{task}-{n}"),
            ));
            async move {
                client
                    .create_partner_click_event(request)
                    .await
                    .map(|_| ())
                    .map_err(status_text)
            }
        })
    }
}
