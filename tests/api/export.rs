//! The export (issue 22, part 9): ExportPartners and `GET /api/v1/partners/export` stream every
//! partner matching the list filters once, in id order, as gRPC messages, NDJSON or CSV; service
//! keys only; 406 for other formats; the producer does not run ahead of a client that stops
//! reading.

use diesel::RunQueryDsl;
use diesel::sql_types::BigInt;
use partners::grpc::pb;
use reqwest::StatusCode;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::support::*;

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The ids `sql` selects, in its order.
fn ids(t: &TestApp, sql: &str) -> Vec<i64> {
    let rows: Vec<Id> = diesel::sql_query(sql)
        .load(&mut t.db.conn())
        .expect("ids query");
    rows.into_iter().map(|r| r.id).collect()
}

/// Runs `sql` without the change log's triggers (as the load tools' seed does), then tells the
/// lists' copies to reload: fast for tens of thousands of rows, and the export reads SQL alone.
fn bulk_sql(t: &TestApp, sql: &str) {
    use diesel::connection::SimpleConnection;
    t.db.conn()
        .batch_execute(&format!(
            "SET session_replication_role = replica; {sql}; \
             SET session_replication_role = DEFAULT; SELECT partners_search_changed();"
        ))
        .expect("bulk sql");
}

/// `n` partners by SQL: every third `pos` (else `accounting`), even ones in DE (else AT), every
/// fifth inactive, every 97th soft-deleted.
fn seed(t: &TestApp, n: i64) {
    bulk_sql(
        t,
        &format!(
            "INSERT INTO partners (name, categories, country_codes, active, deleted_at) \
             SELECT 'Partner ' || g, \
             CASE WHEN g % 3 = 0 THEN ARRAY['pos'] ELSE ARRAY['accounting'] END, \
             CASE WHEN g % 2 = 0 THEN ARRAY['DE'] ELSE ARRAY['AT'] END, g % 5 <> 0, \
             CASE WHEN g % 97 = 0 THEN now() END FROM generate_series(1, {n}) g"
        ),
    );
}

fn export_request(filter: pb::ListPartnersFilter, search: &str) -> pb::ExportPartnersRequest {
    pb::ExportPartnersRequest {
        filter: Some(filter),
        search: search.to_owned(),
        business_uuid: String::new(),
    }
}

/// Every message of a gRPC export, checked to hold at most 500 partners each.
async fn export_grpc(
    t: &TestApp,
    request: pb::ExportPartnersRequest,
    key: &str,
) -> Result<Vec<pb::Partner>, tonic::Status> {
    let mut stream = t
        .client()
        .export_partners(with_key(request, key))
        .await?
        .into_inner();
    let mut partners = Vec::new();
    while let Some(message) = stream.next().await {
        let message = message?;
        assert!(!message.partners.is_empty() && message.partners.len() <= 500);
        partners.extend(message.partners);
    }
    Ok(partners)
}

