//! Evaluates rules with DataFusion SQL over the pipeline's live tables.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::clock::{BusinessDate, BusinessToday, PipelineNow};
use crate::rule::{Level, Rule, RuleError};

/// One subject in breach of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breach {
    /// The subject columns' values joined by `/`.
    pub subject: String,
    pub level: Level,
    /// Every column of the breach row, as text.
    pub fields: BTreeMap<String, String>,
}

/// What one evaluation of a rule found.
#[derive(Clone, Debug, Default)]
pub struct Evaluation {
    pub breaches: Vec<Breach>,
    /// Subjects the rule's `resolve_sql` still holds (hysteresis); empty without one.
    pub holding: BTreeSet<String>,
    pub seconds: f64,
}

/// A DataFusion session holding the live tables.
pub struct Engine {
    ctx: SessionContext,
    tz: Tz,
}

impl Engine {
    pub fn new(tz: Tz) -> Self {
        let config = SessionConfig::new()
            .with_target_partitions(2)
            .with_information_schema(true);
        let ctx = SessionContext::new_with_config(config);
        ctx.register_udf(ScalarUDF::new_from_impl(BusinessDate::new(tz)));
        let engine = Engine { ctx, tz };
        engine.set_clock(DateTime::<Utc>::UNIX_EPOCH);
        engine
    }

    /// Points `now()` and `today()` at the pipeline clock.
    pub fn set_clock(&self, now: DateTime<Utc>) {
        self.ctx
            .register_udf(ScalarUDF::new_from_impl(PipelineNow::new(now)));
        self.ctx
            .register_udf(ScalarUDF::new_from_impl(BusinessToday::new(now, self.tz)));
    }

    /// Replaces (or adds) a table's contents.
    pub fn set_table(&self, name: &str, batch: RecordBatch) -> Result<(), EngineError> {
        let table_error = |source| EngineError::Table {
            table: name.to_string(),
            source: Box::new(source),
        };
        self.ctx.deregister_table(name).map_err(table_error)?;
        self.ctx
            .register_batch(name, batch)
            .map(|_| ())
            .map_err(table_error)
    }

    /// Registers an empty table with this schema, for checking rules without data.
    pub fn set_empty_table(&self, name: &str, schema: SchemaRef) -> Result<(), EngineError> {
        self.set_table(name, RecordBatch::new_empty(schema))
    }

    /// Plans a rule's SQL and checks that it yields the columns the evaluator needs.
    pub async fn check(&self, rule: &Rule) -> Result<(), RuleError> {
        let df =
            self.ctx.sql(&rule.sql).await.map_err(|e| {
                rule.sql_error(format!("{}: {}", rule.id, first_line(&e.to_string())))
            })?;
        let schema = df.schema();
        let mut missing: Vec<String> = Vec::new();
        for col in std::iter::once("level").chain(rule.subject.iter().map(String::as_str)) {
            if schema.field_with_unqualified_name(col).is_err() {
                missing.push(format!("`{col}`"));
            }
        }
        if !missing.is_empty() {
            return Err(rule.sql_error(format!(
                "{}: the query returns no {} column (it must return `level` and every subject column)",
                rule.id,
                missing.join(", ")
            )));
        }
        if let Some(resolve) = &rule.resolve_sql {
            let df = self.ctx.sql(resolve).await.map_err(|e| {
                rule.sql_error(format!(
                    "{} resolve_sql: {}",
                    rule.id,
                    first_line(&e.to_string())
                ))
            })?;
            for col in &rule.subject {
                if df.schema().field_with_unqualified_name(col).is_err() {
                    return Err(rule
                        .sql_error(format!("{} resolve_sql returns no `{col}` column", rule.id)));
                }
            }
        }
        Ok(())
    }

