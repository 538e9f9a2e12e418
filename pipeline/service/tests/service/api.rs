//! The HTTP API, the page and /metrics, driven through the router without a socket.

use crate::common::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use reconlight_service::access::Role;
use tower::ServiceExt;

async fn fetch(app: &axum::Router, uri: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::get(uri);
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 10 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_the_queue_the_lights_and_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = generate_and_run(dir.path(), 300, 21).await;
    let missing = p
        .state
        .work_items
        .values()
        .filter(|w| w.finding.kind.as_str() == "missing_payment")
        .count();
    assert!(missing > 0);
    let app = reconlight_service::server::app(p.store.clone(), p.metrics.clone());
    let viewer = token(&p.store, "zhao.min", Role::Viewer).await;
    let get = |uri: &'static str| {
        let (app, viewer) = (app.clone(), viewer.clone());
        async move { fetch(&app, uri, Some(&viewer)).await }
    };

    let (status, body) = fetch(&app, "/api/v1/work-items", None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "no token, no queue: {body}"
    );
    let (status, _) = fetch(&app, "/api/v1/work-items", Some("rl_0000_nope")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an unknown token");

    let (status, body) = get("/api/v1/work-items?kind=missing_payment&limit=2").await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["total"], missing);
    assert_eq!(v["items"].as_array().unwrap().len(), 2.min(missing));
    let first = &v["items"][0];
    assert_eq!(first["kind"], "missing_payment");
    assert_eq!(first["state"], "open");

    let id = first["id"].as_str().unwrap();
    let (status, body) = fetch(&app, &format!("/api/v1/work-items/{id}"), Some(&viewer)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(id));
    let (status, body) = get("/api/v1/work-items/WI-nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("no work item `WI-nope`"));
    let (status, body) = get("/api/v1/work-items?kind=bogus").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("unknown work item kind `bogus`"));

    let firing = p
        .state
        .alerts
        .values()
        .filter(|a| a.state.as_str() == "firing")
        .count();
    let (_, body) = get("/api/v1/alerts?state=firing").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["total"], firing);

    let contract = first["contract_no"].as_str().unwrap();
    let (_, body) = fetch(
        &app,
        &format!("/api/v1/contracts/{contract}/audit"),
        Some(&viewer),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "status" && e["after"] == "signed")
    );

    // Prometheus scrapes without a token: counts and sums, no rows.
    let (_, metrics) = fetch(&app, "/metrics", None).await;
    assert!(
        metrics.contains(&format!(
            "reconlight_work_items_open{{kind=\"missing_payment\"}} {missing}"
        )),
        "{metrics}"
    );
    assert!(metrics.contains("reconlight_events_total{source=\"crm-contracts\"}"));

    // The workbench's queue, in English when asked, finds the item by its id.
    let (status, page) = fetch(&app, &format!("/?lang=en&state=any&q={id}"), Some(&viewer)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Discrepancy queue") && page.contains(id),
        "{page}"
    );
}

