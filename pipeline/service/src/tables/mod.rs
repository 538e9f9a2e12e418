//! The live tables as Arrow record batches, for rule SQL: all of them, or only the rows of
//! the contracts or credits a batch changed (`Selection`, found through `SubjectIndex`).
//! Money is `Decimal128(18, 2)`, times are `Timestamp(µs, UTC)`, business dates are `Date32`.

mod index;

pub use index::{ChangedSubjects, SubjectIndex};

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use std::collections::{BTreeMap, HashMap};

use reconlight_formats::crm::extra::{ColumnType, ExtraTable};
use reconlight_formats::model::{Direction, Row, Value, end_of_business_day};
use reconlight_rules::clock::timestamp_type;
use rust_decimal::Decimal;

use reconlight_core::state::LiveState;

/// Names of the tables rules can read.
pub const TABLES: [&str; 9] = [
    "customers",
    "contracts",
    "handoff_tickets",
    "signatures",
    "installments",
    "bank_transactions",
    "matches",
    "work_items",
    "contract_amount_changes",
];

#[derive(Default)]
struct Columns {
    fields: Vec<Field>,
    arrays: Vec<ArrayRef>,
}

fn money_units(d: Decimal) -> i128 {
    let d = d.round_dp(2);
    d.mantissa() * 10i128.pow(2 - d.scale())
}

fn days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

// Each column is built straight from the rows it reads, borrowing their text: the full
// evaluation builds every table over the whole history, so a copy per cell is what it costs.
impl Columns {
    fn push(&mut self, name: &str, data_type: DataType, array: ArrayRef) {
        self.fields.push(Field::new(name, data_type, true));
        self.arrays.push(array);
    }
    fn text<'a>(&mut self, name: &str, v: impl IntoIterator<Item = Option<&'a str>>) {
        let a: StringArray = v.into_iter().collect();
        self.push(name, DataType::Utf8, Arc::new(a));
    }
    fn money(&mut self, name: &str, v: impl IntoIterator<Item = Option<Decimal>>) {
        let a: Decimal128Array = v.into_iter().map(|d| d.map(money_units)).collect();
        let a = a
            .with_precision_and_scale(18, 2)
            .expect("valid decimal type");
        self.push(name, DataType::Decimal128(18, 2), Arc::new(a));
    }
    fn time(&mut self, name: &str, v: impl IntoIterator<Item = Option<DateTime<Utc>>>) {
        let a: TimestampMicrosecondArray = v
            .into_iter()
            .map(|t| t.map(|t| t.timestamp_micros()))
            .collect();
        self.push(name, timestamp_type(), Arc::new(a.with_timezone("UTC")));
    }
    fn date(&mut self, name: &str, v: impl IntoIterator<Item = Option<NaiveDate>>) {
        let a: Date32Array = v.into_iter().map(|d| d.map(days)).collect();
        self.push(name, DataType::Date32, Arc::new(a));
    }
    fn flag(&mut self, name: &str, v: impl IntoIterator<Item = bool>) {
        let a: BooleanArray = v.into_iter().map(Some).collect();
        self.push(name, DataType::Boolean, Arc::new(a));
    }
    fn opt_flag(&mut self, name: &str, v: impl IntoIterator<Item = Option<bool>>) {
        let a: BooleanArray = v.into_iter().collect();
        self.push(name, DataType::Boolean, Arc::new(a));
    }
    fn int(&mut self, name: &str, v: impl IntoIterator<Item = Option<i64>>) {
        let a: Int64Array = v.into_iter().collect();
        self.push(name, DataType::Int64, Arc::new(a));
    }
    fn finish(self) -> RecordBatch {
        RecordBatch::try_new(Arc::new(Schema::new(self.fields)), self.arrays)
            .expect("columns of equal length")
    }
}

macro_rules! col {
    ($c:ident . $kind:ident ($name:expr, $rows:expr, |$r:ident| $e:expr)) => {
        $c.$kind($name, $rows.iter().map(|$r| $e))
    };
}

/// Builds one extra CRM table from its typed rows.
fn extra_table(def: &ExtraTable, rows: Option<&BTreeMap<String, Row>>) -> RecordBatch {
    let rows: Vec<&Row> = rows.map(|r| r.values().collect()).unwrap_or_default();
    let mut c = Columns::default();
    for (name, ty) in &def.columns {
        let cells = rows.iter().map(|r| r.get(name).unwrap_or(&Value::Null));
        match ty {
            ColumnType::Text => c.text(
                name,
                cells.map(|v| match v {
                    Value::Text(s) => Some(s.as_str()),
                    _ => None,
                }),
            ),
            ColumnType::Int => c.int(
                name,
                cells.map(|v| match v {
                    Value::Int(i) => Some(*i),
                    _ => None,
                }),
            ),
            ColumnType::Decimal => c.money(
                name,
                cells.map(|v| match v {
                    Value::Decimal(d) => Some(*d),
                    _ => None,
                }),
            ),
            ColumnType::Bool => c.opt_flag(
                name,
                cells.map(|v| match v {
                    Value::Bool(b) => Some(*b),
                    _ => None,
                }),
            ),
            ColumnType::Timestamp => c.time(
                name,
                cells.map(|v| match v {
                    Value::Timestamp(t) => Some(*t),
                    _ => None,
                }),
            ),
            ColumnType::Date => c.date(
                name,
                cells.map(|v| match v {
                    Value::Date(d) => Some(*d),
                    _ => None,
                }),
            ),
        }
    }
    c.finish()
}

