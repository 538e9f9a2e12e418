//! `[notifiers]`: where alerts, work items and actions are delivered from the outbox.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ConfigDuration;

/// Prometheus Alertmanager (API v2).
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// e.g. `http://alertmanager:9093`.
    pub url: super::HttpUrl,
    /// How often every active alert is sent again; `endsAt` is four intervals ahead.
    #[serde(default = "default_resend")]
    pub resend_interval: ConfigDuration,
    /// Where links in alerts point (this server's address as users reach it).
    #[serde(default)]
    pub external_url: Option<super::HttpUrl>,
}

fn default_resend() -> ConfigDuration {
    ConfigDuration(chrono::Duration::minutes(1))
}

/// PagerDuty Events API v2.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    #[serde(default = "default_pagerduty_url")]
    pub url: super::HttpUrl,
    /// Escalation target -> integration routing key: an alert is sent when its current tier
    /// notifies one of these targets.
    pub routing_keys: BTreeMap<String, String>,
    #[serde(default = "default_source")]
    pub source: String,
}

fn default_pagerduty_url() -> super::HttpUrl {
    super::HttpUrl::parse("https://events.pagerduty.com/v2/enqueue").expect("a valid URL")
}

fn default_source() -> String {
    "reconlight".into()
}

/// A generic webhook, signed with HMAC-SHA256.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub name: String,
    pub url: super::HttpUrl,
    /// The HMAC key; the signature is in `X-Reconlight-Signature: sha256=<hex>`.
    pub secret: String,
    /// Outbox topics it receives.
    #[serde(default = "default_topics")]
    pub topics: Vec<String>,
}

fn default_topics() -> Vec<String> {
    vec!["alerts".into(), "work_items".into(), "actions".into()]
}

/// Every notifier; none by default.
#[derive(schemars::JsonSchema, Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifiersConfig {
    pub alertmanager: Option<AlertmanagerConfig>,
    pub pagerduty: Option<PagerDutyConfig>,
    pub webhook: Vec<WebhookConfig>,
}

impl NotifiersConfig {
    pub fn is_empty(&self) -> bool {
        self.alertmanager.is_none() && self.pagerduty.is_none() && self.webhook.is_empty()
    }

    pub fn validate(&self) -> Result<(), super::ConfigProblem> {
        let mut names = std::collections::BTreeSet::new();
        for w in &self.webhook {
            if !names.insert(&w.name) {
                return Err(super::problem(
                    "notifiers.webhook",
                    format!("two webhooks are named `{}`", w.name),
                ));
            }
            if w.secret.is_empty() {
                return Err(super::problem(
                    format!("notifiers.webhook `{}` secret", w.name),
                    "is empty",
                ));
            }
        }
        Ok(())
    }
}
