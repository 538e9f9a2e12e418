//! The monthly reports on the page and the API: `/reports/monthly/{YYYY-MM}` (HTML, in the
//! reader's language), `.../csv`, and `/api/v1/reports/monthly` (every month's figures).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use reconlight_core::monthly::Month;
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::config::notifiers::Language;
use crate::report::monthly;

#[derive(Deserialize)]
pub(super) struct LanguageQuery {
    lang: Option<String>,
}

/// `?lang=zh|en` first, then the browser's Accept-Language: Chinese readers get Chinese.
fn language(q: &LanguageQuery, headers: &HeaderMap) -> Language {
    let wanted = q.lang.clone().or_else(|| {
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    match wanted {
        Some(l) if l.trim().to_ascii_lowercase().starts_with("en") => Language::En,
        Some(l) if l.trim().to_ascii_lowercase().starts_with("zh") => Language::Zh,
        _ => Language::Zh,
    }
}

async fn figures(
    s: &AppState,
    month: &str,
) -> Result<reconlight_core::monthly::MonthlyFigures, ApiError> {
    let month: Month = month
        .parse()
        .map_err(|e: reconlight_core::monthly::NotAMonth| {
            ApiError(StatusCode::BAD_REQUEST, e.to_string())
        })?;
    s.store.monthly_report(month).await?.ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!(
                "no monthly report for {month}: `reconlight monthly --month {month}` makes one"
            ),
        )
    })
}

pub(super) async fn page(
    State(s): State<AppState>,
    Path(month): Path<String>,
    Query(q): Query<LanguageQuery>,
    headers: HeaderMap,
) -> Result<Html<String>, ApiError> {
    let f = figures(&s, &month).await?;
    Ok(Html(monthly::html(&f, language(&q, &headers))))
}

pub(super) async fn csv(
    State(s): State<AppState>,
    Path(month): Path<String>,
) -> Result<Response, ApiError> {
    let f = figures(&s, &month).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"monthly-{}.csv\"", f.month),
            ),
        ],
        monthly::csv(&f),
    )
        .into_response())
}

pub(super) async fn list(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(
        serde_json::json!({"reports": s.store.monthly_reports().await?}),
    ))
}