    /// Reads from the rule's plans which rows its answer for one subject depends on (see
    /// `scope`). The plans are taken before optimization, which folds the clock away.
    pub async fn analyse(
        &self,
        rule: &Rule,
        on_offer: &[crate::scope::Partitioning<'_>],
    ) -> Result<crate::scope::Analysis, RuleError> {
        let state = self.ctx.state();
        let mut plans = Vec::new();
        for sql in std::iter::once(&rule.sql).chain(rule.resolve_sql.iter()) {
            plans.push(state.create_logical_plan(sql).await.map_err(|e| {
                rule.sql_error(format!("{}: {}", rule.id, first_line(&e.to_string())))
            })?);
        }
        let plans: Vec<&datafusion::logical_expr::LogicalPlan> = plans.iter().collect();
        Ok(crate::scope::analyse(&plans, on_offer))
    }

    /// Runs a rule at the given pipeline time.
    pub async fn evaluate(&self, rule: &Rule, now: DateTime<Utc>) -> Result<Evaluation, RuleError> {
        let started = Instant::now();
        self.set_clock(now);
        let batches = self.run(rule, &rule.sql).await?;
        let mut by_subject: BTreeMap<String, Breach> = BTreeMap::new();
        for batch in &batches {
            for row in rows_as_text(batch).map_err(|e| rule.sql_error(e.to_string()))? {
                let subject = subject_of(rule, &row)?;
                let level_text = row.get("level").cloned().unwrap_or_default();
                let level = Level::parse(&level_text).ok_or_else(|| {
                    rule.sql_error(format!(
                        "{}: level `{level_text}` for subject `{subject}` is neither yellow nor red",
                        rule.id
                    ))
                })?;
                match by_subject.get(&subject) {
                    Some(existing) if existing.level >= level => {}
                    _ => {
                        by_subject.insert(
                            subject.clone(),
                            Breach {
                                subject,
                                level,
                                fields: row,
                            },
                        );
                    }
                }
            }
        }
        let mut holding = BTreeSet::new();
        if let Some(resolve) = &rule.resolve_sql {
            for batch in &self.run(rule, resolve).await? {
                for row in rows_as_text(batch).map_err(|e| rule.sql_error(e.to_string()))? {
                    holding.insert(subject_of(rule, &row)?);
                }
            }
        }
        Ok(Evaluation {
            breaches: by_subject.into_values().collect(),
            holding,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    async fn run(&self, rule: &Rule, sql: &str) -> Result<Vec<RecordBatch>, RuleError> {
        let df =
            self.ctx.sql(sql).await.map_err(|e| {
                rule.sql_error(format!("{}: {}", rule.id, first_line(&e.to_string())))
            })?;
        df.collect()
            .await
            .map_err(|e| rule.sql_error(format!("{}: {}", rule.id, first_line(&e.to_string()))))
    }

    /// Runs ad-hoc SQL over the live tables (for reports and the CLI).
    pub async fn query(
        &self,
        sql: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<BTreeMap<String, String>>, EngineError> {
        self.set_clock(now);
        let df = self
            .ctx
            .sql(sql)
            .await
            .map_err(|e| EngineError::Query(Box::new(e)))?;
        let batches = df
            .collect()
            .await
            .map_err(|e| EngineError::Query(Box::new(e)))?;
        let mut out = Vec::new();
        for b in &batches {
            out.extend(rows_as_text(b)?);
        }
        Ok(out)
    }
}

/// The engine could not take a table or run a query.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("table `{table}`: {source}")]
    Table {
        table: String,
        #[source]
        source: Box<datafusion::error::DataFusionError>,
    },
    #[error("{0}")]
    Query(#[source] Box<datafusion::error::DataFusionError>),
    #[error("{0}")]
    Arrow(#[source] datafusion::arrow::error::ArrowError),
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_string()
}

fn subject_of(rule: &Rule, row: &BTreeMap<String, String>) -> Result<String, RuleError> {
    let parts: Result<Vec<&str>, RuleError> = rule
        .subject
        .iter()
        .map(|c| {
            row.get(c).map(String::as_str).ok_or_else(|| {
                rule.sql_error(format!("{}: the query returns no `{c}` column", rule.id))
            })
        })
        .collect();
    Ok(parts?.join("/"))
}

/// Turns each row into column name -> display text (nulls become empty strings).
pub fn rows_as_text(batch: &RecordBatch) -> Result<Vec<BTreeMap<String, String>>, EngineError> {
    let options = FormatOptions::default().with_null("");
    let schema = batch.schema();
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()
        .map_err(EngineError::Arrow)?;
    let mut rows = Vec::with_capacity(batch.num_rows());
    for r in 0..batch.num_rows() {
        let mut row = BTreeMap::new();
        for (i, f) in formatters.iter().enumerate() {
            let value = if batch.column(i).is_null(r) {
                String::new()
            } else {
                f.value(r).to_string()
            };
            row.insert(schema.field(i).name().clone(), value);
        }
        rows.push(row);
    }
    Ok(rows)
}