fn pos_de_active() -> pb::ListPartnersFilter {
    pb::ListPartnersFilter {
        categories: vec!["pos".into()],
        country_codes: vec!["de".into()],
        active: Some(true),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_streams_every_match_once_in_id_order_over_grpc_and_rest() {
    let t = TestApp::start().await;
    let key = t.world.service_key.clone();
    seed(&t, 3000);
    let quoted = t.simple_partner("Comma, \"Quoted\"", &["pos"]).await;
    let live = ids(
        &t,
        "SELECT id FROM partners WHERE deleted_at IS NULL ORDER BY id",
    );
    assert_eq!(live.len(), 3000 - 30 + 1);

    // Everything, then with filters and a search, over gRPC.
    let all = export_grpc(&t, export_request(Default::default(), ""), &key)
        .await
        .expect("export");
    assert_eq!(all.iter().map(|p| p.id).collect::<Vec<_>>(), live);
    let filtered = ids(
        &t,
        "SELECT id FROM partners WHERE deleted_at IS NULL AND categories && ARRAY['pos'] \
         AND country_codes && ARRAY['DE'] AND active AND name LIKE '%7%' ORDER BY id",
    );
    assert!(filtered.len() > 50, "{}", filtered.len());
    let got = export_grpc(&t, export_request(pos_de_active(), "7"), &key)
        .await
        .expect("filtered export");
    assert_eq!(got.iter().map(|p| p.id).collect::<Vec<_>>(), filtered);

    // The rules of ListPartners' filters, and service keys only.
    let err = export_grpc(
        &t,
        export_request(Default::default(), ""),
        &t.world.user_key_a,
    )
    .await
    .expect_err("user key");
    assert_eq!(err.code(), Code::PermissionDenied);
    let bad = pb::ListPartnersFilter {
        country_codes: vec!["DEU".into()],
        ..Default::default()
    };
    let err = export_grpc(&t, export_request(bad, ""), &key)
        .await
        .expect_err("bad filter");
    assert_invalid(&err, &["filter.country_codes"]);
    let preferred = pb::ListPartnersFilter {
        preferred: Some(true),
        ..Default::default()
    };
    let err = export_grpc(&t, export_request(preferred.clone(), ""), &key)
        .await
        .expect_err("preferred without a business");
    assert_invalid(&err, &["filter.preferred"]);
    t.prefer(t.world.business_a, live[10]).await;
    t.prefer(t.world.business_a, live[5]).await;
    let mut scoped = export_request(preferred, "");
    scoped.business_uuid = t.world.business_a.to_string();
    let got = export_grpc(&t, scoped, &key).await.expect("preferred");
    let summary: Vec<(i64, Option<bool>)> = got.iter().map(|p| (p.id, p.preferred)).collect();
    assert_eq!(summary, [(live[5], Some(true)), (live[10], Some(true))]);

    // REST, NDJSON: one partner resource per line, chunked.
    let http = reqwest::Client::new();
    let url = format!(
        "{}/api/v1/partners/export?filter[categories][]=pos&filter[country_codes][]=de&filter[active]=true&search=7",
        t.http()
    );
    let response = http
        .get(&url)
        .bearer_auth(&key)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .expect("ndjson");
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/x-ndjson");
    assert_eq!(headers["transfer-encoding"], "chunked");
    assert!(headers.get("etag").is_none());
    let text = response.text().await.expect("body");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let got: Vec<i64> = lines
        .iter()
        .map(|l| l["id"].as_str().expect("id").parse().expect("number"))
        .collect();
    assert_eq!(got, filtered);
    assert_eq!(lines[0]["type"], "partner");
    assert_eq!(
        lines[0]["attributes"]["categories"],
        serde_json::json!(["pos"])
    );

    // REST, CSV: a header line, then every live partner once, in id order.
    let response = http
        .get(format!("{}/api/v1/partners/export", t.http()))
        .bearer_auth(&key)
        .header("accept", "text/csv")
        .send()
        .await
        .expect("csv");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let text = response.text().await.expect("body");
    let mut rows = text.split("\r\n");
    assert_eq!(
        rows.next(),
        Some(
            "id,name,description,email,logo_url,website_url,video_url,categories,\
             wholesaler_categories,country_codes,tags,status,active,external_id,metadata,clicks,\
             website_clicks,video_clicks,users_count,preferred,integration_status,created_at,\
             updated_at"
        )
    );
    let rows: Vec<&str> = rows.filter(|r| !r.is_empty()).collect();
    let got: Vec<i64> = rows
        .iter()
        .map(|r| r.split(',').next().expect("id").parse().expect("number"))
        .collect();
    assert_eq!(got, live);
    let last = rows.last().expect("rows");
    assert!(
        last.starts_with(&format!(
            "{},\"Comma, \"\"Quoted\"\"\",,,,,,[\"\"pos\"\"]",
            quoted.id
        )) || last.starts_with(&format!("{},\"Comma, \"\"Quoted\"\"\",", quoted.id)),
        "{last}"
    );

    // Other formats, user keys, bad filters.
    for (accept, status) in [
        ("application/json", StatusCode::NOT_ACCEPTABLE),
        ("text/csv;q=0, image/png", StatusCode::NOT_ACCEPTABLE),
        ("*/*", StatusCode::OK),
    ] {
        let response = http
            .get(format!(
                "{}/api/v1/partners/export?search=Partner%2010",
                t.http()
            ))
            .bearer_auth(&key)
            .header("accept", accept)
            .send()
            .await
            .expect("call");
        assert_eq!(response.status(), status, "{accept}");
    }
    let response = http
        .get(format!("{}/api/v1/partners/export", t.http()))
        .bearer_auth(&t.world.user_key_a)
        .send()
        .await
        .expect("user key");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = http
        .get(format!(
            "{}/api/v1/partners/export?filter[country_codes]=DEU",
            t.http()
        ))
        .bearer_auth(&key)
        .send()
        .await
        .expect("bad filter");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let doc: serde_json::Value = response.json().await.expect("error document");
    assert_eq!(
        doc["errors"][0]["source"]["parameter"],
        "filter[country_codes]"
    );
    t.stop().await;
}

/// A client that stops reading holds the producer back: partners deleted while it waits are
/// not exported. What was read ahead is a few chunks plus the transport's flow-control windows
/// (about 20,000 small partners here), far fewer than the 40,000 before the cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_waits_for_a_client_that_stops_reading() {
    let t = TestApp::start().await;
    seed(&t, 61_000);
    let live = ids(
        &t,
        "SELECT id FROM partners WHERE deleted_at IS NULL ORDER BY id",
    );
    let mut stream = t
        .client()
        .export_partners(with_key(
            export_request(Default::default(), ""),
            &t.world.service_key,
        ))
        .await
        .expect("export")
        .into_inner();
    let first = stream.next().await.expect("a message").expect("ok");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // Soft-delete everything past the first 40,000 (in one statement) while the client waits.
    let cut = live[40_000];
    bulk_sql(
        &t,
        &format!("UPDATE partners SET deleted_at = now() WHERE id >= {cut}"),
    );
    let mut got: Vec<i64> = first.partners.iter().map(|p| p.id).collect();
    while let Some(message) = stream.next().await {
        got.extend(message.expect("ok").partners.iter().map(|p| p.id));
    }
    assert!(
        got == live[..40_000],
        "the export should stop at the cut: {} ids, the last {:?}",
        got.len(),
        got.last()
    );
    t.stop().await;
}
