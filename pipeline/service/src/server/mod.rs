//! The HTTP server: the work-item and alert APIs, `/metrics` for Prometheus, and the
//! finance workbench (`workbench/`). `app()` builds the router, so tests drive
//! it without a socket.

pub mod auth;
mod health;
pub mod oidc;
mod reports;
pub mod webhooks;
mod workbench;

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::metrics::Metrics;
use crate::store::AckError;
use crate::store::Store;

#[derive(Clone)]
struct AppState {
    store: Store,
    metrics: Arc<Metrics>,
    reload: Option<Arc<RuleReload>>,
    webhooks: Option<Arc<webhooks::WebhooksConfig>>,
    /// Checks Acrobat Sign's bearer tokens, when its webhook OAuth is configured.
    adobe_oauth: Option<Arc<oidc::Verifier>>,
    /// Who a token belongs to (the workbench's sign-in checks it).
    gate: auth::Gate,
    /// The business time zone: the workbench's dates, ages and SLA states.
    time_zone: chrono_tz::Tz,
    /// When the store changes, for the workbench's open pages.
    changes: workbench::events::ChangeFeed,
}

/// What the server serves beside the store and the metrics.
#[derive(Clone)]
pub struct ServerOptions {
    pub reload: Option<Arc<RuleReload>>,
    pub webhooks: Option<Arc<webhooks::WebhooksConfig>>,
    pub access: Arc<crate::access::AuthConfig>,
    pub time_zone: chrono_tz::Tz,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            reload: None,
            webhooks: None,
            access: Arc::new(crate::access::AuthConfig::default()),
            time_zone: chrono_tz::Asia::Shanghai,
        }
    }
}

impl ServerOptions {
    /// The webhooks, access rules and business time zone of a configuration.
    pub fn from_config(config: &crate::config::Config) -> ServerOptions {
        ServerOptions {
            reload: None,
            webhooks: Some(Arc::new(config.webhooks.clone())),
            access: Arc::new(config.auth.clone()),
            time_zone: config.business.time_zone,
        }
    }
}

/// How the server asks the pipeline in the same process to reload its rule packs.
pub struct RuleReload {
    pub config: crate::config::Config,
    /// Set by `POST /api/v1/rules/reload`; the pipeline swaps its rules at its next tick.
    pub requested: std::sync::atomic::AtomicBool,
}

/// The router over a store, with the default access rules (a token for everything but
/// webhooks and metrics).
pub fn app(store: Store, metrics: Arc<Metrics>) -> Router {
    app_with(store, metrics, ServerOptions::default())
}

/// The router, able to reload the pipeline's rules when it runs beside one.
pub fn app_with(store: Store, metrics: Arc<Metrics>, options: ServerOptions) -> Router {
    let ServerOptions {
        reload,
        webhooks,
        access,
        time_zone,
    } = options;
    let gate = auth::Gate {
        store: store.clone(),
        oidc: access
            .oidc
            .clone()
            .map(|o| Arc::new(oidc::Verifier::new(o))),
        config: access,
    };
    let limit = webhooks
        .as_ref()
        .map(|w| w.max_body_bytes)
        .unwrap_or(1 << 20);
    Router::new()
        .route("/webhooks/docusign", post(webhooks::docusign))
        .route("/webhooks/esign-cn", post(webhooks::esign_cn))
        .route("/webhooks/fadada", post(webhooks::fadada))
        .route(
            "/webhooks/adobe-sign",
            post(webhooks::adobe_sign).get(webhooks::adobe_sign_intent),
        )
        .route("/api/v1/rules/reload", post(reload_rules))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics_text))
        .route("/api/v1/work-items", get(list_work_items))
        .route("/api/v1/work-items/{id}", get(get_work_item))
        .route("/api/v1/work-items/{id}/{action}", post(act_on_work_item))
        .route("/api/v1/alerts", get(list_alerts))
        .route("/api/v1/alerts/{id}", get(get_alert))
        .route("/api/v1/alerts/{id}/ack", post(ack_alert))
        .route("/api/v1/contracts/{no}/audit", get(contract_audit))
        .route("/api/v1/credits/{bank_ref}", get(get_credit))
        .route("/api/v1/reports/nightly", get(nightly_reports))
        .route("/api/v1/reports/monthly", get(reports::list))
        .route("/reports/monthly/{month}", get(reports::page))
        .route("/reports/monthly/{month}/csv", get(reports::csv))
        .route("/api/v1/dead-letters", get(dead_letters))
        .merge(workbench::routes())
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            gate.clone(),
            auth::check,
        ))
        .with_state(AppState {
            gate,
            time_zone,
            changes: workbench::events::ChangeFeed::new(store.clone()),
            adobe_oauth: webhooks
                .as_ref()
                .and_then(|w| w.adobe_sign.as_ref())
                .and_then(|a| a.oauth.clone())
                .map(|o| Arc::new(oidc::Verifier::new(o))),
            store,
            metrics,
            reload,
            webhooks,
        })
}

