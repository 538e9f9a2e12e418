//! Mapping a CRM's tables onto reconlight's reference schema (`crm.customers`,
//! `crm.contracts`, `crm.handoff_tickets`). A real CRM names its tables, columns and status
//! values its own way; the mapping is configuration, and the defaults read the reference
//! schema as `generate` emits it.

use crate::error::{ValueError, invalid};
use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

pub mod extra;

use crate::debezium::parse_timestamp;
use crate::model::{
    Contract, ContractStatus, Currency, Customer, HandoffTicket, Money, Row, Value,
};

/// The reference tables reconlight understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CrmTable {
    Customers,
    Contracts,
    HandoffTickets,
}

/// Where one reference table lives in the CRM, and what its columns are called there.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableMapping {
    /// `schema.table` as the change events name it (a bare `table` matches any schema).
    pub table: String,
    /// Reference column name -> the CRM's column name, for the columns that differ.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
}

impl TableMapping {
    fn named(table: &str) -> Self {
        TableMapping {
            table: table.into(),
            columns: BTreeMap::new(),
        }
    }

    fn column<'a>(&'a self, canonical: &'a str) -> &'a str {
        self.columns
            .get(canonical)
            .map(String::as_str)
            .unwrap_or(canonical)
    }

    fn matches(&self, table: &str) -> bool {
        if self.table.contains('.') {
            self.table == table
        } else {
            table.rsplit('.').next() == Some(self.table.as_str())
        }
    }
}

/// The whole CRM mapping.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrmMapping {
    pub customers: TableMapping,
    pub contracts: TableMapping,
    pub handoff_tickets: TableMapping,
    /// The CRM's contract status values -> `draft`, `pending_signature`, `signed`, `cancelled`.
    pub status_values: BTreeMap<String, String>,
    /// Currency of contracts whose row names none.
    pub default_currency: Currency,
    /// More tables for the rules, by the name SQL sees them under.
    pub tables: BTreeMap<String, extra::ExtraTable>,
}

impl Default for CrmMapping {
    fn default() -> Self {
        CrmMapping {
            customers: TableMapping::named("crm.customers"),
            contracts: TableMapping::named("crm.contracts"),
            handoff_tickets: TableMapping::named("crm.handoff_tickets"),
            status_values: BTreeMap::new(),
            default_currency: Currency::CNY,
            tables: extra::reference_extra_tables(),
        }
    }
}

/// A row of a reference table, typed.
#[derive(Clone, Debug, PartialEq)]
pub enum CrmEntity {
    Customer(Customer),
    Contract(Contract),
    HandoffTicket(HandoffTicket),
}

impl CrmMapping {
    /// Which reference table a CDC table is, if any.
    pub fn table_of(&self, table: &str) -> Option<CrmTable> {
        if self.contracts.matches(table) {
            Some(CrmTable::Contracts)
        } else if self.customers.matches(table) {
            Some(CrmTable::Customers)
        } else if self.handoff_tickets.matches(table) {
            Some(CrmTable::HandoffTickets)
        } else {
            None
        }
    }

    /// The extra table a CDC table is, if any: (SQL name, definition).
    pub fn extra_table_of(&self, table: &str) -> Option<(&str, &extra::ExtraTable)> {
        self.tables
            .iter()
            .find(|(_, t)| t.matches(table))
            .map(|(n, t)| (n.as_str(), t))
    }

    fn mapping(&self, table: CrmTable) -> &TableMapping {
        match table {
            CrmTable::Customers => &self.customers,
            CrmTable::Contracts => &self.contracts,
            CrmTable::HandoffTickets => &self.handoff_tickets,
        }
    }

    /// The primary key of a row (for deletes, whose `before` image may be partial).
    pub fn key(&self, table: CrmTable, row: &Row) -> Result<String, ValueError> {
        let m = self.mapping(table);
        let canonical = match table {
            CrmTable::Customers => "customer_id",
            CrmTable::Contracts => "contract_no",
            CrmTable::HandoffTickets => "ticket_id",
        };
        RowReader { row, mapping: m }.text(canonical)
    }