/// Which rows the tables hold.
pub enum Selection<'a> {
    All,
    /// The rows of these contracts (and their customers); tables without a contract
    /// number are empty.
    Contracts(&'a std::collections::BTreeSet<String>),
    /// The rows of these credits; tables without a bank reference are empty.
    Credits(&'a std::collections::BTreeSet<String>),
}

/// How the tables a rule reads are cut by subject: contract-keyed tables (with a contract's
/// customer as a dimension), and credit-keyed ones.
pub const PARTITIONINGS: [reconlight_rules::scope::Partitioning<'static>; 2] = [
    reconlight_rules::scope::Partitioning {
        key: "contract_no",
        tables: &[
            "contracts",
            "installments",
            "signatures",
            "handoff_tickets",
            "contract_amount_changes",
            "matches",
            "work_items",
        ],
        dimensions: &[("customers", "customer_id")],
    },
    reconlight_rules::scope::Partitioning {
        key: "bank_ref",
        tables: &["bank_transactions", "matches"],
        dimensions: &[],
    },
];

/// Builds every table. `tolerance` is exposed on installments so rules need not repeat it;
/// `extra` are the configured extra CRM tables.
pub fn build_tables(
    state: &LiveState,
    tolerance: Decimal,
    tz: chrono_tz::Tz,
    extra: &BTreeMap<String, ExtraTable>,
) -> Vec<(String, RecordBatch)> {
    build_selected(
        state,
        tolerance,
        tz,
        extra,
        &Selection::All,
        &SubjectIndex::default(),
    )
}

/// Builds the tables holding the selected rows.
pub fn build_selected(
    state: &LiveState,
    tolerance: Decimal,
    tz: chrono_tz::Tz,
    extra: &BTreeMap<String, ExtraTable>,
    selection: &Selection,
    index: &SubjectIndex,
) -> Vec<(String, RecordBatch)> {
    let selected = index::SelectedRows::new(state, selection, index);
    let mut out = Vec::with_capacity(TABLES.len());

    let rows = &selected.customers;
    let mut c = Columns::default();
    col!(c.text("customer_id", rows, |r| Some(r.customer_id.as_str())));
    col!(c.text("name", rows, |r| Some(r.name.as_str())));
    col!(c.text("bank_account_no", rows, |r| r.bank_account_no.as_deref()));
    col!(c.text("region", rows, |r| r.region.as_deref()));
    out.push(("customers", c.finish()));

    let rows = &selected.contracts;
    let mut c = Columns::default();
    col!(c.text("contract_no", rows, |r| Some(r.contract_no.as_str())));
    col!(c.text("customer_id", rows, |r| Some(r.customer_id.as_str())));
    col!(c.text("owner_id", rows, |r| r.owner_id.as_deref()));
    col!(c.text("region", rows, |r| r.region.as_deref()));
    col!(c.money("amount", rows, |r| Some(r.amount.amount)));
    col!(c.text("currency", rows, |r| Some(r.amount.currency.as_str())));
    col!(c.text("status", rows, |r| Some(r.status.as_str())));
    col!(c.time("signed_at", rows, |r| r.signed_at));
    col!(c.text("signature_method", rows, |r| r.signature_method.as_deref()));
    col!(c.time("accepted_at", rows, |r| r.accepted_at));
    col!(c.text("payment_terms", rows, |r| Some(r.payment_terms.as_str())));
    col!(c.text("terms_error", rows, |r| {
        state.terms_errors.get(&r.contract_no).map(String::as_str)
    }));
    col!(c.time("updated_at", rows, |r| r.updated_at));
    col!(c.text("updated_by", rows, |r| r.updated_by.as_deref()));
    col!(c.text("updated_ip", rows, |r| r.updated_ip.as_deref()));
    out.push(("contracts", c.finish()));

    let rows = &selected.tickets;
    let mut c = Columns::default();
    col!(c.text("ticket_id", rows, |r| Some(r.ticket_id.as_str())));
    col!(c.text("contract_no", rows, |r| Some(r.contract_no.as_str())));
    col!(c.text("department", rows, |r| Some(r.department.as_str())));
    col!(c.time("created_at", rows, |r| Some(r.created_at)));
    col!(c.time("acknowledged_at", rows, |r| r.acknowledged_at));
    col!(c.time("completed_at", rows, |r| r.completed_at));
    out.push(("handoff_tickets", c.finish()));

    let rows = &selected.signatures;
    let mut c = Columns::default();
    col!(c.text("event_id", rows, |r| Some(r.event_id.as_str())));
    col!(c.text("provider", rows, |r| Some(r.provider.as_str())));
    col!(c.text("envelope_id", rows, |r| Some(r.envelope_id.as_str())));
    col!(c.text("event", rows, |r| Some(r.event.as_str())));
    col!(c.text("status", rows, |r| Some(r.status.as_str())));
    col!(c.text("contract_no", rows, |r| r.contract_no.as_deref()));
    col!(c.money("amount", rows, |r| r.amount.map(|m| m.amount)));
    col!(c.text("currency", rows, |r| {
        r.amount.as_ref().map(|m| m.currency.as_str())
    }));
    col!(c.text("signature_type", rows, |r| r.signature_type.as_deref()));
    col!(c.flag("ca_certified", rows, |r| r.ca_certified));
    col!(c.text("signer", rows, |r| r.signer.as_deref()));
    col!(c.time("occurred_at", rows, |r| Some(r.occurred_at)));
    out.push(("signatures", c.finish()));

    // Received, and how many credits (and how many of the installment's full amount) paid
    // each installment, from the confirmed allocations to the selected installments.
    #[derive(Default)]
    struct Paid {
        received: Decimal,
        credits: i64,
        full: i64,
    }
    let rows = &selected.installments;
    let mut paid: HashMap<(&str, u32), Paid> = HashMap::new();
    let amounts: HashMap<(&str, u32), Decimal> = rows
        .iter()
        .map(|((no, seq), i)| ((no.as_str(), *seq), i.amount.amount))
        .collect();
    for a in selected
        .allocations_to_installments
        .iter()
        .filter(|a| a.confirmed)
    {
        let key = (a.contract_no.as_str(), a.seq);
        let Some(amount) = amounts.get(&key) else {
            continue;
        };
        let e = paid.entry(key).or_default();
        e.received += a.amount;
        e.credits += 1;
        if (a.amount - amount).abs() <= tolerance {
            e.full += 1;
        }
    }
    let paid_rows: Vec<Option<&Paid>> = rows
        .iter()
        .map(|r| paid.get(&(r.0.0.as_str(), r.0.1)))
        .collect();
    let mut c = Columns::default();
    col!(c.text("contract_no", rows, |r| Some(r.0.0.as_str())));
    col!(c.int("seq", rows, |r| Some(r.0.1 as i64)));
    col!(c.text("customer_id", rows, |r| Some(r.1.customer_id.as_str())));
    // Rows come in contract order: one lookup per contract, not per installment.
    let mut last: Option<(&str, Option<&str>)> = None;
    col!(c.text("contract_status", rows, |r| {
        let no = r.0.0.as_str();
        match last {
            Some((seen, status)) if seen == no => status,
            _ => {
                let status = state.contracts.get(no).map(|k| k.status.as_str());
                last = Some((no, status));
                status
            }
        }
    }));
    col!(c.money("amount", rows, |r| Some(r.1.amount.amount)));
    col!(c.text("currency", rows, |r| Some(r.1.amount.currency.as_str())));
    col!(c.text("anchor", rows, |r| Some(r.1.anchor.as_str())));
    col!(c.int("due_days", rows, |r| Some(r.1.due_days)));
    col!(c.date("due_date", rows, |r| r.1.due_date));
    col!(c.money("received", paid_rows, |p| Some(
        p.map(|p| p.received).unwrap_or_default()
    )));
    col!(c.int("credit_count", paid_rows, |p| Some(
        p.map(|p| p.credits).unwrap_or(0)
    )));
    col!(c.int("full_credit_count", paid_rows, |p| Some(
        p.map(|p| p.full).unwrap_or(0)
    )));
    col!(c.money("tolerance", rows, |_r| Some(tolerance)));
    out.push(("installments", c.finish()));

    let rows = &selected.bank;
    let matched = |bank_ref: &str, confirmed: bool| -> Decimal {
        state
            .matches
            .get(bank_ref)
            .map(|v| {
                v.iter()
                    .filter(|a| a.confirmed == confirmed)
                    .map(|a| a.amount)
                    .sum()
            })
            .unwrap_or_default()
    };
    let mut c = Columns::default();
    col!(c.text("bank_ref", rows, |r| Some(r.tx.bank_ref.as_str())));
    col!(c.text("account", rows, |r| Some(r.tx.account.as_str())));
    col!(c.text("direction", rows, |r| Some(match r.tx.direction {
        Direction::Credit => "credit",
        Direction::Debit => "debit",
    })));
    col!(c.money("amount", rows, |r| Some(r.tx.amount.amount)));
    col!(c.text("currency", rows, |r| Some(r.tx.amount.currency.as_str())));
    col!(c.flag("reversal", rows, |r| r.tx.reversal));
    col!(c.text("reversed_by", rows, |r| r.reversed_by.as_deref()));
    col!(c.text("reverses", rows, |r| r.reverses.as_deref()));
    col!(c.date("booking_date", rows, |r| Some(r.tx.booking_date)));
    col!(c.date("value_date", rows, |r| r.tx.value_date));
    // A time-zone conversion per booking day, not per credit.
    let mut day_ends: HashMap<NaiveDate, DateTime<Utc>> = HashMap::new();
    col!(c.time("booked_at", rows, |r| {
        Some(
            *day_ends
                .entry(r.tx.booking_date)
                .or_insert_with(|| end_of_business_day(r.tx.booking_date, tz)),
        )
    }));
    col!(c.text("counterparty_name", rows, |r| {
        r.tx.counterparty_name.as_deref()
    }));
    col!(c.text("counterparty_account", rows, |r| {
        r.tx.counterparty_account.as_deref()
    }));
    col!(c.text("remittance", rows, |r| Some(r.tx.remittance.as_str())));
    col!(c.text("end_to_end_id", rows, |r| r.tx.end_to_end_id.as_deref()));
    col!(c.text("format", rows, |r| Some(r.tx.format.as_str())));
    col!(c.money("matched_amount", rows, |r| Some(matched(
        &r.tx.bank_ref,
        true
    ))));
    col!(c.money("suggested_amount", rows, |r| Some(matched(
        &r.tx.bank_ref,
        false
    ))));
    out.push(("bank_transactions", c.finish()));

    let rows = &selected.allocations;
    let mut c = Columns::default();
    col!(c.text("bank_ref", rows, |r| Some(r.bank_ref.as_str())));
    col!(c.text("contract_no", rows, |r| Some(r.contract_no.as_str())));
    col!(c.int("seq", rows, |r| Some(r.seq as i64)));
    col!(c.money("amount", rows, |r| Some(r.amount)));
    col!(c.text("rule", rows, |r| Some(r.rule.as_str())));
    col!(c.int("confidence", rows, |r| Some(r.confidence as i64)));
    col!(c.text("explanation", rows, |r| Some(r.explanation.as_str())));
    col!(c.flag("confirmed", rows, |r| r.confirmed));
    out.push(("matches", c.finish()));

    let rows = &selected.work_items;
    let mut c = Columns::default();
    col!(c.text("id", rows, |r| Some(r.id.as_str())));
    col!(c.text("kind", rows, |r| Some(r.finding.kind.as_str())));
    col!(c.text("state", rows, |r| Some(r.state.as_str())));
    col!(c.text("contract_no", rows, |r| r.finding.contract_no.as_deref()));
    col!(c.int("installment", rows, |r| {
        r.finding.installment.map(i64::from)
    }));
    col!(c.text("bank_ref", rows, |r| r.finding.bank_ref.as_deref()));
    col!(c.money("expected", rows, |r| r.finding.expected));
    col!(c.money("received", rows, |r| r.finding.received));
    col!(c.date("first_found", rows, |r| Some(r.first_found)));
    col!(c.date("last_found", rows, |r| Some(r.last_found)));
    col!(c.date("sla_due", rows, |r| Some(r.sla_due)));
    col!(c.text("assignee", rows, |r| r.assignee.as_deref()));
    out.push(("work_items", c.finish()));

    let rows = &selected.amount_changes;
    let mut c = Columns::default();
    col!(c.text("contract_no", rows, |r| Some(r.key.as_str())));
    col!(c.money("before", rows, |r| {
        r.before.as_deref().and_then(|b| b.parse().ok())
    }));
    col!(c.money("after", rows, |r| {
        r.after.as_deref().and_then(|a| a.parse().ok())
    }));
    col!(c.text("operator", rows, |r| r.operator.as_deref()));
    col!(c.text("ip", rows, |r| r.ip.as_deref()));
    col!(c.time("changed_at", rows, |r| Some(r.source_time)));
    col!(c.text("source_position", rows, |r| Some(
        r.source_position.as_str()
    )));
    col!(c.int("audit_seq", rows, |r| Some(r.seq as i64)));
    out.push(("contract_amount_changes", c.finish()));

    let mut out: Vec<(String, RecordBatch)> =
        out.into_iter().map(|(n, b)| (n.to_string(), b)).collect();
    for (name, def) in extra {
        let rows = match selection {
            Selection::All => state.extra.get(name),
            _ => None,
        };
        out.push((name.clone(), extra_table(def, rows)));
    }
    out
}
