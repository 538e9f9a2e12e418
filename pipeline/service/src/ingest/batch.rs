//! One micro-batch, top to bottom: apply each record, reconcile what changed, evaluate the rules, commit everything in one transaction (the one place the pipeline commits), then tell the metrics. Rule reloads and clock ticks are batches without records.

use super::pipeline::*;
use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::source::{Item, Outcome};
use crate::alerts::RuleRunner;
use reconlight_core::outbox::OutboxMessage;
use reconlight_core::reconcile::matching::MatchSettings;
use reconlight_core::reconcile::matching::incremental::differences_from_full;
use reconlight_core::state::{Applied, DeadLetter, Dirty};

impl Pipeline {
    /// Applies one micro-batch and commits it with everything it caused.
    pub async fn process_batch(
        &mut self,
        items: Vec<Item>,
        stats: &mut RunStats,
    ) -> crate::error::Result<()> {
        let mut dirty = Dirty::default();
        self.take_found_while_reading(&mut dirty, stats);
        let mapping = self.config.crm.clone();
        let (size, started) = (items.len(), Instant::now());
        // Each line file's last line end in the batch, stored with the position it ends.
        let mut line_ends: HashMap<String, (u64, u64)> = HashMap::new();
        for item in items {
            stats.records += 1;
            match &item.inbox_id {
                Some(id) => dirty.inbox_consumed.push(id.clone()),
                None => {
                    let key = item.position_key();
                    if let Some(digest) = item.completes {
                        let done = super::source::consumed_key(&key);
                        self.state.positions.insert(done.clone(), digest);
                        dirty.positions.insert(done);
                    }
                    if let Some(end) = item.line_end {
                        line_ends.insert(key.clone(), (end, item.next_position()));
                    }
                    self.state
                        .positions
                        .insert(key.clone(), item.next_position());
                    dirty.positions.insert(key);
                }
            }
            let where_ = item.where_();
            let horizon = Utc::now() + self.config.ingest.max_future.0;
            let reason = match item.outcome {
                Outcome::Record(_, time) if time > horizon => Some((
                    format!(
                        "{where_}: dated {}, more than {} past the clock ({}): a date typed wrong or a timestamp in other units; it would move the pipeline's clock",
                        time.to_rfc3339(),
                        self.config.ingest.max_future,
                        Utc::now().format("%Y-%m-%d %H:%M UTC")
                    ),
                    "future",
                )),
                Outcome::Record(record, time) => {
                    if self.state.watermark.is_none_or(|w| time > w) {
                        self.state.watermark = Some(time);
                        dirty.watermark = true;
                    }
                    match self.state.apply(*record, &where_, &mapping, &mut dirty) {
                        Ok(Applied::Changed) => {
                            stats.applied += 1;
                            self.metrics.events.with_label_values(&[&item.source]).inc();
                            None
                        }
                        Ok(Applied::Ignored(why)) => {
                            *stats.ignored.entry(why.into()).or_default() += 1;
                            self.metrics
                                .ignored
                                .with_label_values(&[&item.source, why])
                                .inc();
                            None
                        }
                        Err(e) => Some((format!("{where_}: {e}"), "invariant")),
                    }
                }
                Outcome::Skip(why) => {
                    *stats.ignored.entry(why.into()).or_default() += 1;
                    self.metrics
                        .ignored
                        .with_label_values(&[&item.source, why])
                        .inc();
                    None
                }
                Outcome::Error(e) => Some((format!("{}: {e}", item.file), "decode")),
            };
            if let Some((reason, class)) = reason {
                tracing::warn!("dead letter from {}: {reason}", item.source);
                stats.dead_letters += 1;
                self.state.dead_letter_count += 1;
                self.metrics
                    .dead_letters
                    .with_label_values(&[&item.source, class])
                    .inc();
                let letter = DeadLetter {
                    source: item.source.clone(),
                    position: where_,
                    reason,
                    raw: item.raw,
                    recorded_at: self.state.watermark.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
                };
                dirty.outbox.push(OutboxMessage::new(
                    "dead_letters",
                    &letter.position,
                    &letter,
                    letter.recorded_at,
                ));
                dirty.dead_letters.push(letter);
            }
        }
        for (key, (end, position)) in line_ends {
            let (at, of_line) = super::source::offset_keys(&key);
            for (k, v) in [(at, end), (of_line, position)] {
                self.state.positions.insert(k.clone(), v);
                dirty.positions.insert(k);
            }
        }
        let applied = started.elapsed();
        let evaluate = self.rules.take_records(size as u64);
        self.reconcile_and_evaluate(&mut dirty, evaluate).await?;
        let evaluated = started.elapsed();
        self.commit(&dirty, None).await?;
        let committed = started.elapsed();
        self.metrics
            .batch_commit_seconds
            .observe((committed - evaluated).as_secs_f64());
        tracing::debug!(
            "batch of {size}: applied in {:.3}s, reconciled and evaluated in {:.3}s, committed in {:.3}s",
            applied.as_secs_f64(),
            (evaluated - applied).as_secs_f64(),
            (committed - evaluated).as_secs_f64()
        );
        stats.batches += 1;
        Ok(())
    }

