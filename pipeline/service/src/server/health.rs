//! Probes for process managers and load balancers: `/healthz` says the process answers,
//! `/readyz` whether this instance can do its work (the store answers, its file sources can
//! be read, its Kafka consumer has partitions and is not too far behind).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;

/// The process is up and serving.
pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

/// Every check with its outcome; 200 when all pass, 503 otherwise.
pub(super) async fn readyz(State(s): State<AppState>) -> Response {
    let mut checks = Vec::new();
    let mut check = |name: String, ok: bool, detail: String| {
        checks.push(json!({"check": name, "ok": ok, "detail": detail}));
        ok
    };
    let mut ready = match s.store.ping().await {
        Ok(()) => check("store".into(), true, "the database answers".into()),
        Err(e) => check("store".into(), false, e.to_string()),
    };
    // Beside a pipeline, its sources and its consumer count too.
    if let Some(pipeline) = &s.reload {
        let config = &pipeline.config;
        for source in &config.sources {
            let Some(path) = &source.path else { continue };
            let path = config.resolve(path);
            let readable = if path.is_dir() {
                std::fs::read_dir(&path).map(|_| ())
            } else {
                std::fs::File::open(&path).map(|_| ())
            };
            ready &= match readable {
                Ok(()) => check(
                    format!("source {}", source.name),
                    true,
                    format!("{} is readable", path.display()),
                ),
                Err(e) => check(
                    format!("source {}", source.name),
                    false,
                    format!("{}: {e}", path.display()),
                ),
            };
        }
        if config.kafka.is_some() && config.sources.iter().any(|s| !s.topics.is_empty()) {
            let assigned = s.metrics.kafka_assigned.get();
            ready &= check(
                "kafka assignment".into(),
                assigned > 0,
                format!("{assigned} partitions assigned"),
            );
            let lag = s.metrics.kafka_lag_total.get();
            let max = config.server.ready_max_lag;
            ready &= check(
                "kafka lag".into(),
                lag as u64 <= max,
                format!("{lag} messages behind (at most {max})"),
            );
        }
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({"ready": ready, "checks": checks}))).into_response()
}
