//! Where each notifier's messages start. A notifier is sent what the outbox holds from when
//! it first appeared in the configuration, not the history written before it: a pager or a
//! chat group added to a store with years of alerts would otherwise be sent every one of
//! them. What is firing when it appears is written once more, addressed to it alone, so it
//! learns what is burning now.

use std::collections::HashMap;
use std::sync::Mutex;

use reconlight_core::outbox::OutboxMessage;
use reconlight_rules::{AlertState, Transition};

use super::deliveries::written_at;
use super::write::write_outbox;
use super::*;

/// The `meta` row holding a notifier's start, by notifier name.
const SINCE_PREFIX: &str = "notifier_since:";
/// Set by the migration on a store that had messages before starts were recorded: until
/// the next pipeline start, a notifier seen for the first time starts at the beginning.
const HISTORY_KEPT: &str = "notifier_history_kept";

/// Each notifier's start as read (or set) once by this process: `""` for every message.
#[derive(Default)]
pub(super) struct Subscriptions(Mutex<HashMap<String, String>>);

/// The outbox topic of a message for `notifier` alone (its copy of what was firing when
/// it appeared); `topic_of` gives the topic back.
pub(super) fn addressed(topic: &str, notifier: &str) -> String {
    format!("{topic}\u{1f}{notifier}")
}

/// The topic a stored message was written for, without its addressee.
pub(super) fn topic_of(stored: &str) -> &str {
    stored.split('\u{1f}').next().unwrap_or(stored)
}

/// The topics a notifier reads: the shared ones and its own copies of them.
pub(super) fn topics_read_by(notifier: &str, topics: &[String]) -> Vec<String> {
    topics
        .iter()
        .cloned()
        .chain(topics.iter().map(|t| addressed(t, notifier)))
        .collect()
}

impl Store {
    /// When `notifier`'s messages start (the outbox's `written_at` text; `""`: every
    /// message). The first time any process asks, the notifier is recorded as starting now
    /// and each alert firing now is written once for it alone, if it reads `alerts`; unless
    /// the store was upgraded from before starts were recorded and has not started since:
    /// then it keeps every message it has not sent.
    pub async fn notifier_start(
        &self,
        notifier: &str,
        topics: &[String],
    ) -> Result<String, StoreError> {
        if let Some(since) = self
            .subscriptions
            .0
            .lock()
            .expect("not poisoned")
            .get(notifier)
        {
            return Ok(since.clone());
        }
        let name = format!("{SINCE_PREFIX}{notifier}");
        let since = match self.meta(&name).await? {
            Some(since) => since,
            None => {
                self.record_notifier_start(notifier, &name, topics).await?;
                self.meta(&name).await?.unwrap_or_default()
            }
        };
        self.subscriptions
            .0
            .lock()
            .expect("not poisoned")
            .insert(notifier.to_string(), since.clone());
        Ok(since)
    }

    async fn record_notifier_start(
        &self,
        notifier: &str,
        name: &str,
        topics: &[String],
    ) -> Result<(), StoreError> {
        let doing = format!("recording where notifier {notifier} starts");
        let configured_before = self.meta(HISTORY_KEPT).await?.is_some();
        let now = chrono::Utc::now();
        let since = if configured_before {
            String::new()
        } else {
            written_at(now)
        };
        let firing = if configured_before || !topics.iter().any(|t| t == "alerts") {
            Vec::new()
        } else {
            self.open_alerts()
                .await?
                .into_iter()
                .filter(|a| a.state == AlertState::Firing)
                .collect()
        };
        let mut tx = self.pool.begin().await.map_err(ctx(doing.clone()))?;
        let recorded = sqlx::query(
            "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(since.clone())
        .execute(&mut *tx)
        .await
        .map_err(ctx(doing.clone()))?
        .rows_affected()
            == 1;
        if !recorded {
            // Another process recorded it first, and wrote its copies of the firing alerts.
            return Ok(());
        }
        let topic = addressed("alerts", notifier);
        let copies: Vec<OutboxMessage> = firing
            .iter()
            .map(|alert| {
                OutboxMessage::new(
                    &topic,
                    &alert.id,
                    &reconlight_core::alerts::AlertMessage {
                        transition: Transition::Fired,
                        alert,
                    },
                    alert.fired_at.unwrap_or(now),
                )
            })
            .collect();
        write_outbox(&mut tx, &copies, &since).await?;
        tx.commit().await.map_err(ctx(doing))?;
        if configured_before {
            tracing::info!(
                "notifier {notifier}: configured before this store recorded where notifiers start, it is sent every message it has not sent yet"
            );
        } else {
            tracing::info!(
                "notifier {notifier} is new: it is sent what is written from {since} on, and the {} alerts firing now",
                firing.len()
            );
        }
        Ok(())
    }

    /// Records the notifiers a starting pipeline is configured with (each new one starts
    /// now) and ends an upgraded store's grace (`HISTORY_KEPT`). A notifier missing from
    /// this configuration keeps its start: a one-off command run with another
    /// configuration must not make the service's notifiers lose what they have not sent.
    pub async fn notifiers_configured(
        &self,
        notifiers: &[(String, Vec<String>)],
    ) -> Result<(), StoreError> {
        for (notifier, topics) in notifiers {
            self.notifier_start(notifier, topics).await?;
        }
        sqlx::query("DELETE FROM meta WHERE name = $1")
            .bind(HISTORY_KEPT)
            .execute(&self.pool)
            .await
            .map_err(ctx("recording the configured notifiers"))?;
        Ok(())
    }
}
