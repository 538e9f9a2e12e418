//! Runs the rule packs over the live tables and keeps the alert set: lifecycle changes go
//! to the state, the store and the outbox. A rule that fails to load or to run is skipped
//! and raises a red meta-alert; the other rules go on.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use reconlight_rules::lifecycle::apply;
use reconlight_rules::pack::{load_dir, load_embedded};
use reconlight_rules::{Breach, Engine, Evaluation, Level, Rule, RuleError, Transition};

use crate::config::Config;
use crate::escalation::EscalationConfig;
use crate::metrics::Metrics;
use crate::tables::build_tables;
use reconlight_core::outbox::OutboxMessage;
use reconlight_core::state::{Dirty, LiveState};

/// The id of the meta-rule whose alerts report broken rules.
pub const BROKEN_RULE_ID: &str = "reconlight.rule_broken";

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
        for rule in loaded.rules {
            match engine.check(&rule).await {
                Ok(()) => rules.push(rule),
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
        }
    }

    /// Evaluates every rule at `now` and applies the alert lifecycle.
    pub async fn evaluate(
        &mut self,
        state: &mut LiveState,
        now: DateTime<Utc>,
        refresh_tables: bool,
        dirty: &mut Dirty,
        metrics: &Metrics,
    ) {
        if refresh_tables {
            let started = std::time::Instant::now();
            for (name, batch) in build_tables(state, self.tolerance, self.tz, &self.extra_tables) {
                if let Err(e) = self.engine.set_table(&name, batch) {
                    tracing::error!("{e}");
                }
            }
            tracing::debug!(
                "live tables rebuilt in {:.3}s",
                started.elapsed().as_secs_f64()
            );
        }
        let mut failing: BTreeMap<String, RuleError> = self.broken.clone();
        for rule in &self.rules {
            let evaluation = match self.engine.evaluate(rule, now).await {
                Ok(e) => e,
                Err(e) => {
                    metrics.rule_errors.with_label_values(&[&rule.id]).inc();
                    tracing::error!("rule failed: {e}");
                    failing.insert(rule.id.clone(), e);
                    continue;
                }
            };
            metrics
                .rule_evaluation_seconds
                .with_label_values(&[&rule.id])
                .observe(evaluation.seconds);
            record(
                rule,
                &evaluation,
                state,
                now,
                dirty,
                metrics,
                &self.escalation,
            );
            if let Some(policy) = &rule.escalation {
                escalate(rule, policy, &self.escalation, state, now, dirty, metrics);
            }
        }
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
        record(
            &self.meta_rule,
            &meta,
            state,
            now,
            dirty,
            metrics,
            &self.escalation,
        );
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
    ) -> Result<Vec<BTreeMap<String, String>>, String> {
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

/// Applies clerks' and on-call's acknowledgements to the alerts they were made for.
pub fn apply_acks(
    state: &mut LiveState,
    acks: &BTreeMap<String, reconlight_rules::Acknowledgement>,
    dirty: &mut Dirty,
) {
    for (id, ack) in acks {
        if let Some(alert) = state.alerts.get_mut(id)
            && alert.state == reconlight_rules::AlertState::Firing
            && alert.fired_at == ack.fired_at
            && alert.acknowledged.as_ref() != Some(ack)
        {
            alert.acknowledged = Some(ack.clone());
            dirty.alerts.insert(id.clone());
        }
    }
}

/// Climbs the escalation tiers of a rule's firing alerts whose delays have passed.
#[allow(clippy::too_many_arguments)]
fn escalate(
    rule: &Rule,
    policy: &str,
    escalation: &EscalationConfig,
    state: &mut LiveState,
    now: DateTime<Utc>,
    dirty: &mut Dirty,
    metrics: &Metrics,
) {
    let ids: Vec<String> = state
        .alerts
        .values()
        .filter(|a| a.rule_id == rule.id)
        .map(|a| a.id.clone())
        .collect();
    for id in ids {
        let alert = state.alerts.get_mut(&id).expect("listed above");
        let Some((tier, notify)) = escalation.step(policy, alert, now) else {
            continue;
        };
        let climbed = tier > alert.tier;
        alert.tier = tier;
        alert.notify = notify;
        dirty.alerts.insert(id.clone());
        if climbed {
            metrics
                .alert_transitions
                .with_label_values(&[&rule.id, "tier_up"])
                .inc();
            dirty.outbox.push(OutboxMessage::new(
                "alerts",
                &id,
                &serde_json::json!({"transition": Transition::TierUp, "alert": alert}),
                now,
            ));
        }
    }
}

fn record(
    rule: &Rule,
    evaluation: &Evaluation,
    state: &mut LiveState,
    now: DateTime<Utc>,
    dirty: &mut Dirty,
    metrics: &Metrics,
    escalation: &EscalationConfig,
) {
    for (mut alert, transition) in apply(rule, evaluation, &state.alerts, now) {
        // A newly firing alert notifies its policy's first tier from the start.
        if transition == Some(Transition::Fired)
            && let Some(policy) = &rule.escalation
            && let Some((tier, notify)) = escalation.step(policy, &alert, now)
        {
            alert.tier = tier;
            alert.notify = notify;
        }
        if let Some(t) = transition {
            let name = serde_json::to_value(t)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            metrics
                .alert_transitions
                .with_label_values(&[&rule.id, &name])
                .inc();
            dirty.outbox.push(OutboxMessage::new(
                "alerts",
                &alert.id,
                &serde_json::json!({"transition": t, "alert": alert}),
                now,
            ));
            // A rule may ask other systems to act when it fires (e.g. `lead.nurture`).
            if let (Transition::Fired, Some(action)) = (t, &rule.action) {
                dirty.outbox.push(OutboxMessage::new(
                    "actions",
                    &alert.id,
                    &serde_json::json!({
                        "action": action,
                        "rule": rule.id,
                        "subject": alert.subject,
                        "alert_id": alert.id,
                        "fields": alert.fields,
                        "at": now,
                    }),
                    now,
                ));
            }
        }
        dirty.alerts.insert(alert.id.clone());
        state.alerts.insert(alert.id.clone(), alert);
    }
}
