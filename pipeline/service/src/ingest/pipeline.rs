//! The pipeline: one path for every record, one commit point per micro-batch.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::kafka::{KafkaFeed, partition_of};
use super::source::{
    Dropped, Item, Merged, Outcome, SourceNotes, StatementNote, items_of, read_dropped, read_file,
    source_files,
};
use crate::alerts::RuleRunner;
use crate::config::{ClockMode, Config};
use crate::metrics::Metrics;
use crate::store::Store;
use reconlight_core::outbox::OutboxMessage;
use reconlight_core::reconcile::diff::{NightlyOutcome, nightly_diff};
use reconlight_core::reconcile::matching::MatchSettings;
use reconlight_core::reconcile::reconcile_batch;
use reconlight_core::reconcile::reference::ContractRefFinder;
use reconlight_core::state::{Applied, DeadLetter, Dirty, LiveState};
use reconlight_core::workitems::{SlaTiers, reconcile_queue};

/// Counts of one run, for the summary and the tests.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunStats {
    pub batches: u64,
    pub records: u64,
    pub applied: u64,
    pub ignored: BTreeMap<String, u64>,
    pub dead_letters: u64,
    pub unbalanced_statements: Vec<String>,
    /// Statements whose balance could not be checked (unreadable or missing balances).
    pub unchecked_statements: Vec<String>,
}

/// A pipeline over one store and one configuration.
pub struct Pipeline {
    pub config: Config,
    pub store: Store,
    pub state: LiveState,
    pub rules: RuleRunner,
    pub metrics: Arc<Metrics>,
    finder: ContractRefFinder,
    kafka: Option<KafkaFeed>,
    /// How long one `run_until_idle` may spend on Kafka: `None` reads until every assigned
    /// partition is applied to its end (`--until-idle`, tests); a budget lets a running
    /// service interleave clock ticks and notifications with a never-ending stream.
    pub kafka_budget: Option<Duration>,
    /// Dead letters found while reading (a statement's unreadable balance), written with
    /// the next commit.
    pending_letters: Vec<DeadLetter>,
    /// Set on SIGINT/SIGTERM: stop after the batch being applied.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
}

/// How long `run_until_idle` waits for the consumer group to assign partitions.
const ASSIGNMENT_TIMEOUT: Duration = Duration::from_secs(90);

