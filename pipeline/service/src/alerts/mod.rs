//! Runs the rule packs over the live tables and keeps the alert set: lifecycle changes go
//! to the state, the store and the outbox. A rule that fails to load or to run is skipped
//! and raises a red meta-alert; the other rules go on.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use reconlight_rules::lifecycle::{apply, apply_among};
use reconlight_rules::pack::{load_dir, load_embedded};
use reconlight_rules::scope::{Analysis, Scope};
use reconlight_rules::{Breach, Engine, Evaluation, Level, Rule, RuleError};

use crate::config::{ClockMode, Config};
use crate::escalation::EscalationConfig;
use crate::metrics::Metrics;
mod active;
mod record;

use crate::tables::{
    ChangedSubjects, PARTITIONINGS, Selection, SubjectIndex, build_selected, build_tables,
};
use reconlight_core::state::{Dirty, LiveState};
pub use record::apply_acks;
use record::{escalate, record};

/// The id of the meta-rule whose alerts report broken rules.
pub const BROKEN_RULE_ID: &str = "reconlight.rule_broken";

/// Where a replay stands between two evaluations. On event time the rules are evaluated
/// after every `[rules] evaluate_every` records of the merged input, not after every batch,
/// so the same input gives the same alerts whatever the batch size; what the batches in
/// between changed waits here (and in the store, across a restart).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EvaluationCursor {
    /// Records of the merged input taken so far.
    pub records: u64,
    /// Subjects changed since the last evaluation.
    pub pending: ChangedSubjects,
}

/// The store's name for the cursor.
pub const CURSOR_META: &str = "rules_cursor";

/// The loaded rules and the DataFusion session they run in.
pub struct RuleRunner {
    engine: Engine,
    pub rules: Vec<Rule>,
    /// Rules that failed to load or to plan, by rule id (or file when the id is unknown).
    pub broken: BTreeMap<String, RuleError>,
    meta_rule: Rule,
    tolerance: rust_decimal::Decimal,
    tz: chrono_tz::Tz,
    extra_tables: std::collections::BTreeMap<String, reconlight_formats::crm::extra::ExtraTable>,
    escalation: EscalationConfig,
    /// How each rule can be evaluated when a batch changed some subjects, by rule id.
    pub analyses: BTreeMap<String, Analysis>,
    /// Each contract's rows in the other tables.
    index: SubjectIndex,
    /// Pending and firing alerts by rule: the ones an evaluation may change.
    active: active::ActiveAlerts,
    /// Rules that failed when last run, reported by the meta-rule.
    failing: BTreeMap<String, RuleError>,
    /// `[rules] full_every`.
    pub full_every: std::time::Duration,
    last_full: Option<std::time::Instant>,
    clock: ClockMode,
    /// The pipeline time of the last batch evaluated.
    last_batch_now: Option<DateTime<Utc>>,
    /// The pipeline time of the last full evaluation.
    last_now: Option<DateTime<Utc>>,
    /// Some evaluation was put off since the last full one.
    pub behind: bool,
    /// Check every partitioned evaluation against a full one (slow: tests, diagnosis).
    pub verify: bool,
    pub verify_failures: Vec<String>,
    /// `[rules] evaluate_every` on event time (0: after every batch).
    evaluate_every: u64,
    pub cursor: EvaluationCursor,
}

impl RuleRunner {
    /// Loads the configured packs (or the shipped ones) and checks every rule's SQL.
    pub async fn load(config: &Config) -> RuleRunner {
        let loaded = match &config.rules.dir {
            Some(dir) => load_dir(&config.resolve(dir)),
            None => load_embedded(),
        };
        let tz = config.business.time_zone;
        let engine = Engine::new(tz);
        let empty = LiveState::default();
        for (name, batch) in build_tables(
            &empty,
            config.business.amount_tolerance,
            tz,
            &config.crm.tables,
        ) {
            engine
                .set_table(&name, batch)
                .expect("fresh table registers");
        }
        let mut broken: BTreeMap<String, RuleError> = BTreeMap::new();
        for e in loaded.errors {
            tracing::error!("rule skipped: {e}");
            broken.insert(e.file.clone(), e);
        }
        let mut rules = Vec::new();
        let mut analyses = BTreeMap::new();
        for rule in loaded.rules {
            let checked = match engine.check(&rule).await {
                Ok(()) => engine.analyse(&rule, &PARTITIONINGS).await,
                Err(e) => Err(e),
            };
            match checked {
                Ok(analysis) => {
                    analyses.insert(rule.id.clone(), analysis);
                    rules.push(rule);
                }
                Err(e) => {
                    tracing::error!("rule skipped: {e}");
                    broken.insert(rule.id.clone(), e);
                }
            }
        }
        let meta_rule = Rule::parse(
            "reconlight (built in)",
            &format!(
                "id = \"{BROKEN_RULE_ID}\"\ntitle = \"A rule is broken and is not being evaluated\"\nsubject = [\"rule\"]\nsql = \"\"\n[labels]\nteam = \"platform\"\n[annotations]\nsummary = \"{{file}}:{{line}}: {{message}}\"\n"
            ),
        )
        .expect("the built-in meta rule parses");
        RuleRunner {
            engine,
            rules,
            broken,
            meta_rule,
            tolerance: config.business.amount_tolerance,
            tz,
            extra_tables: config.crm.tables.clone(),
            escalation: config.escalation.clone(),
            analyses,
            index: SubjectIndex::default(),
            active: Default::default(),
            failing: BTreeMap::new(),
            full_every: config.rules.full_every.0.to_std().unwrap_or_default(),
            last_full: None,
            clock: config.ingest.clock,
            last_batch_now: None,
            last_now: None,
            behind: false,
            verify: false,
            verify_failures: Vec::new(),
            evaluate_every: match config.ingest.clock {
                ClockMode::EventTime => config.rules.evaluate_every,
                ClockMode::Wall => 0,
            },
            cursor: EvaluationCursor::default(),
        }
    }

