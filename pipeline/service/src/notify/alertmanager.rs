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

/// Alerts resolved lately, kept from the messages that told of them, so each push posts
/// them without reading every resolved alert in the store (a start forgets them: each was
/// posted when its message was delivered, and Alertmanager ends it at its `endsAt`).
#[derive(Default)]
pub(super) struct RecentlyResolved(std::collections::BTreeMap<String, Alert>);

impl RecentlyResolved {
    /// Keeps the resolutions these messages tell of.
    pub fn note(&mut self, messages: &[(reconlight_core::outbox::OutboxMessage, u32)]) {
        #[derive(serde::Deserialize)]
        struct Told {
            alert: Alert,
        }
        for (m, _) in messages.iter().filter(|(m, _)| m.topic == "alerts") {
            if let Ok(told) = serde_json::from_str::<Told>(&m.payload)
                && told.alert.state == AlertState::Resolved
            {
                self.0.insert(told.alert.id.clone(), told.alert);
            }
        }
    }

    /// The open alerts and those resolved within `RESOLVED_FOR` minutes of `now`.
    pub fn with_open(&mut self, mut open: Vec<Alert>, now: DateTime<Utc>) -> Vec<Alert> {
        self.0.retain(|_, a| {
            a.resolved_at
                .is_some_and(|r| now - r <= Duration::minutes(RESOLVED_FOR))
        });
        let ids: std::collections::HashSet<String> = open.iter().map(|a| a.id.clone()).collect();
        open.extend(self.0.values().filter(|a| !ids.contains(&a.id)).cloned());
        open
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use reconlight_core::outbox::OutboxMessage;

    fn alert(id: &str, state: &str, resolved_at: Option<&str>) -> Alert {
        serde_json::from_value(json!({
            "id": id, "rule_id": "finance.installment_overdue", "subject": "HT-1/1",
            "state": state, "level": "red",
            "active_since": "2026-12-01T08:00:00Z", "fired_at": "2026-12-01T08:00:00Z",
            "cleared_at": resolved_at, "resolved_at": resolved_at,
            "updated_at": "2026-12-01T08:00:00Z", "title": "overdue",
            "labels": {}, "annotations": {}, "fields": {}
        }))
        .unwrap()
    }

    fn told(transition: &str, alert: &Alert) -> (OutboxMessage, u32) {
        let at = "2026-12-01T08:10:00Z".parse().unwrap();
        let payload = json!({"transition": transition, "alert": alert});
        (OutboxMessage::new("alerts", &alert.id, &payload, at), 0)
    }

    #[test]
    fn resolved_alerts_are_posted_for_fifteen_minutes_from_their_messages() {
        let at = |t: &str| -> DateTime<Utc> { t.parse().unwrap() };
        let mut resolved = RecentlyResolved::default();
        let gone = alert("AL-gone", "resolved", Some("2026-12-01T08:10:00Z"));
        let back = alert("AL-back", "resolved", Some("2026-12-01T08:10:00Z"));
        resolved.note(&[
            told("resolved", &gone),
            told("resolved", &back),
            told("fired", &alert("AL-fired", "firing", None)),
        ]);
        // AL-back fired again since: the store's open version is the one posted.
        let open = vec![alert("AL-back", "firing", None)];
        let posted = resolved.with_open(open.clone(), at("2026-12-01T08:24:00Z"));
        let states: Vec<(&str, AlertState)> =
            posted.iter().map(|a| (a.id.as_str(), a.state)).collect();
        assert_eq!(
            states,
            [
                ("AL-back", AlertState::Firing),
                ("AL-gone", AlertState::Resolved)
            ]
        );
        let posted = resolved.with_open(open, at("2026-12-01T08:26:00Z"));
        assert_eq!(
            posted.len(),
            1,
            "resolved more than 15 minutes ago: no longer posted"
        );
        assert_eq!(posted[0].id, "AL-back");
    }
}
