//! Notifiers: everything reconlight tells the outside world leaves through the outbox and is
//! delivered from there, at least once, with a stable dedup key, retried with backoff.
//! PagerDuty, webhooks, chat robots and email are driven message by message; Alertmanager
//! receives the whole set of active alerts on an interval, as its clients are expected to.

mod alertmanager;
pub mod email;
mod kafka;
pub mod message;
mod pagerduty;
pub mod people;
pub mod robots;
mod webhook;

pub use alertmanager::alertmanager_alerts;
pub use email::EmailSetupError;
pub use webhook::signature;

use std::collections::BTreeMap;

use message::MessageContext;
use people::RateWindow;
use robots::Provider;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};

pub use crate::config::notifiers::{
    AlertmanagerConfig, EmailConfig, NotifiersConfig, PagerDutyConfig, RobotConfig, WebhookConfig,
};

/// The email notifier's name in the outbox's delivery records and the metrics.
pub const EMAIL: &str = "email";
/// What email carries: alert transitions and the monthly report.
const EMAIL_TOPICS: [&str; 2] = ["alerts", "reports"];
use crate::metrics::Metrics;
use crate::store::Store;
use reconlight_core::outbox::OutboxMessage;

/// What one attempt at a message came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Not this notifier's business (e.g. no routing key for the alert's targets).
    Skipped,
    /// Try again later.
    Retry(String),
    /// Refused for good (e.g. PagerDuty 400): retrying would not help.
    Failed(String),
}

impl Outcome {
    /// The metric's label for it.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Skipped => "skipped",
            Outcome::Retry(_) => "retry",
            Outcome::Failed(_) => "failed",
        }
    }
}

/// One HTTP exchange's result: status and body, or a transport error.
pub(crate) type HttpResult = Result<(u16, String), HttpError>;

/// A request that got no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error(transparent)]
    Transport(#[from] ureq::Error),
    #[error("the sending task stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Sends a JSON body; blocking, so it runs on the blocking pool.
pub(crate) async fn post_json(
    agent: &ureq::Agent,
    url: &str,
    body: String,
    headers: Vec<(String, String)>,
) -> HttpResult {
    let agent = agent.clone();
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let mut req = agent.post(&url).header("content-type", "application/json");
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        match req.send(body.as_bytes()) {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let text = resp.body_mut().read_to_string().unwrap_or_default();
                Ok((status, text))
            }
            Err(e) => Err(HttpError::Transport(e)),
        }
    })
    .await?
}

