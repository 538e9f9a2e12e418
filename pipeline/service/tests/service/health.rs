//! `/healthz` and `/readyz` as a process manager sees them: no token, a status code and the
//! checks that decided it.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use reconlight_service::config::Config;
use reconlight_service::metrics::Metrics;
use reconlight_service::server::{RuleReload, ServerOptions, app_with};
use reconlight_service::store::Store;
use tower::ServiceExt;

async fn fetch(app: &axum::Router, uri: &str) -> (StatusCode, serde_json::Value, String) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        text,
    )
}

fn check<'a>(body: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {body}"))
}

#[tokio::test]
async fn readiness_names_the_source_that_cannot_be_read_and_lag_beyond_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(
        "[store]\nurl = \"sqlite://health.db\"\n[server]\nready_max_lag = 10\n[kafka]\nbrokers = \"127.0.0.1:9\"\n\n[[sources]]\nname = \"bank\"\nformat = \"camt\"\npath = \"bank\"\n\n[[sources]]\nname = \"crm\"\nformat = \"debezium\"\ntopics = [\"crm.contracts\"]\n",
        dir.path(),
    )
    .unwrap();
    let store = Store::open(&config.store_url()).await.unwrap();
    let metrics = Arc::new(Metrics::new());
    let app = app_with(
        store,
        metrics.clone(),
        ServerOptions {
            reload: Some(Arc::new(RuleReload {
                config: config.clone(),
                requested: false.into(),
            })),
            webhooks: None,
            ..ServerOptions::from_config(&config)
        },
    );

    let (status, _, text) = fetch(&app, "/healthz").await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "ok\n"));

    // The bank's folder is not there yet and the consumer has no partitions.
    let (status, body, text) = fetch(&app, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert_eq!(body["ready"], false);
    assert_eq!(check(&body, "store")["ok"], true);
    assert_eq!(check(&body, "source bank")["ok"], false);
    assert!(
        check(&body, "source bank")["detail"]
            .as_str()
            .unwrap()
            .contains("No such file"),
        "{body}"
    );
    assert_eq!(check(&body, "kafka assignment")["ok"], false);

    std::fs::create_dir(dir.path().join("bank")).unwrap();
    metrics.kafka_assigned.set(4);
    metrics.kafka_lag_total.set(11);
    let (status, body, _) = fetch(&app, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(check(&body, "source bank")["ok"], true);
    assert_eq!(check(&body, "kafka assignment")["ok"], true);
    assert_eq!(
        check(&body, "kafka lag")["detail"],
        "11 messages behind (at most 10)"
    );

    metrics.kafka_lag_total.set(10);
    let (status, body, text) = fetch(&app, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(body["ready"], true);
}