    /// How many more records the batch being read may take before the next evaluation
    /// point (`None`: no limit).
    pub fn records_to_next_evaluation(&self) -> Option<u64> {
        (self.evaluate_every > 0)
            .then(|| self.evaluate_every - self.cursor.records % self.evaluate_every)
    }

    /// Counts a batch's records; true when the rules are due after it.
    pub fn take_records(&mut self, n: u64) -> bool {
        self.cursor.records += n;
        self.evaluate_every == 0 || self.cursor.records.is_multiple_of(self.evaluate_every)
    }

    /// Notes what a batch changed without evaluating: the next evaluation takes it in.
    pub fn defer(&mut self, state: &LiveState, dirty: &mut Dirty) {
        let changed = self.index.update(state, dirty);
        self.cursor.pending.contracts.extend(changed.contracts);
        self.cursor.pending.credits.extend(changed.credits);
        self.behind = true;
        self.save_cursor(dirty);
    }

    /// Writes the cursor with the batch, so a restart resumes between the same points.
    fn save_cursor(&self, dirty: &mut Dirty) {
        if self.evaluate_every > 0 {
            // Once per batch: a multi-row upsert may not name the same key twice.
            dirty.meta.retain(|(name, _)| name != CURSOR_META);
            dirty.meta.push((
                CURSOR_META.to_string(),
                serde_json::to_string(&self.cursor).expect("the cursor serializes"),
            ));
        }
    }

    /// Indexes the state the rules will be evaluated over (at start-up and after a reload).
    pub fn attach(&mut self, state: &LiveState) {
        self.index = SubjectIndex::new(state);
        self.last_batch_now = state.watermark;
        self.active.clear();
        for a in state.alerts.values() {
            self.active.update(None, a);
        }
    }

    /// Whether a full evaluation is due. On the wall clock: the interval has passed since
    /// the last one. On event time: the pipeline clock crossed a multiple of the interval
    /// since the last batch, so a replay (and a replay resumed after a crash) evaluates in
    /// full at the same batches every time.
    fn full_due(&self, now: DateTime<Utc>) -> bool {
        if self.full_every.is_zero() {
            return true;
        }
        match self.clock {
            ClockMode::Wall => self
                .last_full
                .is_none_or(|at| at.elapsed() >= self.full_every),
            ClockMode::EventTime => {
                let every = self.full_every.as_millis().max(1) as i64;
                let slot = |t: DateTime<Utc>| t.timestamp_millis().div_euclid(every);
                self.last_batch_now
                    .is_none_or(|last| slot(last) != slot(now))
            }
        }
    }