    /// Types a full row of a reference table.
    pub fn entity(&self, table: CrmTable, row: &Row) -> Result<CrmEntity, ValueError> {
        let r = RowReader {
            row,
            mapping: self.mapping(table),
        };
        Ok(match table {
            CrmTable::Customers => CrmEntity::Customer(Customer {
                customer_id: r.text("customer_id")?,
                name: r.text("name")?,
                bank_account_no: r.opt_text("bank_account_no")?,
                region: r.opt_text("region")?,
            }),
            CrmTable::Contracts => {
                let currency = match r.opt_text("currency")? {
                    Some(c) => Currency::from_str(&c)
                        .map_err(|e| invalid!("column `{}`: {e}", r.mapping.column("currency")))?,
                    None => self.default_currency,
                };
                let status_text = r.text("status")?;
                let status_text = self
                    .status_values
                    .get(&status_text)
                    .cloned()
                    .unwrap_or(status_text);
                let status = ContractStatus::from_str(&status_text)
                    .map_err(|e| invalid!("column `{}`: {e}", r.mapping.column("status")))?;
                let amount = r.decimal("amount")?;
                if amount.is_sign_negative() {
                    return Err(invalid!(
                        "column `{}`: negative contract amount {amount}",
                        r.mapping.column("amount")
                    ));
                }
                CrmEntity::Contract(Contract {
                    contract_no: r.text("contract_no")?,
                    customer_id: r.text("customer_id")?,
                    owner_id: r.opt_text("owner_id")?,
                    region: r.opt_text("region")?,
                    amount: Money::new(amount, currency),
                    status,
                    signed_at: r.opt_time("signed_at")?,
                    signature_method: r.opt_text("signature_method")?,
                    accepted_at: r.opt_time("accepted_at")?,
                    payment_terms: r.opt_text("payment_terms")?.unwrap_or_default(),
                    updated_at: r.opt_time("updated_at")?,
                    updated_by: r.opt_text("updated_by")?,
                    updated_ip: r.opt_text("updated_ip")?,
                })
            }
            CrmTable::HandoffTickets => CrmEntity::HandoffTicket(HandoffTicket {
                ticket_id: r.text("ticket_id")?,
                contract_no: r.text("contract_no")?,
                department: r.text("department")?,
                created_at: r
                    .opt_time("created_at")?
                    .ok_or("column `created_at` is null")?,
                acknowledged_at: r.opt_time("acknowledged_at")?,
                completed_at: r.opt_time("completed_at")?,
            }),
        })
    }
}

struct RowReader<'a> {
    row: &'a Row,
    mapping: &'a TableMapping,
}

impl RowReader<'_> {
    fn get(&self, canonical: &str) -> Option<&Value> {
        self.row
            .get(self.mapping.column(canonical))
            .filter(|v| !matches!(v, Value::Null))
    }

    fn opt_text(&self, canonical: &str) -> Result<Option<String>, ValueError> {
        let col = self.mapping.column(canonical);
        Ok(match self.get(canonical) {
            None => None,
            Some(Value::Text(s)) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            Some(Value::Int(i)) => Some(i.to_string()),
            Some(Value::Decimal(d)) => Some(d.to_string()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            Some(Value::Json(j)) => Some(j.to_string()),
            Some(other) => return Err(invalid!("column `{col}`: expected text, got {other:?}")),
        })
    }

    fn text(&self, canonical: &str) -> Result<String, ValueError> {
        self.opt_text(canonical)?
            .ok_or_else(|| ValueError::Missing {
                field: format!("column `{}`", self.mapping.column(canonical)),
            })
    }

    /// An amount of money: exact, and within `money::max_amount`.
    fn decimal(&self, canonical: &str) -> Result<Decimal, ValueError> {
        let col = self.mapping.column(canonical);
        let d = self.any_decimal(canonical)?;
        crate::money::within_range(&d.to_string(), d)
            .map_err(|e| e.in_field(format!("column `{col}`")))
    }

    fn any_decimal(&self, canonical: &str) -> Result<Decimal, ValueError> {
        let col = self.mapping.column(canonical);
        match self.get(canonical) {
            None => Err(invalid!("column `{col}` is missing or null")),
            Some(Value::Decimal(d)) => Ok(*d),
            Some(Value::Int(i)) => Ok(Decimal::from(*i)),
            Some(Value::Float(f)) => {
                Decimal::from_str(&f.to_string()).map_err(|e| invalid!("column `{col}`: {e}"))
            }
            Some(Value::Text(s)) => {
                let digits = s.trim().trim_start_matches('-');
                if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
                    crate::money::parse_amount(s).map_err(|e| invalid!("column `{col}`: {e}"))
                } else {
                    Err(invalid!(
                        "column `{col}`: `{s}` is not a decimal; if the connector uses decimal.handling.mode=precise \
                         without schemas, declare the column under `debezium.decimal_columns`"
                    ))
                }
            }
            Some(other) => Err(invalid!(
                "column `{col}`: expected a decimal, got {other:?}"
            )),
        }
    }

    fn opt_time(&self, canonical: &str) -> Result<Option<DateTime<Utc>>, ValueError> {
        let col = self.mapping.column(canonical);
        match self.get(canonical) {
            None => Ok(None),
            Some(Value::Timestamp(t)) => Ok(Some(*t)),
            Some(Value::Date(d)) => Ok(Some(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())),
            Some(Value::Text(s)) => parse_timestamp(s)
                .map(Some)
                .map_err(|e| invalid!("column `{col}`: {e}")),
            Some(Value::Int(i)) => epoch_by_magnitude(*i)
                .map(Some)
                .ok_or_else(|| invalid!("column `{col}`: {i} is not a plausible epoch time")),
            Some(other) => Err(invalid!(
                "column `{col}`: expected a timestamp, got {other:?}"
            )),
        }
    }
}

/// Reads an integer epoch time of unknown unit (schema-less Debezium: `Timestamp` is ms,
/// `MicroTimestamp` us, `NanoTimestamp` ns) by its magnitude; unambiguous for 1973..2286.
pub(crate) fn epoch_by_magnitude(v: i64) -> Option<DateTime<Utc>> {
    let a = v.unsigned_abs();
    if a >= 100_000_000_000_000_000 {
        Some(DateTime::from_timestamp_nanos(v))
    } else if a >= 100_000_000_000_000 {
        DateTime::from_timestamp_micros(v)
    } else if a >= 100_000_000_000 {
        DateTime::from_timestamp_millis(v)
    } else {
        DateTime::from_timestamp(v, 0)
    }
}
