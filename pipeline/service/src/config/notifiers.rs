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

/// The language a target reads its messages in.
#[derive(schemars::JsonSchema, Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum Language {
    /// 简体中文
    #[default]
    #[serde(rename = "zh", alias = "zh-CN")]
    Zh,
    #[serde(rename = "en", alias = "en-US")]
    En,
}

/// Message templates for chat robots and email, one per language; `{title}`, `{summary}`,
/// `{subject}`, `{level}`, `{transition}`, `{tier}`, `{fired_at}`, `{link}`, `{ack_by}`,
/// `{ack_reason}` and the alert's labels and fields are filled in.
#[derive(schemars::JsonSchema, Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MessageTemplates {
    #[serde(default)]
    pub zh: Option<String>,
    #[serde(default)]
    pub en: Option<String>,
}

impl MessageTemplates {
    pub fn get(&self, language: Language) -> Option<&str> {
        match language {
            Language::Zh => self.zh.as_deref(),
            Language::En => self.en.as_deref(),
        }
    }
}

/// A group chat robot: DingTalk's custom robot, WeCom's group robot or Feishu's custom bot.
/// Escalation tiers reach it as `dingtalk:<name>`, `wecom:<name>`, `feishu:<name>`.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RobotConfig {
    /// The robot's webhook address, with its access token or key.
    pub url: super::HttpUrl,
    /// The signing secret (DingTalk 加签 `SEC...`, Feishu 签名校验); WeCom robots have none.
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub language: Language,
    /// Mentioned on red alerts: mobile numbers (DingTalk), user ids (WeCom `<@id>`,
    /// Feishu `ou_...`).
    #[serde(default)]
    pub mention: Vec<String>,
    /// Mention everyone on red alerts (DingTalk, Feishu).
    #[serde(default)]
    pub mention_all: bool,
    /// Messages per minute at most; default the provider's limit (DingTalk and WeCom 20,
    /// Feishu 100). Beyond it, messages wait and are combined, never dropped.
    #[serde(default)]
    pub per_minute: Option<u32>,
}

/// How the SMTP connection is secured.
#[derive(schemars::JsonSchema, Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// TLS from the first byte (port 465).
    Tls,
    /// Plain, upgraded with STARTTLS, which must succeed (port 587).
    #[default]
    Starttls,
    /// No encryption: a relay on the same host or network only.
    None,
}

/// Email over SMTP; tiers reach it as `email:<address>`.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub host: String,
    /// Default 465 with `tls`, 587 with `starttls`, 25 with `none`.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub security: SmtpSecurity,
    /// A PEM file of extra certificate authorities to trust (a company's own CA).
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// `reconlight <alerts@example.cn>`
    pub from: String,
    /// The language of every address not listed in `languages`.
    #[serde(default)]
    pub language: Language,
    /// Address -> language, for readers of the other one.
    #[serde(default)]
    pub languages: BTreeMap<String, Language>,
    /// Messages per minute at most (default 60).
    #[serde(default)]
    pub per_minute: Option<u32>,
}

impl EmailConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            SmtpSecurity::Tls => 465,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::None => 25,
        })
    }

    pub fn language_of(&self, address: &str) -> Language {
        self.languages
            .get(address)
            .copied()
            .unwrap_or(self.language)
    }
}

/// Every notifier; none by default.
#[derive(schemars::JsonSchema, Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifiersConfig {
    /// Where links in chat and email messages point: this server as people reach it.
    pub external_url: Option<super::HttpUrl>,
    pub alertmanager: Option<AlertmanagerConfig>,
    pub pagerduty: Option<PagerDutyConfig>,
    pub webhook: Vec<WebhookConfig>,
    /// DingTalk custom robots by name.
    pub dingtalk: BTreeMap<String, RobotConfig>,
    /// WeCom (企业微信) group robots by name.
    pub wecom: BTreeMap<String, RobotConfig>,
    /// Feishu (飞书) custom bots by name.
    pub feishu: BTreeMap<String, RobotConfig>,
    pub email: Option<EmailConfig>,
    /// How long after it was written a message every notifier and sink is done with stays
    /// in the outbox (default `"7d"`; `"0s"` keeps every message).
    pub keep_delivered: Option<ConfigDuration>,
}

impl NotifiersConfig {
    /// How long sent messages are kept; `None`: for ever.
    pub fn keep_delivered(&self) -> Option<chrono::Duration> {
        let keep = self
            .keep_delivered
            .as_ref()
            .map_or(chrono::Duration::days(7), |d| d.0);
        (keep > chrono::Duration::zero()).then_some(keep)
    }

    pub fn is_empty(&self) -> bool {
        self.alertmanager.is_none()
            && self.pagerduty.is_none()
            && self.webhook.is_empty()
            && self.dingtalk.is_empty()
            && self.wecom.is_empty()
            && self.feishu.is_empty()
            && self.email.is_none()
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
        for (kind, robots) in [("dingtalk", &self.dingtalk), ("feishu", &self.feishu)] {
            for (name, r) in robots {
                if r.secret.as_deref() == Some("") {
                    return Err(super::problem(
                        format!("notifiers.{kind}.{name} secret"),
                        "is empty: leave it out if the robot does not sign",
                    ));
                }
            }
        }
        for (kind, robots) in [
            ("dingtalk", &self.dingtalk),
            ("wecom", &self.wecom),
            ("feishu", &self.feishu),
        ] {
            for (name, r) in robots {
                if r.per_minute == Some(0) {
                    return Err(super::problem(
                        format!("notifiers.{kind}.{name} per_minute"),
                        "must be at least 1",
                    ));
                }
            }
        }
        if let Some(e) = &self.email {
            if e.from.parse::<lettre::message::Mailbox>().is_err() {
                return Err(super::problem(
                    "notifiers.email from",
                    format!(
                        "`{}` is not a mailbox (`name <address>` or `address`)",
                        e.from
                    ),
                ));
            }
            if e.username.is_some() != e.password.is_some() {
                return Err(super::problem(
                    "notifiers.email",
                    "username and password go together",
                ));
            }
            if e.per_minute == Some(0) {
                return Err(super::problem(
                    "notifiers.email per_minute",
                    "must be at least 1",
                ));
            }
        }
        Ok(())
    }

    /// A tier target naming a robot or email must have it configured: a typo would
    /// otherwise send nothing, silently. Targets with `{field}` are filled per alert.
    pub fn check_tier_targets(
        &self,
        escalation: &crate::escalation::EscalationConfig,
    ) -> Result<(), super::ConfigProblem> {
        for (name, policy) in &escalation.policies {
            for (i, tier) in policy.tiers.iter().enumerate() {
                for target in tier.notify.iter().filter(|t| !t.contains('{')) {
                    let Some((kind, id)) = target.split_once(':') else {
                        continue;
                    };
                    let known = match kind {
                        "dingtalk" => self.dingtalk.contains_key(id),
                        "wecom" => self.wecom.contains_key(id),
                        "feishu" => self.feishu.contains_key(id),
                        "email" => self.email.is_some() && id.parse::<lettre::Address>().is_ok(),
                        _ => true,
                    };
                    if !known {
                        let why = match kind {
                            "email" if self.email.is_none() => {
                                "needs [notifiers.email]".to_string()
                            }
                            "email" => format!("`{id}` is not an email address"),
                            _ => format!("names no [notifiers.{kind}.{id}]"),
                        };
                        return Err(super::problem(
                            format!("escalation.policies.{name} tier {} `{target}`", i + 1),
                            why,
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
