//! PagerDuty Events API v2: trigger when an alert fires or climbs to a tier that notifies a
//! target with a routing key, acknowledge when someone takes it, resolve when it clears.
//! The dedup key is the alert id.

use serde_json::json;

use super::{Outcome, PagerDutyConfig, outcome_of, post_json};
use reconlight_core::outbox::OutboxMessage;

/// Sends one alert message.
pub(super) async fn deliver(
    agent: &ureq::Agent,
    config: &PagerDutyConfig,
    message: &OutboxMessage,
) -> Outcome {
    let Ok(payload) = serde_json::from_str::<serde_json::Value>(&message.payload) else {
        return Outcome::Failed("the outbox message is not JSON".into());
    };
    let alert = &payload["alert"];
    let transition = payload["transition"].as_str().unwrap_or("");
    let action = match transition {
        "fired" | "escalated" | "tier_up" => "trigger",
        "acknowledged" => "acknowledge",
        "resolved" | "cancelled" => "resolve",
        _ => return Outcome::Skipped,
    };
    let targets: Vec<&str> = alert["notify"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str())
        .collect();
    let keys: Vec<&String> = targets
        .iter()
        .filter_map(|t| config.routing_keys.get(*t))
        .collect();
    if keys.is_empty() {
        return Outcome::Skipped;
    }
    let dedup_key = alert["id"]
        .as_str()
        .unwrap_or(&message.key)
        .chars()
        .take(255)
        .collect::<String>();
    let severity = if alert["level"] == "red" {
        "critical"
    } else {
        "warning"
    };
    let summary = alert["annotations"]["summary"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "{} {}",
                alert["title"].as_str().unwrap_or(""),
                alert["subject"].as_str().unwrap_or("")
            )
        });
    for key in keys {
        let mut event = json!({
            "routing_key": key,
            "event_action": action,
            "dedup_key": dedup_key,
        });
        if action == "trigger" {
            event["payload"] = json!({
                "summary": summary.chars().take(1024).collect::<String>(),
                "source": config.source,
                "severity": severity,
                "timestamp": message.created_at.to_rfc3339(),
                "component": alert["rule_id"],
                "group": alert["labels"]["team"],
                "class": alert["labels"]["kind"],
                "custom_details": alert["fields"],
            });
        }
        let outcome =
            outcome_of(post_json(agent, config.url.as_str(), event.to_string(), Vec::new()).await);
        if outcome != Outcome::Delivered {
            return outcome;
        }
    }
    Outcome::Delivered
}