/// Serves beside a running pipeline, until the task is dropped.
pub async fn serve_owned(
    listen: String,
    store: Store,
    metrics: Arc<Metrics>,
    reload: Arc<RuleReload>,
) -> crate::error::Result<()> {
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|source| crate::error::ServiceError::Listen {
            address: listen.to_string(),
            source,
        })?;
    let options = ServerOptions {
        reload: Some(reload.clone()),
        ..ServerOptions::from_config(&reload.config)
    };
    axum::serve(listener, app_with(store, metrics, options))
        .await
        .map_err(crate::error::ServiceError::Serve)?;
    Ok(())
}

async fn reload_rules(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let reload = s.reload.ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "this process does not evaluate rules (reload `reconlight run` instead)".into(),
        )
    })?;
    // Load and plan them here, so the caller sees what the pipeline will run.
    let runner = crate::alerts::RuleRunner::load(&reload.config).await;
    reload
        .requested
        .store(true, std::sync::atomic::Ordering::SeqCst);
    Ok(Json(json!({
        "rules": runner.rules.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        "broken": runner.broken.values().map(|e| e.to_string()).collect::<Vec<_>>(),
    })))
}

/// Serves the API, the workbench and, when configured, the webhook receivers, until
/// Ctrl-C or SIGTERM.
pub async fn serve(
    listen: &str,
    store: Store,
    metrics: Arc<Metrics>,
    options: ServerOptions,
) -> crate::error::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| crate::error::ServiceError::Listen {
            address: listen.to_string(),
            source,
        })?;
    axum::serve(listener, app_with(store, metrics, options))
        .with_graceful_shutdown(async {
            match crate::shutdown::Shutdown::install() {
                Ok(s) => s.wait().await,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        })
        .await
        .map_err(crate::error::ServiceError::Serve)?;
    Ok(())
}

struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

/// `GET /api/v1/work-items`: the queue's filters (the workbench's, by name), in any
/// state unless `state` says which.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WorkItemQuery {
    kind: Option<String>,
    state: Option<String>,
    contract_no: Option<String>,
    assignee: Option<String>,
    customer: Option<String>,
    owner: Option<String>,
    region: Option<String>,
    min_amount: Option<rust_decimal::Decimal>,
    max_amount: Option<rust_decimal::Decimal>,
    min_age_days: Option<i64>,
    sla: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    limit: Option<u64>,
    offset: Option<u64>,
}

fn bad_request(m: String) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, m)
}

