//! The pipeline: one path for every record, one commit point per micro-batch.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::kafka::{KafkaFeed, partition_of};
use crate::alerts::RuleRunner;
use crate::config::{ClockMode, Config};
use crate::metrics::Metrics;
use crate::store::Store;
use reconlight_core::reconcile::Reconciler;
use reconlight_core::reconcile::matching::MatchSettings;
use reconlight_core::reconcile::reference::ContractRefFinder;
use reconlight_core::state::{DeadLetter, Dirty, LiveState};

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
    pub(super) finder: ContractRefFinder,
    /// What reconciliation remembers between batches.
    pub(super) reconciler: Reconciler,
    /// Credits whose clerk decision changed since the last reconciliation.
    pub(super) decisions_changed: BTreeSet<String>,
    /// How far the clerk change log has been read (`None` until the first full read).
    pub(super) clerk_cursor: Option<i64>,
    /// Acknowledgements read and not yet applied to the alerts.
    pub(super) acks_pending: std::collections::BTreeMap<String, reconlight_rules::Acknowledgement>,
    /// Check after every batch that the incremental matches equal a full recomputation
    /// (slow: for tests and for diagnosing a suspected difference).
    pub verify_incremental: bool,
    pub(super) kafka: Option<KafkaFeed>,
    /// How long one `run_until_idle` may spend on Kafka: `None` reads until every assigned
    /// partition is applied to its end (`--until-idle`, tests); a budget lets a running
    /// service interleave clock ticks and notifications with a never-ending stream.
    pub kafka_budget: Option<Duration>,
    /// Dead letters found while reading (a statement's unreadable balance), written with
    /// the next commit.
    pub(super) pending_letters: Vec<DeadLetter>,
    /// Documents found consumed to their end without their digest on record (see
    /// `source::read_file`), recorded with the next commit.
    pub(super) consumed_documents: Vec<(String, u64)>,
    /// Set on SIGINT/SIGTERM: stop after the batch being applied.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
    /// Copies SQLite's log back into the database beside the batches.
    pub(super) checkpointer: Option<crate::store::Checkpointer>,
}

/// How long `run_until_idle` waits for the consumer group to assign partitions.
const ASSIGNMENT_TIMEOUT: Duration = Duration::from_secs(90);

impl Pipeline {
    /// Opens the store, loads the live state and the rules.
    pub async fn open(config: Config, metrics: Arc<Metrics>) -> crate::error::Result<Pipeline> {
        let started = std::time::Instant::now();
        let store = Store::open(&config.store_url()).await?;
        let (mut state, read_from) = store.start_state().await?;
        let loaded = started.elapsed();
        let read_from = match read_from {
            crate::store::StateSource::Snapshot { bytes } => {
                format!("the state snapshot, {} MiB", bytes >> 20)
            }
            crate::store::StateSource::Tables {
                why_not_snapshot: None,
            } => "the store".to_string(),
            crate::store::StateSource::Tables {
                why_not_snapshot: Some(why),
            } => format!("the store; the state snapshot was not used: {why}"),
        };
        // A notifier is sent what is written from when it first appears in the
        // configuration: recorded before this run writes anything.
        let notifiers = crate::notify::configured_subscribers(&config);
        store.notifiers_configured(&notifiers).await?;
        let queued = store.index_missing_queue_rows(&state).await?;
        if queued > 0 {
            tracing::info!("work queue: indexed {queued} work items written before the index");
        }
        state.audit_head.key = Some(reconlight_core::audit::AuditKey::load_or_create(
            &config.resolve(&config.audit.key_file),
        )?);
        let mut rules = RuleRunner::load(&config).await;
        if let Some(cursor) = store.meta(crate::alerts::CURSOR_META).await? {
            rules.cursor = serde_json::from_str(&cursor).map_err(|e| {
                crate::error::ServiceError::Diverged(format!(
                    "the stored rules cursor cannot be read: {e}"
                ))
            })?;
        }
        let finder = ContractRefFinder::new(
            config.business.contract_no_pattern.as_str(),
            &config.business.contract_no_template,
        )?;
        let settings = MatchSettings {
            tolerance: config.business.amount_tolerance,
            auto_confirm: config.business.auto_confirm_confidence,
            finder: &finder,
        };
        // The rules' subject index and the matcher's memory read the same state: built side
        // by side.
        let indexing = Instant::now();
        let reconciler = std::thread::scope(|scope| {
            scope.spawn(|| rules.attach(&state));
            Reconciler::new(&state, &settings)
        });
        let indexed = indexing.elapsed();
        metrics.observe_store(&state, &store).await?;
        tracing::info!(
            "started in {:.1}s ({:.1}s reading {read_from}, {:.1}s indexing it): {} contracts, {} installments, {} credits, {} allocations, {} open alerts",
            started.elapsed().as_secs_f64(),
            loaded.as_secs_f64(),
            indexed.as_secs_f64(),
            state.contracts.len(),
            state.installments.len(),
            state.bank.len(),
            state.matches.values().map(Vec::len).sum::<usize>(),
            state.alerts.len()
        );
        let sources: Vec<(String, bool)> = config
            .sources
            .iter()
            .map(|s| (s.name.clone(), s.format.is_bank()))
            .collect();
        let rule_ids: Vec<String> = rules.rules.iter().map(|r| r.id.clone()).collect();
        metrics.declare(&sources, &rule_ids);
        let kafka = match &config.kafka {
            Some(k) => KafkaFeed::open(&config, k, &state.positions)?,
            None => None,
        };
        let checkpointer = store.checkpoint_in_background().await?;
        Ok(Pipeline {
            config,
            store,
            state,
            rules,
            metrics,
            finder,
            reconciler,
            decisions_changed: BTreeSet::new(),
            clerk_cursor: None,
            acks_pending: Default::default(),
            verify_incremental: false,
            kafka,
            kafka_budget: None,
            pending_letters: Vec::new(),
            consumed_documents: Vec::new(),
            stop: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            checkpointer,
        })
    }