    /// Brings the alerts up to date with a batch: each rule partitioned by a key (see
    /// `reconlight_rules::scope`) is evaluated over the rows of the subjects the batch
    /// changed; the other rules, and what the clock alone changes, wait for the next full
    /// evaluation, which runs here when `[rules] full_every` has passed since the last.
    pub async fn evaluate_batch(
        &mut self,
        state: &mut LiveState,
        now: DateTime<Utc>,
        dirty: &mut Dirty,
        metrics: &Metrics,
    ) {
        let mut changed = self.index.update(state, dirty);
        let pending = std::mem::take(&mut self.cursor.pending);
        changed.contracts.extend(pending.contracts);
        changed.credits.extend(pending.credits);
        self.save_cursor(dirty);
        let full = self.full_due(now);
        self.last_batch_now = Some(now);
        if full {
            return self.evaluate_full(state, now, dirty, metrics).await;
        }
        if changed.contracts.is_empty() && changed.credits.is_empty() {
            self.behind |= self.last_now != Some(now);
            return;
        }
        self.behind = true;
        let started = std::time::Instant::now();
        for (key, selection) in [
            ("contract_no", Selection::Contracts(&changed.contracts)),
            ("bank_ref", Selection::Credits(&changed.credits)),
        ] {
            let keys = match &selection {
                Selection::Contracts(k) | Selection::Credits(k) => *k,
                Selection::All => continue,
            };
            let rules: Vec<Rule> = self
                .rules
                .iter()
                .filter(|r| {
                    matches!(&self.analyses.get(&r.id).map(|a| &a.scope),
                        Some(Scope::Partitioned { key: k }) if k == key)
                })
                .cloned()
                .collect();
            if keys.is_empty() || rules.is_empty() {
                continue;
            }
            let tables = build_selected(
                state,
                self.tolerance,
                self.tz,
                &self.extra_tables,
                &selection,
                &self.index,
            );
            for (name, batch) in tables {
                if let Err(e) = self.engine.set_table(&name, batch) {
                    tracing::error!("{e}");
                }
            }
            let mut evaluations = Vec::new();
            for rule in rules {
                let Some(evaluation) = self.run(&rule, now, metrics).await else {
                    continue;
                };
                evaluations.push((rule, evaluation));
            }
            if self.verify {
                self.check_against_full(state, now, key, keys, &evaluations)
                    .await;
            }
            for (rule, evaluation) in &evaluations {
                let evaluated = self.active.with_values(&rule.id, key, keys, &state.alerts);
                let changes =
                    apply_among(rule, evaluation, &state.alerts, evaluated.into_iter(), now);
                record(
                    rule,
                    changes,
                    state,
                    now,
                    dirty,
                    metrics,
                    &self.escalation,
                    &mut self.active,
                );
            }
        }
        tracing::debug!(
            "rules evaluated for {} contracts and {} credits in {:.3}s",
            changed.contracts.len(),
            changed.credits.len(),
            started.elapsed().as_secs_f64()
        );
    }

