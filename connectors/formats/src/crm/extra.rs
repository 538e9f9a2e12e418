//! CRM tables beyond the reference three, mapped by configuration and kept as typed rows
//! for the rules: sales targets, corrective actions, leads, lead interactions, marketing
//! spend, or any other table a rule needs. Each has a key and typed columns.

use crate::error::{ValueError, invalid};
use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::debezium::parse_timestamp;
use crate::model::{Row, Value};

/// The SQL type of a column.
#[derive(schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    Text,
    Int,
    /// Money and other exact numbers: `DECIMAL(18, 2)` in SQL.
    Decimal,
    Bool,
    /// `TIMESTAMP` (UTC).
    Timestamp,
    /// A calendar date.
    Date,
}

/// One extra table: where its change events come from, its key and its columns.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraTable {
    /// `schema.table` as the change events name it (a bare name matches any schema).
    pub table: String,
    /// The primary-key columns.
    pub key: Vec<String>,
    /// Column name -> type; rules see exactly these columns.
    pub columns: BTreeMap<String, ColumnType>,
}

impl ExtraTable {
    fn new(table: &str, key: &[&str], columns: &[(&str, ColumnType)]) -> Self {
        ExtraTable {
            table: table.into(),
            key: key.iter().map(|k| k.to_string()).collect(),
            columns: columns.iter().map(|(c, t)| (c.to_string(), *t)).collect(),
        }
    }

    /// True when a change event's `schema.table` is this table.
    pub fn matches(&self, table: &str) -> bool {
        if self.table.contains('.') {
            self.table == table
        } else {
            table.rsplit('.').next() == Some(self.table.as_str())
        }
    }

    /// The row's key: its key columns' values joined by `/`.
    pub fn key_of(&self, row: &Row) -> Result<String, ValueError> {
        let parts: Result<Vec<String>, ValueError> = self
            .key
            .iter()
            .map(|k| match row.get(k) {
                None | Some(Value::Null) => Err(invalid!("key column `{k}` is missing")),
                Some(v) => Ok(text_of(v)),
            })
            .collect();
        Ok(parts?.join("/"))
    }

    /// Keeps the declared columns, each converted to its type.
    pub fn typed(&self, row: &Row) -> Result<Row, ValueError> {
        let mut out = Row::new();
        for (col, ty) in &self.columns {
            let v = row.get(col).cloned().unwrap_or(Value::Null);
            out.insert(
                col.clone(),
                convert(&v, *ty).map_err(|e| invalid!("column `{col}`: {e}"))?,
            );
        }
        Ok(out)
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Decimal(d) => d.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Timestamp(t) => t.to_rfc3339(),
        Value::Date(d) => d.to_string(),
        Value::Time(t) => t.to_string(),
        Value::Json(j) => j.to_string(),
        Value::Bytes(b) => format!("{b:?}"),
        Value::Null => String::new(),
    }
}

fn convert(v: &Value, ty: ColumnType) -> Result<Value, ValueError> {
    if matches!(v, Value::Null) {
        return Ok(Value::Null);
    }
    Ok(match ty {
        ColumnType::Text => Value::Text(text_of(v)),
        ColumnType::Int => match v {
            Value::Int(i) => Value::Int(*i),
            Value::Text(s) => Value::Int(s.trim().parse().map_err(|_| invalid!("`{s}` is not an integer"))?),
            Value::Bool(b) => Value::Int(*b as i64),
            other => return Err(invalid!("expected an integer, got {other:?}")),
        },
        ColumnType::Decimal => match v {
            Value::Decimal(d) => Value::Decimal(*d),
            Value::Int(i) => Value::Decimal(Decimal::from(*i)),
            Value::Float(f) => Value::Decimal(Decimal::from_str(&f.to_string()).map_err(|e| e.to_string())?),
            Value::Text(s) => Value::Decimal(Decimal::from_str(s.trim()).map_err(|_| {
                format!("`{s}` is not a decimal (with decimal.handling.mode=precise and no schema, declare it under debezium.decimal_columns)")
            })?),
            other => return Err(invalid!("expected a decimal, got {other:?}")),
        },
        ColumnType::Bool => match v {
            Value::Bool(b) => Value::Bool(*b),
            Value::Int(i) => Value::Bool(*i != 0),
            Value::Text(s) => Value::Bool(matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "t" | "1" | "yes" | "y")),
            other => return Err(invalid!("expected a boolean, got {other:?}")),
        },
        ColumnType::Timestamp => match v {
            Value::Timestamp(t) => Value::Timestamp(*t),
            Value::Date(d) => Value::Timestamp(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()),
            Value::Text(s) => Value::Timestamp(parse_timestamp(s)?),
            Value::Int(i) => Value::Timestamp(
                super::epoch_by_magnitude(*i).ok_or_else(|| invalid!("{i} is not a plausible epoch time"))?,
            ),
            other => return Err(invalid!("expected a timestamp, got {other:?}")),
        },
        ColumnType::Date => match v {
            Value::Date(d) => Value::Date(*d),
            Value::Timestamp(t) => Value::Date(t.date_naive()),
            Value::Text(s) => Value::Date(
                NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| invalid!("`{s}` is not a date (YYYY-MM-DD)"))?,
            ),
            Value::Int(days) => Value::Date(
                NaiveDate::from_num_days_from_ce_opt(*days as i32 + 719_163).ok_or_else(|| invalid!("{days} days is out of range"))?,
            ),
            other => return Err(invalid!("expected a date, got {other:?}")),
        },
    })
}

/// The reference schema's extra tables, read by the shipped rule packs.
pub fn reference_extra_tables() -> BTreeMap<String, ExtraTable> {
    use ColumnType::*;
    BTreeMap::from([
        (
            "sales_targets".to_string(),
            ExtraTable::new(
                "crm.sales_targets",
                &["target_id"],
                &[
                    ("target_id", Text),
                    ("owner_id", Text),
                    ("region", Text),
                    ("period_start", Date),
                    ("period_end", Date),
                    ("target_amount", Decimal),
                    ("currency", Text),
                    ("change_reason", Text),
                    ("updated_by", Text),
                    ("updated_at", Timestamp),
                ],
            ),
        ),
        (
            "corrective_actions".to_string(),
            ExtraTable::new(
                "crm.corrective_actions",
                &["action_id"],
                &[
                    ("action_id", Text),
                    ("owner_id", Text),
                    ("created_at", Timestamp),
                    ("created_by", Text),
                    ("description", Text),
                ],
            ),
        ),
        (
            "leads".to_string(),
            ExtraTable::new(
                "crm.leads",
                &["lead_id"],
                &[
                    ("lead_id", Text),
                    ("owner_id", Text),
                    ("grade", Text),
                    ("region", Text),
                    ("source", Text),
                    ("status", Text),
                    ("created_at", Timestamp),
                ],
            ),
        ),
        (
            "lead_interactions".to_string(),
            ExtraTable::new(
                "crm.lead_interactions",
                &["interaction_id"],
                &[
                    ("interaction_id", Text),
                    ("lead_id", Text),
                    ("at", Timestamp),
                    ("channel", Text),
                    ("effective", Bool),
                    ("note", Text),
                ],
            ),
        ),
        (
            "marketing_spend".to_string(),
            ExtraTable::new(
                "crm.marketing_spend",
                &["spend_id"],
                &[
                    ("spend_id", Text),
                    ("region", Text),
                    ("week_start", Date),
                    ("amount", Decimal),
                    ("currency", Text),
                ],
            ),
        ),
    ])
}