    /// Picks up what clerks did through the API or the CLI since the last look, noting the
    /// credits whose decision changed for the next reconciliation and keeping the
    /// acknowledgements for the next evaluation. The first look reads every decision and
    /// acknowledgement; later ones read the change log after the cursor.
    pub(super) async fn refresh_clerk_decisions(&mut self) -> crate::error::Result<()> {
        let Some(cursor) = self.clerk_cursor else {
            // Read the cursor first: a change made during the full read is read again next
            // time, which changes nothing.
            let cursor = self.store.clerk_change_cursor().await?;
            let manual = self.store.manual_decisions().await?;
            let changed = manual
                .iter()
                .filter(|(k, v)| self.state.manual.get(*k) != Some(*v))
                .chain(
                    self.state
                        .manual
                        .iter()
                        .filter(|(k, _)| !manual.contains_key(*k)),
                )
                .map(|(k, _)| k.clone());
            self.decisions_changed.extend(changed.collect::<Vec<_>>());
            self.state.manual = manual;
            self.acks_pending.extend(self.store.alert_acks().await?);
            self.clerk_cursor = Some(cursor);
            return Ok(());
        };
        let changes = self.store.clerk_changes_since(cursor).await?;
        for (bank_ref, decision) in changes.decisions {
            if self.state.manual.get(&bank_ref) != Some(&decision) {
                self.decisions_changed.insert(bank_ref.clone());
                self.state.manual.insert(bank_ref, decision);
            }
        }
        self.acks_pending.extend(changes.acknowledgements);
        self.clerk_cursor = Some(changes.cursor);
        Ok(())
    }

    /// Reconciles what changed and, when `evaluate`, brings the alerts up to date (otherwise
    /// the rules take the changes in at the next evaluation point).
    pub(super) async fn reconcile_and_evaluate(
        &mut self,
        dirty: &mut Dirty,
        evaluate: bool,
    ) -> crate::error::Result<()> {
        let tz = self.config.business.time_zone;
        let started = Instant::now();
        self.refresh_clerk_decisions().await?;
        let decisions = std::mem::take(&mut self.decisions_changed);
        let read_decisions = started.elapsed();
        let settings = MatchSettings {
            tolerance: self.config.business.amount_tolerance,
            auto_confirm: self.config.business.auto_confirm_confidence,
            finder: &self.finder,
        };
        self.reconciler
            .reconcile_batch(&mut self.state, dirty, &settings, tz, &decisions);
        let reconciled = started.elapsed();
        if self.verify_incremental {
            let wrong = differences_from_full(&self.state, &settings);
            if !wrong.is_empty() {
                return Err(crate::error::ServiceError::Diverged(format!(
                    "the incremental matches differ from a full recomputation for {} credits:\n{}",
                    wrong.len(),
                    wrong.join("\n")
                )));
            }
        }
        let acks = std::mem::take(&mut self.acks_pending);
        crate::alerts::apply_acks(&mut self.state, &acks, dirty);
        let acked = started.elapsed();
        let now = self.now();
        self.rules.verify = self.verify_incremental;
        if evaluate {
            self.rules
                .evaluate_batch(&mut self.state, now, dirty, &self.metrics)
                .await;
        } else {
            self.rules.defer(&self.state, dirty);
        }
        tracing::debug!(
            "clerk decisions read in {:.3}s, reconciled in {:.3}s, acknowledgements in {:.3}s, rules in {:.3}s",
            read_decisions.as_secs_f64(),
            (reconciled - read_decisions).as_secs_f64(),
            (acked - reconciled).as_secs_f64(),
            (started.elapsed() - acked).as_secs_f64()
        );
        let wrong = std::mem::take(&mut self.rules.verify_failures);
        if !wrong.is_empty() {
            return Err(crate::error::ServiceError::Diverged(format!(
                "partitioned rule evaluations differ from a full one:\n{}",
                wrong.join("\n")
            )));
        }
        Ok(())
    }

