//! Traces of the real binary, exported over OTLP/gRPC to a real receiver (the collector's
//! `TraceService`, from `opentelemetry-proto`) started by the test: a REST call carrying a
//! `traceparent` yields its HTTP span, the gRPC call's span and the statements' spans, linked in
//! one trace under the client's span; a gRPC call continues the trace in its metadata; the JSON
//! log lines of a traced request carry its trace id.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use partners::grpc::pb;
use partners::grpc::pb::partner_service_client::PartnerServiceClient;
use tokio::io::AsyncReadExt;

use crate::support::*;

/// A received span with its service's name.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    span: Span,
}

/// The receiver: keeps every span it is sent.
#[derive(Default, Clone)]
struct Receiver {
    spans: Arc<Mutex<Vec<Received>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut kept = self.spans.lock().expect("lock");
        for resource_spans in request.into_inner().resource_spans {
            let attributes = resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default();
            let service = string_attribute(&attributes, "service.name").unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    kept.push(Received {
                        service: service.clone(),
                        span,
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

impl Receiver {
    /// Starts the receiver on a free port; answers its address.
    async fn start(&self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
                .expect("receiver");
        });
        addr
    }

    /// The spans of trace `trace_id` once `done` holds for them (at most 15 s).
    async fn trace(&self, trace_id: &[u8], done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let spans: Vec<Received> = self
                .spans
                .lock()
                .expect("lock")
                .iter()
                .filter(|r| r.span.trace_id == trace_id)
                .cloned()
                .collect();
            if done(&spans) {
                return spans;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "trace incomplete: {spans:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn named<'a>(spans: &'a [Received], name: &str) -> Vec<&'a Span> {
    spans
        .iter()
        .map(|r| &r.span)
        .filter(|s| s.name == name)
        .collect()
}

fn children<'a>(spans: &'a [Received], parent: &Span) -> Vec<&'a Span> {
    spans
        .iter()
        .map(|r| &r.span)
        .filter(|s| s.parent_span_id == parent.span_id)
        .collect()
}

/// A `traceparent` of a sampled trace: version, trace id, parent span id, flags.
fn traceparent(trace: &str, parent: &str) -> String {
    format!("00-{trace}-{parent}-01")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_call_is_one_trace_from_the_clients_span_to_the_statements() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Traced", &["pos"]).await;
    let receiver = Receiver::default();
    let otlp = receiver.start().await;
    let endpoint = format!("http://{otlp}");
    let served = spawn_serve(
        &t.db.url,
        &[
            ("PARTNERS_LOG_FORMAT", "json"),
            ("RUST_LOG", "info"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "partners-under-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
        true,
    )
    .await;
    let mut child = served.child;
    let ports = [served.grpc_port, served.http_port];
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", ports[1]);

    // REST, with an include (its statements run in the call) and a tracestate.
    let trace_a = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_a = "00f067aa0ba902b7";
    let response = http
        .get(format!(
            "{base}/api/v1/partners/{}?include=partner_integrations",
            p.id
        ))
        .bearer_auth(&t.world.service_key)
        .header("traceparent", traceparent(trace_a, parent_a))
        .header("tracestate", "vendor=opaque")
        .header("x-request-id", "traced-rest-1")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);

    // REST, the plain read (coalesced with other reads into one statement by a reader task).
    let trace_b = "0af7651916cd43dd8448eb211c80319c";
    let response = http
        .get(format!("{base}/api/v1/partners/{}", p.id))
        .bearer_auth(&t.world.service_key)
        .header("traceparent", traceparent(trace_b, "b7ad6b7169203331"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);

    // gRPC, the trace context in the call's metadata.
    let trace_c = "5b8efff798038103d269b633813fc60c";
    let parent_c = "eee19b7ec3c1b174";
    let mut client = PartnerServiceClient::connect(format!("http://127.0.0.1:{}", ports[0]))
        .await
        .expect("connect");
    let mut request = with_key(
        pb::GetPartnerRequest {
            id: p.id,
            ..Default::default()
        },
        &t.world.service_key,
    );
    request.metadata_mut().insert(
        "traceparent",
        traceparent(trace_c, parent_c).parse().expect("ascii"),
    );
    client.get_partner(request).await.expect("GetPartner");

    let bytes = |hex_text: &str| hex::decode(hex_text).expect("hex");
    let has = |name: &'static str| move |spans: &[Received]| !named(spans, name).is_empty();

    // Trace A: client span -> HTTP span -> RPC span -> statements.
    let spans = receiver
        .trace(&bytes(trace_a), |s| {
            has("GET /api/v1/partners/{id}")(s)
                && has("partners.v1.PartnerService/GetPartner")(s)
                && has("SELECT")(s)
        })
        .await;
    assert!(spans.iter().all(|r| r.service == "partners-under-test"));
    let http_span = named(&spans, "GET /api/v1/partners/{id}")[0];
    assert_eq!(http_span.parent_span_id, bytes(parent_a), "{http_span:#?}");
    assert_eq!(http_span.kind, SpanKind::Server as i32);
    let rpc = named(&spans, "partners.v1.PartnerService/GetPartner")[0];
    assert_eq!(rpc.parent_span_id, http_span.span_id, "{spans:#?}");
    assert_eq!(rpc.kind, SpanKind::Server as i32);
    assert_eq!(rpc.trace_state, "vendor=opaque", "tracestate carried");
    let statements: Vec<&Span> = children(&spans, rpc)
        .into_iter()
        .filter(|s| s.kind == SpanKind::Client as i32)
        .collect();
    assert!(
        statements.len() >= 2,
        "the read and the include: {spans:#?}"
    );
    for statement in &statements {
        let text = string_attribute(&statement.attributes, "db.query.text").expect("text");
        assert_eq!(
            string_attribute(&statement.attributes, "db.system.name").as_deref(),
            Some("postgresql")
        );
        assert!(
            !text.contains("binds"),
            "values are never in a span: {text}"
        );
        assert!(
            !text.contains(&format!("= {}", p.id)),
            "the id is a bind: {text}"
        );
    }
    assert!(
        statements.iter().any(|s| {
            string_attribute(&s.attributes, "db.query.text")
                .is_some_and(|text| text.contains("partner_integrations") && text.contains("$1"))
        }),
        "{statements:#?}"
    );

    // Trace B: the coalesced read's statement is under the call that started its batch.
    let spans = receiver
        .trace(&bytes(trace_b), |s| {
            has("partner point reads")(s) && has("SELECT")(s)
        })
        .await;
    let rpc = named(&spans, "partners.v1.PartnerService/GetPartner")[0];
    let batch = named(&spans, "partner point reads")[0];
    assert_eq!(batch.parent_span_id, rpc.span_id);
    assert!(
        children(&spans, batch)
            .iter()
            .any(|s| s.kind == SpanKind::Client as i32),
        "{spans:#?}"
    );

    // Trace C: the gRPC call continues the caller's trace.
    let spans = receiver
        .trace(
            &bytes(trace_c),
            has("partners.v1.PartnerService/GetPartner"),
        )
        .await;
    let rpc = named(&spans, "partners.v1.PartnerService/GetPartner")[0];
    assert_eq!(rpc.parent_span_id, bytes(parent_c));

    // Trace D: through the standalone gateway, a process of its own: the context crosses the
    // wire in the call's metadata.
    let gateway_port = free_ports(1)[0];
    let mut gateway = tokio::process::Command::new(env!("CARGO_BIN_EXE_partners"))
        .args([
            "gateway",
            "--upstream",
            &format!("http://127.0.0.1:{}", ports[0]),
            "--http-addr",
            &format!("127.0.0.1:{gateway_port}"),
        ])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}"))
        .env("OTEL_SERVICE_NAME", "gateway-under-test")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn gateway");
    let trace_d = "a3ce929d0e0e47364bf92f3577b34da6";
    let parent_d = "53995c3f42cd8ad8";
    let started = Instant::now();
    loop {
        let sent = http
            .get(format!(
                "http://127.0.0.1:{gateway_port}/api/v1/partners/{}",
                p.id
            ))
            .bearer_auth(&t.world.service_key)
            .header("traceparent", traceparent(trace_d, parent_d))
            .send()
            .await;
        if sent.as_ref().is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "gateway: {sent:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let spans = receiver
        .trace(&bytes(trace_d), |s| {
            has("GET /api/v1/partners/{id}")(s) && has("partners.v1.PartnerService/GetPartner")(s)
        })
        .await;
    let http_span = spans
        .iter()
        .find(|r| r.service == "gateway-under-test" && r.span.parent_span_id == bytes(parent_d))
        .unwrap_or_else(|| panic!("the gateway's span: {spans:#?}"));
    let rpc = spans
        .iter()
        .find(|r| r.span.name == "partners.v1.PartnerService/GetPartner")
        .expect("the call's span");
    assert_eq!(rpc.service, "partners-under-test");
    assert_eq!(
        rpc.span.parent_span_id, http_span.span.span_id,
        "{spans:#?}"
    );
    gateway.kill().await.expect("stop gateway");

    // Health checks are not traced.
    assert!(
        receiver
            .spans
            .lock()
            .expect("lock")
            .iter()
            .all(|r| !r.span.name.contains("healthz") && !r.span.name.contains("Health")),
        "probes are not exported"
    );

    let pid = child.id().expect("pid").to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut logs = String::new();
    tokio::time::timeout(Duration::from_secs(15), stderr.read_to_string(&mut logs))
        .await
        .expect("logs end at exit")
        .expect("read logs");
    child.wait().await.expect("exit");
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let of_request: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["span"]["request_id"] == "traced-rest-1")
        .collect();
    let messages: HashMap<&str, &serde_json::Value> = of_request
        .iter()
        .map(|l| (l["message"].as_str().unwrap_or_default(), *l))
        .collect();
    assert!(
        messages.contains_key("request done") && messages.contains_key("GetPartner done"),
        "the HTTP and the RPC line: {logs}"
    );
    for line in of_request {
        assert_eq!(line["span"]["trace_id"], trace_a, "{line}");
    }
}
