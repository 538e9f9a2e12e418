//! `reconlight rules test`: test files give table rows at given times and the alerts
//! expected after each evaluation, in the spirit of `promtool test rules`.
//!
//! ```toml
//! rules = ["finance.installment_overdue"]      # which rules the cases evaluate
//!
//! [[case]]
//! name = "yellow the day after the due date"
//!
//! [[case.step]]
//! at = "2026-10-02T01:00:00Z"                 # the pipeline clock for this evaluation
//! restart = false                             # true: reload the alert state, as after a restart
//! [case.step.tables]                          # tables given here replace what they held
//! installments = [{ contract_no = "HT-1", seq = 1, due_date = "2026-10-01", amount = "100.00" }]
//! [[case.step.expect]]                        # every alert of the rules after this step
//! rule = "finance.installment_overdue"
//! subject = "HT-1/1"
//! level = "yellow"
//! state = "firing"
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::engine::Engine;
use crate::lifecycle::{Alert, apply};
use crate::rule::{Rule, RuleError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    rules: Vec<String>,
    #[serde(rename = "case")]
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(rename = "step")]
    steps: Vec<Step>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    at: DateTime<Utc>,
    #[serde(default)]
    restart: bool,
    #[serde(default)]
    tables: BTreeMap<String, Vec<toml::Table>>,
    #[serde(default)]
    expect: Vec<Expected>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
struct Expected {
    rule: String,
    subject: String,
    level: String,
    state: String,
}

/// The outcome of one test case.
#[derive(Debug)]
pub struct CaseResult {
    pub file: String,
    pub case: String,
    /// Empty when the case passed; else what differed, step by step.
    pub failures: Vec<String>,
}

/// Runs every case of a test file against the given rules, over tables of the given schemas.
pub async fn run_file(
    origin: &str,
    text: &str,
    rules: &[Rule],
    schemas: &[(String, SchemaRef)],
    tz: Tz,
) -> Result<Vec<CaseResult>, RuleError> {
    let err = |m: String| RuleError {
        file: origin.to_string(),
        line: 1,
        message: m,
    };
    let file: TestFile = toml::from_str(text).map_err(|e| RuleError {
        file: origin.to_string(),
        line: e
            .span()
            .map(|s| text[..s.start].matches('\n').count() + 1)
            .unwrap_or(1),
        message: e.message().to_string(),
    })?;
    let selected: Vec<&Rule> = file
        .rules
        .iter()
        .map(|id| {
            rules
                .iter()
                .find(|r| &r.id == id)
                .ok_or_else(|| err(format!("no rule `{id}` is loaded")))
        })
        .collect::<Result<_, _>>()?;
    let mut results = Vec::new();
    for case in &file.cases {
        let mut failures = Vec::new();
        let mut engine = fresh_engine(schemas, tz);
        let mut tables: BTreeMap<String, RecordBatch> = BTreeMap::new();
        let mut alerts: BTreeMap<String, Alert> = BTreeMap::new();
        for (i, step) in case.steps.iter().enumerate() {
            let at = format!("step {} ({})", i + 1, step.at.to_rfc3339());
            if step.restart {
                // A new process: a new engine, and the alert state as the store gave it back.
                let stored = serde_json::to_string(&alerts).expect("alerts serialize");
                alerts = serde_json::from_str(&stored).expect("alerts deserialize");
                engine = fresh_engine(schemas, tz);
                for (name, batch) in &tables {
                    engine
                        .set_table(name, batch.clone())
                        .map_err(|e| err(e.to_string()))?;
                }
            }
            for (name, rows) in &step.tables {
                let schema = schemas
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, s)| s.clone())
                    .ok_or_else(|| err(format!("case `{}`: no table `{name}`", case.name)))?;
                let batch = batch_from_rows(&schema, rows)
                    .map_err(|m| err(format!("case `{}`, {at}, table `{name}`: {m}", case.name)))?;
                engine
                    .set_table(name, batch.clone())
                    .map_err(|e| err(e.to_string()))?;
                tables.insert(name.clone(), batch);
            }
            for rule in &selected {
                match engine.evaluate(rule, step.at).await {
                    Ok(eval) => {
                        for (alert, _) in apply(rule, &eval, &alerts, step.at) {
                            alerts.insert(alert.id.clone(), alert);
                        }
                    }
                    Err(e) => failures.push(format!("{at}: {} failed: {}", rule.id, e.message)),
                }
            }
            let got: BTreeSet<Expected> = alerts
                .values()
                .map(|a| Expected {
                    rule: a.rule_id.clone(),
                    subject: a.subject.clone(),
                    level: a.level.as_str().to_string(),
                    state: a.state.as_str().to_string(),
                })
                .collect();
            let want: BTreeSet<Expected> = step.expect.iter().cloned().collect();
            for missing in want.difference(&got) {
                failures.push(format!(
                    "{at}: expected {} {} {} {}, not there",
                    missing.rule, missing.subject, missing.level, missing.state
                ));
            }
            for extra in got.difference(&want) {
                failures.push(format!(
                    "{at}: unexpected {} {} {} {}",
                    extra.rule, extra.subject, extra.level, extra.state
                ));
            }
        }
        results.push(CaseResult {
            file: origin.to_string(),
            case: case.name.clone(),
            failures,
        });
    }
    Ok(results)
}

