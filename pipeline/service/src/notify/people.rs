//! Notifiers people read: chat robots and email. Each target is its own outbox consumer
//! (`dingtalk:<robot>`, `email`), sends only the alerts whose current tier names it, and
//! keeps under its rate limit: when more is waiting than the minute allows, messages are
//! combined into fewer, and what still does not fit waits for the next round. Nothing is
//! dropped.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Duration, Utc};

use super::message::{AlertMessage, MessageContext, combine, render_alert, worth_telling};
use super::robots::{self, Provider};
use super::{Outcome, post_json};
use crate::config::notifiers::{EmailConfig, Language, RobotConfig};
use reconlight_core::outbox::OutboxMessage;

/// Sends within the last minute, for one target.
#[derive(Debug, Default)]
pub struct RateWindow {
    sent: VecDeque<DateTime<Utc>>,
}

impl RateWindow {
    /// How many more sends the minute before `now` allows.
    pub fn budget(&mut self, per_minute: u32, now: DateTime<Utc>) -> usize {
        while self
            .sent
            .front()
            .is_some_and(|t| now - *t >= Duration::minutes(1))
        {
            self.sent.pop_front();
        }
        (per_minute as usize).saturating_sub(self.sent.len())
    }

    pub fn record(&mut self, now: DateTime<Utc>) {
        self.sent.push_back(now);
    }
}