    pub(super) fn now(&self) -> DateTime<Utc> {
        match self.config.ingest.clock {
            ClockMode::EventTime => self.state.watermark.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
            ClockMode::Wall => {
                Utc::now().max(self.state.watermark.unwrap_or(DateTime::<Utc>::UNIX_EPOCH))
            }
        }
    }

    /// Writes the state snapshot the next start reads instead of the tables (SQLite
    /// stores; see `store/snapshot.rs`). For a clean stop, after the last batch.
    pub async fn save_snapshot(&self) {
        let started = Instant::now();
        match self.store.save_snapshot(&self.state).await {
            Ok(Some((path, bytes))) => tracing::info!(
                "state snapshot written in {:.1}s: {} ({} MiB)",
                started.elapsed().as_secs_f64(),
                path.display(),
                bytes >> 20
            ),
            Ok(None) => {}
            // Only the next start's speed depends on it.
            Err(e) => tracing::warn!("{e}"),
        }
    }

    /// Ends the process's last run: the store closes as usual, while the live state and the
    /// matcher's indexes (millions of small allocations at 200,000 contracts, seconds to free
    /// one at a time) are left for the operating system to take back with the process.
    pub fn leave(mut self) {
        std::mem::forget(std::mem::take(&mut self.state));
        std::mem::forget(std::mem::take(&mut self.reconciler));
    }

    /// Processes every pending item in micro-batches; `progress` is told after each batch.
    pub async fn run_until_idle(
        &mut self,
        mut progress: impl FnMut(u64, u64),
    ) -> crate::error::Result<RunStats> {
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
            let size = self.batch_limit(self.config.ingest.batch_size);
            let mut batch = Vec::with_capacity(size);
            while batch.len() < size {
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
        // Dead letters and consumed documents found while reading, not yet written with a batch.
        if !(self.pending_letters.is_empty() && self.consumed_documents.is_empty()) {
            let mut dirty = Dirty::default();
            self.take_found_while_reading(&mut dirty, &mut stats);
            self.commit(&dirty, None).await?;
        }
        // Everything read is committed: drop-folder files can leave.
        merged.file_away()?;
        if let Some(mut feed) = self.kafka.take()
            && !self.stopping()
        {
            let drained = self.drain_kafka(&mut feed, &mut stats, &mut progress).await;
            self.kafka = Some(feed);
            drained?;
        }
        self.catch_up_rules().await?;
        Ok(stats)
    }

    /// A batch's size: at most `batch_size`, and never past the next point where the rules
    /// are evaluated, so those points fall on the same records whatever the batch size.
    pub(super) fn batch_limit(&self, batch_size: usize) -> usize {
        match self.rules.records_to_next_evaluation() {
            Some(n) => batch_size.min(n as usize).max(1),
            None => batch_size,
        }
    }

    /// After reading all there was: evaluates in full whatever the batches put off, so a
    /// run ends with the alerts a full evaluation gives.
    pub(super) async fn catch_up_rules(&mut self) -> crate::error::Result<()> {
        if !self.rules.behind {
            return Ok(());
        }
        let mut dirty = Dirty::default();
        let now = self.now();
        self.rules
            .catch_up(&mut self.state, now, &mut dirty, &self.metrics)
            .await;
        if !dirty.alerts.is_empty() {
            self.commit(&dirty, None).await?;
        }
        Ok(())
    }

    pub(super) fn stopping(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Applies what the Kafka topics hold (only them, not the files or the inbox).
    pub async fn run_kafka(&mut self) -> crate::error::Result<RunStats> {
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
    pub(super) async fn drain_kafka(
        &mut self,
        feed: &mut KafkaFeed,
        stats: &mut RunStats,
        progress: &mut impl FnMut(u64, u64),
    ) -> crate::error::Result<()> {
        let started = Instant::now();
        let mut done = 0u64;
        loop {
            let batch_size = self.batch_limit(self.config.ingest.batch_size);
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
                    return Err(crate::error::ServiceError::KafkaUnassigned {
                        brokers: brokers.to_string(),
                        waited_s: ASSIGNMENT_TIMEOUT.as_secs(),
                    });
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
    pub(super) async fn throttle_kafka(&self, feed: &mut KafkaFeed) -> crate::error::Result<()> {
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
}