async fn post(
    app: &axum::Router,
    uri: &str,
    token: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let request = Request::post(uri)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 10 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_works_the_queue_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let (mut p, _) = generate_and_run(dir.path(), 300, 21).await;
    let app = reconlight_service::server::app(p.store.clone(), p.metrics.clone());
    let wang = token(&p.store, "wang.fang", Role::Clerk).await;
    let li = token(&p.store, "li.na", Role::Clerk).await;
    let viewer = token(&p.store, "zhao.min", Role::Viewer).await;
    let unmatched = p
        .state
        .work_items
        .values()
        .find(|w| w.finding.kind.as_str() == "unmatched_receipt")
        .unwrap()
        .clone();
    let missing = p
        .state
        .work_items
        .values()
        .find(|w| w.finding.kind.as_str() == "missing_payment")
        .unwrap()
        .clone();
    let (contract, seq) = (
        missing.finding.contract_no.clone().unwrap(),
        missing.finding.installment.unwrap(),
    );

    let (status, err) = post(
        &app,
        &format!("/api/v1/work-items/{}/assign", missing.id),
        &viewer,
        serde_json::json!({"assignee": "li.na"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a viewer only reads");
    assert_eq!(err["error"], "zhao.min is a viewer; this needs a clerk");
    let (status, err) = post(
        &app,
        &format!("/api/v1/work-items/{}/assign", missing.id),
        &wang,
        serde_json::json!({"by": "the.boss", "assignee": "li.na"}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "nobody acts under another's name"
    );
    assert_eq!(
        err["error"],
        "`by` is taken from your sign-in: you are wang.fang, not the.boss"
    );
    let (status, item) = post(
        &app,
        &format!("/api/v1/work-items/{}/assign", missing.id),
        &wang,
        serde_json::json!({"assignee": "li.na"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{item}");
    assert_eq!(
        item["history"].as_array().unwrap().last().unwrap()["by"],
        "wang.fang",
        "the actor comes from the token"
    );
    assert_eq!(
        (item["state"].as_str(), item["assignee"].as_str()),
        (Some("assigned"), Some("li.na"))
    );
    let (status, item) = post(
        &app,
        &format!("/api/v1/work-items/{}/comment", missing.id),
        &li,
        serde_json::json!({"text": "客户说下周付"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        item["history"].as_array().unwrap().last().unwrap()["note"],
        "客户说下周付"
    );

    let (status, err) = post(
        &app,
        &format!("/api/v1/work-items/{}/dismiss", missing.id),
        &li,
        serde_json::json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "`dismiss` needs `reason` in the JSON body");
    let (status, err) = post(
        &app,
        &format!("/api/v1/work-items/{}/match", missing.id),
        &li,
        serde_json::json!({"contract_no": contract, "installment": seq}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("only unmatched receipts and suggested matches are matched by hand")
    );

    // The unmatched credit was in fact this customer's payment: match it by hand.
    let credit = unmatched.finding.received.unwrap();
    let (status, item) = post(
        &app,
        &format!("/api/v1/work-items/{}/match", unmatched.id),
        &li,
        serde_json::json!({"contract_no": contract, "installment": seq}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{item}");
    assert_eq!(item["state"], "resolved");
    let (status, err) = post(
        &app,
        &format!("/api/v1/work-items/{}/resolve", unmatched.id),
        &li,
        serde_json::json!({"reason": "again"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        err["error"],
        format!(
            "work item {} is resolved; only open or assigned items can be resolved",
            unmatched.id
        )
    );

    // The next nightly applies the manual match: the installment is no longer missing.
    let date = p.default_business_date();
    p.nightly(date).await.unwrap();
    let after = &p.state.work_items[&missing.id];
    assert_eq!(
        after.state.as_str(),
        "resolved",
        "nothing is missing any more"
    );
    assert!(
        after
            .resolution
            .as_deref()
            .unwrap()
            .starts_with("auto-resolved"),
        "{:?}",
        after.resolution
    );
    assert_eq!(
        after.assignee.as_deref(),
        Some("li.na"),
        "the clerk's assignment is kept"
    );
    let expected = missing.finding.expected.unwrap();
    let now_for_installment: Vec<_> = p
        .state
        .work_items
        .values()
        .filter(|w| {
            w.state.is_active()
                && w.finding.contract_no.as_deref() == Some(&contract)
                && w.finding.installment == Some(seq)
        })
        .collect();
    if (credit - expected).abs() <= rust_decimal::Decimal::ONE {
        assert!(
            now_for_installment.is_empty(),
            "paid in full by the manual match"
        );
    } else {
        let kind = if credit < expected {
            "partial_payment"
        } else {
            "overpayment"
        };
        assert_eq!(now_for_installment.len(), 1);
        assert_eq!(now_for_installment[0].finding.kind.as_str(), kind);
        assert_eq!(
            now_for_installment[0].finding.received,
            Some(credit),
            "the manual match counts as received"
        );
    }
    assert_eq!(p.state.work_items[&unmatched.id].state.as_str(), "resolved");
    let allocation = &p.state.manual[unmatched.finding.bank_ref.as_ref().unwrap()].allocations[0];
    assert_eq!(
        (allocation.by.as_str(), allocation.amount),
        ("li.na", credit)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nightly_writes_its_reports() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = generate_and_run(dir.path(), 300, 8).await;
    let reports = dir.path().join("reports");
    let csv = std::fs::read_to_string(reports.join("nightly-2026-10-31.csv")).unwrap();
    let open = p
        .state
        .work_items
        .values()
        .filter(|w| w.state.is_active())
        .count();
    assert!(csv.contains(&format!("queue,open,{open},")), "{csv}");
    for kind in ["missing_payment", "unmatched_receipt"] {
        let n = p
            .state
            .work_items
            .values()
            .filter(|w| w.finding.kind.as_str() == kind)
            .count();
        assert!(
            csv.lines()
                .any(|l| l.starts_with(&format!("kind,{kind},{n},"))),
            "{kind}: {csv}"
        );
    }
    let items = std::fs::read_to_string(reports.join("nightly-2026-10-31-items.csv")).unwrap();
    assert_eq!(
        items.lines().count(),
        open + 1,
        "a header and one row per open item"
    );
    let html = std::fs::read_to_string(reports.join("nightly-2026-10-31.html")).unwrap();
    assert!(html.contains("Nightly reconciliation, business date 2026-10-31"));
    assert!(!html.contains("<script"), "self-contained, no scripts");
    let metrics = p.metrics.render();
    assert!(
        metrics.contains("reconlight_nightly_difference_rate_percent"),
        "{metrics}"
    );
}
