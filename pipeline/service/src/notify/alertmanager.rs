//! Prometheus Alertmanager API v2: every active alert is posted on an interval with `endsAt`
//! four intervals ahead (so a missed push does not resolve it); a resolved alert is posted
//! with `endsAt` at its resolution for a few minutes after.

use crate::config::HttpUrl;
use chrono::{DateTime, Duration, Utc};
use reconlight_rules::{Alert, AlertState};
use serde_json::json;

use super::{AlertmanagerConfig, Outcome, outcome_of, post_json};

/// How long resolved alerts keep being posted, so Alertmanager sees the resolution.
const RESOLVED_FOR: i64 = 15;

/// The alerts Alertmanager should hear about now, in its JSON.
pub fn alertmanager_alerts(
    alerts: &[Alert],
    interval: Duration,
    now: DateTime<Utc>,
    external_url: Option<&str>,
) -> serde_json::Value {
    let list: Vec<serde_json::Value> = alerts
        .iter()
        .filter(|a| match a.state {
            AlertState::Firing => true,
            AlertState::Resolved => {
                a.fired_at.is_some()
                    && a.resolved_at
                        .is_some_and(|r| now - r <= Duration::minutes(RESOLVED_FOR))
            }
            AlertState::Pending => false,
        })
        .map(|a| {
            let mut labels = a.labels.clone();
            labels.insert("alertname".into(), a.rule_id.clone());
            labels.insert("alert_id".into(), a.id.clone());
            labels.insert("subject".into(), a.subject.clone());
            labels.insert(
                "severity".into(),
                if a.level == reconlight_rules::Level::Red {
                    "critical"
                } else {
                    "warning"
                }
                .into(),
            );
            if !a.notify.is_empty() {
                labels.insert("notify".into(), a.notify.join(","));
            }
            let ends = match a.state {
                AlertState::Resolved => a.resolved_at.unwrap_or(now),
                _ => now + interval * 4,
            };
            let mut v = json!({
                "labels": labels,
                "annotations": a.annotations,
                "startsAt": a.fired_at.unwrap_or(a.active_since).to_rfc3339(),
                "endsAt": ends.to_rfc3339(),
            });
            if let Some(base) = external_url {
                v["generatorURL"] = json!(format!(
                    "{}/api/v1/alerts?id={}",
                    base.trim_end_matches('/'),
                    a.id
                ));
            }
            v
        })
        .collect();
    serde_json::Value::Array(list)
}

pub(super) async fn push(
    agent: &ureq::Agent,
    config: &AlertmanagerConfig,
    alerts: &[Alert],
    interval: Duration,
    now: DateTime<Utc>,
) -> Outcome {
    let body = alertmanager_alerts(
        alerts,
        interval,
        now,
        config.external_url.as_ref().map(HttpUrl::as_str),
    );
    let url = format!(
        "{}/api/v2/alerts",
        config.url.as_str().trim_end_matches('/')
    );
    outcome_of(post_json(agent, &url, body.to_string(), Vec::new()).await)
}