impl Pipeline {
    /// Opens the store, loads the live state and the rules.
    pub async fn open(config: Config, metrics: Arc<Metrics>) -> anyhow::Result<Pipeline> {
        let store = Store::open(&config.store_url()).await?;
        let mut state = store.load().await?;
        state.audit_head.key = Some(
            reconlight_core::audit::AuditKey::load_or_create(
                &config.resolve(&config.audit.key_file),
            )
            .map_err(anyhow::Error::msg)?,
        );
        let rules = RuleRunner::load(&config).await;
        let finder = ContractRefFinder::new(
            &config.business.contract_no_pattern,
            &config.business.contract_no_template,
        )?;
        metrics.observe_state(&state);
        let kafka = match &config.kafka {
            Some(k) => KafkaFeed::open(&config, k, &state.positions)?,
            None => None,
        };
        Ok(Pipeline {
            config,
            store,
            state,
            rules,
            metrics,
            finder,
            kafka,
            kafka_budget: None,
            pending_letters: Vec::new(),
            stop: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }

    fn now(&self) -> DateTime<Utc> {
        match self.config.ingest.clock {
            ClockMode::EventTime => self.state.watermark.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
            ClockMode::Wall => {
                Utc::now().max(self.state.watermark.unwrap_or(DateTime::<Utc>::UNIX_EPOCH))
            }
        }
    }

    /// Reads everything the sources hold beyond the stored positions.
    pub async fn pending_items(&mut self, stats: &mut RunStats) -> anyhow::Result<Merged> {
        let mut queues = Vec::new();
        let mut dropped = Vec::new();
        let mut found_notes = Vec::new();
        for source in &self.config.sources {
            let mut q = VecDeque::new();
            let mut notes = SourceNotes::default();
            for path in source_files(&self.config, source).map_err(anyhow::Error::msg)? {
                if source.drop_folder {
                    match read_dropped(
                        &self.config,
                        source,
                        &path,
                        &self.state.positions,
                        &mut notes,
                    )
                    .map_err(anyhow::Error::msg)?
                    {
                        Dropped::Settling => {
                            tracing::debug!(
                                "{} changed too recently: read next round",
                                path.display()
                            );
                        }
                        Dropped::Vanished => {
                            tracing::warn!("{} vanished before it could be read", path.display());
                        }
                        Dropped::Read { items, failed } => {
                            dropped.push((path.clone(), failed));
                            q.extend(items);
                        }
                    }
                    continue;
                }
                let file = path
                    .strip_prefix(&self.config.base_dir)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                let skip = self
                    .state
                    .positions
                    .get(&format!("{}:{file}", source.name))
                    .copied()
                    .unwrap_or(0);
                match read_file(&self.config, source, &path, skip, &mut notes) {
                    Ok(items) => q.extend(items),
                    // Listed a moment ago, gone now: somebody moved it; nothing to read.
                    Err(_) if !path.exists() => {
                        tracing::warn!("{} vanished before it could be read", path.display());
                    }
                    Err(e) => return Err(anyhow::Error::msg(e)),
                }
            }
            found_notes.extend(notes.notes.into_iter().map(|n| (source.name.clone(), n)));
            queues.push(q);
        }
        for (source, n) in found_notes {
            self.note_statement(&source, n, stats);
        }
        queues.push(self.inbox_items().await?);
        let mut merged = Merged::new(queues);
        merged.dropped = dropped;
        Ok(merged)
    }

    /// A statement that does not balance is counted and reported; one whose balance could
    /// not be checked is also a dead letter, so the gap is on record.
    fn note_statement(&mut self, source: &str, note: StatementNote, stats: &mut RunStats) {
        match note {
            StatementNote::Unbalanced(note) => {
                tracing::warn!("{note}");
                self.metrics
                    .unbalanced_statements
                    .with_label_values(&[source])
                    .inc();
                stats.unbalanced_statements.push(note);
            }
            StatementNote::Unchecked(note) => {
                tracing::warn!("{note}");
                self.metrics
                    .dead_letters
                    .with_label_values(&[source, "statement"])
                    .inc();
                stats.unchecked_statements.push(note.clone());
                let (position, reason) = match note.split_once(": ") {
                    Some((file, reason)) => (format!("{file} balances"), reason.to_string()),
                    None => ("balances".to_string(), note),
                };
                self.pending_letters.push(DeadLetter {
                    source: source.to_string(),
                    position,
                    reason,
                    raw: String::new(),
                    recorded_at: self.state.watermark.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
                });
            }
        }
    }

    /// Webhook bodies received since the last batch, decoded like the provider's file lines.
    async fn inbox_items(&self) -> anyhow::Result<VecDeque<Item>> {
        let hooks = &self.config.webhooks;
        let mut q = VecDeque::new();
        for (id, provider, body) in self.store.inbox_pending(100_000).await? {
            let format: reconlight_formats::Format =
                provider.parse().map_err(anyhow::Error::msg)?;
            let source = crate::config::SourceConfig::webhook(format, hooks);
            let decoded = format.decode_message(body.as_bytes(), &source.format_options());
            let mut notes = SourceNotes::default();
            for mut item in items_of(&self.config, &source, "inbox", decoded, 0, &mut notes) {
                item.position = id.clone();
                if let Outcome::Error(e) = &mut item.outcome {
                    *e = format!("{provider} webhook: {e}");
                }
                item.inbox_id = Some(id.clone());
                q.push_back(item);
            }
        }
        Ok(q)
    }

    /// Processes every pending item in micro-batches; `progress` is told after each batch.
    pub async fn run_until_idle(
        &mut self,
        mut progress: impl FnMut(u64, u64),
    ) -> anyhow::Result<RunStats> {
        let mut stats = RunStats::default();
        let mut merged = self.pending_items(&mut stats).await?;
        let total = merged.remaining() as u64;
        let mut done = 0u64;
        progress(0, total);
        loop {
            if self.stopping() {
                // Files not read to their end stay where they are, to be resumed.
                merged.dropped.clear();
                break;
            }
            let mut batch = Vec::with_capacity(self.config.ingest.batch_size);
            while batch.len() < self.config.ingest.batch_size {
                match merged.next_item() {
                    Some(item) => batch.push(item),
                    None => break,
                }
            }
            if batch.is_empty() {
                break;
            }
            done += batch.len() as u64;
            self.process_batch(batch, &mut stats).await?;
            progress(done, total);
        }
        // Dead letters found while reading but not yet written with a batch.
        if !self.pending_letters.is_empty() {
            let mut dirty = Dirty::default();
            self.take_pending_letters(&mut dirty, &mut stats);
            self.store.commit(&self.state, &dirty).await?;
        }
        // Everything read is committed: drop-folder files can leave.
        merged.file_away().map_err(anyhow::Error::msg)?;
        if let Some(mut feed) = self.kafka.take()
            && !self.stopping()
        {
            let drained = self.drain_kafka(&mut feed, &mut stats, &mut progress).await;
            self.kafka = Some(feed);
            drained?;
        }
        Ok(stats)
    }

    fn stopping(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Applies what the Kafka topics hold (only them, not the files or the inbox).
    pub async fn run_kafka(&mut self) -> anyhow::Result<RunStats> {
        let mut stats = RunStats::default();
        if let Some(mut feed) = self.kafka.take() {
            let drained = self
                .drain_kafka(&mut feed, &mut stats, &mut |_, _| {})
                .await;
            self.kafka = Some(feed);
            drained?;
        }
        Ok(stats)
    }

    /// Applies what the Kafka topics hold, batch by batch, committing offsets to Kafka after
    /// each store commit.
    async fn drain_kafka(
        &mut self,
        feed: &mut KafkaFeed,
        stats: &mut RunStats,
        progress: &mut impl FnMut(u64, u64),
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let batch_size = self.config.ingest.batch_size;
        let mut done = 0u64;
        loop {
            if self.stopping() {
                break;
            }
            if self.kafka_budget.is_some() && feed.throttle_due() {
                self.throttle_kafka(feed).await?;
            }
            let mut notes = Vec::new();
            let batch =
                feed.next_batch(&self.config, &self.state.positions, batch_size, &mut notes)?;
            for (source, note) in notes {
                self.note_statement(&source, note, stats);
            }
            if batch.is_empty() && feed.waiting() && self.kafka_budget.is_none() {
                continue;
            }
            if batch.is_empty() {
                feed.observe_lag(&self.metrics);
                if self.kafka_budget.is_some() || feed.caught_up() {
                    tracing::debug!("kafka: idle after {:.1}s", started.elapsed().as_secs_f64());
                    break;
                }
                if !feed.has_assignment() && started.elapsed() > ASSIGNMENT_TIMEOUT {
                    let brokers = self
                        .config
                        .kafka
                        .as_ref()
                        .map_or("", |k| k.brokers.as_str());
                    anyhow::bail!(
                        "kafka: no partitions assigned after {}s: are the brokers at {brokers} reachable?",
                        ASSIGNMENT_TIMEOUT.as_secs()
                    );
                }
                continue;
            }
            let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
            for item in &batch {
                if let Some(p) = partition_of(item) {
                    let at = next.entry(p).or_default();
                    *at = (*at).max(item.next_position() as i64);
                }
            }
            done += batch.len() as u64;
            tracing::debug!(
                "kafka: applying {} items at {:.1}s",
                batch.len(),
                started.elapsed().as_secs_f64()
            );
            self.process_batch(batch, stats).await?;
            let offsets: Vec<(String, i32, i64)> =
                next.into_iter().map(|((t, p), o)| (t, p, o)).collect();
            feed.committed(&offsets);
            progress(done, done);
            if self.kafka_budget.is_some_and(|b| started.elapsed() > b) {
                break;
            }
        }
        Ok(())
    }

    /// Stops fetching while the Kafka sinks lag too far behind.
    async fn throttle_kafka(&self, feed: &mut KafkaFeed) -> anyhow::Result<()> {
        let Some(k) = &self.config.kafka else {
            return Ok(());
        };
        if k.sinks.is_empty() {
            return Ok(());
        }
        let topics: Vec<String> = k.sinks.keys().cloned().collect();
        let backlog = self.store.backlog("kafka", &topics).await?;
        feed.throttle(backlog, &self.metrics);
        Ok(())
    }

    /// Applies one micro-batch and commits it with everything it caused.
    pub async fn process_batch(
        &mut self,
        items: Vec<Item>,
        stats: &mut RunStats,
    ) -> anyhow::Result<()> {
        let mut dirty = Dirty::default();
        self.take_pending_letters(&mut dirty, stats);
        let mapping = self.config.crm.clone();
        let (size, started) = (items.len(), Instant::now());
        for item in items {
            stats.records += 1;
            match &item.inbox_id {
                Some(id) => dirty.inbox_consumed.push(id.clone()),
                None => {
                    let key = item.position_key();
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
        let applied = started.elapsed();
        self.reconcile_and_evaluate(&mut dirty).await?;
        let evaluated = started.elapsed();
        self.store.commit(&self.state, &dirty).await?;
        if !dirty.audit.is_empty() {
            let witness = self.config.resolve(&self.config.audit.head_file);
            reconlight_core::audit::write_witness(&witness, &self.state.audit_head.sealed())
                .map_err(anyhow::Error::msg)?;
        }
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
        self.metrics.observe_state(&self.state);
        stats.batches += 1;
        Ok(())
    }

    fn take_pending_letters(&mut self, dirty: &mut Dirty, stats: &mut RunStats) {
        for letter in std::mem::take(&mut self.pending_letters) {
            stats.dead_letters += 1;
            self.state.dead_letter_count += 1;
            dirty.outbox.push(OutboxMessage::new(
                "dead_letters",
                &letter.position,
                &letter,
                letter.recorded_at,
            ));
            dirty.dead_letters.push(letter);
        }
    }

    /// Picks up what clerks did through the API or the CLI since the last look.
    async fn refresh_clerk_decisions(&mut self) -> anyhow::Result<bool> {
        let manual = self.store.manual_decisions().await?;
        let changed = manual != self.state.manual;
        self.state.manual = manual;
        Ok(changed)
    }

    async fn reconcile_and_evaluate(&mut self, dirty: &mut Dirty) -> anyhow::Result<()> {
        let tz = self.config.business.time_zone;
        let decisions_changed = self.refresh_clerk_decisions().await?;
        let inputs_changed = dirty.touched_inputs() || decisions_changed;
        let settings = MatchSettings {
            tolerance: self.config.business.amount_tolerance,
            auto_confirm: self.config.business.auto_confirm_confidence,
            finder: &self.finder,
        };
        reconcile_batch(&mut self.state, dirty, &settings, tz, decisions_changed);
        let acks = self.store.alert_acks().await?;
        crate::alerts::apply_acks(&mut self.state, &acks, dirty);
        let now = self.now();
        self.rules
            .evaluate(
                &mut self.state,
                now,
                inputs_changed || !dirty.matches.is_empty(),
                dirty,
                &self.metrics,
            )
            .await;
        Ok(())
    }

    /// Loads the rule packs again (SIGHUP, `POST /api/v1/rules/reload`) and evaluates them at
    /// once. Alerts of a rule that was removed keep their last state: nothing evaluates them.
    pub async fn reload_rules(&mut self) -> anyhow::Result<usize> {
        self.rules = RuleRunner::load(&self.config).await;
        for e in self.rules.broken.values() {
            tracing::error!("rule skipped after reload: {e}");
        }
        let mut dirty = Dirty::default();
        let now = self.now();
        self.rules
            .evaluate(&mut self.state, now, true, &mut dirty, &self.metrics)
            .await;
        self.store.commit(&self.state, &dirty).await?;
        self.metrics.observe_state(&self.state);
        Ok(self.rules.rules.len())
    }

    /// Re-evaluates the rules at the current clock without new input (the clock tick).
    pub async fn tick(&mut self) -> anyhow::Result<()> {
        let mut dirty = Dirty::default();
        let now = self.now();
        let acks = self.store.alert_acks().await?;
        crate::alerts::apply_acks(&mut self.state, &acks, &mut dirty);
        self.rules
            .evaluate(&mut self.state, now, false, &mut dirty, &self.metrics)
            .await;
        if !dirty.alerts.is_empty() {
            self.store.commit(&self.state, &dirty).await?;
            self.metrics.observe_state(&self.state);
        }
        Ok(())
    }

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
    pub async fn nightly(&mut self, date: NaiveDate) -> anyhow::Result<NightlyOutcome> {
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
        // clerk who acted in between wins; the queue is read again and merged.
        const ATTEMPTS: usize = 5;
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            let Some(tx) = self.store.begin_nightly().await? else {
                anyhow::bail!(
                    "another reconlight instance is running the nightly diff (it holds the PostgreSQL advisory lock)"
                );
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
            dirty.nightly_report = Some((date, serde_json::to_string(&outcome)?));
            let previous = std::mem::replace(&mut self.state.work_items, items);
            match self.store.commit_in(tx, &self.state, &dirty).await {
                Ok(()) => break outcome,
                Err(e) if e.is_conflict() && attempt < ATTEMPTS => {
                    tracing::info!("a clerk acted while the nightly diff ran ({e}): merging");
                    self.state.work_items = previous;
                }
                Err(e) => {
                    self.state.work_items = previous;
                    return Err(e.into());
                }
            }
        };
        // Work items are a table rules can read: evaluate with the new queue.
        let mut dirty = Dirty::default();
        self.rules
            .evaluate(&mut self.state, now, true, &mut dirty, &self.metrics)
            .await;
        self.store.commit(&self.state, &dirty).await?;
        self.metrics.observe_state(&self.state);
        self.metrics.observe_nightly(&outcome);
        let items: Vec<_> = self.state.work_items.values().cloned().collect();
        let dir = self.config.resolve(&self.config.nightly.report_dir);
        crate::report::write_files(&dir, &outcome, &items).map_err(|e| {
            anyhow::anyhow!("writing the nightly reports to {}: {e}", dir.display())
        })?;
        Ok(outcome)
    }
}