    /// Loads the rule packs again (SIGHUP, `POST /api/v1/rules/reload`) and evaluates them at
    /// once. Alerts of a rule that was removed keep their last state: nothing evaluates them.
    pub async fn reload_rules(&mut self) -> crate::error::Result<usize> {
        self.rules = RuleRunner::load(&self.config).await;
        self.rules.attach(&self.state);
        for e in self.rules.broken.values() {
            tracing::error!("rule skipped after reload: {e}");
        }
        let mut dirty = Dirty::default();
        let now = self.now();
        self.rules
            .evaluate_full(&mut self.state, now, &mut dirty, &self.metrics)
            .await;
        self.commit(&dirty, None).await?;
        Ok(self.rules.rules.len())
    }

    /// Re-evaluates the rules at the current clock without new input (the clock tick), after
    /// bringing in what clerks decided since the last batch; evaluates in full what was
    /// put off.
    pub async fn tick(&mut self) -> crate::error::Result<()> {
        let mut dirty = Dirty::default();
        self.reconcile_and_evaluate(&mut dirty, true).await?;
        let now = self.now();
        self.rules
            .catch_up(&mut self.state, now, &mut dirty, &self.metrics)
            .await;
        if !(dirty.alerts.is_empty() && dirty.matches.is_empty()) {
            self.commit(&dirty, None).await?;
        }
        Ok(())
    }

    /// The one place the pipeline commits: everything a batch changed, in one transaction
    /// (the nightly diff's, under its lock, when it passes one), then the audit trail's
    /// witness and the metrics. A write that lost a race to a clerk is a `StoreError` that
    /// `is_conflict`.
    pub(super) async fn commit(
        &mut self,
        dirty: &Dirty,
        tx: Option<sqlx::Transaction<'static, sqlx::Any>>,
    ) -> crate::error::Result<()> {
        let started = Instant::now();
        self.store.commit_in(tx, &self.state, dirty).await?;
        if let Some(c) = &self.checkpointer {
            c.committed();
        }
        let stored = started.elapsed();
        if !dirty.audit.is_empty() {
            let witness = self.config.resolve(&self.config.audit.head_file);
            reconlight_core::audit::write_witness(&witness, &self.state.audit_head.sealed())?;
        }
        self.metrics.observe_changes(&self.state, dirty);
        // Resolved alerts are history: the store keeps them, memory keeps what can change.
        for id in &dirty.alerts {
            if self
                .state
                .alerts
                .get(id)
                .is_some_and(|a| a.state == reconlight_rules::AlertState::Resolved)
            {
                self.state.alerts.remove(id);
            }
        }
        tracing::debug!(
            "stored in {:.3}s, metrics in {:.3}s: {} audit entries, {} alerts, {} outbox messages, {} credits, {} allocations, {} contracts, {} installment lists",
            stored.as_secs_f64(),
            (started.elapsed() - stored).as_secs_f64(),
            dirty.audit.len(),
            dirty.alerts.len(),
            dirty.outbox.len(),
            dirty.bank.len(),
            dirty.matches.len(),
            dirty.contracts.len(),
            dirty.installments.len()
        );
        Ok(())
    }
}