    /// Compares partitioned evaluations with a full evaluation's breaches of the same
    /// subjects, noting every difference in `verify_failures` (tests, diagnosis).
    async fn check_against_full(
        &mut self,
        state: &LiveState,
        now: DateTime<Utc>,
        key: &str,
        keys: &BTreeSet<String>,
        partial: &[(Rule, Evaluation)],
    ) {
        for (name, batch) in build_tables(state, self.tolerance, self.tz, &self.extra_tables) {
            if let Err(e) = self.engine.set_table(&name, batch) {
                tracing::error!("{e}");
            }
        }
        let sorted = |breaches: Vec<&Breach>| -> Vec<(String, Level, BTreeMap<String, String>)> {
            let mut v: Vec<_> = breaches
                .into_iter()
                .map(|b| (b.subject.clone(), b.level, b.fields.clone()))
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        for (rule, evaluation) in partial {
            let Ok(full) = self.engine.evaluate(rule, now).await else {
                continue;
            };
            let expected = sorted(
                full.breaches
                    .iter()
                    .filter(|b| b.fields.get(key).is_some_and(|v| keys.contains(v)))
                    .collect(),
            );
            let got = sorted(evaluation.breaches.iter().collect());
            if expected != got {
                self.verify_failures.push(format!(
                    "{} for {} {key} values: partitioned {got:?}, full {expected:?}",
                    rule.id,
                    keys.len()
                ));
            }
        }
    }

    /// Evaluates a full pass if any evaluation was put off since the last one (the end of
    /// a run, the clock tick), so that the alerts end as a full evaluation gives them.
    pub async fn catch_up(
        &mut self,
        state: &mut LiveState,
        now: DateTime<Utc>,
        dirty: &mut Dirty,
        metrics: &Metrics,
    ) {
        if self.behind || self.last_now != Some(now) {
            self.evaluate_full(state, now, dirty, metrics).await;
        }
    }

    /// Evaluates every rule over every row at `now`, climbs escalation tiers, and reports
    /// broken rules.
    pub async fn evaluate_full(
        &mut self,
        state: &mut LiveState,
        now: DateTime<Utc>,
        dirty: &mut Dirty,
        metrics: &Metrics,
    ) {
        let started = std::time::Instant::now();
        self.index.index_work_items(state);
        for (name, batch) in build_tables(state, self.tolerance, self.tz, &self.extra_tables) {
            if let Err(e) = self.engine.set_table(&name, batch) {
                tracing::error!("{e}");
            }
        }
        tracing::debug!(
            "live tables rebuilt in {:.3}s",
            started.elapsed().as_secs_f64()
        );
        self.failing.clear();
        for i in 0..self.rules.len() {
            let rule = self.rules[i].clone();
            let Some(evaluation) = self.run(&rule, now, metrics).await else {
                continue;
            };
            let changes = apply(&rule, &evaluation, &state.alerts, now);
            record(
                &rule,
                changes,
                state,
                now,
                dirty,
                metrics,
                &self.escalation,
                &mut self.active,
            );
            if let Some(policy) = &rule.escalation {
                let ids = self.active.of_rule(&rule.id).cloned().unwrap_or_default();
                escalate(
                    &rule,
                    policy,
                    &ids,
                    &self.escalation,
                    state,
                    now,
                    dirty,
                    metrics,
                );
            }
        }
        let mut failing = self.broken.clone();
        failing.extend(self.failing.clone());
        let meta = Evaluation {
            breaches: failing
                .iter()
                .map(|(id, e)| Breach {
                    subject: id.clone(),
                    level: Level::Red,
                    fields: BTreeMap::from([
                        ("rule".to_string(), id.clone()),
                        ("file".to_string(), e.file.clone()),
                        ("line".to_string(), e.line.to_string()),
                        ("message".to_string(), e.message.clone()),
                    ]),
                })
                .collect(),
            ..Default::default()
        };
        let changes = apply(&self.meta_rule, &meta, &state.alerts, now);
        let meta_rule = self.meta_rule.clone();
        record(
            &meta_rule,
            changes,
            state,
            now,
            dirty,
            metrics,
            &self.escalation,
            &mut self.active,
        );
        self.last_full = Some(std::time::Instant::now());
        self.last_now = Some(now);
        self.behind = false;
        self.cursor.pending = ChangedSubjects::default();
        self.save_cursor(dirty);
    }

    /// Runs one rule over the tables as they are registered; a failure is counted, logged
    /// and reported by the meta-rule at the next full evaluation.
    async fn run(
        &mut self,
        rule: &Rule,
        now: DateTime<Utc>,
        metrics: &Metrics,
    ) -> Option<Evaluation> {
        match self.engine.evaluate(rule, now).await {
            Ok(e) => {
                metrics
                    .rule_evaluation_seconds
                    .with_label_values(&[&rule.id])
                    .observe(e.seconds);
                Some(e)
            }
            Err(e) => {
                metrics.rule_errors.with_label_values(&[&rule.id]).inc();
                tracing::error!("rule failed: {e}");
                self.failing.insert(rule.id.clone(), e);
                None
            }
        }
    }

    /// Runs every rule-pack test file (the configured packs' `tests/`, or the shipped ones).
    pub async fn test_packs(
        &self,
        config: &Config,
    ) -> Result<Vec<reconlight_rules::testing::CaseResult>, RuleError> {
        let empty = LiveState::default();
        let schemas: Vec<(String, datafusion::arrow::datatypes::SchemaRef)> =
            build_tables(&empty, self.tolerance, self.tz, &self.extra_tables)
                .into_iter()
                .map(|(n, b)| (n, b.schema()))
                .collect();
        let files: Vec<(String, String)> = match &config.rules.dir {
            Some(dir) => {
                let dir = config.resolve(dir);
                let mut found = Vec::new();
                collect_test_files(&dir, &mut found);
                found.sort();
                found
                    .into_iter()
                    .map(|p| {
                        std::fs::read_to_string(&p)
                            .map(|t| (p.display().to_string(), t))
                            .map_err(|e| RuleError {
                                file: p.display().to_string(),
                                line: 0,
                                message: format!("cannot read: {e}"),
                            })
                    })
                    .collect::<Result<_, _>>()?
            }
            None => reconlight_rules::pack::embedded_test_files()
                .into_iter()
                .map(|(rel, text)| (format!("rules/packs/{rel}"), text.to_string()))
                .collect(),
        };
        let mut results = Vec::new();
        for (origin, text) in files {
            results.extend(
                reconlight_rules::testing::run_file(&origin, &text, &self.rules, &schemas, self.tz)
                    .await?,
            );
        }
        Ok(results)
    }

    /// Runs ad-hoc SQL over the tables as of the last evaluation.
    pub async fn query(
        &self,
        sql: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<BTreeMap<String, String>>, reconlight_rules::engine::EngineError> {
        self.engine.query(sql, now).await
    }
}

fn collect_test_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_test_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml")
            && path.components().any(|c| c.as_os_str() == "tests")
        {
            out.push(path);
        }
    }
}
