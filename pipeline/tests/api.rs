//! The HTTP API, the page and /metrics, driven through the router without a socket.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use tower::ServiceExt;

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, String) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
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
    let app = reconlight::server::app(p.store.clone(), p.metrics.clone());

    let (status, body) = get(&app, "/api/v1/work-items?kind=missing_payment&limit=2").await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["total"], missing);
    assert_eq!(v["items"].as_array().unwrap().len(), 2.min(missing));
    let first = &v["items"][0];
    assert_eq!(first["kind"], "missing_payment");
    assert_eq!(first["state"], "open");

    let id = first["id"].as_str().unwrap();
    let (status, body) = get(&app, &format!("/api/v1/work-items/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(id));
    let (status, body) = get(&app, "/api/v1/work-items/WI-nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("no work item `WI-nope`"));
    let (status, body) = get(&app, "/api/v1/work-items?kind=bogus").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("unknown work item kind `bogus`"));

    let firing = p
        .state
        .alerts
        .values()
        .filter(|a| a.state.as_str() == "firing")
        .count();
    let (_, body) = get(&app, "/api/v1/alerts?state=firing").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["total"], firing);

    let contract = first["contract_no"].as_str().unwrap();
    let (_, body) = get(&app, &format!("/api/v1/contracts/{contract}/audit")).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "status" && e["after"] == "signed")
    );

    let (_, metrics) = get(&app, "/metrics").await;
    assert!(
        metrics.contains(&format!(
            "reconlight_work_items_open{{kind=\"missing_payment\"}} {missing}"
        )),
        "{metrics}"
    );
    assert!(metrics.contains("reconlight_events_total{source=\"crm-contracts\"}"));

    let (status, page) = get(&app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Discrepancy queue") && page.contains(id));
}