/// Maps an HTTP result to an outcome: 2xx delivered, 429 and 5xx retried, other 4xx refused.
pub(crate) fn outcome_of(result: HttpResult) -> Outcome {
    match result {
        Ok((s, _)) if (200..300).contains(&s) => Outcome::Delivered,
        Ok((s, body)) if s == 429 || s >= 500 => {
            Outcome::Retry(format!("HTTP {s}: {}", clip(&body)))
        }
        Ok((s, body)) => Outcome::Failed(format!("HTTP {s}: {}", clip(&body))),
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

fn clip(s: &str) -> String {
    s.chars().take(300).collect()
}

/// Seconds to wait before the next attempt: 2, 4, 8... at most ten minutes.
pub fn backoff(attempts: u32) -> Duration {
    Duration::seconds(2i64.saturating_pow(attempts.min(10)).min(600))
}

/// Counts of one delivery round.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RoundStats {
    pub delivered: usize,
    pub skipped: usize,
    pub retried: usize,
    pub failed: usize,
}

/// Delivers the outbox to the configured notifiers.
pub struct Notifier {
    store: Store,
    config: NotifiersConfig,
    metrics: Arc<Metrics>,
    agent: ureq::Agent,
    last_alertmanager: Option<DateTime<Utc>>,
    /// Alerts resolved lately, posted to Alertmanager for a while.
    resolved: alertmanager::RecentlyResolved,
    kafka: Option<kafka::KafkaSink>,
    /// Templates, time zone and links for the messages people read.
    context: MessageContext,
    /// Sends in the last minute, per chat robot and for email.
    windows: BTreeMap<String, RateWindow>,
    smtp: Option<lettre::SmtpTransport>,
}

/// Every notifier and Kafka sink a configuration names, with the outbox topics each reads.
pub fn configured_subscribers(config: &crate::config::Config) -> Vec<(String, Vec<String>)> {
    let sink_topics = config
        .kafka
        .as_ref()
        .map(|k| k.sinks.keys().cloned().collect());
    subscribers(&config.notifiers, sink_topics)
}

/// Every notifier and sink a configuration names, with the outbox topics each reads
/// (`sink_topics`: the Kafka sinks' outbox topics, if any).
pub fn subscribers(
    config: &NotifiersConfig,
    sink_topics: Option<Vec<String>>,
) -> Vec<(String, Vec<String>)> {
    let alerts = vec!["alerts".to_string()];
    let mut targets: Vec<(String, Vec<String>)> = Vec::new();
    if config.pagerduty.is_some() {
        targets.push(("pagerduty".into(), alerts.clone()));
    }
    if config.alertmanager.is_some() {
        targets.push(("alertmanager".into(), alerts.clone()));
    }
    for hook in &config.webhook {
        targets.push((format!("webhook:{}", hook.name), hook.topics.clone()));
    }
    for (provider, robots) in [
        (Provider::DingTalk, &config.dingtalk),
        (Provider::WeCom, &config.wecom),
        (Provider::Feishu, &config.feishu),
    ] {
        for name in robots.keys() {
            targets.push((format!("{}:{name}", provider.prefix()), alerts.clone()));
        }
    }
    if config.email.is_some() {
        targets.push((EMAIL.into(), EMAIL_TOPICS.map(String::from).to_vec()));
    }
    if let Some(topics) = sink_topics.filter(|t| !t.is_empty()) {
        targets.push((kafka::NOTIFIER.into(), topics));
    }
    targets
}

impl Notifier {
    pub fn new(store: Store, config: NotifiersConfig, metrics: Arc<Metrics>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(StdDuration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        let context = MessageContext {
            external_url: config
                .external_url
                .as_ref()
                .or(config
                    .alertmanager
                    .as_ref()
                    .and_then(|a| a.external_url.as_ref()))
                .map(|u| u.as_str().to_string()),
            ..Default::default()
        };
        Notifier {
            store,
            config,
            metrics,
            agent,
            last_alertmanager: None,
            resolved: Default::default(),
            kafka: None,
            context,
            windows: BTreeMap::new(),
            smtp: None,
        }
    }

    /// Message templates from the rules' escalation policies, and the business time zone.
    pub fn with_messages(mut self, config: &crate::config::Config) -> Self {
        let loaded = match &config.rules.dir {
            Some(dir) => reconlight_rules::pack::load_dir(&config.resolve(dir)),
            None => reconlight_rules::pack::load_embedded(),
        };
        for rule in loaded.rules {
            if let Some(policy) = rule
                .escalation
                .as_ref()
                .and_then(|p| config.escalation.policies.get(p))
            {
                self.context
                    .policy_templates
                    .insert(rule.id.clone(), policy.message.clone());
            }
        }
        self.context.time_zone = Some(config.business.time_zone);
        self
    }

    /// Connects email, if configured; a CA file that cannot be read is an error now.
    pub fn with_email(mut self, config: &crate::config::Config) -> crate::error::Result<Self> {
        if let Some(email) = self.config.email.as_mut() {
            if let Some(ca) = &email.ca_file {
                email.ca_file = Some(config.resolve(ca));
            }
            self.smtp = Some(email::transport(email)?);
        }
        Ok(self)
    }

    /// Also delivers to the Kafka sink topics, if the configuration names any.
    pub fn with_kafka(
        mut self,
        config: Option<&crate::config::KafkaConfig>,
    ) -> crate::error::Result<Self> {
        if let Some(k) = config.filter(|k| !k.sinks.is_empty()) {
            self.kafka = Some(kafka::KafkaSink::new(k)?);
        }
        Ok(self)
    }

    /// Whether there is anything to deliver to.
    pub fn is_empty(&self) -> bool {
        self.config.is_empty() && self.kafka.is_none()
    }

    /// The notifier a configuration asks for; `None` when it names no target.
    pub fn configured(
        store: Store,
        config: &crate::config::Config,
        metrics: Arc<Metrics>,
    ) -> crate::error::Result<Option<Notifier>> {
        let n = Notifier::new(store, config.notifiers.clone(), metrics)
            .with_messages(config)
            .with_email(config)?
            .with_kafka(config.kafka.as_ref())?;
        Ok(Some(n).filter(|n| !n.is_empty()))
    }

    /// One round: every message due for every notifier, and Alertmanager if its interval passed.
    pub async fn deliver(&mut self, now: DateTime<Utc>) -> crate::error::Result<RoundStats> {
        let mut stats = RoundStats::default();
        if let Some(mut sink) = self.kafka.take() {
            let result = self.deliver_kafka(&mut sink, now, &mut stats).await;
            self.kafka = Some(sink);
            result?;
        }
        if let Some(pd) = self.config.pagerduty.clone() {
            let pending = self
                .store
                .pending_deliveries("pagerduty", &["alerts".to_string()], now, 500)
                .await?;
            for (message, attempts) in pending {
                let outcome = pagerduty::deliver(&self.agent, &pd, &message).await;
                self.record("pagerduty", &message, attempts, outcome, now, &mut stats)
                    .await?;
            }
        }
        for hook in self.config.webhook.clone() {
            let name = format!("webhook:{}", hook.name);
            let pending = self
                .store
                .pending_deliveries(&name, &hook.topics, now, 500)
                .await?;
            for (message, attempts) in pending {
                let outcome = webhook::deliver(&self.agent, &hook, &message).await;
                self.record(&name, &message, attempts, outcome, now, &mut stats)
                    .await?;
            }
        }
        self.deliver_to_people(now, &mut stats).await?;
        if let Some(am) = self.config.alertmanager.clone() {
            let interval = am.resend_interval.0;
            let pending = self
                .store
                .pending_deliveries("alertmanager", &["alerts".to_string()], now, 5000)
                .await?;
            let due = self.last_alertmanager.is_none_or(|t| now - t >= interval);
            self.resolved.note(&pending);
            if due || !pending.is_empty() {
                let open = self.store.open_alerts().await?;
                let alerts = self.resolved.with_open(open, now);
                let outcome = alertmanager::push(&self.agent, &am, &alerts, interval, now).await;
                let sent = matches!(outcome, Outcome::Delivered);
                self.metrics
                    .count_notification("alertmanager", outcome.label());
                if sent {
                    self.last_alertmanager = Some(now);
                    for (message, attempts) in pending {
                        self.store
                            .record_delivery(
                                "alertmanager",
                                &message.id,
                                "delivered",
                                attempts + 1,
                                None,
                                None,
                                now,
                            )
                            .await?;
                        stats.delivered += 1;
                    }
                } else {
                    stats.retried += 1;
                    tracing::warn!("alertmanager: {outcome:?}");
                }
            }
        }
        self.observe_backlog().await?;
        Ok(stats)
    }

    /// The chat robots and email: each target its own consumer of the `alerts` topic.
    async fn deliver_to_people(
        &mut self,
        now: DateTime<Utc>,
        stats: &mut RoundStats,
    ) -> crate::error::Result<()> {
        let alerts = ["alerts".to_string()];
        let robots: Vec<people::Robot> = [
            (Provider::DingTalk, &self.config.dingtalk),
            (Provider::WeCom, &self.config.wecom),
            (Provider::Feishu, &self.config.feishu),
        ]
        .into_iter()
        .flat_map(|(provider, map)| {
            map.iter().map(move |(name, config)| people::Robot {
                provider,
                name: name.clone(),
                config: config.clone(),
            })
        })
        .collect();
        for robot in robots {
            let target = robot.target();
            let pending = self
                .store
                .pending_deliveries(&target, &alerts, now, 1000)
                .await?;
            if pending.is_empty() {
                continue;
            }
            let window = self.windows.entry(target.clone()).or_default();
            let results =
                people::deliver_robot(&self.agent, &robot, pending, window, &self.context, now)
                    .await;
            for (message, attempts, outcome) in results {
                self.record(&target, &message, attempts, outcome, now, stats)
                    .await?;
            }
        }
        if let (Some(email), Some(smtp)) = (self.config.email.clone(), self.smtp.clone()) {
            let pending = self
                .store
                .pending_deliveries(EMAIL, &EMAIL_TOPICS.map(String::from), now, 1000)
                .await?;
            if !pending.is_empty() {
                let window = self.windows.entry(EMAIL.to_string()).or_default();
                let results =
                    people::deliver_email(&smtp, &email, pending, window, &self.context, now).await;
                for (message, attempts, outcome) in results {
                    self.record(EMAIL, &message, attempts, outcome, now, stats)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Sets `reconlight_outbox_backlog` for every notifier and sink: what it has still to send.
    async fn observe_backlog(&self) -> crate::error::Result<()> {
        let sink_topics = self.kafka.as_ref().map(|k| k.outbox_topics());
        let targets = subscribers(&self.config, sink_topics);
        for (name, topics) in targets {
            let n = self.store.backlog(&name, &topics).await?;
            self.metrics
                .outbox_backlog
                .with_label_values(&[&name])
                .set(n as i64);
        }
        Ok(())
    }

    /// Sends everything due to the sink topics, a thousand messages in flight at a time.
    async fn deliver_kafka(
        &self,
        sink: &mut kafka::KafkaSink,
        now: DateTime<Utc>,
        stats: &mut RoundStats,
    ) -> crate::error::Result<()> {
        let topics = sink.outbox_topics();
        if !sink.reconciled {
            // A crash between a send and its record would send again: mark what the
            // topics already hold as delivered first.
            let already = match sink.sent_ids().await {
                Ok(ids) => ids,
                Err(e) => {
                    // Tried again next round; nothing is sent until the topics are known.
                    tracing::warn!("kafka sinks: {e}; delivery waits");
                    self.metrics.count_notification(kafka::NOTIFIER, "retry");
                    return Ok(());
                }
            };
            let far = now + Duration::days(36_500);
            let pending = self
                .store
                .pending_deliveries(kafka::NOTIFIER, &topics, far, 1_000_000)
                .await?;
            for (message, attempts) in pending.iter().filter(|(m, _)| already.contains(&m.id)) {
                self.store
                    .record_delivery(
                        kafka::NOTIFIER,
                        &message.id,
                        "delivered",
                        attempts + 1,
                        None,
                        None,
                        now,
                    )
                    .await?;
            }
            sink.reconciled = true;
        }
        loop {
            let pending = self
                .store
                .pending_deliveries(kafka::NOTIFIER, &topics, now, 1000)
                .await?;
            if pending.is_empty() {
                return Ok(());
            }
            let outcomes = sink.send_all(&pending).await;
            for ((message, attempts), outcome) in pending.iter().zip(outcomes) {
                self.record(kafka::NOTIFIER, message, *attempts, outcome, now, stats)
                    .await?;
            }
        }
    }

    async fn record(
        &self,
        notifier: &str,
        message: &OutboxMessage,
        attempts: u32,
        outcome: Outcome,
        now: DateTime<Utc>,
        stats: &mut RoundStats,
    ) -> crate::error::Result<()> {
        self.metrics.count_notification(notifier, outcome.label());
        let attempts = attempts + 1;
        match outcome {
            Outcome::Delivered => {
                stats.delivered += 1;
                self.store
                    .record_delivery(
                        notifier,
                        &message.id,
                        "delivered",
                        attempts,
                        None,
                        None,
                        now,
                    )
                    .await?;
            }
            Outcome::Skipped => {
                stats.skipped += 1;
                self.store
                    .record_delivery(notifier, &message.id, "skipped", attempts, None, None, now)
                    .await?;
            }
            Outcome::Retry(e) => {
                stats.retried += 1;
                tracing::warn!("{notifier}: message {} will be retried: {e}", message.id);
                let next = now + backoff(attempts);
                self.store
                    .record_delivery(
                        notifier,
                        &message.id,
                        "retry",
                        attempts,
                        Some(&e),
                        Some(next),
                        now,
                    )
                    .await?;
            }
            Outcome::Failed(e) => {
                stats.failed += 1;
                tracing::error!("{notifier}: message {} refused: {e}", message.id);
                self.store
                    .record_delivery(
                        notifier,
                        &message.id,
                        "failed",
                        attempts,
                        Some(&e),
                        None,
                        now,
                    )
                    .await?;
            }
        }
        Ok(())
    }
}