async fn list_work_items(
    State(s): State<AppState>,
    q: Result<Query<WorkItemQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    use crate::store::{QueueFilter, QueueSort, SlaState};
    use reconlight_core::workitems::{WorkItemKind, WorkItemState};
    let Query(q) = q.map_err(|e| bad_request(e.body_text()))?;
    let kind = q
        .kind
        .as_deref()
        .map(|k| {
            k.parse::<WorkItemKind>()
                .map_err(|_| bad_request(format!("unknown work item kind `{k}`")))
        })
        .transpose()?;
    let states = match q.state.as_deref() {
        None | Some("any") => Vec::new(),
        Some("active") => vec![WorkItemState::Open, WorkItemState::Assigned],
        Some(st) => vec![
            *WorkItemState::ALL
                .iter()
                .find(|x| x.as_str() == st)
                .ok_or_else(|| {
                    bad_request(format!(
                        "unknown state `{st}` (open, assigned, resolved, dismissed, active, any)"
                    ))
                })?,
        ],
    };
    let sla = q
        .sla
        .as_deref()
        .map(|v| {
            SlaState::ALL
                .iter()
                .find(|x| x.as_str() == v)
                .copied()
                .ok_or_else(|| {
                    bad_request(format!("unknown sla `{v}` (overdue, due_soon, on_time)"))
                })
        })
        .transpose()?;
    let sort = q
        .sort
        .as_deref()
        .map(|v| {
            QueueSort::ALL
                .iter()
                .find(|x| x.as_str() == v)
                .copied()
                .ok_or_else(|| bad_request(format!("unknown sort `{v}` (money, sla, age)")))
        })
        .transpose()?
        .unwrap_or_default();
    let filter = QueueFilter {
        kind,
        states,
        assignee: q.assignee,
        customer: q.customer,
        owner: q.owner,
        region: q.region,
        contract_no: q.contract_no,
        min_amount: q.min_amount,
        max_amount: q.max_amount,
        min_age_days: q.min_age_days,
        sla,
        text: q.q,
        today: Some(chrono::Utc::now().with_timezone(&s.time_zone).date_naive()),
    };
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(100).min(1000);
    let page = s.store.queue_page(&filter, sort, offset, limit).await?;
    Ok(Json(json!({
        "total": page.total,
        "offset": offset,
        "limit": limit,
        "at_stake": page.at_stake.iter().map(|(c, a)| json!({"currency": c, "amount": a})).collect::<Vec<_>>(),
        "items": page.items,
    })))
}

async fn get_work_item(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    s.store
        .work_items()
        .await?
        .into_iter()
        .find(|w| w.id == id)
        .map(|w| Json(json!(w)))
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no work item `{id}`")))
}

/// A bank credit: the line itself, where it is allocated now and why, and how its
/// allocation moved over time.
async fn get_credit(
    State(s): State<AppState>,
    Path(bank_ref): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(row) = s.store.bank_row(&bank_ref).await? else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no bank line `{bank_ref}`"),
        ));
    };
    let allocations = s.store.allocations_of(&bank_ref).await?;
    let history = s.store.match_history(&bank_ref).await?;
    Ok(Json(json!({
        "credit": row,
        "allocations": allocations,
        "match_history": history,
    })))
}

/// The body of a clerk's action; which fields are needed depends on the action.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    by: Option<String>,
    assignee: Option<String>,
    text: Option<String>,
    reason: Option<String>,
    contract_no: Option<String>,
    installment: Option<u32>,
    amount: Option<rust_decimal::Decimal>,
    /// The item's version the clerk acted on.
    version: Option<u64>,
}

/// The caller acts under the name their token gives; a request naming someone else is
/// refused rather than believed.
fn actor(caller: &auth::Caller, claimed: Option<&str>) -> Result<String, ApiError> {
    match claimed.map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) if c != caller.name => Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "`by` is taken from your sign-in: you are {}, not {c}",
                caller.name
            ),
        )),
        _ => Ok(caller.name.clone()),
    }
}