/// The targets an alert's current tier notifies.
fn targets(payload: &serde_json::Value) -> Vec<String> {
    payload["alert"]["notify"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect()
}

/// An alert message for this target, or why it is not one.
pub(super) enum Routed {
    Send(Box<AlertMessage>),
    Skip,
    Broken(String),
}

pub(super) fn route(
    message: &OutboxMessage,
    wants: impl Fn(&[String]) -> Option<Language>,
    context: &MessageContext,
) -> Routed {
    let Ok(payload) = serde_json::from_str::<serde_json::Value>(&message.payload) else {
        return Routed::Broken("the outbox message is not JSON".into());
    };
    let transition = payload["transition"].as_str().unwrap_or("");
    if !worth_telling(transition) {
        return Routed::Skip;
    }
    match wants(&targets(&payload)) {
        Some(language) => Routed::Send(Box::new(render_alert(
            &message.id,
            &payload,
            language,
            context,
        ))),
        None => Routed::Skip,
    }
}

/// Splits messages into at most `slots` sends: one per message when they fit, otherwise
/// consecutive runs combined, each under `max_bytes`. Returns the groups (indexes) to send
/// now; the rest wait.
pub fn plan(sizes: &[usize], slots: usize, max_bytes: usize) -> Vec<Vec<usize>> {
    if slots == 0 || sizes.is_empty() {
        return Vec::new();
    }
    let per_group = sizes.len().div_ceil(slots);
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut bytes = 0;
    for (i, &size) in sizes.iter().enumerate() {
        let full = current.len() >= per_group || (!current.is_empty() && bytes + size > max_bytes);
        if full {
            groups.push(std::mem::take(&mut current));
            bytes = 0;
            if groups.len() == slots {
                return groups;
            }
        }
        current.push(i);
        bytes += size;
    }
    if !current.is_empty() && groups.len() < slots {
        groups.push(current);
    }
    groups
}

/// What one round did for one target: the outcome of each message it handled.
pub(super) type Results = Vec<(OutboxMessage, u32, Outcome)>;

/// One configured robot.
pub(super) struct Robot {
    pub provider: Provider,
    pub name: String,
    pub config: RobotConfig,
}

impl Robot {
    /// Its name as a tier target and outbox consumer: `dingtalk:<name>`.
    pub fn target(&self) -> String {
        format!("{}:{}", self.provider.prefix(), self.name)
    }
}

/// Delivers what is pending for one robot.
pub(super) async fn deliver_robot(
    agent: &ureq::Agent,
    robot: &Robot,
    pending: Vec<(OutboxMessage, u32)>,
    window: &mut RateWindow,
    context: &MessageContext,
    now: DateTime<Utc>,
) -> Results {
    let (provider, config) = (robot.provider, &robot.config);
    let target = robot.target();
    let mut results = Vec::new();
    let mut ready: Vec<(OutboxMessage, u32, AlertMessage)> = Vec::new();
    for (message, attempts) in pending {
        let routed = route(
            &message,
            |t| t.contains(&target).then_some(config.language),
            context,
        );
        match routed {
            Routed::Send(m) => ready.push((message, attempts, *m)),
            Routed::Skip => results.push((message, attempts, Outcome::Skipped)),
            Routed::Broken(e) => results.push((message, attempts, Outcome::Failed(e))),
        }
    }
    let per_minute = config
        .per_minute
        .unwrap_or_else(|| provider.default_per_minute());
    let slots = window.budget(per_minute, now);
    let sizes: Vec<usize> = ready.iter().map(|(_, _, m)| m.markdown.len()).collect();
    let groups = plan(&sizes, slots, provider.max_bytes());
    if groups.iter().map(Vec::len).sum::<usize>() < ready.len() {
        tracing::info!(
            "{target}: {} messages wait for the rate limit ({per_minute} a minute)",
            ready.len() - groups.iter().map(Vec::len).sum::<usize>()
        );
    }
    let mut slots_of: Vec<Option<Outcome>> = vec![None; ready.len()];
    for group in &groups {
        let messages: Vec<AlertMessage> = group.iter().map(|&i| ready[i].2.clone()).collect();
        let mut combined = combine(&messages, config.language);
        truncate(&mut combined.markdown, provider.max_bytes());
        let (url, body) = robots::request(provider, config, &combined, now);
        window.record(now);
        let outcome = robots::outcome(post_json(agent, &url, body, Vec::new()).await);
        for &i in group {
            slots_of[i] = Some(outcome.clone());
        }
        if matches!(outcome, Outcome::Retry(_)) {
            break; // the robot is down or refusing: the rest wait for the next round
        }
    }
    for ((message, attempts, _), outcome) in ready.into_iter().zip(slots_of) {
        if let Some(outcome) = outcome {
            results.push((message, attempts, outcome));
        }
    }
    results
}

/// Cuts text to at most `max` bytes on a character boundary, saying so.
fn truncate(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max.saturating_sub(4);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str("\n…");
}

/// Delivers what is pending for email: one mail per message and language to the addresses
/// its tier names (`email:<address>`).
pub(super) async fn deliver_email(
    transport: &lettre::SmtpTransport,
    config: &EmailConfig,
    pending: Vec<(OutboxMessage, u32)>,
    window: &mut RateWindow,
    context: &MessageContext,
    now: DateTime<Utc>,
) -> Results {
    let per_minute = config.per_minute.unwrap_or(60);
    let mut results = Vec::new();
    for (message, attempts) in pending {
        let Ok(payload) = serde_json::from_str::<serde_json::Value>(&message.payload) else {
            results.push((
                message,
                attempts,
                Outcome::Failed("the outbox message is not JSON".into()),
            ));
            continue;
        };
        if message.topic == "reports" {
            if window.budget(per_minute, now) == 0 {
                continue;
            }
            window.record(now);
            let (transport, config) = (transport.clone(), config.clone());
            let outcome = tokio::task::spawn_blocking(move || {
                super::email::send_report(&transport, &config, &payload)
            })
            .await
            .unwrap_or_else(|e| Outcome::Retry(format!("the sending task stopped: {e}")));
            let unreachable = matches!(outcome, Outcome::Retry(_));
            results.push((message, attempts, outcome));
            if unreachable {
                break;
            }
            continue;
        }
        let mut by_language: BTreeMap<&'static str, (Language, Vec<String>)> = BTreeMap::new();
        for t in targets(&payload) {
            if let Some(address) = t.strip_prefix("email:") {
                let language = config.language_of(address);
                let key = lang_tag(language);
                by_language
                    .entry(key)
                    .or_insert((language, Vec::new()))
                    .1
                    .push(address.to_string());
            }
        }
        let transition = payload["transition"].as_str().unwrap_or("");
        if by_language.is_empty() || !worth_telling(transition) {
            results.push((message, attempts, Outcome::Skipped));
            continue;
        }
        if window.budget(per_minute, now) < by_language.len() {
            continue; // waits for the next minute
        }
        let mut outcome = Outcome::Delivered;
        for (tag, (language, to)) in by_language {
            let rendered = render_alert(&message.id, &payload, language, context);
            window.record(now);
            let transport = transport.clone();
            let config = config.clone();
            let sent = tokio::task::spawn_blocking(move || {
                super::email::send(&transport, &config, &rendered, &to, tag)
            })
            .await
            .unwrap_or_else(|e| Outcome::Retry(format!("the sending task stopped: {e}")));
            if sent != Outcome::Delivered {
                outcome = sent;
                break;
            }
        }
        // A server that does not answer would make every message wait for its timeout:
        // the rest wait for the next round instead.
        let unreachable = matches!(outcome, Outcome::Retry(_));
        results.push((message, attempts, outcome));
        if unreachable {
            break;
        }
    }
    results
}

/// The HTML `lang` of a language.
pub fn lang_tag(language: Language) -> &'static str {
    match language {
        Language::Zh => "zh-CN",
        Language::En => "en",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_sends_each_alone_when_the_minute_allows() {
        assert_eq!(plan(&[10, 10, 10], 5, 100), vec![vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn plan_combines_when_more_wait_than_the_minute_allows() {
        let sizes = vec![10; 50];
        let groups = plan(&sizes, 20, 1000);
        assert_eq!(groups.len(), 17); // 3 per send
        assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), 50);
    }

    #[test]
    fn plan_keeps_each_send_under_the_size_limit_and_leaves_the_rest_waiting() {
        let groups = plan(&[60, 60, 60, 60], 2, 100);
        assert_eq!(groups, vec![vec![0], vec![1]]);
    }

    #[test]
    fn the_window_forgets_after_a_minute() {
        let t0 = Utc::now();
        let mut w = RateWindow::default();
        for _ in 0..20 {
            w.record(t0);
        }
        assert_eq!(w.budget(20, t0 + Duration::seconds(59)), 0);
        assert_eq!(w.budget(20, t0 + Duration::seconds(60)), 20);
    }
}