fn fresh_engine(schemas: &[(String, SchemaRef)], tz: Tz) -> Engine {
    let engine = Engine::new(tz);
    for (name, schema) in schemas {
        engine
            .set_empty_table(name, schema.clone())
            .expect("empty table registers");
    }
    engine
}

fn text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A test case's row that does not fit its table.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadRow(String);

impl From<String> for BadRow {
    fn from(why: String) -> Self {
        BadRow(why)
    }
}

/// Builds a batch of the table's schema from TOML rows; absent columns are null.
fn batch_from_rows(schema: &SchemaRef, rows: &[toml::Table]) -> Result<RecordBatch, BadRow> {
    for row in rows {
        for key in row.keys() {
            if schema.field_with_name(key).is_err() {
                return Err(BadRow(format!("no column `{key}`")));
            }
        }
    }
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let values: Vec<Option<&toml::Value>> = rows.iter().map(|r| r.get(field.name())).collect();
        let bad = |v: &toml::Value, what: &str| {
            format!("column `{}`: `{}` is not {what}", field.name(), text(v))
        };
        let array: ArrayRef = match field.data_type() {
            DataType::Utf8 => Arc::new(StringArray::from(
                values.iter().map(|v| v.map(text)).collect::<Vec<_>>(),
            )),
            DataType::Int64 => Arc::new(Int64Array::from(
                values
                    .iter()
                    .map(|v| {
                        v.map(|v| v.as_integer().ok_or_else(|| bad(v, "an integer")))
                            .transpose()
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            )),
            DataType::Float64 => Arc::new(Float64Array::from(
                values
                    .iter()
                    .map(|v| {
                        v.map(|v| {
                            v.as_float()
                                .or(v.as_integer().map(|i| i as f64))
                                .ok_or_else(|| bad(v, "a number"))
                        })
                        .transpose()
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            )),
            DataType::Boolean => Arc::new(BooleanArray::from(
                values
                    .iter()
                    .map(|v| {
                        v.map(|v| v.as_bool().ok_or_else(|| bad(v, "a boolean")))
                            .transpose()
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            )),
            DataType::Decimal128(p, s) => {
                let units = values
                    .iter()
                    .map(|v| {
                        v.map(|v| {
                            let mut d =
                                Decimal::from_str(&text(v)).map_err(|_| bad(v, "a decimal"))?;
                            d.rescale(*s as u32);
                            Ok::<i128, String>(d.mantissa())
                        })
                        .transpose()
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Arc::new(
                    Decimal128Array::from(units)
                        .with_precision_and_scale(*p, *s)
                        .map_err(|e| e.to_string())?,
                )
            }
            DataType::Date32 => Arc::new(Date32Array::from(
                values
                    .iter()
                    .map(|v| {
                        v.map(|v| {
                            NaiveDate::parse_from_str(&text(v), "%Y-%m-%d")
                                .map(|d| (d - epoch).num_days() as i32)
                                .map_err(|_| bad(v, "a date (YYYY-MM-DD)"))
                        })
                        .transpose()
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            )),
            DataType::Timestamp(_, tz) => {
                let micros = values
                    .iter()
                    .map(|v| {
                        v.map(|v| {
                            DateTime::parse_from_rfc3339(&text(v))
                                .map(|t| t.timestamp_micros())
                                .map_err(|_| bad(v, "an RFC 3339 time"))
                        })
                        .transpose()
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let a = TimestampMicrosecondArray::from(micros);
                Arc::new(match tz {
                    Some(tz) => a.with_timezone(tz.clone()),
                    None => a,
                })
            }
            other => {
                return Err(BadRow(format!(
                    "column `{}` has type {other}, which test files cannot fill",
                    field.name()
                )));
            }
        };
        columns.push(array);
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| BadRow(e.to_string()))
}
