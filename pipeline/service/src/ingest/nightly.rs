//! The nightly diff: findings over the live state, the queue brought in line with them over what clerks did meanwhile, and the reports.

use super::pipeline::*;
use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};

use crate::config::ClockMode;
use reconlight_core::outbox::OutboxMessage;
use reconlight_core::reconcile::diff::{NightlyOutcome, nightly_diff};
use reconlight_core::reconcile::matching::MatchSettings;
use reconlight_core::state::Dirty;
use reconlight_core::workitems::{SlaTiers, reconcile_queue};

impl Pipeline {
    /// The business date the nightly diff covers by default: the watermark's date in
    /// event-time mode (a replayed month ends on its last day), else yesterday.
    pub fn default_business_date(&self) -> NaiveDate {
        let tz = self.config.business.time_zone;
        match self.config.ingest.clock {
            ClockMode::EventTime => {
                reconlight_core::reconcile::terms::business_date(self.now(), tz)
            }
            ClockMode::Wall => {
                reconlight_core::reconcile::terms::business_date(Utc::now(), tz)
                    - chrono::Duration::days(1)
            }
        }
    }

    /// Runs the nightly diff for `date` and brings the work-item queue in line with it, then
    /// writes the reports. Only one instance runs it at a time (see `Store::begin_nightly`).
    pub async fn nightly(&mut self, date: NaiveDate) -> crate::error::Result<NightlyOutcome> {
        let tz = self.config.business.time_zone;
        self.refresh_clerk_decisions().await?;
        let settings = MatchSettings {
            tolerance: self.config.business.amount_tolerance,
            auto_confirm: self.config.business.auto_confirm_confidence,
            finder: &self.finder,
        };
        let (_matches, findings, summary) = nightly_diff(&self.state, &settings, tz, date);
        let now = self.now();
        let sla = SlaTiers(self.config.workitems.sla_days.clone());
        // Clerks work the queue while the diff runs: the queue is brought in line with the
        // findings over what the store holds, and written only over the versions read. A
        // clerk who acted in between wins; the queue is read again and merged, after a pause
        // that grows, so a busy queue (clerks acting faster than one diff writes) lets the
        // diff through instead of failing it.
        const ATTEMPTS: u64 = 50;
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            let Some(tx) = self.store.begin_nightly().await? else {
                return Err(crate::error::ServiceError::NightlyLocked);
            };
            let stored: BTreeMap<String, reconlight_core::workitems::WorkItem> = self
                .store
                .work_items()
                .await?
                .into_iter()
                .map(|w| (w.id.clone(), w))
                .collect();
            let changes = reconcile_queue(&stored, &findings, date, &sla, now);
            let mut dirty = Dirty::default();
            let mut items = stored.clone();
            for item in changes.changed {
                dirty
                    .outbox
                    .push(OutboxMessage::new("work_items", &item.id, &item, now));
                dirty
                    .work_items_read
                    .insert(item.id.clone(), stored.get(&item.id).map(|w| w.version));
                dirty.work_items.insert(item.id.clone());
                items.insert(item.id.clone(), item);
            }
            let outcome = NightlyOutcome {
                summary: summary.clone(),
                opened: changes.opened,
                reopened: changes.reopened,
                updated: changes.updated,
                auto_resolved: changes.auto_resolved,
                open_items: items.values().filter(|w| w.state.is_active()).count(),
            };
            dirty.nightly_report = Some((
                date,
                serde_json::to_string(&outcome).expect("the outcome serializes"),
            ));
            let previous = std::mem::replace(&mut self.state.work_items, items);
            match self.commit(&dirty, tx).await {
                Ok(()) => break outcome,
                Err(e)
                    if attempt < ATTEMPTS
                        && matches!(&e, crate::error::ServiceError::Store(s) if s.is_conflict()) =>
                {
                    tracing::info!("a clerk acted while the nightly diff ran ({e}): merging");
                    self.state.work_items = previous;
                    let pause = std::time::Duration::from_millis((10 * attempt).min(200));
                    tokio::time::sleep(pause).await;
                }
                Err(e) => {
                    self.state.work_items = previous;
                    return Err(e);
                }
            }
        };
        // Work items are a table rules can read: evaluate with the new queue.
        let mut dirty = Dirty::default();
        self.rules
            .evaluate_full(&mut self.state, now, &mut dirty, &self.metrics)
            .await;
        self.commit(&dirty, None).await?;
        self.metrics.observe_nightly(&outcome);
        let items: Vec<_> = self.state.work_items.values().cloned().collect();
        let dir = self.config.resolve(&self.config.nightly.report_dir);
        crate::report::write_files(&dir, &outcome, &items).map_err(crate::error::FileError::io(
            "write the nightly reports to",
            &dir,
        ))?;
        Ok(outcome)
    }
}