async fn act_on_work_item(
    State(s): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    axum::Extension(caller): axum::Extension<auth::Caller>,
    headers: HeaderMap,
    body: Option<Json<ActionBody>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    use crate::actions::{Action, ActionError, perform};
    let b = body.map(|Json(b)| b).unwrap_or_default();
    let missing = |field: &str| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("`{action}` needs `{field}` in the JSON body"),
        )
    };
    let by = actor(&caller, b.by.as_deref())?;
    let action = match action.as_str() {
        "assign" => Action::Assign {
            assignee: b.assignee.ok_or_else(|| missing("assignee"))?,
        },
        "comment" => Action::Comment {
            text: b.text.ok_or_else(|| missing("text"))?,
        },
        "resolve" => Action::Resolve {
            reason: b.reason.ok_or_else(|| missing("reason"))?,
        },
        "dismiss" => Action::Dismiss {
            reason: b.reason.ok_or_else(|| missing("reason"))?,
        },
        "match" => Action::Match {
            contract_no: b.contract_no.ok_or_else(|| missing("contract_no"))?,
            installment: b.installment.ok_or_else(|| missing("installment"))?,
            amount: b.amount,
        },
        "confirm" => Action::Confirm,
        "reject" => Action::Reject {
            reason: b.reason.ok_or_else(|| missing("reason"))?,
        },
        other => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown action `{other}` (assign, comment, resolve, dismiss, match, confirm, reject)"
                ),
            ));
        }
    };
    // `If-Match: "7"` (or `"version": 7` in the body): act only on the version the clerk saw.
    let expected = match headers.get("if-match").and_then(|v| v.to_str().ok()) {
        Some(tag) => Some(tag.trim().trim_matches('"').parse::<u64>().map_err(|_| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("If-Match `{tag}` is not a work item version"),
            )
        })?),
        None => b.version,
    };
    match perform(&s.store, &id, &by, action, chrono::Utc::now(), expected).await {
        Ok(item) => Ok(Json(json!(item))),
        Err(ActionError::NotFound(id)) => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no work item `{id}`"),
        )),
        Err(ActionError::Conflict(m)) => Err(ApiError(StatusCode::CONFLICT, m)),
        Err(ActionError::Invalid(m)) => Err(ApiError(StatusCode::BAD_REQUEST, m)),
        Err(ActionError::Store(e)) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AckBody {
    by: Option<String>,
    reason: Option<String>,
}

async fn ack_alert(
    State(s): State<AppState>,
    Path(id): Path<String>,
    axum::Extension(caller): axum::Extension<auth::Caller>,
    body: Option<Json<AckBody>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b = body.map(|Json(b)| b).unwrap_or_default();
    let by = actor(&caller, b.by.as_deref())?;
    let reason = b.reason.unwrap_or_default();
    match s
        .store
        .acknowledge_alert(&id, &by, &reason, chrono::Utc::now())
        .await
    {
        Ok(alert) => Ok(Json(json!(alert))),
        Err(AckError::Store(e)) => Err(e.into()),
        Err(e @ AckError::NoAlert(_)) => Err(ApiError(StatusCode::NOT_FOUND, e.to_string())),
        Err(e) => Err(ApiError(StatusCode::CONFLICT, e.to_string())),
    }
}

#[derive(Deserialize)]
struct AlertQuery {
    state: Option<String>,
    level: Option<String>,
}

async fn list_alerts(
    State(s): State<AppState>,
    Query(q): Query<AlertQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let alerts: Vec<_> = s
        .store
        .alerts()
        .await?
        .into_iter()
        .filter(|a| q.state.as_deref().is_none_or(|st| a.state.as_str() == st))
        .filter(|a| q.level.as_deref().is_none_or(|l| a.level.as_str() == l))
        .collect();
    Ok(Json(json!({"total": alerts.len(), "alerts": alerts})))
}

/// One alert: where chat and email messages link to.
async fn get_alert(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    s.store
        .alerts()
        .await?
        .into_iter()
        .find(|a| a.id == id)
        .map(|a| Json(json!(a)))
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no alert `{id}`")))
}

async fn contract_audit(
    State(s): State<AppState>,
    Path(no): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let entries = s.store.audit_entries(Some(&no)).await?;
    Ok(Json(json!({"contract_no": no, "entries": entries})))
}

async fn nightly_reports(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!({"reports": s.store.nightly_reports().await?})))
}

async fn dead_letters(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(
        json!({"dead_letters": s.store.dead_letters(1000).await?}),
    ))
}

async fn metrics_text(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}
